"""PyTorch's seconds per Fashion-MNIST epoch on a GPU, for bench/gpu.sh (issue 17's reference).

Dense autoencoders (ReLU, linear code, sigmoid output) and the classic convolutional one (ae's
`--preset conv`: conv 32 + ReLU + 2×2 max-pool twice, conv 32 + ReLU + nearest upsampling twice, conv
to one channel + sigmoid), MSE, Adam 1e-3, batch 256, PyTorch's default initialization, the 60,000
training images resident on the GPU, shuffled each epoch. Two ways:
eager, and the whole step (forward, backward, a capturable Adam) captured once as a CUDA graph
and replayed (the last, partial batch of an epoch runs eagerly). Prints one JSON line per
workload and mode: seconds of each epoch, best of epochs 2..4, and test MSE after the last.
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
from torch import nn


def idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    n, h, w = (int.from_bytes(data[i : i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, h * w).astype(np.float32) / 255.0


def net(sizes):
    enc, dec = [], []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        enc.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            enc.append(nn.ReLU())
    back = sizes[::-1]
    for i, (a, b) in enumerate(zip(back, back[1:])):
        dec.append(nn.Linear(a, b))
        dec.append(nn.ReLU() if i < len(back) - 2 else nn.Sigmoid())
    return nn.Sequential(*enc, *dec)


def conv_net():
    def stage(a, b, after):
        return [nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), after]

    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        *stage(1, 32, nn.MaxPool2d(2)),
        *stage(32, 32, nn.MaxPool2d(2)),
        *stage(32, 32, nn.Upsample(scale_factor=2)),
        *stage(32, 32, nn.Upsample(scale_factor=2)),
        nn.Conv2d(32, 1, 3, padding=1),
        nn.Sigmoid(),
        nn.Flatten(),
    )


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run(sizes, mode, train, test, epochs, batch):
    torch.manual_seed(0)
    dev = train.device
    model = (conv_net() if sizes == "conv" else net(sizes)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=(mode == "graph"))
    loss_fn = nn.MSELoss()
    n = train.shape[0]
    full = n // batch

    def step(x):
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), x)
        loss.backward()
        opt.step()
        return loss

    graph = None
    static_x = torch.zeros(batch, train.shape[1], device=dev)
    if mode == "graph":
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                static_x.copy_(train[:batch])
                step(static_x)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step(static_x)
    seconds = []
    for _ in range(epochs):
        sync()
        t0 = time.perf_counter()
        order = torch.randperm(n, device=dev)
        for b in range(full):
            xb = train.index_select(0, order[b * batch : (b + 1) * batch])
            if graph is not None:
                static_x.copy_(xb)
                graph.replay()
            else:
                step(xb)
        if n % batch:
            step(train.index_select(0, order[full * batch :]))
        sync()
        seconds.append(time.perf_counter() - t0)
    with torch.no_grad():
        mse = float(loss_fn(model(test), test))
    best = min(seconds[1:4]) if len(seconds) > 1 else seconds[0]
    return {"seconds": seconds, "best_2_4": best, "test_mse": mse}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True, help="folder with the Fashion-MNIST .gz files")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--device", default="cuda", help="cuda, or cpu to try the script (eager only)")
    a = p.parse_args()
    train = torch.from_numpy(idx_images(os.path.join(a.data, "train-images-idx3-ubyte.gz"))).to(a.device)
    test = torch.from_numpy(idx_images(os.path.join(a.data, "t10k-images-idx3-ubyte.gz"))).to(a.device)
    modes = ["eager", "graph"] if a.device.startswith("cuda") else ["eager"]
    workloads = [("dense 784-256-64", [784, 256, 64]),
                 ("dense 784-1000-500-250-30", [784, 1000, 500, 250, 30]),
                 ("conv preset", "conv")]
    for name, sizes in workloads:
        for mode in modes:
            r = run(sizes, mode, train, test, a.epochs, a.batch)
            print(json.dumps({"workload": name, "mode": mode, **r}), flush=True)


if __name__ == "__main__":
    main()
