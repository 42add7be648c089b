#!/usr/bin/env python3
"""PyTorch CPU reference for the benchmarks: trains the same autoencoders as `ae` on Fashion-MNIST
and prints one JSON line per epoch: {"impl", "torch", "shape", "seed", "epoch", "seconds", "test_mse"}.

    .venv/bin/python bench/torch_reference.py --shape small --epochs 5 --threads 2 --seeds 0,1,2

Data: the IDX files of Debian's dataset-fashion-mnist (pixels / 255). Model: ReLU hidden layers (the
code too), sigmoid output, MSE, Adam, batch 256, shuffled each epoch; PyTorch's default init unless
--init says otherwise.
"""
import argparse
import gzip
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn as nn

SHAPES = {"small": [256, 64], "large": [1000, 500, 250, 30]}


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir):
    x = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    t = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    return torch.from_numpy(x.copy()), torch.from_numpy(t.copy())


def dense(hidden):
    sizes = [784] + hidden
    enc, dec = [], []
    for a, b in zip(sizes, sizes[1:]):
        enc += [nn.Linear(a, b), nn.ReLU()]
    rev = sizes[::-1]
    for i, (a, b) in enumerate(zip(rev, rev[1:])):
        dec.append(nn.Linear(a, b))
        if i + 2 < len(rev):
            dec.append(nn.ReLU())
    dec.append(nn.Sigmoid())
    return nn.Sequential(nn.Flatten(), *enc, *dec, nn.Unflatten(1, (1, 28, 28)))


def conv():
    c = lambda i, o: nn.Conv2d(i, o, 3, padding=1)
    return nn.Sequential(
        c(1, 32), nn.ReLU(), nn.MaxPool2d(2), c(32, 32), nn.ReLU(), nn.MaxPool2d(2),
        c(32, 32), nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest"),
        c(32, 32), nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest"),
        c(32, 1), nn.Sigmoid())


def reinit(model, scheme):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if scheme == "glorot":
                nn.init.xavier_uniform_(m.weight)
            elif scheme == "he":
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


def test_mse(model, test):
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(test), 1000):
            xb = test[i:i + 1000].unsqueeze(1)
            total += float(((model(xb) - xb) ** 2).double().sum())
    model.train()
    return total / test.numel()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=["small", "large", "conv"], default="small")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seeds", default="0", help="comma-separated seeds, one run each in turn")
    p.add_argument("--seed", type=int, help="a single seed (overrides --seeds)")
    p.add_argument("--init", choices=["torch", "glorot", "he"], default="torch")
    p.add_argument("--time-epochs", type=int, default=0, help="only time this many epochs, no evaluation")
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--json", action="store_true", help="accepted; the output is always JSON lines")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(a.threads)
    except RuntimeError:
        pass
    train, test = load(a.data_dir)
    epochs = a.time_epochs or a.epochs
    secs, finals = [], []
    seeds = [a.seed] if a.seed is not None else [int(s) for s in a.seeds.split(",")]
    for seed in seeds:
        torch.manual_seed(seed)
        model = conv() if a.shape == "conv" else dense(SHAPES[a.shape])
        if a.init != "torch":
            reinit(model, a.init)
        opt = torch.optim.Adam(model.parameters(), lr=a.lr)
        loss_fn = nn.MSELoss()
        gen = torch.Generator().manual_seed(seed)
        for epoch in range(1, epochs + 1):
            order = torch.randperm(len(train), generator=gen)
            start = time.perf_counter()
            for i in range(0, len(train), a.batch_size):
                xb = train[order[i:i + a.batch_size]].unsqueeze(1)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), xb)
                loss.backward()
                opt.step()
            sec = time.perf_counter() - start
            secs.append(sec)
            mse = None if a.time_epochs else test_mse(model, test)
            print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "shape": a.shape, "seed": seed,
                              "epoch": epoch, "seconds": sec, "test_mse": mse}), flush=True)
        finals.append(mse)
    # Median over all epochs of all seeds but the very first (warm-up).
    summary = {"impl": "pytorch", "torch": torch.__version__, "shape": a.shape, "summary": True,
               "median_seconds": statistics.median(secs[1:] or secs)}
    if finals and finals[0] is not None:
        summary["mean_final_test_mse"] = statistics.mean(finals)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
