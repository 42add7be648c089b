"""`Autoencoder.fit_stream`: training on files read as it goes, as `ae train --stream` does."""
import numpy as np
import pytest

from autoencoder import Autoencoder


def shards(tmp_path, n=180, d=10, parts=3):
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(n, 3)) @ rng.normal(size=(3, d))).astype(np.float32)
    folder = tmp_path / "shards"
    folder.mkdir()
    for k, part in enumerate(np.array_split(x, parts)):
        np.save(folder / f"part-{k}.npy", part)
    return x, folder


def test_streamed_fit_equals_fit_on_the_whole_array(tmp_path):
    x, folder = shards(tmp_path)
    kw = dict(hidden=[6, 2], epochs=3, batch_size=16, threads=1, val_fraction=0.0)
    # Every row in one window and nothing held out: the same weights as in memory.
    streamed = Autoencoder(**kw).fit_stream(f"npy:{folder}", shuffle_buffer=1000)
    whole = Autoencoder(**kw).fit(x)
    assert streamed.n_components_ == 2 and streamed.n_features_in_ == 10
    np.testing.assert_array_equal(streamed.transform(x), whole.transform(x))
    # The default window: it trains, and what it learned is close to the in-memory run's quality.
    small = Autoencoder(hidden=[6, 2], epochs=20, batch_size=16, threads=1).fit_stream(f"npy:{folder}")
    assert small.score(x) > Autoencoder(hidden=[6, 2], epochs=1, batch_size=16, threads=1).fit(x).score(x)


def test_a_parquet_table_streams_and_bad_specs_are_value_errors(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    x, _ = shards(tmp_path)
    df = pd.DataFrame(x, columns=[f"f{j}" for j in range(x.shape[1])])
    df["id"] = [f"r{i}" for i in range(len(df))]
    df.to_parquet(tmp_path / "t.parquet", row_group_size=50)
    est = Autoencoder(hidden=[6, 2], epochs=2, threads=1, ignore_columns=["id"])
    est.fit_stream(f"parquet:{tmp_path / 't.parquet'}")
    assert est.transform(x).shape == (len(x), 2)
    with pytest.raises(ValueError, match="id"):
        Autoencoder(hidden=[6, 2], epochs=1, threads=1).fit_stream(f"parquet:{tmp_path / 't.parquet'}")
    with pytest.raises((ValueError, OSError), match="nowhere"):
        Autoencoder(epochs=1).fit_stream(f"npy:{tmp_path / 'nowhere'}")
    with pytest.raises(ValueError, match="stream"):
        Autoencoder(epochs=1).fit_stream("csv:whatever.csv")


def test_the_detector_does_not_stream_and_says_what_to_do(tmp_path):
    from autoencoder import AutoencoderDetector

    _, folder = shards(tmp_path)
    with pytest.raises(NotImplementedError, match="ae anomaly RUN --stream"):
        AutoencoderDetector().fit_stream(f"npy:{folder}")
