"""Reading a Parquet table into memory: `ae`'s reader (crates/ae-data/examples/read_table.rs)
against pyarrow's `pq.read_table(...)` turned into one float32 NumPy array of rows, on the same
file in the same run. The table: 2,500,000 rows × 100 float32 columns (1.0 GB of values), written
by pyarrow with its defaults (Snappy, row groups of up to 1 Mi rows), deleted after.
    cargo build --release --example read_table -p ae-data && .venv/bin/python bench/parquet_read.py
Needs bench/setup-venv.sh's environment plus pyarrow."""
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS, COLS, REPEATS, FRESH = 2_500_000, 100, 3, 7

with tempfile.TemporaryDirectory(dir=os.path.join(ROOT, "target")) as tmp:
    path = os.path.join(tmp, "table.parquet")
    rng = np.random.default_rng(0)
    cols = {f"f{j}": rng.random(ROWS, dtype=np.float32) for j in range(COLS)}
    pq.write_table(pa.table(cols), path)
    del cols
    print(f"{ROWS} x {COLS} float32 = {ROWS * COLS * 4 / 1e9:.2f} GB of values, "
          f"{os.path.getsize(path) / 1e9:.2f} GB on disk, {os.cpu_count()} cores")

    def arrow():
        t = pq.read_table(path)
        return np.column_stack([c.to_numpy() for c in t.columns])

    best_py = min(
        (lambda t0: (arrow(), time.perf_counter() - t0)[1])(time.perf_counter())
        for _ in range(REPEATS)
    )
    best_table = min(
        (lambda t0: (pq.read_table(path), time.perf_counter() - t0)[1])(time.perf_counter())
        for _ in range(REPEATS)
    )
    best_pandas = min(
        (lambda t0: (pq.read_table(path).to_pandas().to_numpy(), time.perf_counter() - t0)[1])(
            time.perf_counter())
        for _ in range(REPEATS)
    )
    exe = os.path.join(ROOT, "target", "release", "examples", "read_table")
    out = subprocess.run([exe, f"parquet:{path}", str(REPEATS)], capture_output=True, text=True,
                         check=True).stdout
    best_ae = min(float(s) for s in re.findall(r"in ([0-9.]+) s", out))

    # What a user meets: one read in a fresh process (no memory kept from an earlier read; an
    # allocator that keeps freed pages makes a repeat cheaper than any first read). Interleaved.
    first_py = "import time, pyarrow.parquet as pq\nt = time.perf_counter()\n" \
        f"pq.read_table({path!r}).to_pandas().to_numpy()\nprint(time.perf_counter() - t)"
    fresh_ae, fresh_py = [], []
    for _ in range(FRESH):
        out = subprocess.run([exe, f"parquet:{path}", "1"], capture_output=True, text=True,
                             check=True).stdout
        fresh_ae.append(float(re.findall(r"in ([0-9.]+) s", out)[0]))
        out = subprocess.run([sys.executable, "-c", first_py], capture_output=True, text=True,
                             check=True).stdout
        fresh_py.append(float(out))
    med_ae, med_py = float(np.median(fresh_ae)), float(np.median(fresh_py))

    print(f"pyarrow read_table + column_stack: best of {REPEATS} {best_py:.3f} s")
    print(f"pyarrow read_table().to_pandas().to_numpy(): best of {REPEATS} {best_pandas:.3f} s")
    print(f"pyarrow read_table alone (Arrow columns, not NumPy rows): {best_table:.3f} s")
    print(f"ae parquet reader:                 best of {REPEATS} {best_ae:.3f} s")
    print(f"ae / pyarrow into NumPy: {best_ae / min(best_py, best_pandas):.3f} (target <= 1.0); "
          f"ae / read_table alone: {best_ae / best_table:.3f}")
    print(f"first read in a fresh process, median of {FRESH}: ae {med_ae:.3f} s, "
          f"pyarrow to_pandas().to_numpy() {med_py:.3f} s, ratio {med_ae / med_py:.3f}")
    sys.stdout.flush()
