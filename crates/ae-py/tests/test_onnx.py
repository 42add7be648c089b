"""`ae export --format onnx`: ONNX Runtime computes what `ae encode` and `ae reconstruct` compute."""
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from _cli import ae_binary, images, run, run_scaler




CONV = ["--arch", "conv", "--channels", "3,2"]


def session(path):
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("flavor", [
    [], ["--tied"], ["--model", "vae"], ["--activation", "tanh", "--hidden", "10,6,3"],
    CONV, CONV + ["--code", "4", "--decoder", "transpose"], CONV + ["--model", "vae", "--code", "3"],
])
def test_exported_parts_equal_the_program(tmp_path, flavor):
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
    codes = np.load(tmp_path / "codes.npy")
    vae = "vae" in flavor

    # The encoder with the run's scaling takes the file's own values.
    run("export", model, "--part", "encoder", "--with-scaling", "--out", tmp_path / "enc.onnx")
    enc = session(tmp_path / "enc.onnx")
    outs = enc.run(None, {"input": x})
    assert [o.name for o in enc.get_outputs()] == (["mean", "log_variance"] if vae else ["code"])
    np.testing.assert_allclose(outs[0], codes, rtol=1e-5, atol=1e-5)
    # A dynamic batch: any number of rows.
    assert enc.run(None, {"input": x[:7]})[0].shape == (7, codes.shape[1])

    # Decoder and whole model agree with `ae reconstruct`, which writes the file's own units.
    run("reconstruct", model, "--data", spec, "--out", tmp_path / "rec.npy")
    rec = np.load(tmp_path / "rec.npy").reshape(len(x), -1)
    run("export", model, "--part", "decoder", "--with-scaling", "--out", tmp_path / "dec.onnx")
    dec = session(tmp_path / "dec.onnx")
    np.testing.assert_allclose(dec.run(None, {"code": codes})[0], rec, rtol=1e-5, atol=1e-3)
    run("export", model, "--part", "autoencoder", "--with-scaling", "--out", tmp_path / "ae.onnx")
    full = session(tmp_path / "ae.onnx").run(None, {"input": x})[0]
    np.testing.assert_allclose(full, rec, rtol=1e-5, atol=1e-3)
    # Without the scaling the graph works in the model's own units.
    run("export", model, "--part", "autoencoder", "--out", tmp_path / "raw.onnx")
    offset, scale = run_scaler(model)
    scaled = ((x.reshape(len(x), -1) - offset) * scale).reshape(x.shape).astype(np.float32)
    own = session(tmp_path / "raw.onnx").run(None, {"input": scaled})
    np.testing.assert_allclose(own[0], (rec - offset) * scale, rtol=1e-4, atol=1e-5)




