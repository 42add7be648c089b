"""The GPU kernels' indexing and arithmetic, checked on a CPU against PyTorch.

kernels.cu is compiled by the C++ compiler with shim.h (one thread of one block: every grid-stride
loop visits every element) and called through ctypes. This runs where there is no GPU, as in CI;
tests/gpu.rs checks the same kernels on a GPU against the CPU engine. Run by test.sh:

    target/py-venv/bin/python -m pytest -q crates/ae-core/tests/cuda_on_cpu
"""
import ctypes
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = os.path.join(HERE, "..", "..", "src", "cuda", "kernels.cu")

f32p = ctypes.POINTER(ctypes.c_float)


@pytest.fixture(scope="module")
def lib():
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.fail("a C++ compiler is needed to compile the kernels for the CPU")
    work = tempfile.mkdtemp()
    so = os.path.join(work, "kernels.so")
    subprocess.run([cxx, "-O1", "-shared", "-fPIC", "-w", "-include", os.path.join(HERE, "shim.h"),
                    "-x", "c++", KERNELS, "-o", so], check=True)
    yield ctypes.CDLL(so)
    shutil.rmtree(work)


def ptr(a):
    assert a.flags["C_CONTIGUOUS"]
    return a.ctypes.data_as(ctypes.c_void_p)


def call(lib, name, *args):
    conv = []
    for a in args:
        if isinstance(a, np.ndarray):
            conv.append(ptr(a))
        elif isinstance(a, float):
            conv.append(ctypes.c_float(a))
        elif isinstance(a, tuple) and a[0] == "i64":
            conv.append(ctypes.c_longlong(a[1]))
        elif isinstance(a, ctypes._SimpleCData):
            conv.append(a)
        else:
            conv.append(ctypes.c_int(a))
    getattr(lib, name)(*conv)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous().numpy()


def nchw(a):
    return torch.from_numpy(a).permute(0, 3, 1, 2)


GEOMETRIES = [(3, 1, 1), (5, 1, 2), (3, 2, 1), (1, 1, 0)]


