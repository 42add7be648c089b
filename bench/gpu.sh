#!/usr/bin/env bash
# Issue 17's checks on a lent GPU machine, as one prepared run: the GPU tests, then `ae` on the GPU
# beside `ae` on that machine's CPU and PyTorch on the same GPU (eager and CUDA graphs), Fashion-MNIST,
# 5 epochs. Everything it prints goes under $OUT; summary.txt holds the figures for BENCHMARKS.md.
#
# That machine has no Rust: build here with `bench/gpu.sh --pack`, which puts the stripped binaries
# and the data into gpu-carry/ (ignored by git, ~40 MB), then run there, carrying gpu-carry:
#   bash bench/gpu.sh            (in the repository root, $OUT set by the device tool)
set -uo pipefail
cd "$(dirname "$0")/.."
carry=gpu-carry

if [ "${1:-}" = "--pack" ]; then
  set -e
  cargo build --release -p ae-cli
  cargo test --release -p ae-core --test gpu --no-run
  test_bin=$(ls -t target/release/deps/gpu-* | grep -v '\.d$' | head -1)
  rm -rf "$carry" && mkdir -p "$carry/data/fashion-mnist"
  strip -o "$carry/ae" target/release/ae
  strip -o "$carry/gpu-tests" "$test_bin"
  gzip -9 "$carry/ae" "$carry/gpu-tests"
  cp /usr/share/datasets/fashion-mnist/*.gz "$carry/data/fashion-mnist/"
  grep -qx "/$carry" .git/info/exclude 2>/dev/null || echo "/$carry" >> .git/info/exclude
  du -sh "$carry"
  exit 0
fi

out=${OUT:-/tmp/gpu-out}
# The device tool brings back at most 8 files from $OUT, two folders down at most: the run folders
# stay under $runs, and $OUT gets seven files (machine.txt, summary.txt, gpu-tests.log, ae.log,
# metrics.txt, torch.jsonl, torch.err).
runs=/tmp/gpu-runs
mkdir -p "$out" "$runs"
summary="$out/summary.txt"
: > "$summary"
# One command may run 10 minutes and a session has 15 of device time, machine start included:
# every step gets what is left of 540 s, and the runs that only the GPU machine can give go first
# (GPU tests, ae on the GPU, PyTorch on the GPU), this machine's CPU last.
deadline=$((SECONDS + ${GPU_SH_SECONDS:-540}))
left() { local l=$((deadline - SECONDS)); [ "$l" -gt "$1" ] && echo "$1" || echo $((l > 1 ? l : 1)); }
# cudarc loads the CUDA libraries by name: the system's first, then PyTorch's wheels (nvrtc, cublas).
wheels=$(ls -d "$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)"/nvidia/*/lib 2>/dev/null | paste -sd: -)
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/usr/local/cuda/lib64${wheels:+:$wheels}"
{
  nvidia-smi
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  ldconfig -p | grep -E 'nvrtc|cublas|libcuda\.' || true
  ldd --version | head -1
} > "$out/machine.txt" 2>&1
gunzip -kf "$carry/ae.gz" "$carry/gpu-tests.gz"
chmod +x "$carry/ae" "$carry/gpu-tests"
export AE_DATA_DIR="$PWD/$carry/data"

# 1. Every GPU test against the CPU engine.
AE_REQUIRE_GPU=1 timeout "$(left 150)" "$carry/gpu-tests" --test-threads=1 --nocapture > "$out/gpu-tests.log" 2>&1
echo "gpu tests: exit $? ($(grep -c '\.\.\. ok' "$out/gpu-tests.log") ok, $(grep -c 'skipping' "$out/gpu-tests.log") skipped, $(grep -c 'FAILED' "$out/gpu-tests.log") failed lines) at ${SECONDS}s" >> "$summary"

# 2. ae, the same networks as PyTorch's. "eager" is the GPU with each step's kernels launched one
# by one instead of replayed as a graph.
common=(--data fashion-mnist --optimizer adam --lr 0.001 --batch-size 256 --init torch
  --val-fraction 0 --epochs 5 --eval-test --force)
