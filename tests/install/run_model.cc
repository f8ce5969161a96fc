// run_model MODEL.acs.pt N C H W: runs a compressed.acs.pt on linspace(0, 1) in that shape
// and prints the outputs, one per line.
#include <acs_ops/acs_ops.h>
#include <torch/script.h>

#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  torch::jit::Module model = torch::jit::load(argv[1]);
  std::vector<int64_t> shape;
  for (int i = 2; i < argc; ++i) shape.push_back(std::stoll(argv[i]));
  const int64_t n = c10::multiply_integers(shape);
  torch::NoGradGuard no_grad;
  torch::Tensor y = model.forward({torch::linspace(0, 1, n).reshape(shape)}).toTensor().flatten();
  for (int64_t i = 0; i < y.numel(); ++i) std::cout << y[i].item<float>() << "\n";
}
