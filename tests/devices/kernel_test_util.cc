#include "tests/devices/kernel_test_util.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace acs::kernels::testing {

std::vector<float> RandomSparseWeights(int64_t rows, int64_t cols, const std::string& pattern,
                                       double sparsity, std::mt19937& rng) {
  std::vector<float> w(rows * cols, 0.0f);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  if (pattern.rfind("block", 0) == 0) {
    const int n = std::stoi(pattern.substr(5));
    for (int64_t r0 = 0; r0 < rows; r0 += n) {
      for (int64_t k = 0; k < cols; ++k) {
        if (u(rng) < sparsity) continue;
        for (int64_t r = r0; r < std::min(rows, r0 + n); ++r) w[r * cols + k] = NonZero(rng);
      }
    }
  } else if (pattern == "unstructured") {
    for (float& v : w) v = u(rng) < sparsity ? 0.0f : NonZero(rng);
  } else {
    const size_t colon = pattern.find(':');
    const int n = std::stoi(pattern.substr(0, colon));
    const int m = std::stoi(pattern.substr(colon + 1));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t k0 = 0; k0 < cols; k0 += m) {
        const int len = static_cast<int>(std::min<int64_t>(m, cols - k0));
        std::vector<int> idx(len);
        std::iota(idx.begin(), idx.end(), 0);
        std::shuffle(idx.begin(), idx.end(), rng);
        const int keep = std::min<int>(len, u(rng) < 0.2 ? n - 1 : n);  // some runs keep fewer
        for (int i = 0; i < keep; ++i) w[r * cols + k0 + idx[i]] = NonZero(rng);
      }
    }
  }
  return w;
}

SparseWeights PackAs(const std::vector<float>& dense, int64_t rows, int64_t cols, const std::string& pattern) {
  const DenseView view{dense.data(), rows, cols};
  if (pattern.rfind("block", 0) == 0) {
    auto m = PackBlockSparse(view, std::stoi(pattern.substr(5)));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return std::move(m).value();
  }
  if (pattern == "unstructured") {
    auto m = PackCsr(view);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return std::move(m).value();
  }
  const size_t colon = pattern.find(':');
  auto m = PackNm(view, std::stoi(pattern.substr(0, colon)), std::stoi(pattern.substr(colon + 1)));
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return std::move(m).value();
}

Reference DenseReference(const std::vector<float>& w, int64_t rows, int64_t cols, const float* x, int64_t ldx,
                         int64_t p, const float* bias) {
  Reference ref{std::vector<double>(rows * p), std::vector<double>(rows * p)};
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t j = 0; j < p; ++j) {
      const double b = bias != nullptr ? bias[o] : 0.0;
      double sum = b, mag = std::abs(b);
      for (int64_t k = 0; k < cols; ++k) {
        const double t = static_cast<double>(w[o * cols + k]) * x[k * ldx + j];
        sum += t;
        mag += std::abs(t);
      }
      ref.y[o * p + j] = sum;
      ref.bound[o * p + j] = kRelTol * mag + kAbsTol;
    }
  }
  return ref;
}

Reference DirectConv(const Conv2dGeometry& g, const std::vector<float>& w, int64_t out_channels,
                     const std::vector<float>& input, int64_t batch, const std::vector<float>& bias) {
  const int64_t oh_n = g.out_h(), ow_n = g.out_w(), p = oh_n * ow_n;
  Reference ref{std::vector<double>(batch * out_channels * p), std::vector<double>(batch * out_channels * p)};
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t o = 0; o < out_channels; ++o) {
      for (int64_t oh = 0; oh < oh_n; ++oh) {
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          double sum = bias.empty() ? 0.0 : bias[o];
          double mag = std::abs(sum);
          ForEachTap(g, b, oh, ow, [&](int64_t k, int64_t x) {
            const double t = static_cast<double>(w[o * g.k() + k]) * input[x];
            sum += t;
            mag += std::abs(t);
          });
          const int64_t at = (b * out_channels + o) * p + oh * ow_n + ow;
          ref.y[at] = sum;
          ref.bound[at] = kRelTol * mag + kAbsTol;
        }
      }
    }
  }
  return ref;
}

int ExpectNear(const Reference& ref, const float* y, int64_t rows, int64_t p, int64_t ldy,
               const std::string& what) {
  int failures = 0;
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t j = 0; j < p; ++j) {
      const double err = std::abs(y[o * ldy + j] - ref.y[o * p + j]);
      if (err <= ref.bound[o * p + j]) continue;
      if (++failures <= 3) {
        ADD_FAILURE() << what << ": y[" << o << "," << j << "] = " << y[o * ldy + j] << ", expected "
                      << ref.y[o * p + j] << " (error " << err << " > " << ref.bound[o * p + j] << ")";
      }
    }
  }
  return failures;
}

}  // namespace acs::kernels::testing
