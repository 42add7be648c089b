#!/usr/bin/env python3
"""The VAE benchmark of issue 5 (a figure, not a timed test): a dense VAE 784-500-500-(latent) with
ReLU hidden layers and a Bernoulli decoder on dynamically binarized Fashion-MNIST, trained by `ae`
and by the same network in PyTorch in one run; prints each side's seconds per epoch, test ELBO and
importance-weighted -log p(x) (K samples per example), and the ratios.

    cargo build --release && .venv/bin/python bench/vae.py --epochs 10 --latent 20 --k 1000

Both sides: Adam 1e-3, batch 128, 60,000 training images (no validation split), 2 threads, the
test split binarized once with a fixed seed (each side its own draw), the encoder's last layer
giving [mu | logvar], one sample per example in training.
"""
import argparse
import gzip
import json
import math
import os
import subprocess
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Vae(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(784, 500), nn.ReLU(), nn.Linear(500, 500), nn.ReLU(),
                                     nn.Linear(500, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, 500), nn.ReLU(), nn.Linear(500, 500), nn.ReLU(),
                                     nn.Linear(500, 784))

    def terms(self, x):
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.decoder(z)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        kl = -0.5 * torch.sum(1 + logvar - mu * mu - logvar.exp()) / x.shape[0]
        return rec, kl


@torch.no_grad()
def iw_nll(model, x, k, chunk=1000):
    total = 0.0
    for i in range(x.shape[0]):
        xi = x[i:i + 1]
        mu, logvar = model.encoder(xi).chunk(2, dim=1)
        lws = []
        for s in range(0, k, chunk):
            c = min(chunk, k - s)
            eps = torch.randn(c, mu.shape[1])
            z = mu + torch.exp(0.5 * logvar) * eps
            log_px = -F.binary_cross_entropy_with_logits(model.decoder(z), xi.expand(c, -1), reduction="none").sum(1)
            lws.append(log_px + 0.5 * (eps * eps - z * z + logvar).sum(1))
        lw = torch.cat(lws)
        total += -(torch.logsumexp(lw, 0) - math.log(k)).item()
    return total / x.shape[0]


def run_torch(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x = torch.from_numpy(read_idx(f"{DATA}/train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255)
    t = torch.from_numpy(read_idx(f"{DATA}/t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255)
    t = torch.bernoulli(t, generator=torch.Generator().manual_seed(1234))
    model = Vae(args.latent)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    secs = []
    for epoch in range(args.epochs):
        start = time.perf_counter()
        perm = torch.randperm(x.shape[0])
        for i in range(0, x.shape[0], 128):
            xb = torch.bernoulli(x[perm[i:i + 128]])
            rec, kl = model.terms(xb)
            opt.zero_grad()
            (rec + kl).backward()
            opt.step()
        secs.append(time.perf_counter() - start)
    with torch.no_grad():
        rec, kl = model.terms(t[:args.n_test])
    nll = iw_nll(model, t[:args.n_test], args.k)
    return {"seconds_per_epoch": sorted(secs)[len(secs) // 2], "elbo": -(rec + kl).item(), "iw_nll": nll}


def run_ours(args, out):
    ae = os.path.join(ROOT, "target", "release", "ae")
    subprocess.run([ae, "train", "--model", "vae", "--hidden", f"500,500,{args.latent}", "--loss", "bce",
                    "--binarize", "--epochs", str(args.epochs), "--batch-size", "128", "--val-fraction", "0",
                    "--threads", str(args.threads), "--seed", str(args.seed), "--out", out, "--force", "--quiet"]
                   + args.ours_args.split(),
                   check=True, stdout=subprocess.DEVNULL)
    secs = [json.loads(l)["seconds"] for l in open(os.path.join(out, "metrics.jsonl"))]
    e = json.loads(subprocess.run([ae, "eval", out, "--json", "--iw-samples", str(args.k), "--limit", str(args.n_test)],
                                  check=True, capture_output=True, text=True).stdout)
    return {"seconds_per_epoch": sorted(secs)[len(secs) // 2], "elbo": e["elbo"], "iw_nll": e["iw_nll"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--latent", type=int, default=20)
    p.add_argument("--k", type=int, default=1000, help="importance samples per test example")
    p.add_argument("--n-test", type=int, default=10000, help="test examples in the likelihood estimate")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ours-args", default="", help="extra flags for ae train, e.g. '--init torch'")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_ours(args, os.path.join(tmp, "vae"))
    theirs = run_torch(args)
    print(json.dumps({"args": vars(args), "ours": ours, "torch": theirs}))
    print(f"seconds per epoch: ours {ours['seconds_per_epoch']:.2f}, PyTorch {theirs['seconds_per_epoch']:.2f}, "
          f"ratio {ours['seconds_per_epoch'] / theirs['seconds_per_epoch']:.3f}")
    print(f"test ELBO (first {args.n_test}, one sample each): ours {ours['elbo']:.2f}, PyTorch {theirs['elbo']:.2f} nats")
    print(f"test -log p(x), K={args.k}, first {args.n_test}: ours {ours['iw_nll']:.2f}, PyTorch {theirs['iw_nll']:.2f}, "
          f"difference {ours['iw_nll'] - theirs['iw_nll']:+.2f} nats")


if __name__ == "__main__":
    main()
