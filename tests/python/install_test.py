"""`cmake --install` of the build places libacs_ops.so, <acs_ops/acs_ops.h> and the CMake
package acs_ops in a prefix; a program built against it with find_package(acs_ops)
(tests/install, the README's C++ example) runs a file of `acs compress --format acs` and
computes what Python computes on the same file after torch.ops.load_library.

usage: install_test.py BUILD_DIR ACS_BINARY
Exits 77 (skipped) without torch or cmake.
"""
import shutil
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

BUILD = None
ACS = None
CONSUMER = Path(__file__).resolve().parent.parent / "install"
SHAPE = (2, 3, 8, 8)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


POLICY = '{"version": 1, "layers": {"conv": {"pattern": "block", "block": 4, "sparsity": 0.5}, ' \
         '"fc": {"precision": "int8"}}}'


class InstallTest(unittest.TestCase):
    def test_installed_library_runs_an_acs_file_from_cpp(self):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            prefix = work / "prefix"
            run(["cmake", "--install", BUILD, "--prefix", prefix])
            installed = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file())
            print("installed:", installed)
            library = next(prefix.rglob("libacs_ops.so"), None)  # lib/ or lib/<multiarch>/
            self.assertIsNotNone(library, installed)
            self.assertTrue((prefix / "include" / "acs_ops" / "acs_ops.h").is_file())
            self.assertTrue((library.parent / "cmake" / "acs_ops" / "acs_opsConfig.cmake").is_file())

            configure = ["cmake", "-S", CONSUMER, "-B", work / "consumer", f"-DCMAKE_PREFIX_PATH={prefix}",
                         "-DCMAKE_BUILD_TYPE=Release"]
            if shutil.which("ccache"):
                configure.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
            run(configure)
            run(["cmake", "--build", work / "consumer"])
            program = work / "consumer" / "run_model"
            # Linked to the installed library, not the build's.
            needed = run(["ldd", program])
            line = next(l for l in needed.splitlines() if "libacs_ops.so" in l)
            self.assertIn(str(prefix), line)

            torch.manual_seed(0)
            torch.jit.trace(Net().eval(), torch.rand(*SHAPE)).save(str(work / "model.pt"))
            torch.save(torch.rand(16, *SHAPE[1:]), work / "calib.pt")
            (work / "policy.json").write_text(POLICY)
            run([ACS, "compress", work / "model.pt", "--policy", work / "policy.json", "--calib", work / "calib.pt",
                 "--out", work / "model.acs.pt", "--format", "acs"])

            got = torch.tensor([float(v) for v in run([program, work / "model.acs.pt", *SHAPE]).split()])
            torch.ops.load_library(str(library))
            model = torch.jit.load(str(work / "model.acs.pt"))
            x = torch.linspace(0, 1, int(torch.tensor(SHAPE).prod())).reshape(SHAPE)
            with torch.no_grad():
                expect = model(x).flatten()
            self.assertEqual(got.numel(), expect.numel())
            diff = (got - expect).abs().max().item()
            print(f"C++ program vs Python on the same file: max difference {diff:.2e} over {got.numel()} outputs")
            # The program prints 6 significant digits.
            self.assertLessEqual(diff, 1e-5 * max(1.0, expect.abs().max().item()))

    def test_library_exports_its_entry_point_only(self):
        lib = next((BUILD / "devices").glob("libacs_ops.so.*"))
        symbols = run(["nm", "-D", "--defined-only", lib]).split("\n")
        exported = sorted(line.split()[-1] for line in symbols if line.strip() and line.split()[1] in "TDBRVW")
        print("exported:", exported)
        self.assertIn("acs_ops_format_version", exported)
        self.assertFalse([s for s in exported if "3acs" in s or "acs_rt" in s], exported)  # namespace acs


if __name__ == "__main__":
    BUILD = Path(sys.argv.pop(1))
    ACS = sys.argv.pop(1)
    if not shutil.which("cmake"):
        print("skipping: no cmake")
        sys.exit(77)
    unittest.main()
