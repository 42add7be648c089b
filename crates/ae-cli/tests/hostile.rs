//! The regression corpus of hostile files: each is made here, given to the real `ae`, and must get
//! a clear error naming the file and the reason, a non-zero exit, and no panic.
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{fails, npy_bytes, npy_f32, ok};

fn idx(code: u8, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, code, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(payload);
    b
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// (file name, contents, spec prefix, what the error must say besides the file name).
fn corpus() -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    vec![
        (
            "truncated.idx",
            idx(0x08, &[2, 4, 4], &[7; 20]),
            "idx",
            "claims 32 bytes",
        ),
        (
            "magic.idx",
            vec![0x12, 0x34, 8, 3, 0, 0, 0, 1],
            "idx",
            "magic",
        ),
        (
            "overflow.idx",
            idx(0x08, &[u32::MAX, u32::MAX, u32::MAX], &[]),
            "idx",
            "address space",
        ),
        (
            "claims-4gb.idx",
            idx(0x08, &[1 << 16, 1 << 8, 1 << 8], &[0; 88]),
            "idx",
            "claims 4294967296 bytes",
        ),
        (
            "claims-4gb.idx.gz",
            gz(&idx(0x08, &[1 << 16, 1 << 8, 1 << 8], &[0; 88])),
            "idx",
            "fewer",
        ),
        (
            "nan.idx",
            idx(0x0D, &[1, 2], &[0x7f, 0xc0, 0, 0, 0x3f, 0x80, 0, 0]),
            "idx",
            "NaN",
        ),
        (
            "ragged.csv",
            b"1,2,3\n4,5,6\n7,8\n".to_vec(),
            "csv",
            "line 3",
        ),
        (
            "text.csv",
            b"a,b\n1,2\n3,oops\n".to_vec(),
            "csv",
            "`oops` is not a number",
        ),
        ("nan.csv", b"1,2\n3,NaN\n".to_vec(), "csv", "missing value"),
        ("inf.csv", b"1,2\n3,inf\n".to_vec(), "csv", "not finite"),
        ("latin1.csv", b"1,2\n3,\xe9\n".to_vec(), "csv", "UTF-8"),
        ("empty.csv", Vec::new(), "csv", "no data rows"),
        (
            "lying.npy",
            npy_bytes("<f4", "(100000, 10000)", &[0; 16]),
            "npy",
            "needs 4000000000 bytes",
        ),
        (
            "nan.npy",
            npy_bytes("<f4", "(1, 2)", &f32s(&[1.0, f32::NAN])),
            "npy",
            "NaN",
        ),
        (
            "inf.npy",
            npy_bytes("<f4", "(1, 2)", &f32s(&[f32::INFINITY, 1.0])),
            "npy",
            "inf",
        ),
        (
            "complex.npy",
            npy_bytes("<c8", "(1, 1)", &[0; 8]),
            "npy",
            "dtype <c8 is not supported",
        ),
        (
            "garbage.npy",
            b"this is not an array".to_vec(),
            "npy",
            "magic",
        ),
    ]
}

#[test]
fn every_hostile_data_file_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, kind, reason) in corpus() {
        let p = dir.path().join(name);
        std::fs::write(&p, &bytes).unwrap();
        let spec = format!("{kind}:{}", p.display());
        let err = fails(&[
            "train",
            "--data",
            &spec,
            "--epochs",
            "1",
            "--quiet",
            "--out",
            dir.path().join("run").to_str().unwrap(),
        ]);
        assert!(
            err.contains(name) && err.contains(reason),
            "{name}: expected `{reason}` in:\n{err}"
        );
    }
    assert!(
        !dir.path().join("run/model.safetensors").exists(),
        "a run was written from bad data"
    );
}

fn trained(dir: &Path) -> PathBuf {
    let data = dir.join("x.npy");
    npy_f32(&data, 60, 10);
    let run = dir.join("run");
    ok(&[
        "train",
        "--data",
        &format!("npy:{}", data.display()),
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ]);
    run
}

/// Damaged run folders: every command that reads one refuses it with the file and the reason.
#[test]
fn damaged_run_folders_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained(dir.path());
    let r = run.to_str().unwrap();
    let weights = std::fs::read(run.join("model.safetensors")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "model.safetensors",
            weights[..weights.len() / 2].to_vec(),
            "not a valid safetensors",
        ),
        (
            "model.safetensors",
            b"\xff\xff\xff\xff\xff\xff\xff\x7f{}".to_vec(),
            "not a valid safetensors",
        ),
        (
            "meta.json",
            b"{\"format_version\": 1".to_vec(),
            "EOF while parsing",
        ),
        (
            "meta.json",
            br#"{"format_version": 99}"#.to_vec(),
            "format version 99 is not supported",
        ),
        (
            "config.toml",
            b"hidden = \"many\"\n".to_vec(),
            "expected a sequence",
        ),
    ];
    for (file, bytes, reason) in cases {
        let original = std::fs::read(run.join(file)).unwrap();
        std::fs::write(run.join(file), &bytes).unwrap();
        let err = fails(&["eval", r, "--json"]);
        assert!(
            err.contains(file) && err.contains(reason),
            "{file}: expected `{reason}` in:\n{err}"
        );
        std::fs::write(run.join(file), original).unwrap();
    }
    ok(&["eval", r, "--json"]);
}

/// Weights with a tensor too many or too few (made with PyTorch's naming, as a user's edited file).
#[test]
fn weights_with_extra_or_missing_tensors_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained(dir.path());
    let path = run.join("model.safetensors");
    let original = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&original).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    tensors.sort();
    let write = |ts: &[(String, Vec<usize>, Vec<u8>)]| {
        let views: Vec<(String, safetensors::tensor::TensorView)> = ts
            .iter()
            .map(|(n, s, d)| {
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                        .unwrap(),
                )
            })
            .collect();
        std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
    };
    let mut extra = tensors.clone();
    extra.push(("decoder.9.weight".into(), vec![1], vec![0; 4]));
    write(&extra);
    let err = fails(&["eval", run.to_str().unwrap()]);
    assert!(
        err.contains("model.safetensors") && err.contains("unexpected tensor `decoder.9.weight`"),
        "{err}"
    );
    let missing: Vec<_> = tensors
        .iter()
        .filter(|(n, _, _)| n != "encoder.0.bias")
        .cloned()
        .collect();
    write(&missing);
    let err = fails(&["eval", run.to_str().unwrap()]);
    assert!(
        err.contains("model.safetensors") && err.contains("missing tensor `encoder.0.bias`"),
        "{err}"
    );
}

/// `--force` with data that cannot be read must not cost the previous run.
#[test]
fn a_failed_start_keeps_the_previous_run_even_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained(dir.path());
    let before = std::fs::read(run.join("model.safetensors")).unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "1,2\n3\n").unwrap();
    let err = fails(&[
        "train",
        "--data",
        &format!("csv:{}", bad.display()),
        "--force",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(err.contains("bad.csv"), "{err}");
    assert_eq!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        before
    );
    assert!(run.join("metrics.jsonl").exists() && run.join("config.toml").exists());
}
