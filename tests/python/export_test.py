"""A compressed model acs saves loads in stock PyTorch (torch.jit.load, no acs library),
runs its int8 layers as PyTorch's quantized ops, and matches the simulated model acs
scores (issue: the downloaded model runs fast where the user runs it).

A small CNN is trained in Python on Fashion-MNIST; `acs compress` writes it with every
layer int8 twice: as quantized ops (--int8 ops) and as the fake-quant simulation
(--int8 simulated). On 1,000 test images the two agree on at least 97% of the top-1
answers and their accuracies within 1 point (the export rounds the few values the
simulation keeps in fp32: an add's inputs, a region's last output); `acs eval` of the
quantized file in C++ gives Python's accuracy of it within 0.1 point.

usage: export_test.py ACS_BINARY
Exits 77 (skipped) without torch, torchvision, PIL or the dataset.
"""
import json
import re
import sys
import tempfile
import unittest
from pathlib import Path

try:
    import numpy as np
    import torch

    from fashion_cnn import FASHION, read_idx, train_small_cnn, transformed
except ImportError as e:
    print(f"skipping: {e}")
    sys.exit(77)

from run_util import run

ACS = None


def node_kinds(module):
    return [n.kind() for n in module.graph.nodes()]


class ExportTest(unittest.TestCase):
    def test_int8_layers_run_as_quantized_ops_in_stock_pytorch(self):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            model = train_small_cnn()
            model_path = work / "model.pt"
            torch.jit.trace(model, torch.rand(1, 3, 32, 32)).save(str(model_path))
            calib_images, _ = read_idx("train", 4256)
            torch.save(transformed(calib_images[4000:]), work / "calib.pt")
            test_images, test_labels = read_idx("t10k", 1000)
            x = transformed(test_images)
            y = torch.from_numpy(test_labels.astype(np.int64))
            torch.save((x, y), work / "test.pt")
            policy = work / "int8.json"
            policy.write_text(json.dumps({"version": 1, "default": {"precision": "int8"}}))

            files = {}
            for mode in ("ops", "simulated", "auto"):
                files[mode] = work / f"{mode}.pt"
                out = run([ACS, "compress", model_path, "--input", "1x3x32x32", "--policy", policy,
                           "--out", files[mode], "--calib", work / "calib.pt", "--int8", mode])
                if mode == "ops":
                    self.assertIn("int8 as quantized ops: 4 layers", out)

            ops = torch.jit.load(str(files["ops"]))  # stock PyTorch: no acs library loaded
            simulated = torch.jit.load(str(files["simulated"]))
            auto = torch.jit.load(str(files["auto"]))
            kinds = node_kinds(ops)
            self.assertEqual(sum(k in ("quantized::conv2d", "quantized::conv2d_relu") for k in kinds), 3)
            self.assertEqual(sum(k in ("quantized::linear", "quantized::linear_relu") for k in kinds), 1)
            self.assertNotIn("aten::fake_quantize_per_tensor_affine", kinds)
            self.assertIn("aten::fake_quantize_per_tensor_affine", node_kinds(simulated))

            with torch.no_grad():
                answers = {name: m(x).argmax(1) for name, m in
                           (("ops", ops), ("simulated", simulated), ("auto", auto), ("dense", model))}
            accuracy = {name: (a == y).float().mean().item() for name, a in answers.items()}
            agreement = (answers["ops"] == answers["simulated"]).float().mean().item()
            print(f"accuracy: dense {accuracy['dense']:.2%}, simulated {accuracy['simulated']:.2%}, "
                  f"quantized ops {accuracy['ops']:.2%}, auto {accuracy['auto']:.2%}; "
                  f"top-1 agreement ops/simulated {agreement:.2%}")
            self.assertGreater(accuracy["dense"], 0.5)  # trained
            self.assertGreaterEqual(agreement, 0.97)
            self.assertLessEqual(abs(accuracy["ops"] - accuracy["simulated"]), 0.01)
            self.assertLessEqual(abs(accuracy["auto"] - accuracy["simulated"]), 0.01)

            report = run([ACS, "eval", files["ops"], "--data", work / "test.pt"])
            top1 = float(re.search(r"top-1 ([0-9.]+)%", report).group(1)) / 100
            self.assertLessEqual(abs(top1 - accuracy["ops"]), 0.001, report)


if __name__ == "__main__":
    if not FASHION.is_dir():
        print(f"skipping: {FASHION} is not installed")
        sys.exit(77)
    ACS = sys.argv.pop(1)
    unittest.main()
