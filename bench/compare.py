#!/usr/bin/env python3
"""Trains the same autoencoders (dense shapes small and large, and the classic conv one) with `ae` and with PyTorch CPU in one run and prints seconds per
epoch, their ratio (ours / PyTorch), effective GFLOP/s, peak memory and test MSE.

Usage (after `cargo build --release` and `bench/setup-venv.sh`):
    python3 bench/compare.py --shapes small,large --epochs 3 --threads 2
    python3 bench/compare.py --shapes small --epochs 20 --seeds 0,1,2 --quality

Standard library only, so it runs under the system Python; PyTorch runs in .venv.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = {"small": [256, 64], "large": [1000, 500, 250, 30], "conv": None}
# Forward + backward FLOPs per example of the classic conv autoencoder (3 x forward): convs at
# 28x28 1->32, 14x14 32->32, 7x7 32->32, 14x14 32->32, 28x28 32->1, each 2 x pixels x out x in x 9.
CONV_FLOPS = 3 * 2 * 9 * (784 * 32 * 1 + 196 * 32 * 32 + 49 * 32 * 32 + 196 * 32 * 32 + 784 * 1 * 32)
N_TRAIN = 60000


def weights(hidden):
    sizes = [784] + hidden
    enc = sum(a * b for a, b in zip(sizes, sizes[1:]))
    return 2 * enc


def run_ours(ae, shape, epochs, threads, seed, quality, extra):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        arch = ["--preset", "conv"] if shape == "conv" else ["--hidden", ",".join(map(str, SHAPES[shape]))]
        cmd = [ae, "train", "--data", "fashion-mnist", *arch,
               "--epochs", str(epochs), "--batch-size", "256", "--lr", "1e-3", "--val-fraction", "0",
               "--threads", str(threads), "--seed", str(seed), "--quiet", "--out", out] + extra
        if quality:
            cmd.append("--eval-test")
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            sys.exit(f"ae train failed ({proc.returncode}): {' '.join(cmd)}")
        rss = usage.ru_maxrss / 1024.0
        with open(os.path.join(out, "metrics.jsonl")) as f:
            rows = [json.loads(line) for line in f]
    return {"seconds": [r["seconds"] for r in rows], "test_mse": [r.get("test_mse") for r in rows],
            "peak_rss_mb": rss}


def run_torch(python, shape, epochs, threads, seed, quality):
    cmd = [python, os.path.join(ROOT, "bench", "torch_reference.py"), "--shape", shape, "--epochs", str(epochs),
           "--threads", str(threads), "--seeds", str(seed), "--json"]
    if not quality:
        cmd += ["--time-epochs", str(epochs)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    rows = [r for r in rows if "epoch" in r]
    return {"seconds": [r["seconds"] for r in rows], "test_mse": [r.get("test_mse") for r in rows],
            "torch": rows[0].get("torch") if rows else None}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default="small,large")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seeds", default="0")
    p.add_argument("--quality", action="store_true", help="evaluate test MSE after every epoch")
    p.add_argument("--ae", default=os.path.join(ROOT, "target", "release", "ae"))
    p.add_argument("--python", default=os.path.join(ROOT, ".venv", "bin", "python"))
    p.add_argument("--ours-args", default="", help="extra flags for ae train, e.g. '--init torch'")
    a = p.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    extra = a.ours_args.split()
    print(f"# machine: {os.cpu_count()} cores; threads {a.threads}; epochs {a.epochs}; seeds {seeds}", flush=True)
    for shape in a.shapes.split(","):
        ours, ref = [], []
        for seed in seeds:
            ours.append(run_ours(a.ae, shape, a.epochs, a.threads, seed, a.quality, extra))
            ref.append(run_torch(a.python, shape, a.epochs, a.threads, seed, a.quality))
        # Median of per-epoch times over every seed; the first epoch includes warm-up, so it is
        # left out when there are more.
        def med(rs):
            xs = [s for r in rs for s in (r["seconds"][1:] if len(r["seconds"]) > 1 else r["seconds"])]
            return statistics.median(xs)
        o, t = med(ours), med(ref)
        flops = CONV_FLOPS if shape == "conv" else 6 * weights(SHAPES[shape])
        gflops = flops * N_TRAIN / o / 1e9
        rss = max(r["peak_rss_mb"] for r in ours)
        print(f"{shape}: ours {o:.2f} s/epoch, pytorch {ref[0].get('torch')} {t:.2f} s/epoch, ratio {o / t:.3f}; "
              f"ours {gflops:.1f} GFLOP/s effective; ours peak RSS {rss:.0f} MB", flush=True)
        if a.quality:
            for e in range(a.epochs):
                om = statistics.mean(r["test_mse"][e] for r in ours)
                tm = statistics.mean(r["test_mse"][e] for r in ref)
                print(f"  epoch {e + 1}: test MSE ours {om:.5f}  pytorch {tm:.5f}  ratio {om / tm:.3f}", flush=True)
        print(json.dumps({"shape": shape, "ours_s": o, "torch_s": t, "ratio": o / t, "gflops": gflops,
                          "ours": ours, "torch": ref}), file=sys.stderr)


if __name__ == "__main__":
    main()
