#!/usr/bin/env python3
"""Golden values for crates/ae-core/tests/golden.rs, computed by PyTorch in float64.

Run: .venv/bin/python crates/ae-core/tests/golden/golden.py  (writes golden.json beside this file)

Inputs (i = flat row-major index from 0); the Rust test rebuilds them with the same formulas:
- pred[i] = 0.8 sin(0.37 i + 0.1) + 0.5, shape (3, 4);  target[i] = (cos(0.91 i) + 1) / 2
- logits z[i] = 3 sin(0.53 i + 0.2), shape (3, 4)
- tiny autoencoder 5 -> 4 (ReLU) -> 5 (sigmoid), nn.Linear layout (out, in):
  W1[i] = 0.3 sin(0.7 i + 0.3) (4x5), b1[i] = 0.1 cos(1.3 i), W2[i] = 0.25 cos(0.45 i - 0.2) (5x4),
  b2[i] = 0.05 sin(2.1 i); input x[i] = (1 + sin(0.61 i + 0.4)) / 2, shape (3, 5); target = x.
  Tied: the decoder weight is W1 transposed (one shared parameter), with its own bias b2.
  x_grad is d loss / d input through the network, the target held fixed.
- activations: x[i] = 2.5 sin(0.77 i - 1.0), shape (12,); w[i] = cos(0.3 i); "grad" = d sum(f(x) * w) / dx,
  leaky_relu slope 0.01.
- adam (lr 1e-2, betas 0.9/0.999, eps 1e-8), adam_l2 (loss + 0.1/2 * (sum W1^2 + sum W2^2), weights
  only; "penalty" is its value before step 1), sgd_momentum (lr 0.1, momentum 0.9, PyTorch convention):
  3 steps from the dense params on the dense MSE loss, params after each step.
- l1: 0.01 * sum |W1|, value and gradient.
"""
import json
import math
import os

import torch

torch.set_default_dtype(torch.float64)


def fill(shape, f):
    n = math.prod(shape)
    return torch.tensor([f(i) for i in range(n)]).reshape(shape)


def flat(t):
    return t.detach().reshape(-1).tolist()


def params():
    return {
        "w1": fill((4, 5), lambda i: 0.3 * math.sin(0.7 * i + 0.3)).requires_grad_(),
        "b1": fill((4,), lambda i: 0.1 * math.cos(1.3 * i)).requires_grad_(),
        "w2": fill((5, 4), lambda i: 0.25 * math.cos(0.45 * i - 0.2)).requires_grad_(),
        "b2": fill((5,), lambda i: 0.05 * math.sin(2.1 * i)).requires_grad_(),
    }


X = fill((3, 5), lambda i: (1 + math.sin(0.61 * i + 0.4)) / 2)


def forward(p, tied=False, code_act=torch.relu, x=X):
    code = code_act(x @ p["w1"].T + p["b1"])
    w2 = p["w1"].T if tied else p["w2"]
    logits = code @ w2.T + p["b2"]
    return code, logits


def mse(out):
    return ((out - X) ** 2).mean()


out = {}

pred = fill((3, 4), lambda i: 0.8 * math.sin(0.37 * i + 0.1) + 0.5).requires_grad_()
target = fill((3, 4), lambda i: (math.cos(0.91 * i) + 1) / 2)
loss = torch.nn.functional.mse_loss(pred, target)
loss.backward()
out["mse"] = {"loss": loss.item(), "grad": flat(pred.grad)}

z = fill((3, 4), lambda i: 3 * math.sin(0.53 * i + 0.2)).requires_grad_()
loss = torch.nn.functional.binary_cross_entropy_with_logits(z, target)
loss.backward()
out["bce_logits"] = {"loss": loss.item(), "grad": flat(z.grad)}

z = torch.tensor([-60.0, -20.0, 0.0, 20.0, 60.0, 100.0], requires_grad=True)
t = torch.tensor([0.0, 1.0, 0.5, 0.0, 1.0, 0.25])
loss = torch.nn.functional.binary_cross_entropy_with_logits(z, t)
loss.backward()
out["bce_logits_extreme"] = {"logits": flat(z), "target": flat(t), "loss": loss.item(), "grad": flat(z.grad)}

