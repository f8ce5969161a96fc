"""Exports a torchvision architecture the way users do (torch.jit.script and
torch.jit.trace) and runs `acs inspect`, `acs compress` and `acs eval` on it.

usage: torchvision_test.py ACS_BINARY ARCH
Exits 77 (skipped) when torchvision is not installed.

The least-squares refit (`--refit exact`, the default) is most of compress's time: the
traced file is compressed with it, the scripted one with `--refit none`, so that every
architecture is refit once and both exports are checked against masked simulation.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import torchvision
except ImportError:
    print("torchvision is not installed; skipping")
    sys.exit(77)

INPUT = (1, 3, 64, 64)
# Absolute tolerance of exported vs masked simulation, relative to the output scale:
# both compute the same function in float32 with different summation orders.
TOLERANCE = 1e-3


def run(args):
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def check(acs, arch, mode, model, example, data, policy, workdir):
    path = os.path.join(workdir, f"{arch}_{mode}.pt")
    exported = torch.jit.script(model) if mode == "script" else torch.jit.trace(model, example)
    exported.save(path)

    shape = "x".join(map(str, INPUT))
    table = run([acs, "inspect", path, "--input", shape])
    assert "total" in table, table

    out = os.path.join(workdir, f"{arch}_{mode}_compressed.pt")
    masked = os.path.join(workdir, f"{arch}_{mode}_masked.pt")
    compress = [acs, "compress", path, "--input", shape, "--policy", policy, "--calib", data]
    if mode == "script":
        compress += ["--refit", "none"]
    run(compress + ["--out", out])
    run(compress + ["--out", masked, "--masked"])

    compressed = torch.jit.load(out)
    simulated = torch.jit.load(masked)
    x = torch.rand(2, *INPUT[1:])
    with torch.no_grad():
        y, y_sim = compressed(x), simulated(x)
    if isinstance(y, tuple):  # scripted GoogLeNet returns (logits, aux2, aux1)
        y, y_sim = y[0], y_sim[0]
    assert y.shape == (2, 10), y.shape
    scale = max(1.0, y_sim.abs().max().item())
    diff = (y - y_sim).abs().max().item()
    assert diff <= TOLERANCE * scale, f"{arch} {mode}: exported differs from simulation by {diff}"
    assert os.path.getsize(out) < os.path.getsize(path), "channel pruning did not shrink the file"

    report = run([acs, "eval", out, "--data", data, "--reference", path])
    assert "top-1 agreement" in report, report
    print(f"{arch} {mode}: ok (max diff {diff:.2e}, {os.path.getsize(path)} -> {os.path.getsize(out)} bytes)")


def main():
    acs, arch = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=10).eval()
    example = torch.rand(*INPUT)
    with tempfile.TemporaryDirectory() as workdir:
        data = os.path.join(workdir, "calib.pt")
        torch.save(torch.rand(8, *INPUT[1:]), data)
        policy = os.path.join(workdir, "policy.json")
        with open(policy, "w") as f:
            json.dump({"version": 1, "default": {"pattern": "channel", "sparsity": 0.3}}, f)
        for mode in ("script", "trace"):
            check(acs, arch, mode, model, example, data, policy, workdir)


if __name__ == "__main__":
    main()
