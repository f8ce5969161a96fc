"""A downloaded compressed.pt in stock PyTorch against its dense model, both frozen and
optimized for inference, 1 thread, timed alternately in 6 rounds; prints a table and writes JSON.

usage: /usr/bin/python3 downloaded_speed.py DENSE.pt COMPRESSED.pt INPUT_SHAPE [OUT.json]
"""
import json
import statistics
import sys
import time

import torch

torch.set_num_threads(1)
shape = [int(d) for d in sys.argv[3].split("x")]
x = torch.rand(*shape)
def prep(path):
    m = torch.jit.load(path).eval()
    try:
        m = torch.jit.optimize_for_inference(torch.jit.freeze(m))
    except Exception as e:
        print("not optimized:", path, e)
    return m
dense = prep(sys.argv[1])
comp = prep(sys.argv[2])
def t(m, n=200):
    with torch.no_grad():
        for _ in range(20): m(x)
        s = time.perf_counter()
        for _ in range(n): m(x)
        return (time.perf_counter() - s) / n * 1e6
ratios = []
for r in range(6):
    d = t(dense)
    c = t(comp)
    ratios.append(c / d)
    print(f"round {r}: dense {d:.0f} us, compressed.pt {c:.0f} us, ratio {c/d:.2f}")
print(f"compressed.pt / dense: median {statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})")
if len(sys.argv) > 4:
    with open(sys.argv[4], "w") as f:
        json.dump({"dense": sys.argv[1], "compressed": sys.argv[2], "input": shape, "ratios": ratios,
                   "median_ratio": statistics.median(ratios)}, f, indent=2)
