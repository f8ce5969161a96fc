// The CPU runtime (DESIGN §5): runs a CompressedModel with kernels that exploit each layer's
// config. Starting from the compressed model's TorchScript graph, a batch norm with constant
// statistics right after a convolution is folded into the convolution's weights and bias;
// then every conv2d / linear node whose kernel (ChooseKernel) is not dense is replaced by
// an acs_rt op holding its packed weights, and a relu / relu6 / hardtanh right after it is
// fused into it as a clamp:
// - block / unstructured / N:M configs sparse enough (KernelSelection): the sparse ops
//   (packed_layer.h);
// - int8 precision (groups = 1, or depthwise up to 7x7 with stride 1 or 2): the int8 ops,
//   which take over the layer's fake-quant input node and quantize with its scale and zero
//   point (packed_int8.h, packed_depthwise.h); other grouped int8 layers stay the
//   compressor's fake-quant graph (KernelKind::kInt8Simulated);
// - int4w linear layers: the int4 weight-only op;
// - 3x3 depthwise convolutions (stride 1 or 2): the depthwise op (packed_depthwise.h).
// Dense, channel-pruned, other grouped and depthwise layers stay aten ops, run as PyTorch's
// optimize_for_inference runs them (prepacked oneDNN weights) where that makes the model
// faster (FasterForInference); with RuntimeOptions::prepack_dense, each dense convolution
// runs on oneDNN with its weights prepacked, on plain tensors, a relu fused (dense_ops.h).
#pragma once

#include <torch/script.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/compressor.h"
#include "core/policy.h"
#include "core/status.h"
#include "core/torchscript_model.h"
#include "devices/runtime/packed_layer.h"

namespace acs::runtime {

struct RuntimeOptions {
  int threads = 1;               // sparse kernel threads and LibTorch intra-op threads
  KernelSelection selection;     // when a sparse config gets a sparse kernel
  bool fold_batch_norm = true;   // fold conv -> batch_norm (constant statistics, eval mode)
  bool fuse_activation = true;   // fold relu / relu6 / hardtanh after a packed op into it
  bool depthwise_kernel = true;  // 3x3 depthwise convs on the depthwise kernel (else LibTorch)
  bool prepack_dense = false;    // dense convolutions on oneDNN with prepacked weights, a relu
                                 // fused (dense_ops.h); KernelMeasureOptions::prepack_dense
                                 // times them so. Off: slower than the whole-graph forms on
                                 // tiny models (per-layer layout conversions), not yet shown
                                 // to predict better (docs/latency.md)
  bool optimize_dense = true;    // without prepack_dense: the layers left to LibTorch as
                                 // optimize_for_inference runs them, when that is faster
                                 // (FasterForInference)
  kernels::ConvLowering lowering = kernels::ConvLowering::kAuto;  // for sparse convolutions
};

// What runs one compressible layer.
struct LayerKernel {
  std::string name;
  std::string op;  // "conv2d" or "linear"
  KernelKind kind = KernelKind::kDense;
  LayerConfig config;      // from the policy
  int block = 0;           // kBlockSparse: N
  int nm_n = 0, nm_m = 0;  // kNm
  double density = 1.0;    // non-zero share of the weight as it runs
  bool folded_batch_norm = false;
  std::string activation;  // fused activation, e.g. "relu"; empty if none
  std::string why_dense;   // set when a sparse config runs dense
  bool prepacked = false;  // a dense convolution on the prepacked oneDNN op (dense_ops.h)
};

// A compiled model. Forward may be called from several threads at once (its packed layers
// are immutable); copies share the compiled graph.
class RuntimeModel {
 public:
  // Runs the model on x (any batch size; other dimensions as compiled) under no-grad, after
  // SetCpuThreads(threads()) (a process-wide setting). Returns the
  // output tensor (the first tensor of a tuple output).
  StatusOr<torch::Tensor> Forward(const torch::Tensor& x);

  const std::vector<LayerKernel>& layers() const { return layers_; }
  int threads() const { return threads_; }
  // The rewritten forward graph (first input `self`), for inspection.
  std::shared_ptr<torch::jit::Graph> graph() const { return graph_; }
  // Nodes of a kind in graph(), e.g. "aten::batch_norm" or kSparseConv2dOp.
  int CountNodes(const std::string& kind) const;
  // Whether the layers left to LibTorch run on prepacked oneDNN weights (prepack_dense, or
  // the whole graph optimized for inference), and if not, why.
  bool dense_optimized() const { return dense_optimized_; }
  const std::string& why_dense_not_optimized() const { return why_dense_not_optimized_; }

  // Writes the model as a TorchScript file (e.g. compressed.acs.pt) that torch::jit::load
  // and torch.jit.load run where the acs_rt ops are registered: linked in (acs_runtime) or
  // loaded from libacs_ops.so (torch.ops.load_library), never both in one process. Packed
  // layers are saved as the inputs of their Create and packed again on load, for the
  // loading machine's ISA (packed_state.h); they keep the threads they were compiled with.
  // Layers left to LibTorch are saved as the aten ops on frozen weights they were before
  // OptimizeDenseOps, whose oneDNN tensors cannot be saved: in the file they run as plain
  // LibTorch ops whatever dense_optimized() says. Errors: FailedPrecondition for a model
  // that was not compiled, Internal when writing fails.
  Status Save(const std::string& path) const;
  Status Save(std::ostream& out) const;  // the same file's bytes to a stream

