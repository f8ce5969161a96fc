// Sparse-weight matrix products Y[O x P] = W[O x K] X[K x P] (+ bias) on the CPU.
//
// A linear layer at batch B is P = B with X holding one sample per column (X = input^T);
// a convolution is P = output positions of one image (see conv2d.h).
#pragma once

#include <cstdint>

#include "core/status.h"
#include "devices/kernels/kernel_table.h"
#include "devices/kernels/sparse_formats.h"

namespace acs::kernels {

struct SpmmOptions {
  int threads = 1;                       // worker threads at most (OpenMP); 1 runs on the caller
  int64_t min_macs_per_thread = 1 << 19; // multiply-adds (stored values x columns) that are
                                         // worth one more thread; small products use fewer
  const KernelTable* kernels = nullptr;  // null: Kernels(), the table chosen at start-up
};

// Operands, read (x, bias) and written (y) but not owned. Y must not overlap X or bias.
struct SpmmArgs {
  const float* x = nullptr;     // K x P, row k at x + k * ldx
  int64_t ldx = 0;              // >= p
  float* y = nullptr;           // O x P, row o at y + o * ldy; every element is written
  int64_t ldy = 0;              // >= p
  int64_t p = 0;                // columns, >= 1
  const float* bias = nullptr;  // O floats, or null for none
};

// Threads worth starting for `macs` multiply-adds: between 1 and options.threads.
int ThreadsFor(int64_t macs, const SpmmOptions& options);

// Errors (InvalidArgument): null pointers, p < 1, leading dimensions below p.
// Thread-safe for distinct outputs.
Status Spmm(const BlockSparseMatrix& w, const SpmmArgs& args, const SpmmOptions& options = {});
Status Spmm(const CsrMatrix& w, const SpmmArgs& args, const SpmmOptions& options = {});
Status Spmm(const NmMatrix& w, const SpmmArgs& args, const SpmmOptions& options = {});
Status Spmm(const SparseWeights& w, const SpmmArgs& args, const SpmmOptions& options = {});

}  // namespace acs::kernels
