"""Autoencoders as scikit-learn and PyOD estimators, on the `ae` engine (Rust).

    >>> from autoencoder import Autoencoder
    >>> ae = Autoencoder(hidden=[16, 4], epochs=30).fit(X)      # doctest: +SKIP
    >>> codes = ae.transform(X); rebuilt = ae.inverse_transform(codes)   # doctest: +SKIP

Every setting of ``ae train`` is a keyword argument of the same name, with underscores
(``batch_size=128``, ``noise="mask:0.3"``, ``preset="stacked-denoising"``); values are written as
on the command line. ``None`` leaves a setting at the preset's value, or the library's default.
"""
import inspect
import json
import os
import tempfile
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from . import _core

__all__ = ["Autoencoder", "AutoencoderDetector", "VAE"]

# Every setting of `ae train`, as Python names; the library's defaults apply where None.
_SETTINGS = [
    "arch", "model", "hidden", "channels", "kernel", "decoder", "code", "activation",
    "code_activation", "output_activation", "tied", "linear", "init", "loss", "optimizer", "lr", "lr_schedule",
    "momentum", "batch_size", "epochs", "threads", "weight_decay", "sparsity", "noise",
    "contractive", "pretrain", "val_fraction", "early_stopping", "scaling", "beta", "kl_warmup",
    "free_bits", "binarize", "learned_variance", "missing", "missing_hide", "missing_indicator",
    "columns", "ignore_columns",
]
_FILES = ("config.toml", "meta.json", "model.safetensors")


def _make_init(params):
    """An ``__init__`` that stores each keyword argument untouched, with an explicit signature
    (scikit-learn's ``get_params`` reads it)."""

    def __init__(self, **kwargs):
        for name, default in params:
            setattr(self, name, kwargs.pop(name, default))
        if kwargs:
            raise TypeError(f"unexpected keyword argument {next(iter(kwargs))!r}")

    kind = inspect.Parameter.KEYWORD_ONLY
    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(n, kind, default=d) for n, d in params]
    )
    return __init__


