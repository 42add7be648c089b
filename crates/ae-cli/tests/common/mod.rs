//! Helpers shared by the CLI test files: run the real `ae`, make small data.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `ae` with `args`.
pub fn ae(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ae"))
        .args(args)
        .output()
        .expect("ae runs")
}

/// Runs `ae`, asserting success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = ae(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ae {args:?} failed:\n{err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ae`, asserting a clean failure (non-zero, no panic); returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = ae(args);
    assert!(!out.status.success(), "ae {args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "ae {args:?} panicked:\n{err}");
    err
}

/// 200 rows of 12 features that live near a 3-dimensional subspace, with a header.
pub fn csv_data(dir: &Path) -> PathBuf {
    let p = dir.join("data.csv");
    let mut s = (0..12)
        .map(|j| format!("f{j}"))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for i in 0..200 {
        let z = [
            (i as f32 * 0.37).sin(),
            (i as f32 * 0.11).cos(),
            ((i * 7 % 13) as f32) / 13.0,
        ];
        let row: Vec<String> = (0..12)
            .map(|j| {
                format!(
                    "{:.5}",
                    z[j % 3] * (1.0 + j as f32 * 0.1) + 0.2 * z[(j + 1) % 3]
                )
            })
            .collect();
        s += &(row.join(",") + "\n");
    }
    std::fs::write(&p, s).unwrap();
    p
}

/// An `.npy` file's bytes: `descr` (e.g. `<f4`), `shape` as Python writes it (e.g. `(2, 3)`), then
/// the raw payload, as NumPy lays it out (version 1, header padded to 64 bytes).
pub fn npy_bytes(descr: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// A float32 `.npy` of `n` rows × `d` features in [0, 1].
pub fn npy_f32(path: &Path, n: usize, d: usize) {
    let mut payload = Vec::with_capacity(n * d * 4);
    for i in 0..n {
        for j in 0..d {
            let v = (1.0 + ((i * 7 + j * 3) as f32 * 0.05).sin() * ((j as f32) * 0.3).cos()) / 2.0;
            payload.extend_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::write(path, npy_bytes("<f4", &format!("({n}, {d})"), &payload)).unwrap();
}

/// The run's metrics, one JSON object per epoch.
pub fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Metrics without the wall-clock fields, for comparing runs.
pub fn metrics_without_times(run: &Path) -> Vec<serde_json::Value> {
    metrics(run)
        .into_iter()
        .map(|mut m| {
            let o = m.as_object_mut().unwrap();
            o.remove("seconds");
            o.remove("examples_per_second");
            m
        })
        .collect()
}

/// A `.npy` of u8 images (n, h, w): a bright bar whose position depends on the example.
pub fn npy_images(path: &Path, n: usize, h: usize, w: usize) {
    let mut payload = Vec::with_capacity(n * h * w);
    for i in 0..n {
        for y in 0..h {
            for x in 0..w {
                payload.push(if (x + i) % w < 3 || y == i % h {
                    230
                } else {
                    20
                });
            }
        }
    }
    std::fs::write(
        path,
        npy_bytes("|u1", &format!("({n}, {h}, {w})"), &payload),
    )
    .unwrap();
}

/// IDX images (u8, n × 8 × 8) and labels of three classes, returned as an `idx:` spec: class 0
/// draws a horizontal bar in the top half, class 1 one in the bottom half, class 2 a vertical bar,
/// at a position that varies with the example, over a little deterministic speckle. The classes
/// are linearly separable (top minus bottom brightness tells them apart).
pub fn idx_labeled(dir: &Path, n: usize) -> String {
    let (images, labels) = (dir.join("images.idx"), dir.join("labels.idx"));
    let mut img = vec![0, 0, 8, 3];
    for d in [n as u32, 8, 8] {
        img.extend_from_slice(&d.to_be_bytes());
    }
    let mut lab = vec![0, 0, 8, 1];
    lab.extend_from_slice(&(n as u32).to_be_bytes());
    for i in 0..n {
        let class = (i * 7 + i / 3) % 3;
        let p = (i / 3) % 8;
        for y in 0..8 {
            for x in 0..8 {
                let on = match class {
                    0 => y == p % 4,
                    1 => y == 4 + p % 4,
                    _ => x == p,
                };
                let speckle = ((i * 31 + y * 7 + x * 13) % 17) as u8 * 3;
                img.push(if on { 220 } else { 10 + speckle });
            }
        }
        lab.push(class as u8);
    }
    std::fs::write(&images, img).unwrap();
    std::fs::write(&labels, lab).unwrap();
    format!("idx:{},{}", images.display(), labels.display())
}

/// Records that a check did not run and why: on stderr, and in the file `$AE_SKIP_LOG` names
/// (`test.sh` counts it in its closing total), so a skip never passes unseen.
pub fn skip(test: &str, reason: &str) {
    eprintln!("skipping {test}: {reason}");
    if let Some(path) = std::env::var_os("AE_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{test}: {reason}");
        }
    }
}

/// The name and shape of every tensor in a safetensors file, sorted by name.
pub fn tensor_shapes(path: &Path) -> Vec<(String, Vec<usize>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(String, Vec<usize>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n.to_string(), t.shape().to_vec()))
        .collect();
    v.sort();
    v
}
