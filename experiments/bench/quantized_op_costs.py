"""What PyTorch's quantized ops cost on this machine, 1 thread: int8 convs
(quantized::conv2d_relu, quint8 in and out) against their fp32 form after
optimize_for_inference, per conv in a chain of CHAIN (so neither side pays a module call
or a layout conversion per conv), over 1x1 and 3x3 convs of several widths and sizes;
quantize_per_tensor / dequantize over several sizes, and the oneDNN layout conversions
(to_dense / to_mkldnn) the optimized fp32 neighbours of an int8 region add at its borders;
alternated in ROUNDS rounds. Fits what the export's rule for int8 regions uses
(core/quantized_export.cc): the time an int8 conv saves as a per-conv part plus a per-MAC
part, and each border op as a per-call part plus a per-element part (least squares of the
relative errors on the medians). Prints tables and writes JSON.

usage: /usr/bin/python3 quantized_op_costs.py [OUT.json]
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.intrinsic.quantized

torch.set_num_threads(1)
ROUNDS = 5
CHAIN = 8
CONVS = [(k, c, s) for k in (1, 3) for c, s in [(16, 28), (16, 8), (32, 14), (64, 7), (64, 32), (96, 4), (128, 16),
                                                  (256, 8), (320, 2)]]
BORDERS = [256, 4096, 16384, 65536]


def time_us(f, *args):
    with torch.no_grad():
        for _ in range(10):
            f(*args)
        n, start = 0, time.perf_counter()
        while n < 30 or time.perf_counter() - start < 0.05:
            f(*args)
            n += 1
        return (time.perf_counter() - start) / n * 1e6


def conv_case(k, c, s):
    convs = [torch.nn.Conv2d(c, c, k, padding=k // 2).eval() for _ in range(CHAIN)]
    fp32 = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(
        torch.nn.Sequential(*[m for conv in convs for m in (conv, torch.nn.ReLU())]).eval())))
    int8 = []
    for conv in convs:
        w = conv.weight.detach()
        q = torch.nn.intrinsic.quantized.ConvReLU2d(c, c, k, padding=k // 2)
        q.set_weight_bias(torch.quantize_per_channel(w, w.abs().amax((1, 2, 3)).double() / 127,
                                                     torch.zeros(c, dtype=torch.long), 0, torch.qint8),
                          conv.bias.detach())
        q.scale, q.zero_point = 0.05, 0
        int8.append(q)
    int8 = torch.jit.script(torch.nn.Sequential(*int8).eval())
    x = torch.randn(1, c, s, s).relu()
    qx = torch.quantize_per_tensor(x, float(x.max()) / 255, 0, torch.quint8)
    return (lambda: fp32(x)), (lambda: int8(qx))


def fit(xs, ys):
    """Intercept and slope minimizing the relative errors (weights 1/y^2), so the small
    convs and tensors, which decide the rule, count as much as the large ones."""
    w = [1 / y ** 2 for y in ys]
    sw, sx, sy = sum(w), sum(wi * x for wi, x in zip(w, xs)), sum(wi * y for wi, y in zip(w, ys))
    sxx, sxy = sum(wi * x * x for wi, x in zip(w, xs)), sum(wi * x * y for wi, x, y in zip(w, xs, ys))
    slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
    return (sy - slope * sx) / sw, slope


convs = [{"kernel": k, "channels": c, "size": s, "macs": c * c * k * k * s * s, "fp32_us": [], "int8_us": []}
         for k, c, s in CONVS]
fns = [conv_case(k, c, s) for k, c, s in CONVS]
borders = [{"elements": e, "quantize_us": [], "dequantize_us": [], "to_dense_us": [], "to_mkldnn_us": []}
           for e in BORDERS]
tensors = [torch.randn(1, e // 16, 4, 4).relu() for e in BORDERS]
mkldnn = [t.to_mkldnn() for t in tensors]
qtensors = [torch.quantize_per_tensor(t, 0.05, 0, torch.quint8) for t in tensors]
for _ in range(ROUNDS):
    for r, (fp32, int8) in zip(convs, fns):
        r["fp32_us"].append(time_us(fp32) / CHAIN)
        r["int8_us"].append(time_us(int8) / CHAIN)
    for r, t, q, m in zip(borders, tensors, qtensors, mkldnn):
        r["quantize_us"].append(time_us(lambda: torch.quantize_per_tensor(t, 0.05, 0, torch.quint8)))
        r["dequantize_us"].append(time_us(lambda: q.dequantize()))
        r["to_dense_us"].append(time_us(lambda: m.to_dense()))
        r["to_mkldnn_us"].append(time_us(lambda: t.to_mkldnn()))

print(f"engine {torch.backends.quantized.engine}, torch {torch.__version__}, medians of {ROUNDS} rounds")
print(f"{'conv':<16} {'MACs':>10} {'fp32 us':>9} {'int8 us':>9} {'saved us':>9}")
for r in convs:
    r["fp32_median_us"] = statistics.median(r["fp32_us"])
    r["int8_median_us"] = statistics.median(r["int8_us"])
    r["saved_us"] = r["fp32_median_us"] - r["int8_median_us"]
    print(f"{r['kernel']}x{r['kernel']} {r['channels']:>3}ch {r['size']:>2}x{r['size']:<4} {r['macs']:>10} "
          f"{r['fp32_median_us']:>9.1f} {r['int8_median_us']:>9.1f} {r['saved_us']:>9.1f}")
print(f"{'elements':>9} {'quantize us':>12} {'dequantize us':>14} {'to_dense us':>12} {'to_mkldnn us':>13}")
for r in borders:
    for op in ("quantize", "dequantize", "to_dense", "to_mkldnn"):
        r[op + "_median_us"] = statistics.median(r[op + "_us"])
    print(f"{r['elements']:>9} {r['quantize_median_us']:>12.2f} {r['dequantize_median_us']:>14.2f} "
          f"{r['to_dense_median_us']:>12.2f} {r['to_mkldnn_median_us']:>13.2f}")
saved = fit([r["macs"] for r in convs], [r["saved_us"] for r in convs])
model = {"saved_us_per_conv": saved[0], "saved_ns_per_mac": saved[1] * 1e3}
for op in ("quantize", "dequantize", "to_dense", "to_mkldnn"):
    per_call, per_element = fit([r["elements"] for r in borders], [r[op + "_median_us"] for r in borders])
    model[op + "_us_per_call"], model[op + "_ns_per_element"] = per_call, per_element * 1e3
print("fit: an int8 conv saves %.1f us + %.4f ns/MAC" % (model["saved_us_per_conv"], model["saved_ns_per_mac"]))
for op in ("quantize", "dequantize", "to_dense", "to_mkldnn"):
    print("     %s %.2f us + %.2f ns/el" % (op, model[op + "_us_per_call"], model[op + "_ns_per_element"]))
if len(sys.argv) > 1:
    with open(sys.argv[1], "w") as f:
        json.dump({"engine": torch.backends.quantized.engine, "torch": torch.__version__, "rounds": ROUNDS, "chain": CHAIN,
                   "convs": convs, "borders": borders, "fit": model}, f, indent=2)
