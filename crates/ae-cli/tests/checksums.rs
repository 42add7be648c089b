//! Bit-identical results across refactors: five small runs (dense, conv, stacked, VAE, and a dense
//! run with every penalty, SGD and early stopping) trained with fixed seeds and two threads, whose
//! weights and metrics are hashed and compared with checksums recorded before the library-first
//! change (`checksums.json`).
//!
//! Floating-point results depend on the CPU's vector width (faer and our kernels pick AVX-512,
//! AVX2 or SSE at run time), so checksums are recorded per CPU signature. On a CPU with no record
//! the test says so and compares nothing; record one, on code known to be good, with
//! `AE_RECORD_CHECKSUMS=1 cargo test --release -p ae-cli --test checksums`.
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{idx_labeled, metrics_without_times, npy_f32, ok};
use sha2::{Digest, Sha256};

const RECORD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/checksums.json");

/// The vector extensions that change floating-point results.
fn cpu_signature() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let mut s = String::from("x86_64");
        for (name, on) in [
            ("avx512f", std::is_x86_feature_detected!("avx512f")),
            ("avx2", std::is_x86_feature_detected!("avx2")),
            ("fma", std::is_x86_feature_detected!("fma")),
        ] {
            if on {
                s += "+";
                s += name;
            }
        }
        s
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

/// SHA-256 of the run's weights and of its metrics without wall-clock fields (and of the files
/// that only some runs write: greedy stages, validation scores, best weights).
fn run_hash(run: &Path) -> String {
    let mut h = Sha256::new();
    h.update(std::fs::read(run.join("model.safetensors")).unwrap());
    h.update(serde_json::to_string(&metrics_without_times(run)).unwrap());
    for f in ["best.safetensors", "val_scores.json"] {
        if let Ok(bytes) = std::fs::read(run.join(f)) {
            h.update(f);
            h.update(bytes);
        }
    }
    if let Ok(text) = std::fs::read_to_string(run.join("pretrain.jsonl")) {
        for line in text.lines() {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("seconds");
            o.remove("examples_per_second");
            h.update(v.to_string());
        }
    }
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    for k in [
        "epoch",
        "best_loss",
        "best_epoch",
        "finished",
        "parameters",
        "scaler",
    ] {
        h.update(meta[k].to_string());
    }
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

#[test]
fn fixed_seeds_give_the_recorded_weights_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("rows.npy");
    npy_f32(&npy, 240, 20);
    let table = format!("npy:{}", npy.display());
    let images = idx_labeled(dir.path(), 160);
    let base = [
        "--threads",
        "2",
        "--quiet",
        "--seed",
        "3",
        "--batch-size",
        "32",
    ];
    let runs: [(&str, &str, Vec<&str>); 5] = [
        ("dense", &table, vec!["--hidden", "12,4", "--epochs", "3"]),
        (
            "conv",
            &images,
            vec![
                "--arch",
                "conv",
                "--channels",
                "4,4",
                "--code",
                "6",
                "--epochs",
                "2",
            ],
        ),
        (
            "stacked",
            &table,
            vec![
                "--preset",
                "stacked-denoising",
                "--hidden",
                "16,8,3",
                "--pretrain",
                "greedy:2",
                "--epochs",
                "2",
            ],
        ),
        (
            "vae",
            &images,
            vec![
                "--model",
                "vae",
                "--hidden",
                "16,3",
                "--loss",
                "bce",
                "--kl-warmup",
                "2",
                "--epochs",
                "3",
            ],
        ),
        (
            "penalties",
            &table,
            vec![
                "--hidden",
                "10",
                "--activation",
                "sigmoid",
                "--sparsity",
                "kl:0.1:0.5",
                "--code-activation",
                "sigmoid",
                "--noise",
                "gaussian:0.1",
                "--weight-decay",
                "l2:1e-3",
                "--optimizer",
                "sgd",
                "--lr",
                "0.5",
                "--early-stopping",
                "1",
                "--epochs",
                "6",
            ],
        ),
    ];
    let mut got = BTreeMap::new();
    for (name, data, extra) in &runs {
        let run = dir.path().join(name);
        let mut args = vec!["train", "--data", data, "--out", run.to_str().unwrap()];
        args.extend(base);
        args.extend(extra.iter().copied());
        ok(&args);
        got.insert(name.to_string(), run_hash(&run));
    }
    let sig = cpu_signature();
    let mut record: BTreeMap<String, BTreeMap<String, String>> = std::fs::read_to_string(RECORD)
        .ok()
        .map(|t| serde_json::from_str(&t).expect("checksums.json is valid"))
        .unwrap_or_default();
    if std::env::var_os("AE_RECORD_CHECKSUMS").is_some() {
        record.insert(sig.clone(), got);
        let text = serde_json::to_string_pretty(&record).unwrap() + "\n";
        std::fs::write(RECORD, text).unwrap();
        eprintln!("recorded checksums for {sig} in {RECORD}");
        return;
    }
    match record.get(&sig) {
        Some(want) => assert_eq!(
            &got, want,
            "weights or metrics changed for fixed seeds on {sig}: a change meant to keep results \
             bit-identical did not"
        ),
        None => eprintln!(
            "no checksums recorded for this CPU ({sig}; recorded: {:?}): compared nothing",
            record.keys().collect::<Vec<_>>()
        ),
    }
}