dense=(--activation relu --code-activation linear --output-activation sigmoid --loss mse)
ae_run() { # device workload seconds
  local dev=$1 workload=$2 name device=$1 graphs=1 shape precision=fp32
  name="ae-${dev}-${workload//,/-}"
  [ "$dev" = eager ] && device=cuda graphs=0
  [ "$dev" = tf32 ] && device=cuda precision=tf32
  if [ "$workload" = conv ]; then shape=(--preset conv); else shape=("${dense[@]}" --hidden "$workload"); fi
  echo "=== $name" >> "$out/ae.log"
  AE_CUDA_GRAPHS=$graphs timeout "$(left "$3")" "$carry/ae" train "${shape[@]}" "${common[@]}" \
    --device "$device" --precision "$precision" --out "$runs/$name" >> "$out/ae.log" 2>&1
  echo "$name: exit $? at ${SECONDS}s" >> "$summary"
  { echo "=== $name"; cat "$runs/$name/metrics.jsonl" 2>/dev/null; } >> "$out/metrics.txt"
}
for workload in "256,64" "1000,500,250,30" conv; do ae_run cuda "$workload" 60; done
for workload in "256,64" "1000,500,250,30" conv; do ae_run tf32 "$workload" 60; done
# Other flavors end to end on the GPU, two epochs each: greedy pretraining then fine-tuning, a VAE,
# denoising conv, contractive; their last test loss goes in the summary.
flavor() { # name, then ae train's flags
  local name=$1; shift
  echo "=== $name" >> "$out/ae.log"
  timeout "$(left 60)" "$carry/ae" train "$@" --data fashion-mnist --epochs 2 --eval-test --force \
    --device cuda --out "$runs/$name" >> "$out/ae.log" 2>&1
  echo "$name: exit $? at ${SECONDS}s, last epoch: $(tail -1 "$runs/$name/metrics.jsonl" 2>/dev/null | cut -c1-300)" >> "$summary"
  { echo "=== $name"; cat "$runs/$name/metrics.jsonl" 2>/dev/null; } >> "$out/metrics.txt"
}
flavor flavor-stacked --preset stacked --pretrain greedy:1
flavor flavor-vae --model vae --hidden 500,500,20 --loss bce --binarize
flavor flavor-conv-denoising --preset conv-denoising
flavor flavor-contractive --preset contractive
# A capture that failed says so in the run's log.
grep -h "CUDA graph" "$out/ae.log" >> "$summary"
# A trained model's passes on the GPU against the CPU's (the test split's codes and reconstructions,
# a VAE's codes and prior draws): exit codes and the largest difference go in the summary.
infer() { # run, command, then its flags
  local run=$1 cmd=$2; shift 2
  for dev in cuda cpu; do
    timeout "$(left 30)" "$carry/ae" "$cmd" "$runs/$run" "$@" --device "$dev" --force \
      --out "$runs/$run-$cmd-$dev.npy" >> "$out/ae.log" 2>&1
    echo "$run: $cmd --device $dev: exit $? at ${SECONDS}s" >> "$summary"
  done
  python3 - "$runs/$run-$cmd-cuda.npy" "$runs/$run-$cmd-cpu.npy" >> "$summary" 2>&1 <<'EOF2'
import sys, numpy as np
g, c = np.load(sys.argv[1]), np.load(sys.argv[2])
print(f"  {sys.argv[1].rsplit('/', 1)[-1]}: shape {g.shape}, GPU vs CPU max |diff| {float(np.abs(g - c).max()):.3g}"
      f" (max |value| {float(np.abs(c).max()):.3g})")
EOF2
}
infer ae-cuda-conv encode
infer ae-cuda-conv reconstruct
infer ae-cuda-256-64 encode
infer flavor-vae encode
infer flavor-vae sample --n 256

# 3. PyTorch on the same GPU.
timeout "$(left 150)" python3 bench/torch_gpu.py --data "$carry/data/fashion-mnist" > "$out/torch.jsonl" 2> "$out/torch.err"
echo "torch: exit $? at ${SECONDS}s" >> "$summary"

# Then the kernel-by-kernel GPU runs and this machine's CPU, while time is left.
for workload in "256,64" "1000,500,250,30" conv; do ae_run eager "$workload" 60; done
for workload in "256,64" "1000,500,250,30" conv; do ae_run cpu "$workload" 120; done

# 4. The table: seconds per epoch (best of epochs 2-4), test MSE after 5, ratios to PyTorch.
python3 - "$out" "$runs" >> "$summary" 2>&1 <<'EOF'
import json, os, sys
out, runs = sys.argv[1], sys.argv[2]
torch = {}
for line in open(os.path.join(out, "torch.jsonl")):
    if line.strip():
        r = json.loads(line)
        torch[(r["workload"], r["mode"])] = r
print("| workload | ae GPU s/epoch | ae GPU tf32 | ae GPU kernel by kernel | ae CPU s/epoch | PyTorch eager | PyTorch CUDA graph | ae GPU / graph | ae GPU / eager | test MSE ae GPU / tf32 / ae CPU / PyTorch |")
print("|---|---|---|---|---|---|---|---|---|---|")
for hidden, name in [("256-64", "dense 784-256-64"), ("1000-500-250-30", "dense 784-1000-500-250-30"),
                     ("conv", "conv preset")]:
    ae = {}
    for dev in ["cuda", "tf32", "eager", "cpu"]:
        path = os.path.join(runs, f"ae-{dev}-{hidden}", "metrics.jsonl")
        if not os.path.exists(path):
            continue
        rows = [json.loads(l) for l in open(path) if l.strip()]
        secs = [r["seconds"] for r in rows if "seconds" in r]
        test = [r.get("test_mse") for r in rows if r.get("test_mse") is not None]
        if secs:
            ae[dev] = (min(secs[1:4]) if len(secs) > 1 else secs[0], test[-1] if test else float("nan"))
    nan = {"best_2_4": float("nan"), "test_mse": float("nan")}
    e, g = torch.get((name, "eager"), nan), torch.get((name, "graph"), nan)
    gs = ae.get("cuda", (float("nan"),) * 2)
    cs = ae.get("cpu", (float("nan"),) * 2)
    ks = ae.get("eager", (float("nan"),) * 2)
    ts = ae.get("tf32", (float("nan"),) * 2)
    ratio = lambda a, b: a / b if b == b and b else float("nan")
    print(f"| {name} | {gs[0]:.3f} | {ts[0]:.3f} | {ks[0]:.3f} | {cs[0]:.3f} | {e['best_2_4']:.3f} | {g['best_2_4']:.3f} | "
          f"{ratio(gs[0], g['best_2_4']):.2f} | {ratio(gs[0], e['best_2_4']):.2f} | "
          f"{gs[1]:.5f} / {ts[1]:.5f} / {cs[1]:.5f} / {e['test_mse']:.5f} |")
EOF
cat "$summary"
