#include "devices/runtime/dense_ops.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include "core/torchscript_model.h"

namespace acs::runtime {

StatusOr<c10::IValue> PrepackDenseConv(const DenseConv& conv) {
  if (conv.input_shape.size() != 4) return Status::Internal("a dense convolution needs its 4-d input shape");
  try {
    static const c10::OperatorHandle prepack =
        c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn_prepacked::conv2d_prepack", "");
    auto ints = [](const std::array<int64_t, 2>& a) { return std::vector<int64_t>{a[0], a[1]}; };
    torch::jit::Stack stack{c10::IValue(conv.weight.contiguous()),
                            conv.bias.defined() ? c10::IValue(conv.bias.contiguous()) : c10::IValue(),
                            c10::IValue(ints(conv.stride)),
                            c10::IValue(ints(conv.padding)),
                            c10::IValue(ints(conv.dilation)),
                            c10::IValue(conv.groups),
                            c10::IValue(conv.input_shape),
                            c10::IValue(std::string(conv.fuse_relu ? "relu" : "none"))};
    prepack.callBoxed(&stack);
    return stack.at(0);
  } catch (const std::exception& e) {
    return Status::Internal("prepacking a dense convolution for oneDNN failed: " + ShortError(e));
  }
}

torch::jit::Value* InsertDenseConvRun(torch::jit::Graph& graph, torch::jit::Value* x, const c10::IValue& packed) {
  torch::jit::Value* constant = graph.insertConstant(packed);
  return graph.insert(c10::Symbol::fromQualString("mkldnn_prepacked::conv2d_run"), {x, constant});
}

namespace {

// A graph forward(self, x) for one op.
std::shared_ptr<torch::jit::Graph> OneInputGraph(torch::jit::Value** x) {
  auto graph = std::make_shared<torch::jit::Graph>();
  graph->addInput("self");
  *x = graph->addInput("x");
  (*x)->setType(c10::TensorType::get());
  return graph;
}

}  // namespace

StatusOr<torch::jit::Module> DenseConvModule(const DenseConv& conv) {
  ACS_ASSIGN_OR_RETURN(c10::IValue packed, PrepackDenseConv(conv));
  torch::jit::Value* x = nullptr;
  std::shared_ptr<torch::jit::Graph> graph = OneInputGraph(&x);
  graph->registerOutput(InsertDenseConvRun(*graph, x, packed));
  return ModuleFromGraph(*graph);
}

torch::jit::Module DenseLinearModule(const torch::Tensor& weight, const torch::Tensor& bias) {
  torch::jit::Value* x = nullptr;
  std::shared_ptr<torch::jit::Graph> graph = OneInputGraph(&x);
  graph->registerOutput(
      graph->insert(c10::Symbol::fromQualString("aten::linear"), {x, c10::IValue(weight), c10::IValue(bias)}));
  return ModuleFromGraph(*graph);
}

}  // namespace acs::runtime
