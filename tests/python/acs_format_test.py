"""`acs compress --format acs` writes a model that stock PyTorch runs once libacs_ops.so is
loaded (torch.ops.load_library, then torch.jit.load): its sparse, int8 and depthwise
layers run as acs_rt ops and it computes the simulated model (--format torch --int8
simulated) up to int8 rounding steps. Its packed layers are packed again on load, so a
process capped to AVX2 or scalar kernels (ACS_ISA) runs the same file; without the
library, torch.jit.load raises an error naming the missing class (no crash).

usage: acs_format_test.py ACS_BINARY LIBACS_OPS
Exits 77 (skipped) without torch.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

try:
    import torch
    from torch import nn
except ImportError as e:
    print(f"skipping: {e}")
    sys.exit(77)

from run_util import run

ACS = None
LIB = None


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.fc1 = nn.Linear(32 * 8 * 8, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.relu(self.dw(nn.functional.max_pool2d(x, 2)))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


POLICY = {"version": 1, "layers": {
    "conv1": {"pattern": "block", "block": 4, "sparsity": 0.75},
    "conv2": {"precision": "int8"},
    "fc1": {"pattern": "nm", "n": 2, "m": 4},
    "fc2": {"precision": "int8"},
}}
ACS_OPS = {"acs_rt::sparse_conv2d", "acs_rt::int8_conv2d", "acs_rt::depthwise_conv2d", "acs_rt::sparse_linear",
           "acs_rt::int8_linear"}

# Runs a saved model in a fresh process: args LIB (or "") MODEL INPUT OUTPUT.
RUN_FRESH = """
import sys, torch
lib, model, x, out = sys.argv[1:]
if lib:
    torch.ops.load_library(lib)
m = torch.jit.load(model)
with torch.no_grad():
    torch.save(m(torch.load(x)), out)
"""


class AcsFormatTest(unittest.TestCase):
    def test_acs_file_runs_in_pytorch_with_libacs_ops(self):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            torch.manual_seed(0)
            model = Net().eval()
            for bn in (model.bn1, model.bn2):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
            torch.jit.trace(model, torch.rand(1, 3, 16, 16)).save(str(work / "model.pt"))
            torch.save(torch.rand(32, 3, 16, 16), work / "calib.pt")
            x = torch.rand(8, 3, 16, 16)
            torch.save(x, work / "x.pt")
            (work / "policy.json").write_text(json.dumps(POLICY))
            common = [ACS, "compress", work / "model.pt", "--policy", work / "policy.json", "--calib", work / "calib.pt"]
            out = run(common + ["--out", work / "model.acs.pt", "--format", "acs"])
            self.assertIn("libacs_ops.so", out)
            run(common + ["--out", work / "simulated.pt", "--int8", "simulated"])

            # Without the library: an error that names the class, not a crash.
            proc = subprocess.run([sys.executable, "-c", RUN_FRESH, "", work / "model.acs.pt", work / "x.pt",
                                   work / "y.pt"], capture_output=True, text=True)
            self.assertEqual(proc.returncode, 1, proc.stderr)  # a Python exception, not a signal
            self.assertIn("RuntimeError", proc.stderr)
            self.assertIn("Unknown type name '__torch__.torch.classes.acs_rt.", proc.stderr)
            error = next(line for line in proc.stderr.splitlines() if "Unknown type name" in line)
            print(f"torch.jit.load without libacs_ops.so: RuntimeError: {error}")

            torch.ops.load_library(LIB)
            acs = torch.jit.load(str(work / "model.acs.pt"))
            kinds = {n.kind() for n in acs.graph.nodes()}
            self.assertTrue(ACS_OPS <= kinds, kinds)
            simulated = torch.jit.load(str(work / "simulated.pt"))
            with torch.no_grad():
                got, expect = acs(x), simulated(x)
            scale = max(1.0, expect.abs().max().item())
            diff = (got - expect).abs()
            print(f"acs vs simulated: max {diff.max().item():.2e}, mean {diff.mean().item():.2e} (scale {scale:.2f})")
            self.assertLessEqual(diff.max().item(), 2e-2 * scale)
            self.assertLessEqual(diff.mean().item(), 1e-3 * scale)

            # Saved again from Python (the classes pickle there too) and loaded back.
            acs.save(str(work / "again.acs.pt"))
            with torch.no_grad():
                self.assertTrue(torch.equal(torch.jit.load(str(work / "again.acs.pt"))(x), got))

            # Packed again for the kernels of a process capped to AVX2 or scalar code.
            for isa in ("avx2", "scalar"):
                run([sys.executable, "-c", RUN_FRESH, LIB, work / "model.acs.pt", work / "x.pt", work / f"{isa}.pt"],
                    env={**os.environ, "ACS_ISA": isa})
                capped = torch.load(work / f"{isa}.pt")
                self.assertLessEqual((capped - got).abs().max().item(), 1e-4 * scale, isa)


if __name__ == "__main__":
    ACS = sys.argv.pop(1)
    LIB = sys.argv.pop(1)
    unittest.main()