@pytest.mark.parametrize("k,stride,pad", GEOMETRIES)
def test_a_convolution_as_patch_product_equals_torch_forward_and_backward(lib, k, stride, pad):
    n, h, w, ci, co = 2, 7, 5, 3, 4
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    x = rand(n, h, w, ci, seed=1)
    weight = rand(co, ci, k, k, seed=2)
    bias = rand(co, seed=3)
    width, kk = k * k * ci, k * k

    wmat = np.zeros((co, width), np.float32)
    call(lib, "to_patch_order", wmat, weight, co, ci, kk)
    cols = np.full((n * oh * ow, width), np.nan, np.float32)
    call(lib, "im2col", cols, x, n, h, w, ci, oh, ow, k, stride, pad)
    y = (cols @ wmat.T).reshape(n, oh, ow, co) + bias

    xt = nchw(x).requires_grad_()
    wt = torch.from_numpy(weight).requires_grad_()
    yt = F.conv2d(xt, wt, torch.from_numpy(bias), stride=stride, padding=pad)
    np.testing.assert_allclose(y, nhwc(yt.detach()), rtol=1e-5, atol=1e-5)

    dy = rand(n, oh, ow, co, seed=4)
    yt.backward(nchw(dy))
    dcols = dy.reshape(-1, co) @ wmat
    dx = np.full_like(x, np.nan)
    call(lib, "col2im", dx, np.ascontiguousarray(dcols), n, h, w, ci, oh, ow, k, stride, pad)
    np.testing.assert_allclose(dx, nhwc(xt.grad), rtol=1e-5, atol=1e-5)

    dwmat = np.ascontiguousarray(dy.reshape(-1, co).T @ cols)
    dweight = np.ones_like(weight)  # the kernel adds to what is there
    call(lib, "add_from_patch_order", dweight, dwmat, co, ci, kk)
    np.testing.assert_allclose(dweight - 1, wt.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k", [3, 5])
def test_a_transposed_convolution_as_product_and_col2im_equals_torch(lib, k):
    # The engine's decoder stage: stride 2, padding k // 2, output padding 1 (twice the size).
    n, h, w, ci, co, stride, pad, extra = 2, 3, 4, 3, 2, 2, k // 2, 1
    oh, ow = (h - 1) * stride + k + extra - 2 * pad, (w - 1) * stride + k + extra - 2 * pad
    assert (oh, ow) == (2 * h, 2 * w)
    x = rand(n, h, w, ci, seed=13)
    weight = rand(ci, co, k, k, seed=14)
    bias = rand(co, seed=15)
    width, kk = k * k * co, k * k
    wmat = np.zeros((ci, width), np.float32)
    call(lib, "to_patch_order", wmat, weight, ci, co, kk)
    cols = np.ascontiguousarray(x.reshape(-1, ci) @ wmat)
    y = np.full((n, oh, ow, co), np.nan, np.float32)
    call(lib, "col2im", y, cols, n, oh, ow, co, h, w, k, stride, pad)
    y += bias

    xt = nchw(x).requires_grad_()
    wt = torch.from_numpy(weight).requires_grad_()
    yt = F.conv_transpose2d(xt, wt, torch.from_numpy(bias), stride=stride, padding=pad,
                            output_padding=extra)
    np.testing.assert_allclose(y, nhwc(yt.detach()), rtol=1e-5, atol=1e-5)

    dy = rand(n, oh, ow, co, seed=16)
    yt.backward(nchw(dy))
    dcols = np.full((n * h * w, width), np.nan, np.float32)
    call(lib, "im2col", dcols, dy, n, oh, ow, co, h, w, k, stride, pad)
    dx = (dcols @ wmat.T).reshape(n, h, w, ci)
    np.testing.assert_allclose(dx, nhwc(xt.grad), rtol=1e-4, atol=1e-4)
    dwmat = np.ascontiguousarray(x.reshape(-1, ci).T @ dcols)
    dweight = np.zeros_like(weight)
    call(lib, "add_from_patch_order", dweight, dwmat, ci, co, kk)
    np.testing.assert_allclose(dweight, wt.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("h,w", [(4, 6), (5, 7)])
def test_max_pooling_and_its_gradient_equal_torch(lib, h, w):
    n, c, k = 2, 3, 2
    x = rand(n, h, w, c, seed=5)
    oh, ow = h // k, w // k
    y = np.zeros((n, oh, ow, c), np.float32)
    call(lib, "max_pool", y, x, n, h, w, c, k)
    xt = nchw(x).requires_grad_()
    yt = F.max_pool2d(xt, k)
    np.testing.assert_array_equal(y, nhwc(yt.detach()))
    dy = rand(n, oh, ow, c, seed=6)
    yt.backward(nchw(dy))
    dx = np.full_like(x, np.nan)
    call(lib, "max_pool_backward", dx, dy, x, y, n, h, w, c, k)
    np.testing.assert_array_equal(dx, nhwc(xt.grad))


def test_a_tied_window_gives_its_gradient_to_its_first_maximum_only(lib):
    # ReLU makes such ties: the CPU engine gives the gradient to the first pixel in row order.
    x = np.array([[0, 0], [0, 0]], np.float32).reshape(1, 2, 2, 1)
    x2 = np.array([[-1, 3], [3, 3]], np.float32).reshape(1, 2, 2, 1)
    for xs, want in [(x, [[5, 0], [0, 0]]), (x2, [[0, 5], [0, 0]])]:
        y = np.zeros((1, 1, 1, 1), np.float32)
        call(lib, "max_pool", y, xs, 1, 2, 2, 1, 2)
        dx = np.full_like(xs, np.nan)
        call(lib, "max_pool_backward", dx, np.full((1, 1, 1, 1), 5, np.float32), xs, y, 1, 2, 2, 1, 2)
        np.testing.assert_array_equal(dx.reshape(2, 2), np.array(want, np.float32))


def test_nearest_upsampling_and_its_gradient_equal_torch(lib):
    n, h, w, c, k = 2, 3, 4, 2, 2
    x = rand(n, h, w, c, seed=7)
    y = np.zeros((n, h * k, w * k, c), np.float32)
    call(lib, "upsample", y, x, n, h, w, c, k)
    xt = nchw(x).requires_grad_()
    yt = F.interpolate(xt, scale_factor=k, mode="nearest")
    np.testing.assert_array_equal(y, nhwc(yt.detach()))
    dy = rand(n, h * k, w * k, c, seed=8)
    yt.backward(nchw(dy))
    dx = np.full_like(x, np.nan)
    call(lib, "upsample_backward", dx, dy, n, h, w, c, k)
    np.testing.assert_allclose(dx, nhwc(xt.grad), rtol=1e-6, atol=1e-6)


def test_channels_first_and_last_changes_are_inverse_transposes(lib):
    n, c, h, w = 2, 3, 4, 5
    chw = rand(n, c, h, w, seed=9)
    hwc = np.zeros((n, h, w, c), np.float32)
    call(lib, "permute_chw", hwc, chw, n, c, h, w, 1)
    np.testing.assert_array_equal(hwc, chw.transpose(0, 2, 3, 1))
    back = np.zeros_like(chw)
    call(lib, "permute_chw", back, hwc, n, c, h, w, 0)
    np.testing.assert_array_equal(back, chw)


def test_a_batch_gathers_the_rows_the_step_buffer_names(lib):
    src = rand(10, 3, seed=10)
    rows = [7, 0, 7, 9]
    stepbuf = np.array([0, 0, 0, 0, 0] + rows, np.uint32)
    dst = np.zeros((4, 3), np.float32)
    call(lib, "gather_rows", dst, src, stepbuf, 4, 3)
    np.testing.assert_array_equal(dst, src[rows])


def test_adam_reads_its_rates_from_the_step_buffer_and_matches_torch(lib):
    p0, grads = rand(6, seed=11), [rand(6, seed=12 + t) for t in range(3)]
    lr, b1, b2, eps, scale = 0.01, 0.9, 0.999, 1e-8, 0.5
    p, m, v = p0.copy(), np.zeros(6, np.float32), np.zeros(6, np.float32)
    loss = slots(0.5)
    for t, g in enumerate(grads, start=1):
        step_size = np.float32(lr / (1 - b1**t))
        inv_sqrt_c2 = np.float32(1 / np.sqrt(1 - b2**t))
        rates = np.array([step_size, inv_sqrt_c2], np.float32).view(np.uint32)
        stepbuf = np.array([0, 0, rates[0], rates[1]], np.uint32)
        call(lib, "adam", p, g, m, v, ("i64", 6), b1, b2, eps, scale, stepbuf, loss)
    pt = torch.from_numpy(p0.copy()).requires_grad_()
    opt = torch.optim.Adam([pt], lr=lr * scale, betas=(b1, b2), eps=eps)
    for g in grads:
        pt.grad = torch.from_numpy(g)
        opt.step()
    np.testing.assert_allclose(p, pt.detach().numpy(), rtol=1e-5, atol=1e-6)
    # A non-finite term of the step (reconstruction, sparsity, weight decay, KL, contractive) leaves
    # everything alone, as the CPU's loop does; the evaluation slots (1, 3, 6, 8) do not count.
    before = (p.copy(), m.copy(), v.copy())
    for slot in [0, 2, 4, 5, 7]:
        call(lib, "adam", p, grads[0], m, v, ("i64", 6), b1, b2, eps, scale, stepbuf,
             slots(0.5, **{f"s{slot}": np.nan}))
        for a, b in zip((p, m, v), before):
            np.testing.assert_array_equal(a, b)
    call(lib, "adam", p, grads[0], m, v, ("i64", 6), b1, b2, eps, scale, stepbuf,
         slots(0.5, s1=np.inf, s3=np.nan, s6=np.inf, s8=np.nan))
    assert not np.array_equal(p, before[0])


def slots(loss, **others):
    """The step's result slots (see the trainer's SLOT_ constants): loss, then `sN=value`."""
    r = np.zeros(9, np.float64)
    r[0] = loss
    for k, val in others.items():
        r[int(k[1:])] = val
    return r


def per_thread(lib, name, threads, *args, block=256):
    """Runs a kernel once per thread of a grid of `threads` (rounded up to whole blocks)."""
    blocks = -(-threads // block)
    for b in range(blocks):
        for t in range(block):
            lib.ae_thread(blocks, block, b, t)
            call(lib, name, *args)
    lib.ae_thread(1, 1, 0, 0)


ACTS = {0: lambda x: np.maximum(x, 0), 1: lambda x: np.where(x > 0, x, 0.1 * x),
        2: lambda x: 1 / (1 + np.exp(-x)), 3: np.tanh, 4: lambda x: x}
DERIVS = {0: lambda y: (y > 0).astype(np.float32), 1: lambda y: np.where(y > 0, 1, 0.1),
          2: lambda y: y * (1 - y), 3: lambda y: 1 - y * y, 4: lambda y: np.ones_like(y)}


@pytest.mark.parametrize("act", [0, 1, 2, 3, 4])
def test_activations_forward_and_backward(lib, act):
    rows, cols = 5, 7
    pre, b, d = rand(rows, cols, seed=20), rand(cols, seed=21), rand(rows, cols, seed=22)
    for has_bias in [0, 1]:
        y = pre.copy()
        call(lib, "bias_act", y, b, has_bias, rows, cols, act, 0.1)
        want = ACTS[act](pre + b * has_bias)
        np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)
    out = np.zeros_like(pre)
    call(lib, "act_out", out, pre, ("i64", pre.size), act, 0.1)
    np.testing.assert_allclose(out, ACTS[act](pre), rtol=1e-6, atol=1e-6)
    dd = d.copy()
    call(lib, "act_backward", dd, y, ("i64", d.size), act, 0.1)
    np.testing.assert_allclose(dd, d * DERIVS[act](y), rtol=1e-6, atol=1e-6)


def test_losses_sum_and_gradient_against_torch(lib):
    z, t = rand(4, 6, seed=23), np.random.default_rng(24).random((4, 6)).astype(np.float32)
    m = float(z.size)
    out = (1 / (1 + np.exp(-z))).astype(np.float32)
    for kind in ["mse", "bce"]:
        d = np.zeros_like(z)
        partial = np.zeros(4, np.float64)
        if kind == "mse":
            call(lib, "mse_loss", out, t, d, partial, ("i64", z.size), m, 2, 0.0)
            zt = torch.from_numpy(z).requires_grad_()
            loss = F.mse_loss(torch.sigmoid(zt), torch.from_numpy(t))
        else:
            call(lib, "bce_loss", z, out, t, d, partial, ("i64", z.size), m)
            zt = torch.from_numpy(z).requires_grad_()
            loss = F.binary_cross_entropy_with_logits(zt, torch.from_numpy(t))
        loss.backward()
        result = np.zeros(5, np.float64)
        call(lib, "sum_partials", partial, 1, result, 3, 0)
        np.testing.assert_allclose(result[3] / m, loss.item(), rtol=1e-6)
        np.testing.assert_allclose(d, zt.grad.numpy(), rtol=1e-5, atol=1e-7)
        call(lib, "sum_partials", partial, 1, result, 3, 1)
        np.testing.assert_allclose(result[3] / m, 2 * loss.item(), rtol=1e-6)


def test_sgd_with_momentum_matches_torch_and_skips_a_diverged_step(lib):
    p0, grads = rand(5, seed=25), [rand(5, seed=26 + t) for t in range(3)]
    p, mom = p0.copy(), np.zeros(5, np.float32)
    stepbuf = np.array([0, 0, np.float32(0.1).view(np.uint32), 0], np.uint32)
    for g in grads:
        call(lib, "sgd", p, g, mom, ("i64", 5), 0.9, 0.5, stepbuf, slots(1.0))
    pt = torch.from_numpy(p0.copy()).requires_grad_()
    opt = torch.optim.SGD([pt], lr=0.05, momentum=0.9)
    for g in grads:
        pt.grad = torch.from_numpy(g)
        opt.step()
    np.testing.assert_allclose(p, pt.detach().numpy(), rtol=1e-5, atol=1e-6)
    before = p.copy()
    for bad in [slots(np.inf), slots(1.0, s5=np.nan), slots(1.0, s2=np.inf)]:
        call(lib, "sgd", p, grads[0], mom, ("i64", 5), 0.9, 0.5, stepbuf, bad)
        np.testing.assert_array_equal(p, before)


def test_weight_decay_and_l1_code_penalties(lib):
    w, g0 = rand(3, 4, seed=30), rand(3, 4, seed=31)
    w[0, 0] = 0.0
    for kind, lam in [(2, 0.01), (1, 0.001)]:
        g, partial = g0.copy(), np.zeros(2, np.float64)
        call(lib, "weight_decay", g, w, 1, ("i64", w.size), kind, lam, partial)
        if kind == 2:
            np.testing.assert_allclose(g, g0 + np.float32(lam) * w, rtol=1e-6)
            np.testing.assert_allclose(partial[0], np.sum(w.astype(np.float64) ** 2), rtol=1e-6)
        else:
            np.testing.assert_allclose(g, g0 + np.float32(lam) * np.sign(w), rtol=1e-6)
            np.testing.assert_allclose(partial[0], np.sum(np.abs(w.astype(np.float64))), rtol=1e-6)
    h, d0 = rand(4, 3, seed=32), rand(4, 3, seed=33)
    d, partial = d0.copy(), np.zeros(2, np.float64)
    call(lib, "l1_code", h, d, 1, ("i64", h.size), 0.25, partial)
    np.testing.assert_allclose(d, d0 + np.float32(0.25) * np.sign(h), rtol=1e-6)
    np.testing.assert_allclose(partial[0], np.abs(h.astype(np.float64)).sum(), rtol=1e-6)


def test_kl_sparsity_penalty_and_its_gradient(lib):
    rows, k, rho, beta = 6, 300, 0.05, 3.0
    h = np.random.default_rng(34).random((rows, k)).astype(np.float32)
    means = np.zeros(k, np.float64)
    per_thread(lib, "column_means", k, h, means, rows, k)
    np.testing.assert_allclose(means, h.astype(np.float64).mean(0), rtol=1e-12)
    per_unit, result = np.zeros(k, np.float32), np.zeros(5, np.float64)
    call(lib, "kl_units", means, k, ctypes.c_double(rho), ctypes.c_double(beta), rows, per_unit,
         result, 2, 0, ctypes.c_double(1.0))
    kl = rho * np.log(rho / means) + (1 - rho) * np.log((1 - rho) / (1 - means))
    np.testing.assert_allclose(result[2], beta * kl.sum(), rtol=1e-10)
    # Its gradient per code value: the penalty's derivative through the batch mean.
    ht = torch.from_numpy(h.astype(np.float64)).requires_grad_()
    mt = ht.mean(0)
    (beta * (rho * torch.log(rho / mt) + (1 - rho) * torch.log((1 - rho) / (1 - mt))).sum()).backward()
    d = np.zeros((rows, k), np.float32)
    call(lib, "add_rows", d, per_unit, rows, k)
    np.testing.assert_allclose(d, ht.grad.numpy(), rtol=1e-5)


def test_bias_gradients_sum_columns_across_threads(lib):
    rows, cols = 9, 300
    d, gb = rand(rows, cols, seed=35), np.ones(cols, np.float32)
    per_thread(lib, "column_sums_add", cols, gb, d, rows, cols)
    np.testing.assert_allclose(gb, 1 + d.sum(0), rtol=1e-5)


def test_noise_drawn_from_the_step_buffers_key(lib):
    n = 200_000
    x = np.full(n, 0.5, np.float32)
    key = 0x1234_5678_9ABC_DEF0
    stepbuf = np.array([key & 0xFFFFFFFF, key >> 32, 0, 0], np.uint32)
    draw = {}
    for kind, param in [(0, 0.25), (1, 0.3), (2, 0.2)]:
        out = np.zeros(n, np.float32)
        call(lib, "corrupt", out, x, ("i64", n), kind, param, stepbuf)
        draw[kind] = out
    assert abs(np.mean(draw[1] == 0) - 0.3) < 0.005
    assert abs(np.mean(draw[2] == 0) - 0.1) < 0.005 and abs(np.mean(draw[2] == 1) - 0.1) < 0.005
    g = draw[0].astype(np.float64) - 0.5
    assert abs(g.mean()) < 0.002 and abs(g.std() - 0.25) < 0.002
    other = np.zeros(n, np.float32)
    stepbuf[0] ^= 1
    call(lib, "corrupt", other, x, ("i64", n), 1, 0.3, stepbuf)
    assert not np.array_equal(other, draw[1])


@pytest.mark.parametrize("floor", [None, 0.6])
def test_a_vaes_sample_and_kl_term_with_their_gradients_against_torch(lib, floor):
    n, k, weight = 6, 4, 0.7
    h = rand(n, 2 * k, seed=40)
    h[:, k:] *= 0.5
    key = 0xDEADBEEF_12345678
    stepbuf = np.array([key & 0xFFFFFFFF, key >> 32, 0, 0, np.float32(weight).view(np.uint32)],
                       np.uint32)
    z, eps = np.zeros((n, k), np.float32), np.zeros((n, k), np.float32)
    call(lib, "reparam", z, eps, h, n, k, 1, stepbuf)
    assert eps.std() > 0.3, "ε was drawn"
    np.testing.assert_allclose(z, h[:, :k] + np.exp(0.5 * h[:, k:]) * eps, rtol=1e-6)
    call(lib, "reparam", z, eps, h, n, k, 0, stepbuf)
    np.testing.assert_array_equal(z, h[:, :k])
    call(lib, "reparam", z, eps, h, n, k, 1, stepbuf)

    units, result = np.zeros(k, np.float64), np.zeros(7, np.float64)
    per_thread(lib, "kl_gauss_units", k, h, units, n, k)
    call(lib, "kl_gauss_total", units, k, result, 5, 0, ctypes.c_double(1.0))
    ht = torch.from_numpy(h.astype(np.float64)).requires_grad_()
    mu, lv = ht[:, :k], ht[:, k:]
    per_unit = (0.5 * (mu**2 + lv.exp() - 1 - lv)).mean(0)
    np.testing.assert_allclose(units, per_unit.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(result[5], per_unit.sum().item(), rtol=1e-6)

    # Gradient of Σ z·r (r standing for the decoder's gradient at z) + weight · Σ KL over the
    # units at or above the floor.
    r = rand(n, k, seed=41)
    zt = mu + (0.5 * lv).exp() * torch.from_numpy(eps.astype(np.float64))
    active = torch.ones(k, dtype=torch.bool) if floor is None else per_unit.detach() >= floor
    if floor is not None:
        assert 0 < int(active.sum()) < k, "the floor splits the units"
    ((zt * torch.from_numpy(r.astype(np.float64))).sum() + weight * per_unit[active].sum()).backward()
    dh = np.full_like(h, np.nan)
    call(lib, "reparam_backward", dh, r, eps, h, n, k)
    call(lib, "kl_gauss_grad", dh, h, units, n, k, int(floor is not None), float(floor or 0.0), stepbuf)
    np.testing.assert_allclose(dh, ht.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_contractive_penalty_and_its_gradients_match_torch(lib):
    # λ · mean_n Σ_j s'(a_nj)² ‖W_j‖² (Rifai et al.'s closed form for a one-layer encoder), its
    # gradient at the pre-activation a and its direct gradient in W, against torch's autograd.
    rows, k, d, lam = 7, 5, 6, 0.3
    x, w, b = rand(rows, d, seed=40), 0.5 * rand(k, d, seed=41), rand(k, seed=42)
    a = (x @ w.T + b).astype(np.float32)
    slopes = {
        0: lambda t: (t > 0).to(t.dtype),
        1: lambda t: torch.where(t > 0, torch.ones_like(t), 0.1 * torch.ones_like(t)),
        2: lambda t: torch.sigmoid(t) * (1 - torch.sigmoid(t)),
        3: lambda t: 1 - torch.tanh(t) ** 2,
        4: lambda t: torch.ones_like(t),
    }
    for act, slope in slopes.items():
        at = torch.from_numpy(a.astype(np.float64)).requires_grad_()
        wt = torch.from_numpy(w.astype(np.float64)).requires_grad_()
        penalty = lam * (slope(at) ** 2 * (wt ** 2).sum(1)).sum(1).mean()
        penalty.backward()
        h = ACTS[act](a).astype(np.float32)
        dpre = np.zeros((rows, k), np.float32)
        s2, val = np.zeros(k, np.float64), np.zeros(k, np.float64)
        per_thread(lib, "contractive_units", k, h, dpre, w, rows, k, d, act, 0.1, lam / rows, 1,
                   s2, val)
        np.testing.assert_allclose(lam * val.sum() / rows, penalty.item(), rtol=1e-5)
        da = at.grad.numpy() if at.grad is not None else np.zeros((rows, k))
        np.testing.assert_allclose(dpre, da, rtol=1e-4, atol=1e-6, err_msg=f"act {act}")
        g = np.zeros((k, d), np.float32)
        call(lib, "contractive_weight_grad", g, w, s2, ("i64", k * d), d, 2 * lam / rows)
        np.testing.assert_allclose(g, wt.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=f"act {act}")
        # Without a gradient asked for, only the sums.
        untouched = np.zeros((rows, k), np.float32)
        per_thread(lib, "contractive_units", k, h, untouched, w, rows, k, d, act, 0.1, lam / rows,
                   0, s2, val)
        assert not untouched.any()


def test_dynamic_binarization_is_bernoulli_of_each_value_and_apart_from_the_noise(lib):
    n = 200_000
    levels = np.array([0.0, 0.3, 0.7, 1.0], np.float32)
    x = np.repeat(levels, n // 4)
    key = 0x0F1E_2D3C_4B5A_6978
    stepbuf = np.array([key & 0xFFFFFFFF, key >> 32, 0, 0], np.uint32)
    out = x.copy()
    call(lib, "binarize", out, ("i64", n), stepbuf)
    assert set(np.unique(out)) <= {0.0, 1.0}
    for j, p in enumerate(levels):
        share = out[j * n // 4:(j + 1) * n // 4].mean()
        assert abs(share - p) < 0.006, (p, share)
    # Not the masking noise's draws from the same key: the two patterns are independent.
    mask = np.zeros(n, np.float32)
    call(lib, "corrupt", mask, np.full(n, 0.5, np.float32), ("i64", n), 1, 0.3, stepbuf)
    middle = slice(n // 4, n // 2)
    both = np.mean((out[middle] == 1) & (mask[middle] == 0))
    assert abs(both - 0.3 * 0.3) < 0.006, both
    again = x.copy()
    stepbuf[1] ^= 1
    call(lib, "binarize", again, ("i64", n), stepbuf)
    assert not np.array_equal(again, out)