xa = fill((12,), lambda i: 2.5 * math.sin(0.77 * i - 1.0))
wa = fill((12,), lambda i: math.cos(0.3 * i))
out["activations"] = {"x": flat(xa), "w": flat(wa)}
for name, f in [("relu", torch.relu), ("leaky_relu", lambda v: torch.nn.functional.leaky_relu(v, 0.01)),
                ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)]:
    x = xa.clone().requires_grad_()
    y = f(x)
    (y * wa).sum().backward()
    out["activations"][name] = {"output": flat(y), "grad": flat(x.grad)}

for name, tied, kind in [("dense_ae_mse", False, "mse"), ("dense_ae_bce", False, "bce"), ("tied_ae_mse", True, "mse")]:
    p = params()
    if tied:
        del p["w2"]
    x = X.clone().requires_grad_()
    code, logits = forward(p, tied, x=x)
    recon = torch.sigmoid(logits)
    loss = mse(recon) if kind == "mse" else torch.nn.functional.binary_cross_entropy_with_logits(logits, X)
    loss.backward()
    out[name] = {"code": flat(code), "output": flat(recon), "loss": loss.item(),
                 "grads": {k: flat(v.grad) for k, v in p.items()}, "x_grad": flat(x.grad)}


def train(opt_fn, steps=3, l2=0.0):
    p = params()
    opt = opt_fn(p)
    history = []
    penalty0 = None
    for _ in range(steps):
        opt.zero_grad()
        _, logits = forward(p)
        penalty = l2 / 2 * (p["w1"].pow(2).sum() + p["w2"].pow(2).sum())
        if penalty0 is None:
            penalty0 = penalty.item()
        (mse(torch.sigmoid(logits)) + penalty).backward()
        opt.step()
        history.append({k: flat(v) for k, v in p.items()})
    return history, penalty0


adam = lambda p: torch.optim.Adam(p.values(), lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
out["adam"] = {"steps": train(adam)[0]}
steps, pen = train(adam, l2=0.1)
out["adam_l2"] = {"steps": steps, "penalty": pen}
out["sgd_momentum"] = {"steps": train(lambda p: torch.optim.SGD(p.values(), lr=0.1, momentum=0.9))[0]}

# Sparsity on the code: L1 activity 0.1 * mean|h| (ReLU code), and KL 3 * sum_j KL(0.05 || mean_j)
# with a sigmoid code.
for name, act, penalty in [
    ("sparse_l1", torch.relu, lambda h: 0.1 * h.abs().mean()),
    ("sparse_kl", torch.sigmoid, lambda h: 3.0 * (0.05 * torch.log(0.05 / h.mean(0))
                                                  + 0.95 * torch.log(0.95 / (1 - h.mean(0)))).sum()),
]:
    p = params()
    code, logits = forward(p, code_act=act)
    rec = mse(torch.sigmoid(logits))
    pen = penalty(code)
    (rec + pen).backward()
    out[name] = {"mse": rec.item(), "penalty": pen.item(), "grads": {k: flat(v.grad) for k, v in p.items()}}

# Contractive: 0.3 * mean over examples of ||J||_F^2, J the Jacobian of a sigmoid encoder, by
# autograd (create_graph so that the penalty's own gradient flows to the weights).
p = params()
enc = lambda x: torch.sigmoid(x @ p["w1"].T + p["b1"])
J = torch.stack([torch.autograd.functional.jacobian(enc, X[n], create_graph=True) for n in range(X.shape[0])])
pen = 0.3 * (J ** 2).sum(dim=(1, 2)).mean()
code, logits = forward(p, code_act=torch.sigmoid)
rec = mse(torch.sigmoid(logits))
(rec + pen).backward()
out["contractive"] = {"mse": rec.item(), "penalty": pen.item(), "grads": {k: flat(v.grad) for k, v in p.items()}}

w1 = params()["w1"]
l1 = 0.01 * w1.abs().sum()
l1.backward()
out["l1"] = {"value": l1.item(), "grad": flat(w1.grad)}

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json"), "w") as f:
    json.dump({"torch": torch.__version__, **out}, f, indent=1)
print("wrote golden.json")
