"""Golden values for tests/vae_golden.rs: the VAE's KL term and the reparameterized sample, with
their gradients, computed by PyTorch autograd in float64.

    .venv/bin/python crates/ae-core/tests/golden/vae_golden.py
"""
import json

import torch

torch.manual_seed(5)
cases = []
for n, k in [(3, 2), (8, 5), (1, 7)]:
    h = (torch.randn(n, 2 * k, dtype=torch.float64) * 1.5).requires_grad_()
    mu, logvar = h.chunk(2, dim=1)
    kl = -0.5 * torch.sum(1 + logvar - mu * mu - logvar.exp()) / n
    (g_kl,) = torch.autograd.grad(kl, h)
    eps = torch.randn(n, k, dtype=torch.float64)
    c = torch.randn(n, k, dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * eps
    (g_z,) = torch.autograd.grad((c * z).sum(), h)
    cases.append({
        "n": n, "k": k, "h": h.detach().flatten().tolist(), "kl": kl.item(), "kl_grad": g_kl.flatten().tolist(),
        "eps": eps.flatten().tolist(), "c": c.flatten().tolist(), "z": z.detach().flatten().tolist(),
        "z_grad": g_z.flatten().tolist(),
    })
with open("crates/ae-core/tests/golden/vae_golden.json", "w") as f:
    json.dump(cases, f)
