"""Parquet tables as pandas and pyarrow write them, through the `ae` binary: read like the same
numbers from a .npy file (whole and streamed), nulls as missing cells, codes written back as
Parquet with the input's row index."""
import subprocess

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _cli import ae_binary


def run(*args, ok=True):
    p = subprocess.run([ae_binary(), *map(str, args)], capture_output=True, text=True)
    if ok:
        assert p.returncode == 0, p.stderr
    else:
        assert p.returncode != 0 and "panicked" not in p.stderr, p.stderr
    return p


@pytest.fixture
def table(tmp_path):
    """300 rows: 6 float columns near a 2-D plane, an int column, a text id and a label; written
    by pandas as Snappy-compressed Parquet in row groups of 64, and the features as .npy."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 2))
    x = np.tanh(z @ rng.normal(size=(2, 6)) + 0.05 * rng.normal(size=(300, 6))).astype(np.float32)
    df = pd.DataFrame({f"f{j}": x[:, j] for j in range(6)})
    df["count"] = np.arange(300, dtype=np.int64) % 17
    df["id"] = [f"row-{i}" for i in range(300)]
    df["label"] = np.arange(300) % 3
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=64)
    feats = np.column_stack([x, df["count"].to_numpy(dtype=np.float32)]).astype(np.float32)
    np.save(tmp_path / "t.npy", feats)
    return tmp_path, path, df


def test_a_pandas_table_trains_and_encodes_like_the_same_numbers_in_npy(table):
    tmp, path, _ = table
    common = ["--hidden", "8,2", "--epochs", "3", "--batch-size", "32", "--val-fraction", "0",
              "--threads", "1", "--quiet"]
    spec = f"parquet:{path}"
    table_opts = ["--label-column", "label", "--ignore-columns", "id"]
    run("train", "--data", spec, *table_opts, *common, "--out", tmp / "pq")
    run("train", "--data", f"npy:{tmp / 't.npy'}", *common, "--out", tmp / "np")
    run("train", "--data", spec, *table_opts, "--stream", "--shuffle-buffer", "1000", *common,
        "--out", tmp / "st")
    weights = [(tmp / r / "model.safetensors").read_bytes() for r in ["pq", "np", "st"]]
    assert weights[0] == weights[1] == weights[2]

    run("encode", tmp / "pq", "--out", tmp / "codes.parquet")
    run("encode", tmp / "np", "--out", tmp / "codes.npy")
    run("encode", tmp / "st", "--stream", "--out", tmp / "streamed.parquet")
    want = np.load(tmp / "codes.npy")
    for name in ["codes.parquet", "streamed.parquet"]:
        got = pq.read_table(tmp / name).to_pandas()
        assert list(got.columns) == ["index", "code_0", "code_1"]
        assert (got["index"].to_numpy() == np.arange(300)).all()
        np.testing.assert_array_equal(got[["code_0", "code_1"]].to_numpy(), want)

    # The label column gives labels to commands that need them.
    p = run("probe", tmp / "pq", "--json")
    assert '"softmax_accuracy"' in p.stdout and "3 classes" in p.stderr, p.stderr


def test_nulls_are_missing_cells_and_text_columns_are_named(table):
    tmp, _, df = table
    df = df.copy()
    df.loc[[5, 70, 200], "f1"] = None
    path = tmp / "nulls.parquet"
    df.to_parquet(path, index=False, row_group_size=50)
    spec = f"parquet:{path}"
    p = run("train", "--data", spec, "--label-column", "label", "--out", tmp / "a", ok=False)
    assert "`id`" in p.stderr and "--ignore-columns id" in p.stderr
    base = ["--label-column", "label", "--ignore-columns", "id", "--hidden", "8,2", "--quiet",
            "--threads", "1"]
    p = run("train", "--data", spec, *base, "--epochs", "1", "--out", tmp / "b", ok=False)
    assert "missing" in p.stderr, p.stderr
    run("train", "--data", spec, *base, "--missing", "allow", "--epochs", "2", "--out", tmp / "c")
    p = run("train", "--data", spec, *base, "--stream", "--epochs", "1", "--out", tmp / "d",
            ok=False)
    assert "nulls.parquet" in p.stderr, p.stderr
