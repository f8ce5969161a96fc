"""What PyTorch's quantized ops cost on this machine, 1 thread: quantize_per_tensor and
dequantize per element, and an int8 3x3 conv (quantized::conv2d_relu, quint8 in and out)
against its fp32 form after optimize_for_inference, alternated in ROUNDS rounds. The
export's rule for int8 regions (core/quantized_export.cc: kQuantizeNs, kDequantizeNs,
kInt8SavingNsPerMac) comes from these figures. Prints a table and writes JSON.

usage: /usr/bin/python3 quantized_op_costs.py [OUT.json]
"""
import json
import statistics
import sys
import time

import torch

torch.set_num_threads(1)
ROUNDS = 5


def time_us(f, *args, n=300):
    with torch.no_grad():
        for _ in range(20):
            f(*args)
        start = time.perf_counter()
        for _ in range(n):
            f(*args)
        return (time.perf_counter() - start) / n * 1e6


rows = []
print(f"engine {torch.backends.quantized.engine}, torch {torch.__version__}")
print(f"{'conv':<14} {'fp32 us':>9} {'int8 us':>9} {'saved ns/MAC':>13} {'quantize ns/el':>15} {'dequantize ns/el':>17}")
for channels, size in [(16, 28), (32, 14), (64, 7), (64, 32), (128, 16), (256, 8)]:
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).eval()
    fp32 = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(torch.nn.Sequential(conv, torch.nn.ReLU()).eval())))
    w = conv.weight.detach()
    qw = torch.quantize_per_channel(w, w.abs().amax((1, 2, 3)).double() / 127, torch.zeros(channels, dtype=torch.long), 0, torch.qint8)
    packed = torch.ops.quantized.conv2d_prepack(qw, conv.bias.detach(), [1, 1], [1, 1], [1, 1], 1)
    x = torch.randn(1, channels, size, size).relu()
    qx = torch.quantize_per_tensor(x, float(x.max()) / 255, 0, torch.quint8)
    r = {"channels": channels, "size": size, "fp32_us": [], "int8_us": [], "quantize_us": [], "dequantize_us": []}
    for _ in range(ROUNDS):
        r["fp32_us"].append(time_us(fp32, x))
        r["int8_us"].append(time_us(lambda q: torch.ops.quantized.conv2d_relu(q, packed, 0.05, 0), qx))
        r["quantize_us"].append(time_us(lambda t: torch.quantize_per_tensor(t, 0.05, 0, torch.quint8), x))
        r["dequantize_us"].append(time_us(lambda q: q.dequantize(), qx))
    macs = channels * channels * 9 * size * size
    med = {k: statistics.median(v) for k, v in r.items() if k.endswith("_us")}
    r["saved_ns_per_mac"] = (med["fp32_us"] - med["int8_us"]) * 1e3 / macs
    r["quantize_ns_per_element"] = med["quantize_us"] * 1e3 / x.numel()
    r["dequantize_ns_per_element"] = med["dequantize_us"] * 1e3 / x.numel()
    rows.append(r)
    print(f"{channels:>3}x{size}x{size:<7} {med['fp32_us']:>9.1f} {med['int8_us']:>9.1f} {r['saved_ns_per_mac']:>13.4f} "
          f"{r['quantize_ns_per_element']:>15.2f} {r['dequantize_ns_per_element']:>17.2f}")
if len(sys.argv) > 1:
    with open(sys.argv[1], "w") as f:
        json.dump({"engine": torch.backends.quantized.engine, "torch": torch.__version__, "rounds": ROUNDS,
                   "convs": rows}, f, indent=2)
