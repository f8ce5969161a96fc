"""Downloaded compressed models in stock PyTorch against their dense models.

Each case runs in a fresh Python process (1 thread, batch 1, no grad): the dense model and
the compressed file each as loaded, frozen (torch.jit.freeze) and frozen + optimized
(torch.jit.optimize_for_inference), each form from its own load, timed alternately in
ROUNDS rounds. The strongest dense baseline of a round is the fastest dense form; the
speedup of a round is that baseline over the fastest compressed form, as the worker
deploys both. With --processes P each case runs in P processes, the cases taking turns,
and the median and range are over all P x ROUNDS rounds (a process's speed varies by tens
of percent from the next's). Prints a table and writes JSON.

usage: /usr/bin/python3 bench_export.py [--rounds N] [--processes P] [--json OUT.json] [--ops LIB]
                                        NAME=DENSE.pt,COMPRESSED.pt,SHAPE ...
  SHAPE is the input shape, e.g. 1x3x32x32. --ops loads a library of TorchScript ops first
  (libacs_ops.so, for compressed.acs.pt files).
"""
import argparse
import json
import statistics
import subprocess
import sys

CASE = r"""
import json, sys, time, torch
torch.set_num_threads(1)
dense_path, compressed_path, shape, rounds, ops = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
if ops: torch.ops.load_library(ops)
x = torch.rand(*[int(d) for d in shape.split("x")])
def forms(path):
    # Each form from its own load: in C++, freezing a loaded module with quantized ops left
    # that module 2-3x slower.
    out = {"plain": torch.jit.load(path).eval()}
    try:
        out["frozen"] = torch.jit.freeze(torch.jit.load(path).eval())
        out["optimized"] = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.load(path).eval()))
    except Exception as e:  # a form PyTorch cannot freeze or optimize is timed as far as it goes
        print(f"{path}: not optimizable: {e}".splitlines()[0], file=sys.stderr)
    return out
def time_us(m, n=200):
    with torch.no_grad():
        for _ in range(20): m(x)
        start = time.perf_counter()
        for _ in range(n): m(x)
        return (time.perf_counter() - start) / n * 1e6
dense, compressed = forms(dense_path), forms(compressed_path)
result = {f"dense_{k}": [] for k in dense} | {f"compressed_{k}": [] for k in compressed}
for _ in range(rounds):
    for k, m in dense.items(): result[f"dense_{k}"].append(time_us(m))
    for k, m in compressed.items(): result[f"compressed_{k}"].append(time_us(m))
print(json.dumps(result))
"""


def run_case(spec, rounds, ops):
    """One process's times of a case: {form: [us per round]}."""
    dense, compressed, shape = spec.split(",")
    out = subprocess.run([sys.executable, "-c", CASE, dense, compressed, shape, str(rounds), ops],
                         capture_output=True, text=True, check=True)
    if out.stderr.strip():
        print("  " + out.stderr.strip().replace("\n", "\n  "), file=sys.stderr)
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--processes", type=int, default=1, help="fresh processes per case, taking turns")
    parser.add_argument("--json")
    parser.add_argument("--ops", default="", help="torch.ops.load_library this first (libacs_ops.so)")
    parser.add_argument("cases", nargs="+", metavar="NAME=DENSE.pt,COMPRESSED.pt,SHAPE")
    args = parser.parse_args()
    specs = [case.partition("=")[::2] for case in args.cases]
    times = {name: [] for name, _ in specs}  # per case, one {form: [us per round]} per process
    for _ in range(args.processes):
        for name, spec in specs:
            times[name].append(run_case(spec, args.rounds, args.ops))
    rows = []
    print(f"{'case':<22} {'dense plain':>12} {'dense best':>11} {'compr. plain':>13} {'compr. best':>12} "
          f"{'speedup (median, range)':>26}")
    for name, spec in specs:
        dense, compressed, shape = spec.split(",")
        rounds = [(t, r) for t in times[name] for r in range(args.rounds)]
        baseline = [min(t[k][r] for k in t if k.startswith("dense_")) for t, r in rounds]
        best = [min(t[k][r] for k in t if k.startswith("compressed_")) for t, r in rounds]
        speedups = [b / c for b, c in zip(baseline, best)]
        row = {"case": name, "dense": dense, "compressed": compressed, "input": shape, "times_us": times[name],
               "baseline_us": baseline, "compressed_us": best, "speedups": speedups,
               "median_speedup": statistics.median(speedups)}
        rows.append(row)
        plain = {k: statistics.median(t[k][r] for t, r in rounds) for k in ("dense_plain", "compressed_plain")}
        print(f"{name:<22} {plain['dense_plain']:>10.0f}us {statistics.median(baseline):>9.0f}us "
              f"{plain['compressed_plain']:>11.0f}us {statistics.median(best):>10.0f}us "
              f"{row['median_speedup']:>12.2f}x ({min(speedups):.2f}-{max(speedups):.2f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": args.rounds, "processes": args.processes, "threads": 1, "batch": 1, "cases": rows},
                      f, indent=2)


if __name__ == "__main__":
    main()
