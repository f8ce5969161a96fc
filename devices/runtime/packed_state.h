// The saved state of the acs_rt classes (their def_pickle __getstate__ / __setstate__),
// one layout for the seven of them: the inputs of the class's Create, not its packed
// arrays. Loading packs the layer again through Create, so the packed layout (e.g. the
// ISA's tiles) is chosen on the machine that loads the file: a file saved on an AVX-512
// host runs on an AVX2 one. Version 1:
//
//   (version: int = 1,
//    weight: Tensor,                  as given to Create
//    bias: Optional[Tensor],
//    geometry: Optional[List[int]],   convolutions: [stride h, stride w, padding h, padding w,
//                                     dilation h, dilation w, height, width]; else None
//    quant: Optional[(float, int)],   int8 layers: the input's (scale, zero point); else None
//    options: (kernel: str,           KernelKindName, e.g. "block"
//              block: int, nm_n: int, nm_m: int,
//              activation: (enabled: bool, min: float, max: float, name: str),
//              threads: int,     capped on load to the machine's hardware threads
//              lowering: str))        "auto", "im2col" or "direct"
//
// __setstate__ throws c10::Error naming the class on another version, a malformed state
// or a Create that fails, e.g. "acs_rt.PackedConv: saved with format version 7, this
// library reads version 1".
#pragma once

#include <torch/script.h>

#include <utility>

#include "core/status.h"
#include "devices/runtime/packed_layer.h"

namespace acs::runtime {

inline constexpr int64_t kPackStateVersion = 1;

// A class's name in errors and which optional fields of the state it has.
struct PackStateKind {
  const char* name;  // e.g. "acs_rt.PackedConv"
  bool geometry;
  bool quant;
};

inline constexpr PackStateKind kPackedConvState{"acs_rt.PackedConv", true, false};
inline constexpr PackStateKind kPackedLinearState{"acs_rt.PackedLinear", false, false};
inline constexpr PackStateKind kPackedInt8ConvState{"acs_rt.PackedInt8Conv", true, true};
inline constexpr PackStateKind kPackedInt8LinearState{"acs_rt.PackedInt8Linear", false, true};
inline constexpr PackStateKind kPackedInt4LinearState{"acs_rt.PackedInt4Linear", false, false};
inline constexpr PackStateKind kPackedDepthwiseConvState{"acs_rt.PackedDepthwiseConv", true, false};
inline constexpr PackStateKind kPackedInt8DepthwiseConvState{"acs_rt.PackedInt8DepthwiseConv", true, true};

// The state of a layer created from `source`.
c10::IValue PackState(const PackSource& source, const PackStateKind& kind);

// The source saved in `state`. Throws c10::Error naming kind.name on another version or a
// malformed state.
PackSource PackSourceFromState(const c10::IValue& state, const PackStateKind& kind);

// The packed layer, or throws c10::Error naming kind.name and why Create failed.
template <class T>
c10::intrusive_ptr<T> PackedOrThrow(StatusOr<c10::intrusive_ptr<T>> packed, const PackStateKind& kind) {
  TORCH_CHECK(packed.ok(), kind.name, ": the saved layer does not pack: ", packed.status().message());
  return std::move(packed).value();
}

}  // namespace acs::runtime