def test_an_existing_file_is_kept_without_force(tmp_path):
    x = images()
    np.save(tmp_path / "x.npy", x)
    model = tmp_path / "run"
    run("train", "--data", f"npy:{tmp_path / 'x.npy'}", "--hidden", "8,3", "--epochs", "1", "--threads", "1",
        "--out", model, "--quiet")
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep")
    r = subprocess.run([ae_binary(), "export", str(model), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode != 0 and "--force" in r.stderr
    assert out.read_bytes() == b"keep"


def test_the_python_estimator_exports_what_it_computes(tmp_path):
    from autoencoder import VAE, Autoencoder

    rng = np.random.default_rng(1)
    X = (rng.normal(size=(200, 3)) @ rng.normal(size=(3, 9)) + 5.0).astype(np.float32)
    est = Autoencoder(hidden=[8, 3], epochs=5, threads=1).fit(X)
    enc = ort.InferenceSession(est.to_onnx(tmp_path / "enc.onnx", part="encoder"))
    assert (tmp_path / "enc.onnx").read_bytes() == est.to_onnx(part="encoder")
    np.testing.assert_allclose(enc.run(None, {"input": X})[0], est.transform(X), rtol=1e-5, atol=1e-5)
    full = ort.InferenceSession(est.to_onnx())
    np.testing.assert_allclose(full.run(None, {"input": X})[0], est.predict(X), rtol=1e-5, atol=1e-4)
    dec = ort.InferenceSession(est.to_onnx(part="decoder"))
    Z = est.transform(X)
    np.testing.assert_allclose(dec.run(None, {"code": Z})[0], est.inverse_transform(Z), rtol=1e-5, atol=1e-4)
    vae = VAE(hidden=[8, 2], epochs=3, threads=1).fit(X)
    outs = ort.InferenceSession(vae.to_onnx(part="encoder")).run(None, {"input": X})
    np.testing.assert_allclose(outs[0], vae.transform(X), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="part"):
        est.to_onnx(part="middle")


def test_a_classifier_exports_to_logits_and_probabilities(tmp_path):
    import struct

    # Three classes of 6×6 images, each around its own pattern, as IDX files with labels.
    labels = np.repeat(np.arange(3), 80).astype(np.uint8)
    x = np.clip(images(n=240) * 0.3 + np.repeat(np.eye(3, 36), 80, axis=0).reshape(-1, 1, 6, 6) * 170, 0, 255)
    x = np.round(x).astype(np.uint8)
    (tmp_path / "img.idx").write_bytes(struct.pack(">IIII", 0x803, 240, 6, 6) + x.tobytes())
    (tmp_path / "lab.idx").write_bytes(struct.pack(">II", 0x801, 240) + labels.tobytes())
    spec = f"idx:{tmp_path / 'img.idx'},{tmp_path / 'lab.idx'}"
    model = tmp_path / "run"
    run("train", "--data", spec, "--hidden", "12,4", "--epochs", "3", "--threads", "1", "--out", model, "--quiet")
    clf = tmp_path / "clf"
    run("classify", model, "--head-hidden", "5", "--epochs", "20", "--out", clf, "--quiet")
    run("predict", clf, "--data", spec, "--out", tmp_path / "pred.csv")
    pred = np.loadtxt(tmp_path / "pred.csv", delimiter=",", skiprows=1)
    run("export", clf, "--with-scaling", "--out", tmp_path / "clf.onnx")
    sess = session(tmp_path / "clf.onnx")
    assert [o.name for o in sess.get_outputs()] == ["logits", "probabilities"]
    logits, probs = sess.run(None, {"input": x.astype(np.float32)})
    np.testing.assert_array_equal(probs.argmax(1), pred[:, 1])
    np.testing.assert_allclose(probs.max(1), pred[:, 2], atol=2e-6)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    r = subprocess.run([ae_binary(), "export", str(clf), "--part", "encoder", "--out", str(tmp_path / "e.onnx")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "classifier" in r.stderr, r.stderr


def test_a_run_on_incomplete_rows_reads_nan_as_missing_in_onnx_and_pytorch(tmp_path):
    """A `--missing allow` run's missing-cell indicators are part of the exported graph and module:
    given NaN where a cell is missing, both rebuild the values `ae impute` fills it with."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 3)) @ rng.normal(size=(3, 6)) * 4.0 + 10.0
    holes = rng.random(x.shape) < 0.15
    holes[holes.all(1), 0] = False
    x[holes] = np.nan
    src = tmp_path / "t.csv"
    np.savetxt(src, x, delimiter=",", header=",".join(f"f{j}" for j in range(6)), comments="", fmt="%.6g")
    x = np.loadtxt(src, delimiter=",", skiprows=1).astype(np.float32)
    model = tmp_path / "run"
    run("train", "--data", f"csv:{src}", "--missing", "allow", "--hidden", "16,4", "--epochs", "30",
        "--threads", "1", "--out", model, "--quiet")
    run("impute", model, "--data", f"csv:{src}", "--out", tmp_path / "filled.csv")
    filled = np.loadtxt(tmp_path / "filled.csv", delimiter=",", skiprows=1)
    assert not np.isnan(filled).any()

    run("export", model, "--part", "autoencoder", "--with-scaling", "--out", tmp_path / "ae.onnx")
    rec = session(tmp_path / "ae.onnx").run(None, {"input": x})[0]
    assert not np.isnan(rec).any()
    np.testing.assert_allclose(rec[holes], filled[holes], rtol=1e-4, atol=1e-4)

    torch = pytest.importorskip("torch", reason="PyTorch is not installed: its export is not checked")
    import importlib.util
    run("export", model, "--format", "pytorch", "--with-scaling", "--out", tmp_path / "net.py")
    spec = importlib.util.spec_from_file_location("net", tmp_path / "net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with torch.no_grad():
        out = mod.load().eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out[holes], filled[holes], rtol=1e-4, atol=1e-4)
