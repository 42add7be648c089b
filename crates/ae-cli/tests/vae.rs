//! `ae train --model vae`: variational autoencoders through the same loop and run folder.
mod common;

use common::{fails, idx_labeled, metrics, ok};

#[test]
fn dense_and_conv_vaes_train_and_log_their_terms() {
    let dir = tempfile::tempdir().unwrap();
    let spec = idx_labeled(dir.path(), 120);
    let run = dir.path().join("vae");
    let r = run.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        &spec,
        "--model",
        "vae",
        "--hidden",
        "16,3",
        "--loss",
        "bce",
        "--epochs",
        "4",
        "--kl-warmup",
        "2",
        "--batch-size",
        "16",
        "--out",
        r,
        "--threads",
        "1",
        "--quiet",
    ]);
    let m = metrics(&run);
    assert_eq!(m.len(), 4);
    for e in &m {
        let (rec, kl, loss) = (
            e["reconstruction"].as_f64().unwrap(),
            e["kl"].as_f64().unwrap(),
            e["loss"].as_f64().unwrap(),
        );
        // The loss is the negative ELBO: the summed reconstruction term plus the KL, per example.
        assert!((loss - (rec + kl)).abs() < 1e-6 * loss.abs(), "{e}");
        assert!(kl >= 0.0 && rec > 0.0, "{e}");
        assert!(e["val_kl"].is_number(), "{e}");
    }
    // The code is the mean: three latent units.
    let codes = dir.path().join("codes.csv");
    ok(&[
        "encode",
        r,
        "--data",
        &spec,
        "--out",
        codes.to_str().unwrap(),
    ]);
    let first = std::fs::read_to_string(&codes).unwrap();
    let width = first.lines().nth(1).unwrap().split(',').count();
    assert_eq!(width, 3, "{first}");
    // A conv VAE needs a dense latent code.
    let conv = dir.path().join("cvae");
    let c = conv.to_str().unwrap();
    let err = fails(&[
        "train",
        "--data",
        &spec,
        "--model",
        "vae",
        "--arch",
        "conv",
        "--channels",
        "4",
        "--out",
        c,
    ]);
    assert!(err.contains("--code"), "{err}");
    ok(&[
        "train",
        "--data",
        &spec,
        "--model",
        "vae",
        "--arch",
        "conv",
        "--channels",
        "4",
        "--code",
        "2",
        "--epochs",
        "1",
        "--out",
        c,
        "--threads",
        "1",
        "--quiet",
    ]);
    assert!(metrics(&conv)[0]["kl"].is_number());
    // Options that do not fit a VAE are refused by name.
    for (flag, value, needle) in [
        ("--tied", None, "tie"),
        ("--sparsity", Some("l1:0.1"), "--sparsity"),
        ("--beta=-1", None, "beta"),
    ] {
        let mut args = vec![
            "train", "--data", &spec, "--model", "vae", "--out", c, "--force", flag,
        ];
        args.extend(value);
        let err = fails(&args);
        assert!(err.contains(needle), "{flag}: {err}");
    }
}
