#include "core/torchscript_model.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>

#include <sstream>

namespace acs {

std::vector<torch::jit::Value*> EnumerateValues(torch::jit::Graph& graph) {
  std::vector<torch::jit::Value*> values(graph.inputs().begin(), graph.inputs().end());
  for (torch::jit::Node* node : graph.nodes()) {
    for (torch::jit::Value* v : node->outputs()) values.push_back(v);
  }
  return values;
}

std::map<torch::jit::Value*, size_t> ValuePositions(torch::jit::Graph& graph) {
  std::map<torch::jit::Value*, size_t> out;
  std::vector<torch::jit::Value*> values = EnumerateValues(graph);
  for (size_t i = 0; i < values.size(); ++i) out[values[i]] = i;
  return out;
}

std::vector<torch::jit::Node*> TopLevelNodes(torch::jit::Graph& graph) {
  return std::vector<torch::jit::Node*>(graph.nodes().begin(), graph.nodes().end());
}

torch::jit::Module ModuleFromGraph(const torch::jit::Graph& graph) {
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  auto cls = c10::ClassType::create("__torch__.acs.CompressedModel", cu, /*is_module=*/true);
  torch::jit::Module module(cu, cls);
  std::shared_ptr<torch::jit::Graph> copy = const_cast<torch::jit::Graph&>(graph).copy();
  copy->inputs()[0]->setType(cls);
  torch::jit::Function* forward = cu->create_function("__torch__.acs.CompressedModel.forward", copy);
  cls->addMethod(forward);
  module.eval();
  return module;
}

std::string ShortError(const std::exception& e) {
  std::string what = e.what();
  // c10::Error messages carry a TorchScript traceback; keep the last meaningful line.
  std::istringstream lines(what);
  std::string line, last;
  while (std::getline(lines, line)) {
    if (line.find("RuntimeError:") != std::string::npos || line.find("Error:") == 0) {
      last = line.substr(line.find("Error:") + 6);
    }
  }
  if (!last.empty()) {
    while (!last.empty() && last.front() == ' ') last.erase(last.begin());
    return last;
  }
  std::string first = what.substr(0, what.find('\n'));
  return first.size() > 400 ? first.substr(0, 400) + "..." : first;
}

namespace {

// The model's prediction: its output tensor, or the first tensor of a tuple output (as
// torchvision's GoogLeNet returns with auxiliary logits).
StatusOr<torch::Tensor> Prediction(const c10::IValue& out) {
  if (out.isTensor()) return out.toTensor();
  if (out.isTuple()) {
    for (const c10::IValue& element : out.toTupleRef().elements()) {
      if (element.isTensor()) return element.toTensor();
    }
  }
  return Status::Unimplemented("the model's output is neither a tensor nor a tuple holding one");
}

}  // namespace

StatusOr<torch::Tensor> RunGraph(const std::shared_ptr<torch::jit::Graph>& graph, const torch::jit::Module& self,
                                 const torch::Tensor& input) {
  try {
    torch::NoGradGuard no_grad;
    torch::jit::GraphFunction fn("run", graph, nullptr);
    std::vector<c10::IValue> stack{self._ivalue(), input};
    fn.run(stack);
    return Prediction(stack.at(0));
  } catch (const std::exception& e) {
    return Status::InvalidArgument("running the model failed: " + ShortError(e));
  }
}

torch::Tensor ConstantTensor(torch::jit::Node* node, size_t input) {
  c10::optional<c10::IValue> v = torch::jit::toIValue(node->input(input));
  return v && v->isTensor() ? v->toTensor() : torch::Tensor();
}

void ReplaceInput(torch::jit::Graph& graph, torch::jit::Node* node, size_t input, const c10::IValue& value) {
  torch::jit::WithInsertPoint guard(node);
  node->replaceInput(input, graph.insertConstant(value));
}

std::vector<torch::jit::Node*> WeightedNodes(torch::jit::Graph& graph) {
  std::vector<torch::jit::Node*> nodes;
  for (torch::jit::Node* node : graph.nodes()) {
    if (IsWeightedOpKind(node->kind().toQualString())) nodes.push_back(node);
  }
  return nodes;
}

StatusOr<std::vector<c10::IValue>> RunForValues(const std::shared_ptr<torch::jit::Graph>& graph,
                                                const torch::jit::Module& self, const torch::Tensor& input,
                                                const std::vector<torch::jit::Value*>& values,
                                                const std::string& failure) {
  torch::jit::Node* tuple = graph->insertNode(graph->createTuple(values));
  while (!graph->outputs().empty()) graph->eraseOutput(0);
  graph->registerOutput(tuple->output());
  try {
    torch::NoGradGuard no_grad;
    torch::jit::GraphFunction fn("values", graph, nullptr);
    std::vector<c10::IValue> stack{self._ivalue(), input};
    fn.run(stack);
    const auto& out = stack.at(0).toTupleRef().elements();
    return std::vector<c10::IValue>(out.begin(), out.end());
  } catch (const std::exception& e) {
    return Status::InvalidArgument(failure + ": " + ShortError(e));
  }
}

StatusOr<std::vector<torch::Tensor>> CaptureLayerInputs(torch::jit::Graph& graph, const torch::jit::Module& self,
                                                        const torch::Tensor& input, const std::vector<int>& layers) {
  std::shared_ptr<torch::jit::Graph> copy = graph.copy();
  std::vector<torch::jit::Node*> nodes = WeightedNodes(*copy);
  std::vector<torch::jit::Value*> captured;
  for (int li : layers) {
    if (li < 0 || li >= static_cast<int>(nodes.size())) {
      return Status::Internal("no weighted op " + std::to_string(li) + " in the graph");
    }
    torch::jit::Node* node = nodes[li];
    torch::jit::WithInsertPoint guard(node);
    // A copy, so that in-place ops after the layer cannot change what is returned.
    captured.push_back(copy->insert(c10::Symbol::fromQualString("aten::clone"), {node->input(0)}));
  }
  ACS_ASSIGN_OR_RETURN(std::vector<c10::IValue> values, RunForValues(copy, self, input, captured));
  std::vector<torch::Tensor> out;
  for (const c10::IValue& v : values) out.push_back(v.toTensor());
  return out;
}

StatusOr<torch::Tensor> RunModule(torch::jit::Module& module, const torch::Tensor& input) {
  try {
    torch::NoGradGuard no_grad;
    return Prediction(module.forward({input}));
  } catch (const std::exception& e) {
    return Status::InvalidArgument("running the model failed: " + ShortError(e));
  }
}

}  // namespace acs

namespace acs {

bool IsWeightedOpKind(const std::string& k) {
  return k == "aten::linear" || k == "aten::conv2d" || k == "aten::_convolution" || k == "aten::conv1d" ||
         k == "aten::conv3d" || k == "aten::conv_transpose1d" || k == "aten::conv_transpose2d" ||
         k == "aten::conv_transpose3d";
}

}  // namespace acs
