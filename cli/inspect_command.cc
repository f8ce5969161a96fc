// acs inspect MODEL --input SHAPE: the layer table, channel groups and totals.
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/table.h"
#include "core/importer.h"

namespace acs::cli {
namespace {

const char kHelp[] =
    "usage: acs inspect MODEL.pt --input SHAPE [--groups]\n"
    "\n"
    "Imports a TorchScript model and prints its conv / linear layers: shapes, FLOPs\n"
    "(2 x multiply-adds per sample), parameters, channel group, and whether the layer is\n"
    "compressible (and why not). Channel groups are layers whose output channels must be\n"
    "pruned together.\n"
    "\n"
    "  --input SHAPE   input shape, e.g. 1x3x32x32 (required)\n"
    "  --groups        also print the channel-group table\n";

std::string KernelText(const Layer& l) {
  if (l.type == LayerType::kLinear) return "-";
  std::string s = std::to_string(l.kernel[0]) + "x" + std::to_string(l.kernel[1]) + "/s" + std::to_string(l.stride[0]);
  if (l.groups > 1) s += l.depthwise() ? " dw" : " g" + std::to_string(l.groups);
  return s;
}

std::string GroupText(const Graph& g, int group) {
  if (group < 0) return "-";
  return "G" + std::to_string(group) + (g.groups[group].prunable ? "" : "*");
}

}  // namespace

int InspectCommand(int argc, char** argv) {
  auto args = ParseFlags(argc, argv, 2, {"input"}, {"help", "groups"});
  if (!args.ok()) return Fail("inspect", args.status());
  if (args->Has("help")) {
    std::cout << kHelp;
    return 0;
  }
  if (args->positional.size() != 1) {
    std::cerr << "acs inspect: expected one MODEL file\n\n" << kHelp;
    return 2;
  }
  if (!args->Has("input")) return Fail("inspect", Status::InvalidArgument("--input SHAPE is required, e.g. --input 1x3x32x32"));
  auto shape = ParseShape(args->Get("input"));
  if (!shape.ok()) return Fail("inspect", shape.status());
  auto model = ImportTorchScript(args->positional[0], {*shape});
  if (!model.ok()) return Fail("inspect", model.status());
  const Graph& g = (*model)->graph;

  Table layers({"#", "layer", "type", "input", "output", "kernel", "FLOPs", "params", "group", "compressible"});
  int compressible = 0;
  for (size_t i = 0; i < g.layers.size(); ++i) {
    const Layer& l = g.layers[i];
    compressible += l.compressible;
    auto strip = [](const Shape& s) { return FormatShape(Shape(s.begin() + (s.empty() ? 0 : 1), s.end())); };
    layers.AddRow({std::to_string(i), l.name, LayerTypeName(l.type), strip(l.input_shape), strip(l.output_shape),
                   KernelText(l), HumanCount(static_cast<double>(l.flops)), HumanCount(static_cast<double>(l.params)),
                   GroupText(g, l.out_group), l.compressible ? "yes" : "no: " + l.why_not});
  }
  layers.AddSeparator();
  layers.AddRow({"", "total", "", "", "", "", HumanCount(static_cast<double>(g.TotalFlops())),
                 HumanCount(static_cast<double>(g.TotalParams())), "", std::to_string(compressible) + " of " + std::to_string(g.layers.size())});
  std::cout << "model " << args->positional[0] << ", input " << FormatShape(*shape) << "\n\n";
  layers.Print(std::cout);

  int prunable = 0;
  for (const ChannelGroup& group : g.groups) prunable += group.prunable;
  std::cout << "\nchannel groups: " << g.groups.size() << " (" << prunable
            << " prunable; * = kept whole, see --groups)\n";
  if (args->Has("groups")) {
    Table groups({"group", "channels", "producers", "consumers", "depthwise", "prunable"});
    auto names = [&](const std::vector<int>& idx) {
      std::string s;
      for (size_t k = 0; k < idx.size(); ++k) {
        if (k == 3) return s + ", +" + std::to_string(idx.size() - 3);
        s += (k ? ", " : "") + g.layers[idx[k]].name;
      }
      return s.empty() ? "-" : s;
    };
    for (size_t i = 0; i < g.groups.size(); ++i) {
      const ChannelGroup& group = g.groups[i];
      groups.AddRow({"G" + std::to_string(i), std::to_string(group.channels), names(group.producers),
                     names(group.consumers), names(group.carriers), group.prunable ? "yes" : "no: " + group.why_not});
    }
    std::cout << "\n";
    groups.Print(std::cout);
  }
  std::map<std::string, int> ops;
  for (const Node& n : g.nodes) {
    if (n.kind != "prim::Constant" && n.kind != "prim::ListConstruct") ops[n.kind]++;
  }
  std::cout << "\nops:";
  for (const auto& [kind, count] : ops) std::cout << " " << kind << " x" << count;
  std::cout << "\n";
  return 0;
}

}  // namespace acs::cli
