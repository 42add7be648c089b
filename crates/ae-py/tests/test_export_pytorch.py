"""`ae export --format pytorch`: the written torch.nn module, loaded with its weights, computes what
`ae encode` and `ae reconstruct` compute, and trains on."""
import importlib.util
import subprocess

import numpy as np
import pytest

from _cli import ae_binary, images, run, run_scaler

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the PyTorch export is not checked")
pytest.importorskip("safetensors", reason="safetensors is not installed")
from safetensors.numpy import load_file  # noqa: E402

torch.set_num_threads(1)




def module(path):
    """Imports the written module from its file."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CONV = ["--arch", "conv", "--channels", "3,2"]


@pytest.mark.parametrize("flavor", [
    [], ["--tied"], ["--model", "vae"], ["--model", "vae", "--loss", "mse", "--learned-variance"],
    ["--activation", "tanh", "--hidden", "10,6,3"],
    ["--activation", "leaky-relu"], CONV, CONV + ["--code", "4", "--decoder", "transpose"],
    CONV + ["--model", "vae", "--code", "3"],
])
def test_the_module_computes_what_the_program_computes(tmp_path, flavor):
    conv = "conv" in flavor
    x = images(side=8, channels=2) if conv else images()
    data = tmp_path / "x.npy"
    np.save(data, x)
    spec = f"npy:{data}"
    model = tmp_path / "run"
    hidden = [] if "--hidden" in flavor or conv else ["--hidden", "12,4"]
    run("train", "--data", spec, *hidden, *flavor, "--epochs", "3", "--batch-size", "16", "--threads", "1",
        "--out", model, "--quiet")
    run("encode", model, "--data", spec, "--out", tmp_path / "codes.npy")
    run("reconstruct", model, "--data", spec, "--out", tmp_path / "rec.npy")
    codes = np.load(tmp_path / "codes.npy")
    rec = np.load(tmp_path / "rec.npy").reshape(len(x), -1)
    vae = "vae" in flavor

    run("export", model, "--format", "pytorch", "--with-scaling", "--out", tmp_path / "net.py")
    net = module(tmp_path / "net.py").load().eval()
    # The weights file holds the run's own parameter names, every one, plus the two scaling buffers.
    own = load_file(str(model / "model.safetensors"))
    written = load_file(str(tmp_path / "net.safetensors"))
    assert set(written) == set(own) | {"scaling_offset", "scaling_scale"}
    for name, value in own.items():
        np.testing.assert_array_equal(written[name], value)
    assert set(net.state_dict()) == set(written)

    with torch.no_grad():
        xt = torch.from_numpy(x)
        out = net.encode(xt)
        mean = out[0] if vae else out
        assert isinstance(out, tuple) == vae
        np.testing.assert_allclose(mean.numpy(), codes, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(net.decode(torch.from_numpy(codes)).numpy(), rec, rtol=1e-5, atol=1e-3)
        full = net(xt)
        full = full[0] if vae else full
        np.testing.assert_allclose(full.numpy(), rec, rtol=1e-5, atol=1e-3)
        # Flat rows are taken as well as images.
        np.testing.assert_allclose(net.encode(xt.reshape(len(x), -1))[0 if vae else slice(None)].numpy(),
                                   codes, rtol=1e-5, atol=1e-5)

    # Without the scaling the module works in the model's own units.
    run("export", model, "--format", "pytorch", "--out", tmp_path / "raw.py")
    raw = module(tmp_path / "raw.py").load().eval()
    offset, scale = run_scaler(model)
    scaled = torch.from_numpy(((x.reshape(len(x), -1) - offset) * scale).astype(np.float32))
    with torch.no_grad():
        own_units = raw(scaled)
        own_units = own_units[0] if vae else own_units
    np.testing.assert_allclose(own_units.numpy(), (rec - offset) * scale, rtol=1e-4, atol=1e-5)

    # It trains on: one Adam step lowers the loss of the same batch, and a tied layer still
    # reads its encoder layer's weight (the decoder gets no weight of its own).
    raw.train()
    opt = torch.optim.Adam(raw.parameters(), lr=1e-3)
    torch.manual_seed(0)

    def loss():
        y = raw(scaled)
        return torch.nn.functional.mse_loss(y[0] if vae else y, scaled)

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    for _ in range(20):
        opt.zero_grad()
        loss().backward()
        opt.step()
    if not vae:
        assert loss().item() < before.item()
    if "--tied" in flavor:
        assert not any(k.startswith("decoder.") and k.endswith(".weight") for k in raw.state_dict())




def test_bad_requests_are_refused_and_nothing_is_written(tmp_path):
    x = images()
    np.save(tmp_path / "x.npy", x)
    model = tmp_path / "run"
    run("train", "--data", f"npy:{tmp_path / 'x.npy'}", "--hidden", "8,3", "--epochs", "1", "--threads", "1",
        "--out", model, "--quiet")
    for args, message in [
        (["--out", tmp_path / "m.onnx"], ".py"),
        (["--part", "encoder", "--out", tmp_path / "m.py"], "--part"),
    ]:
        r = subprocess.run([ae_binary(), "export", str(model), "--format", "pytorch", *map(str, args)],
                           capture_output=True, text=True)
        assert r.returncode != 0 and message in r.stderr, r.stderr
    assert not (tmp_path / "m.py").exists() and not (tmp_path / "m.safetensors").exists()
    # An existing weights file is kept without --force, and the module is not written either.
    (tmp_path / "n.safetensors").write_bytes(b"keep")
    r = subprocess.run([ae_binary(), "export", str(model), "--format", "pytorch", "--out", str(tmp_path / "n.py")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--force" in r.stderr
    assert (tmp_path / "n.safetensors").read_bytes() == b"keep" and not (tmp_path / "n.py").exists()


def test_the_python_estimator_writes_the_same_module(tmp_path):
    from autoencoder import VAE, Autoencoder

    rng = np.random.default_rng(1)
    X = (rng.normal(size=(200, 3)) @ rng.normal(size=(3, 9)) + 5.0).astype(np.float32)
    for est in [Autoencoder(hidden=[8, 3], epochs=5, threads=1).fit(X), VAE(hidden=[8, 2], epochs=3, threads=1).fit(X)]:
        weights = est.to_pytorch(tmp_path / "est.py")
        assert weights == str(tmp_path / "est.safetensors")
        net = module(tmp_path / "est.py").load().eval()
        with torch.no_grad():
            code = net.encode(torch.from_numpy(X))
            code = code[0] if isinstance(code, tuple) else code
            np.testing.assert_allclose(code.numpy(), est.transform(X), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(net.decode(code).numpy(), est.inverse_transform(est.transform(X)),
                                       rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match=".py"):
        est.to_pytorch(tmp_path / "est.pt")

