#!/usr/bin/env python3
"""Golden values for crates/ae-core/tests/conv_golden.rs, computed by PyTorch in float64.

Run: .venv/bin/python crates/ae-core/tests/golden/conv_golden.py  (writes conv_golden.json here)

Each case is the nn.Sequential a PyTorch user would write for `ae train --arch conv` with the same
flags; its state_dict names and shapes are what our model.safetensors must hold. Inputs (i = flat
row-major index from 0), rebuilt by the Rust test with the same formulas:
- x[i] = (1 + sin(0.61 i + 0.4)) / 2, shape (2, C, H, W); the target is x; loss = MSE of sigmoid(logits).
- parameter j (state_dict order), element i: 0.5 sin(0.37 i + 0.91 j + 0.2) / sqrt(numel / shape[0]),
  plus the case's `bias` (default 0) for biases.
Reported: loss, every parameter's gradient, and d loss / d x (target held fixed).
"""
import json
import math
import os

import torch
from torch import nn

torch.set_default_dtype(torch.float64)


def model(c, h, w, channels, k, decoder, code, act, bias=0.0):
    enc, dec = [], []
    prev = c
    for ch in channels:
        enc += [nn.Conv2d(prev, ch, k, padding=k // 2), act(), nn.MaxPool2d(2)]
        prev = ch
    s = len(channels)
    mh, mw = h >> s, w >> s
    if code is not None:
        enc += [nn.Flatten(), nn.Linear(prev * mh * mw, code), act()]
        dec += [nn.Linear(code, prev * mh * mw), act(), nn.Unflatten(1, (prev, mh, mw))]
    for ch in reversed(channels):
        if decoder == "upsample":
            dec += [nn.Conv2d(prev, ch, k, padding=k // 2), act(), nn.Upsample(scale_factor=2, mode="nearest")]
        else:
            dec += [nn.ConvTranspose2d(prev, ch, k, stride=2, padding=k // 2, output_padding=1), act()]
        prev = ch
    dec += [nn.Conv2d(prev, c, k, padding=k // 2)]
    return nn.Sequential(*enc), nn.Sequential(*dec)


CASES = {
    "upsample_2ch": dict(c=2, h=8, w=8, channels=[3, 4], k=3, decoder="upsample", code=None, act=nn.Tanh),
    # Biases shifted up by 0.3 keep this case's ReLUs alive (with the shared formula the code was
    # all zeros and every gradient but the last bias was 0).
    "transpose_code": dict(c=1, h=8, w=8, channels=[2, 3], k=3, decoder="transpose", code=5, act=nn.ReLU, bias=0.3),
    "wide_patches": dict(c=1, h=8, w=8, channels=[6, 5], k=3, decoder="transpose", code=None, act=nn.Tanh),
    "kernel5_3ch": dict(c=3, h=4, w=8, channels=[2], k=5, decoder="upsample", code=None, act=nn.Sigmoid),
}

out = {"torch": torch.__version__}
for name, cfg in CASES.items():
    enc, dec = model(**cfg)
    named = [(f"encoder.{n}", p) for n, p in enc.named_parameters()] + [
        (f"decoder.{n}", p) for n, p in dec.named_parameters()
    ]
    with torch.no_grad():
        for j, (pname, p) in enumerate(named):
            scale = 1 / math.sqrt(p.numel() / p.shape[0])
            shift = cfg.get("bias", 0.0) if pname.endswith("bias") else 0.0
            v = [0.5 * math.sin(0.37 * i + 0.91 * j + 0.2) * scale + shift for i in range(p.numel())]
            p.copy_(torch.tensor(v).reshape(p.shape))
    shape = (2, cfg["c"], cfg["h"], cfg["w"])
    x = torch.tensor([(1 + math.sin(0.61 * i + 0.4)) / 2 for i in range(math.prod(shape))]).reshape(shape)
    target = x.clone()
    x.requires_grad_()
    code = enc(x)
    loss = ((torch.sigmoid(dec(code)) - target) ** 2).mean()
    loss.backward()
    out[name] = {
        "params": [[n, list(p.shape)] for n, p in named],
        "loss": loss.item(),
        "grads": {n: p.grad.reshape(-1).tolist() for n, p in named},
        "x_grad": x.grad.reshape(-1).tolist(),
        "code": code.detach().reshape(-1).tolist(),
    }
    dead = [n for n, p in named if not p.grad.abs().max() > 0] + (["x"] if not x.grad.abs().max() > 0 else [])
    assert not dead, f"{name}: all-zero gradients for {dead}"

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv_golden.json"), "w") as f:
    json.dump(out, f, indent=1)
print("wrote conv_golden.json")
