"""The Python package against scikit-learn's and PyOD's contracts, and against the `ae` program."""
import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _cli import ae_binary
from autoencoder import VAE, Autoencoder, AutoencoderDetector


def table(n=240, d=10, seed=0):
    """Rows near a 3-dimensional subspace."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    w = rng.normal(size=(3, d))
    return (z @ w + 0.05 * rng.normal(size=(n, d))).astype(np.float64)


SMALL = dict(hidden=[8, 3], code_activation="linear", epochs=40, lr=5e-3, batch_size=32, threads=1)


def test_transformer_shapes_dtypes_and_fitted_attributes():
    X = table()
    ae = Autoencoder(**SMALL)
    with pytest.raises(NotFittedError):
        ae.transform(X)
    assert ae.fit(X) is ae
    assert ae.n_features_in_ == 10 and ae.n_components_ == 3
    Z = ae.transform(X)
    assert Z.shape == (240, 3) and Z.dtype == np.float64
    assert ae.transform(X.astype(np.float32)).dtype == np.float32
    assert ae.inverse_transform(Z).shape == (240, 10)
    R = ae.predict(X)
    assert R.shape == X.shape
    # Reconstructions are in the data's units: close to X, far from its scaled copy.
    assert np.mean((R - X) ** 2) < 0.5 * np.var(X)
    errors = ae.reconstruction_error(X)
    assert np.allclose(ae.score_samples(X), -errors)
    assert ae.score(X) == pytest.approx(-errors.mean())
    with pytest.raises(ValueError, match="features"):
        ae.transform(X[:, :5])


def test_training_lowers_the_error_and_the_seed_repeats_a_fit():
    X = table()
    short = Autoencoder(**{**SMALL, "epochs": 1}).fit(X)
    long = Autoencoder(**SMALL).fit(X)
    assert long.reconstruction_error(X).mean() < short.reconstruction_error(X).mean()
    again = Autoencoder(**SMALL).fit(X)
    assert np.array_equal(again.transform(X), long.transform(X))
    other = Autoencoder(**SMALL, random_state=3).fit(X)
    assert not np.array_equal(other.transform(X), long.transform(X))


def test_params_clone_pipeline_and_grid_search():
    ae = Autoencoder(hidden=[8, 2], noise="mask:0.2", preset="denoising")
    params = ae.get_params()
    assert params["hidden"] == [8, 2] and params["noise"] == "mask:0.2" and params["lr"] is None
    ae.set_params(lr=0.01)
    assert clone(ae).get_params()["lr"] == 0.01
    X = table()
    pipe = make_pipeline(StandardScaler(), Autoencoder(**SMALL)).fit(X)
    assert pipe.transform(X).shape == (240, 3)
    search = GridSearchCV(Autoencoder(**SMALL), {"hidden": [[8, 1], [8, 3]]}, cv=2).fit(X)
    # A 3-unit code rebuilds rows near a 3-dimensional subspace better than a 1-unit one.
    assert search.best_params_["hidden"] == [8, 3]


def test_pickle_keeps_the_weights_and_save_load_round_trips(tmp_path):
    X = table()
    ae = Autoencoder(**SMALL).fit(X)
    back = pickle.loads(pickle.dumps(ae))
    assert np.array_equal(back.transform(X), ae.transform(X))
    assert back.get_params() == ae.get_params()
    ae.save(tmp_path / "run")
    with pytest.raises(ValueError, match="already holds a run"):
        ae.save(tmp_path / "run")
    loaded = Autoencoder.load(tmp_path / "run")
    assert np.array_equal(loaded.transform(X), ae.transform(X))


def test_dataframe_feature_names():
    pd = pytest.importorskip("pandas")
    X = table()
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(10)])
    ae = Autoencoder(**SMALL).fit(df)
    assert list(ae.feature_names_in_) == list(df.columns)


def test_bad_input_and_settings_are_value_errors_naming_the_problem():
    X = table()
    with pytest.raises(ValueError, match="lr"):
        Autoencoder(lr=-1.0).fit(X)
    with pytest.raises(ValueError, match="hiden|unknown"):
        Autoencoder(activation="nope").fit(X)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError):
        Autoencoder(**SMALL).fit(bad)
    with pytest.raises(ValueError, match="preset"):
        Autoencoder(preset="nope").fit(X)


def test_images_train_a_conv_model_and_uint8_is_scaled_by_255():
    rng = np.random.default_rng(1)
    imgs = (rng.random((64, 8, 8)) * 255).astype(np.uint8)
    ae = Autoencoder(arch="conv", channels=[4], code=5, epochs=2, batch_size=16).fit(imgs)
    assert ae.input_shape_ == (1, 8, 8)
    assert ae.transform(imgs).shape == (64, 5)
    rebuilt = ae.predict(imgs)
    assert rebuilt.shape == imgs.shape and rebuilt.max() > 1.5  # 0–255 units, not 0–1


def test_vae_samples_and_likelihood():
    X = (table() > 0).astype(np.float64)  # binary rows
    vae = VAE(hidden=[16, 2], loss="bce", epochs=20, batch_size=32).fit(X)
    assert vae.get_params()["model"] == "vae"
    s = vae.sample(7)
    assert s.shape == (7, 10) and np.all((s >= 0) & (s <= 1))
    ll = vae.log_likelihood(X[:20], samples=64)
    noise = (np.random.default_rng(2).random((20, 10)) > 0.5).astype(np.float64)
    assert ll.shape == (20,) and np.all(np.isfinite(ll))
    assert ll.mean() > vae.log_likelihood(noise, samples=64).mean()
    with pytest.raises(ValueError, match="variational"):
        Autoencoder(**SMALL).fit(X).model_.log_likelihood(X.astype(np.float32), 8, 0)


def test_detector_contract_and_planted_outliers():
    X = table(n=300)
    outliers = np.zeros(300, dtype=bool)
    outliers[::30] = True
    X[outliers] += np.random.default_rng(3).normal(scale=4.0, size=(10, 10))
    det = AutoencoderDetector(contamination=0.05, **SMALL).fit(X)
    assert det.decision_scores_.shape == (300,)
    assert det.labels_.sum() == pytest.approx(15, abs=1)
    assert det.threshold_ == pytest.approx(np.percentile(det.decision_scores_, 95))
    scores = det.decision_function(X)
    assert np.array_equal(det.predict(X), (scores > det.threshold_).astype(int))
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(outliers, scores) > 0.95
    proba = det.predict_proba(X)
    assert proba.shape == (300, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert proba[outliers, 1].mean() > proba[~outliers, 1].mean()
    conf = det.predict_confidence(X)
    assert np.all((conf >= 0) & (conf <= 1))
    labels, conf2 = det.predict(X, return_confidence=True)
    assert np.array_equal(conf, conf2)
    with pytest.raises(ValueError, match="contamination"):
        AutoencoderDetector(contamination=0.9).fit(X)


def test_codes_and_scores_equal_the_cli_for_the_same_settings(tmp_path):
    ae = ae_binary()
    X = table().astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    run = tmp_path / "cli"
    subprocess.run(
        [ae, "train", "--data", f"npy:{tmp_path / 'x.npy'}", "--hidden", "8,3", "--code-activation", "linear", "--epochs", "40", "--lr", "5e-3",
         "--batch-size", "32", "--threads", "1", "--out", str(run), "--quiet"],
        check=True, capture_output=True,
    )
    subprocess.run(
        [ae, "encode", str(run), "--data", f"npy:{tmp_path / 'x.npy'}", "--out", str(tmp_path / "codes.npy")],
        check=True, capture_output=True,
    )
    ours = Autoencoder(**SMALL).fit(X)
    assert np.abs(np.load(tmp_path / "codes.npy") - ours.transform(X)).max() <= 1e-6
    # And the CLI reads what Python saves.
    ours.save(tmp_path / "py")
    out = subprocess.run([ae, "eval", str(tmp_path / "py"), "--data", f"npy:{tmp_path / 'x.npy'}", "--json"],
                         check=True, capture_output=True, text=True).stdout
    assert '"mse"' in out


def test_scikit_learn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    for est in (Autoencoder(hidden=[4, 2], epochs=3), AutoencoderDetector(hidden=[4, 2], epochs=3)):
        failures = check_estimator(est, on_fail=None)
        failed = [(r["check_name"], str(r["exception"])[:200]) for r in failures if r["status"] == "failed"]
        assert not failed, failed


def test_ctrl_c_stops_training_with_keyboard_interrupt():
    import signal
    import time

    code = (
        "import numpy as np, sys\n"
        "from autoencoder import Autoencoder\n"
        "X = np.random.default_rng(0).random((20000, 64))\n"
        "print('fitting', flush=True)\n"
        "try:\n"
        "    Autoencoder(hidden=[256, 64], epochs=1000, threads=1).fit(X)\n"
        "except KeyboardInterrupt as e:\n"
        "    print('interrupted:', e, flush=True)\n"
        "    sys.exit(3)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "fitting"
    time.sleep(1.5)
    started = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 3, out
    assert "training stopped at epoch" in out
    assert time.monotonic() - started < 30


def test_dead_code_units_warn_and_a_collapsed_fit_raises():
    X = table()
    # A ReLU code of 3 units trained hard: some seeds lose units (a warning that names them) or
    # all of them (an error).
    relu = dict(SMALL, code_activation="relu", lr=0.05, epochs=20)
    said = []
    for seed in range(4):
        with _record() as w:
            try:
                Autoencoder(**relu, random_state=seed).fit(X)
            except RuntimeError as e:  # every unit died: the fit stops
                said.append(str(e))
        said += [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
    assert any("0 for every example (dead, units" in s for s in said), said
    # The default linear code of the same network keeps every unit.
    with _record() as w:
        Autoencoder(**dict(relu, code_activation=None), random_state=0).fit(X)
    assert not [x for x in w if "dead" in str(x.message)]
    # A learning rate that kills every ReLU stops training with the reason.
    with pytest.raises(RuntimeError, match="collapsed at epoch"):
        Autoencoder(**dict(relu, lr=50.0), random_state=0).fit(X)


def _record():
    import warnings

    ctx = warnings.catch_warnings(record=True)
    return _Always(ctx)


class _Always:
    """`warnings.catch_warnings(record=True)` that records every warning, repeats included."""

    def __init__(self, ctx):
        self.ctx = ctx

    def __enter__(self):
        import warnings

        got = self.ctx.__enter__()
        warnings.simplefilter("always")
        return got

    def __exit__(self, *exc):
        return self.ctx.__exit__(*exc)


def test_missing_allow_learns_from_incomplete_rows():
    X = table(n=300)
    rng = np.random.default_rng(1)
    holes = rng.random(X.shape) < 0.15
    gappy = X.copy()
    gappy[holes] = np.nan
    with pytest.raises(ValueError):
        Autoencoder(**SMALL).fit(gappy)  # NaN refused by default
    ae = Autoencoder(**{**SMALL, "epochs": None}, missing="allow").fit(gappy)
    # Epochs left unset: raised to about 10,000 steps for incomplete rows.
    assert "epochs = " in ae.model_.settings_toml()
    epochs = int(ae.model_.settings_toml().split("epochs = ")[1].split()[0])
    assert epochs > 100, epochs
    # Complete rows reconstruct close to themselves.
    R = ae.predict(X)
    assert np.mean((R - X) ** 2) < 0.5 * np.var(X)


def test_device_is_a_parameter_a_missing_gpu_is_a_runtime_error_and_cpu_repeats_the_default():
    X = table(n=80, d=6)
    assert Autoencoder(device="auto").get_params()["device"] == "auto"
    default = Autoencoder(hidden=[4, 2], epochs=2, random_state=1).fit(X)
    on_cpu = Autoencoder(hidden=[4, 2], epochs=2, random_state=1, device="cpu").fit(X)
    np.testing.assert_array_equal(default.transform(X), on_cpu.transform(X))
    with pytest.raises(ValueError, match="cpu, cuda, cuda:N"):
        Autoencoder(hidden=[4, 2], epochs=1, device="tpu").fit(X)
    try:
        gpu = Autoencoder(hidden=[4, 2], epochs=2, random_state=1, device="cuda").fit(X)
    except RuntimeError as e:
        # No GPU here: the error says so and what to use instead.
        assert str(e).startswith("cuda:0:") and "--device cpu" in str(e), str(e)
    else:
        # A GPU: the same model, to fp32 rounding.
        np.testing.assert_allclose(gpu.transform(X), on_cpu.transform(X), rtol=1e-3, atol=1e-4)


def test_inference_follows_device_auto_stays_on_the_cpu_where_no_gpu_computes_the_model():
    X = table(n=80, d=6)
    est = Autoencoder(hidden=[4, 2], epochs=2, random_state=1).fit(X)
    codes, rec, scores = est.transform(X), est.predict(X), est.reconstruction_error(X)
    back = est.inverse_transform(codes)
    est.set_params(device="auto")
    gpu_here = True
    try:
        est.set_params(device="cuda").transform(X)
    except RuntimeError as e:
        gpu_here = False
        assert str(e).startswith("cuda:0:") and "--device cpu" in str(e), str(e)
    for device in ["auto"] + (["cuda"] if gpu_here else []):
        est.set_params(device=device)
        if gpu_here:
            # The GPU's passes: the CPU's to fp32 rounding.
            close = dict(rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(est.transform(X), codes, **close)
            np.testing.assert_allclose(est.predict(X), rec, **close)
            np.testing.assert_allclose(est.reconstruction_error(X), scores, **close)
            np.testing.assert_allclose(est.inverse_transform(codes), back, **close)
        else:
            # No GPU: auto computes on the CPU, the same numbers.
            np.testing.assert_array_equal(est.transform(X), codes)
            np.testing.assert_array_equal(est.predict(X), rec)
            np.testing.assert_array_equal(est.reconstruction_error(X), scores)
            np.testing.assert_array_equal(est.inverse_transform(codes), back)


def test_precision_is_a_parameter_tf32_on_the_cpu_is_fp32_and_bf16_is_refused():
    X = table(n=80, d=6)
    assert Autoencoder(precision="tf32").get_params()["precision"] == "tf32"
    fp32 = Autoencoder(hidden=[4, 2], epochs=2, random_state=1).fit(X)
    tf32 = Autoencoder(hidden=[4, 2], epochs=2, random_state=1, precision="tf32").fit(X)
    # The CPU computes in fp32 whatever the precision says.
    np.testing.assert_array_equal(fp32.transform(X), tf32.transform(X))
    with pytest.raises(ValueError, match="bf16 is not computed yet"):
        Autoencoder(hidden=[4, 2], epochs=1, precision="bf16").fit(X)