def _plain(value):
    """A setting's value as JSON: NumPy scalars and tuples become Python numbers and lists."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class Autoencoder(TransformerMixin, BaseEstimator):
    """An autoencoder as a scikit-learn transformer.

    ``fit(X)`` trains it; ``transform`` gives the codes, ``inverse_transform`` decodes codes,
    ``predict`` gives reconstructions, ``score_samples`` minus each example's reconstruction
    error (higher is more normal), ``score`` their mean. ``X`` is (N, D) rows, or images
    (N, H, W) / (N, C, H, W) for ``arch="conv"``; float32, float64 or uint8 (scaled ÷255 by
    default).

    Parameters are the settings of ``ae train`` (see ``ae train --help``), plus ``preset``
    (a named flavor: vanilla, deep, sparse-l1, sparse-kl, denoising, contractive, stacked,
    stacked-denoising, conv, conv-denoising), ``device`` (``"cpu"``, the default; ``"cuda"``,
    ``"cuda:N"`` or ``"auto"``, as ``ae train --device``: where ``fit`` trains and where
    ``transform``, ``predict``, ``inverse_transform`` and the scores compute; ``"auto"`` stays
    on the CPU where no GPU computes the model), ``precision`` (``"fp32"``, the
    default, or ``"tf32"``: a GPU's matrix products on tensor cores, as ``ae train
    --precision``), ``random_state`` (the seed; None means
    0, so fits repeat) and ``verbose`` (print each epoch).
    """

    _extra = [("preset", None), ("device", None), ("precision", None)]
    __init__ = _make_init(_extra + [(n, None) for n in _SETTINGS] + [("random_state", None), ("verbose", False)])

    # ----- fitting -----------------------------------------------------------------------------
    def _settings(self):
        s = {}
        for name in _SETTINGS:
            value = getattr(self, name)
            if value is not None:
                s[name.replace("_", "-")] = _plain(value)
        if self.random_state is not None:
            seed = self.random_state
            if isinstance(seed, np.random.RandomState):
                seed = int(seed.randint(0, 2**31 - 1))
            s["seed"] = int(seed)
        return s

    def _check(self, X, reset):
        from sklearn.utils.validation import validate_data

        X = validate_data(
            self,
            X,
            reset=reset,
            allow_nd=True,
            dtype=[np.float32, np.float64, np.uint8],
            # With missing="allow", NaN cells are missing values the model learns around.
            ensure_all_finite="allow-nan" if getattr(self, "missing", None) == "allow" else True,
            ensure_min_samples=1,
        )
        source = {"uint8": "u8", "float64": "f64"}.get(X.dtype.name, "f32")
        return np.asarray(X, dtype=np.float32), source, X.dtype

    def fit(self, X, y=None):
        """Trains on ``X``; ``y`` is ignored."""
        X32, source, _ = self._check(X, reset=True)
        self.model_ = _core.Model.fit(
            X32, json.dumps(self._settings()), source, self.preset, bool(self.verbose), self.device,
            self.precision,
        )
        self.input_shape_ = tuple(self.model_.input_shape())
        self.n_components_ = self.model_.code_size()
        for text in self.model_.warnings():
            warnings.warn(text, RuntimeWarning, stacklevel=2)
        return self

    def fit_stream(self, data, shuffle_buffer=None):
        """Trains on data read from its files as training goes, so memory stays constant in the
        data's size (as ``ae train --stream``): ``data`` is a spec such as ``"npy:shards/"`` (a
        folder of ``.npy`` shards), ``"npy:big.npy"``, ``"parquet:table/"``, ``"images:photos/"``
        or ``"idx:FILE"``. Rows are shuffled within windows of ``shuffle_buffer`` rows (default:
        96 MB of them), filled from blocks taken in a new random order each epoch; validation rows
        are chosen by a seeded hash of each row's index. Returns the estimator, fitted as ``fit``
        leaves it.
        """
        settings = self._settings()
        if shuffle_buffer is not None:
            settings["shuffle-buffer"] = int(shuffle_buffer)
        self._adopt(
            _core.Model.fit_stream(
                os.fspath(data), json.dumps(settings), self.preset, bool(self.verbose), self.device,
                self.precision,
            )
        )
        for text in self.model_.warnings():
            warnings.warn(text, RuntimeWarning, stacklevel=2)
        return self

    # ----- using it ----------------------------------------------------------------------------
    def _out(self, values, dtype):
        return values.astype(dtype if dtype in (np.float32, np.float64) else np.float32, copy=False)

    def transform(self, X):
        """The codes of ``X``, (N, code)."""
        check_is_fitted(self)
        X32, _, dtype = self._check(X, reset=False)
        return self._out(self.model_.transform(X32, self.device), dtype)

    def inverse_transform(self, X):
        """Decodes codes (N, code) into examples in the data's units, (N, features)."""
        check_is_fitted(self)
        Z = np.asarray(X, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self.n_components_:
            raise ValueError(f"codes must have shape (N, {self.n_components_}), got {Z.shape}")
        return self._out(self.model_.decode(Z, self.device), np.asarray(X).dtype)

    def predict(self, X):
        """Reconstructions of ``X`` in the data's units, shaped as ``X``."""
        check_is_fitted(self)
        X32, _, dtype = self._check(X, reset=False)
        return self._out(self.model_.reconstruct(X32, self.device), dtype).reshape(X32.shape)

    def reconstruction_error(self, X):
        """Each example's mean squared reconstruction error, in the model's (scaled) units."""
        check_is_fitted(self)
        X32, _, _ = self._check(X, reset=False)
        return self.model_.scores(X32, self.device).astype(np.float64)

    def score_samples(self, X):
        """Minus each example's reconstruction error: higher is more normal."""
        return -self.reconstruction_error(X)

    def score(self, X, y=None):
        """The mean of ``score_samples``: minus the mean reconstruction error."""
        return float(np.mean(self.score_samples(X)))

    def to_onnx(self, path=None, part="autoencoder", with_scaling=True):
        """The model as an ONNX graph for ONNX Runtime (opset 13, any batch size).

        ``part`` is ``"encoder"`` (input ``input`` → output ``code``, or a VAE's ``mean`` and
        ``log_variance``), ``"decoder"`` (``code`` → ``reconstruction``) or ``"autoencoder"``
        (``input`` → ``reconstruction``). With ``with_scaling`` the graph takes and gives the
        data's own units, as ``transform`` and ``predict`` do. Returns the bytes, and writes
        them to ``path`` when one is given.
        """
        check_is_fitted(self)
        data = self.model_.onnx(part, bool(with_scaling))
        if path is not None:
            with open(os.fspath(path), "wb") as fh:
                fh.write(data)
        return data

    def to_pytorch(self, path, with_scaling=True):
        """Writes the model as a PyTorch module: ``path`` (a ``.py`` file defining it with
        ``torch.nn``) and its weights beside it (same name, ``.safetensors``), to go on training
        it with PyTorch. ``import`` the module and call its ``load()``; it has ``encode``,
        ``decode`` and ``forward``. With ``with_scaling`` it takes and gives the data's own units,
        as ``transform`` and ``predict`` do. Returns the weights' path.
        """
        check_is_fitted(self)
        path = os.fspath(path)
        stem, ext = os.path.splitext(path)
        if ext != ".py":
            raise ValueError(f"to_pytorch writes a Python module: path must end in .py, got {path!r}")
        source, weights = self.model_.pytorch(os.path.basename(stem), bool(with_scaling))
        with open(stem + ".safetensors", "wb") as fh:
            fh.write(weights)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(source)
        return stem + ".safetensors"

    # ----- files and pickles -------------------------------------------------------------------
    def save(self, path, force=False):
        """Writes a run folder that the ``ae`` commands read (``ae eval``, ``ae report``, ...)."""
        check_is_fitted(self)
        self.model_.save(os.fspath(path), force)

    @classmethod
    def load(cls, path, **params):
        """An estimator around the run folder at ``path`` (written by ``ae train`` or ``save``)."""
        est = cls(**params)
        est._adopt(_core.Model.load(os.fspath(path)))
        return est

    def _adopt(self, model):
        # What a fit on a DataFrame recorded does not describe a model trained on files.
        self.__dict__.pop("feature_names_in_", None)
        self.model_ = model
        self.input_shape_ = tuple(model.input_shape())
        self.n_components_ = model.code_size()
        self.n_features_in_ = int(np.prod(self.input_shape_))

    def __getstate__(self):
        state = self.__dict__.copy()
        model = state.pop("model_", None)
        if model is not None:
            # The weights travel as the run folder's own files: safetensors bytes and its text.
            with tempfile.TemporaryDirectory() as d:
                run = os.path.join(d, "run")
                model.save(run, False)
                state["_run_files"] = {f: open(os.path.join(run, f), "rb").read() for f in _FILES}
        return state

    def __setstate__(self, state):
        files = state.pop("_run_files", None)
        self.__dict__.update(state)
        if files is not None:
            with tempfile.TemporaryDirectory() as d:
                for name, data in files.items():
                    with open(os.path.join(d, name), "wb") as fh:
                        fh.write(data)
                self.model_ = _core.Model.load(d)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class VAE(Autoencoder):
    """A variational autoencoder (``model="vae"``): ``transform`` gives the posterior means;
    ``sample(n)`` decodes draws from the prior, ``log_likelihood(X)`` estimates log p(x) in nats
    by importance sampling."""

    __init__ = _make_init(
        [("preset", None), ("device", None), ("precision", None)]
        + [(n, "vae" if n == "model" else None) for n in _SETTINGS]
        + [("random_state", None), ("verbose", False)]
    )

    def sample(self, n, random_state=0):
        """``n`` new examples decoded from the prior, in the data's units, shaped as the input."""
        check_is_fitted(self)
        out = self.model_.sample(int(n), int(random_state), self.device)
        return out.reshape((int(n),) + self.input_shape_) if len(self.input_shape_) > 1 else out

    def log_likelihood(self, X, samples=1000, random_state=0):
        """The importance-weighted estimate of log p(x) per example, in nats."""
        check_is_fitted(self)
        X32, _, _ = self._check(X, reset=False)
        return self.model_.log_likelihood(X32, int(samples), int(random_state))


class AutoencoderDetector(Autoencoder):
    """Reconstruction error as an anomaly score, with PyOD's detector interface.

    After ``fit(X)``: ``decision_scores_`` (each training example's score, higher is more
    abnormal), ``threshold_`` (the ``1 - contamination`` quantile of them) and ``labels_`` (1 for
    the examples above it). ``decision_function``, ``predict`` (0/1), ``predict_proba`` and
    ``predict_confidence`` work on new data as in PyOD.
    """

    __init__ = _make_init(
        [("contamination", 0.1), ("preset", None), ("device", None), ("precision", None)]
        + [(n, None) for n in _SETTINGS]
        + [("random_state", None), ("verbose", False)]
    )

    def fit(self, X, y=None):
        """Trains on ``X`` (mostly normal examples) and sets the threshold on their scores."""
        if not (0.0 < float(self.contamination) <= 0.5):
            raise ValueError(f"contamination must be in (0, 0.5], got {self.contamination}")
        super().fit(X, y)
        self.decision_scores_ = self.reconstruction_error(X)
        self.threshold_ = float(np.percentile(self.decision_scores_, 100.0 * (1.0 - self.contamination)))
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def fit_stream(self, data, shuffle_buffer=None):
        """Not for the detector: its threshold needs every training score. Train an
        ``Autoencoder`` with ``fit_stream``, ``save`` it, and score files with
        ``ae anomaly RUN --stream``."""
        raise NotImplementedError(
            "AutoencoderDetector.fit_stream: the threshold needs every training score; use "
            "Autoencoder.fit_stream, save the run, and score with `ae anomaly RUN --stream`"
        )

    def decision_function(self, X):
        """Anomaly scores: each example's reconstruction error (higher is more abnormal)."""
        return self.reconstruction_error(X)

    def predict(self, X, return_confidence=False):
        """1 for examples scoring above the threshold, else 0."""
        labels = (self.decision_function(X) > self.threshold_).astype(int)
        if return_confidence:
            return labels, self.predict_confidence(X)
        return labels

    def predict_proba(self, X, method="linear"):
        """(N, 2) probabilities of normal and anomalous: the scores min-max scaled on the
        training scores (``linear``) or through the Gaussian error function (``unify``)."""
        check_is_fitted(self)
        train, test = self.decision_scores_, self.decision_function(X)
        if method == "linear":
            span = max(train.max() - train.min(), np.finfo(float).tiny)
            p = np.clip((test - train.min()) / span, 0.0, 1.0)
        elif method == "unify":
            from scipy.special import erf

            sd = max(train.std(), np.finfo(float).tiny)
            p = np.clip(erf((test - train.mean()) / (sd * np.sqrt(2))), 0.0, 1.0)
        else:
            raise ValueError(f"method must be 'linear' or 'unify', got {method!r}")
        return np.column_stack([1.0 - p, p])

    def predict_confidence(self, X):
        """How sure each 0/1 prediction is, in [0, 1] (ExCeeD, Perini et al. 2020, as PyOD)."""
        from scipy.stats import binom

        check_is_fitted(self)
        train, test = self.decision_scores_, self.decision_function(X)
        n = len(train)
        count = np.searchsorted(np.sort(train), test, side="right")
        posterior = (1.0 + count) / (2.0 + n)
        confidence = 1.0 - binom.cdf(n - int(n * self.contamination), n, posterior)
        labels = (test > self.threshold_).astype(int)
        return np.where(labels == 0, 1.0 - confidence, confidence)