 private:
  friend StatusOr<RuntimeModel> CompileForRuntime(const ImportedModel&, const Policy&, const CompressedModel&,
                                                  const RuntimeOptions&);
  torch::jit::Module module_;
  torch::jit::Module saveable_;  // module_ before OptimizeDenseOps
  std::shared_ptr<torch::jit::Graph> graph_;
  std::vector<LayerKernel> layers_;
  int threads_ = 1;
  bool dense_optimized_ = false;
  std::string why_dense_not_optimized_ = "not asked for (RuntimeOptions::optimize_dense)";
};

// Compiles `compressed` (made by Compress(model, policy, ...)) for the CPU. The i-th conv /
// linear node of the compressed graph is model.graph.layers[i]; the spatial input size of
// each convolution is the one recorded at import, so Forward takes that size.
// Errors: InvalidArgument when the policy does not fit the model, Internal when the
// compressed graph does not match the model's layers.
StatusOr<RuntimeModel> CompileForRuntime(const ImportedModel& model, const Policy& policy,
                                         const CompressedModel& compressed, const RuntimeOptions& options = {});

// Rewrites a frozen forward graph (weights as constants, first input `self`) as PyTorch's
// torch.jit.optimize_for_inference does: conv / batch-norm / add / mul folding, linear
// weights transposed, and runs of conv2d, linear and the elementwise ops between them on
// prepacked oneDNN (MKLDNN) tensors. acs_rt ops stay as they are, with layout conversions
// around them. Any batch size runs. A module made from the result cannot be saved: LibTorch
// 1.13 writes its prim::ConstantMKLDNNTensor nodes without their tensors, and loading the
// file fails ("required keyword attribute 'value' is undefined").
// Errors (Internal): a pass failed (LibTorch 1.13 asserts on "same" string padding); the
// graph is then unchanged.
Status OptimizeDenseOps(std::shared_ptr<torch::jit::Graph>& graph);

// Why the optimized form's output `got` is not the plain form's `expect` ("" when it is):
// within 1e-4 of the output's scale everywhere, or, where int8 layers quantize activations
// (a last-bit difference of an fp32 layer can move a value across a rounding step), within
// 1% in relative L2 norm.
std::string OptimizedDiffers(const torch::Tensor& got, const torch::Tensor& expect, bool int8_activations);
// Whether `graph` runs acs_rt int8 ops (activations quantized).
bool HasInt8Activations(const torch::jit::Graph& graph);

// The faster of two modules of `graph`: as it is, and with its dense ops optimized
// (OptimizeDenseOps). The optimized one must compute the same function (both run on random
// inputs of `input_shape` at batch 1 and 2 and agree as OptimizedDiffers checks);
// then both are timed alternately on this machine with `threads`. Around acs_rt ops the
// oneDNN layout conversions can cost more than the prepacked convolutions save (measured:
// a block-sparse ResNet-20 at 28x28 ran 1.4x slower optimized), hence the choice.
struct InferenceModule {
  torch::jit::Module module;
  bool optimized = false;
  std::string why_not;  // set when not optimized
};
InferenceModule FasterForInference(const torch::jit::Graph& graph, const Shape& input_shape, int threads = 1);

// The dense baselines of a model, both run by LibTorch on its original frozen graph:
// kPlain as imported, kOptimized the faster of that and the graph after OptimizeDenseOps
// (what a PyTorch user gets from torch.jit.optimize_for_inference(torch.jit.freeze(m))):
// the strongest dense baseline.
enum class DenseForm { kPlain, kOptimized };
const char* DenseFormName(DenseForm form);  // "frozen", "frozen + optimize_for_inference"

class DenseModel {
 public:
  // Errors: none yet (StatusOr for the future).
  static StatusOr<DenseModel> Create(const ImportedModel& model, int threads, DenseForm form = DenseForm::kOptimized);
  // SetCpuThreads(threads()) (process-wide), then runs the module.
  StatusOr<torch::Tensor> Forward(const torch::Tensor& x);
  int threads() const { return threads_; }
  // kOptimized falls back to the plain graph where the optimized one is slower or not the
  // same function (see FasterForInference); form() is what runs.
  DenseForm form() const { return form_; }
  const std::string& why_not_optimized() const { return why_not_optimized_; }

 private:
  DenseModel() = default;
  torch::jit::Module module_;
  int threads_ = 1;
  DenseForm form_ = DenseForm::kOptimized;
  std::string why_not_optimized_;
};

// Sets LibTorch's intra-op threads and, when LibTorch uses OpenBLAS, OpenBLAS's threads
// (process-wide settings). RuntimeModel and DenseModel call it before every forward.
void SetCpuThreads(int threads);

// "acs <project version> / libtorch <version>".
std::string RuntimeVersion();

}  // namespace acs::runtime
