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
        "--force",
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
    // KL(q‖p) of a Gaussian posterior against N(0, I) is never negative, and zero only when the
    // encoder ignores its input: a sign or a term lost in it shows here.
    for m in metrics(&conv) {
        let kl = m["kl"].as_f64().unwrap();
        assert!(kl > 0.0 && kl.is_finite(), "{m}");
    }
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

#[test]
fn sample_interpolate_and_encode_with_variance() {
    let dir = tempfile::tempdir().unwrap();
    let spec = idx_labeled(dir.path(), 60);
    let run = dir.path().join("vae");
    let r = run.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        &spec,
        "--model",
        "vae",
        "--hidden",
        "8,2",
        "--loss",
        "bce",
        "--epochs",
        "2",
        "--out",
        r,
        "--threads",
        "1",
        "--quiet",
    ]);
    let png = dir.path().join("s.png");
    let p = png.to_str().unwrap();
    ok(&[
        "sample", r, "--n", "10", "--out", p, "--force", "--seed", "3",
    ]);
    let img = image::open(&png).unwrap().to_rgb8();
    // Ten 8×8 samples zoomed 4×, eight per row: two rows.
    assert_eq!((img.width(), img.height()), (8 * 34 + 2, 2 * 36 + 2));
    // The same seed draws the same samples; another seed, others.
    let again = dir.path().join("s2.png");
    ok(&[
        "sample",
        r,
        "--n",
        "10",
        "--out",
        again.to_str().unwrap(),
        "--force",
        "--seed",
        "3",
    ]);
    assert_eq!(std::fs::read(&png).unwrap(), std::fs::read(&again).unwrap());
    let csv = dir.path().join("s.csv");
    ok(&[
        "sample",
        r,
        "--n",
        "5",
        "--out",
        csv.to_str().unwrap(),
        "--force",
        "--seed",
        "4",
    ]);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 6);
    assert_eq!(text.lines().nth(1).unwrap().split(',').count(), 64);
    ok(&[
        "interpolate",
        r,
        "--data",
        &spec,
        "--from",
        "0",
        "--to",
        "5",
        "--steps",
        "4",
        "--out",
        p,
        "--force",
    ]);
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (6 * 34 + 2, 36 + 2));
    let err = fails(&[
        "interpolate",
        r,
        "--data",
        &spec,
        "--from",
        "0",
        "--to",
        "60",
        "--out",
        p,
        "--force",
    ]);
    assert!(err.contains("--to 60"), "{err}");
    let codes = dir.path().join("c.csv");
    ok(&[
        "encode",
        r,
        "--data",
        &spec,
        "--with-variance",
        "--out",
        codes.to_str().unwrap(),
        "--force",
    ]);
    let text = std::fs::read_to_string(&codes).unwrap();
    assert_eq!(text.lines().next().unwrap(), "mu_0,mu_1,logvar_0,logvar_1");
    // A plain autoencoder has no prior and no variance.
    let ae_run = dir.path().join("ae");
    let a = ae_run.to_str().unwrap();
    ok(&[
        "train", "--data", &spec, "--hidden", "4", "--epochs", "1", "--out", a, "--quiet",
    ]);
    let err = fails(&["sample", a, "--out", p, "--force"]);
    assert!(err.contains("not a VAE"), "{err}");
    let err = fails(&[
        "encode",
        a,
        "--data",
        &spec,
        "--with-variance",
        "--out",
        codes.to_str().unwrap(),
        "--force",
    ]);
    assert!(err.contains("--with-variance"), "{err}");
}

#[test]
fn binarized_training_and_likelihood_figures() {
    let dir = tempfile::tempdir().unwrap();
    let spec = idx_labeled(dir.path(), 80);
    let run = dir.path().join("vae");
    let r = run.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        &spec,
        "--model",
        "vae",
        "--hidden",
        "12,2",
        "--loss",
        "bce",
        "--binarize",
        "--epochs",
        "3",
        "--out",
        r,
        "--threads",
        "1",
        "--quiet",
    ]);
    let e: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        r,
        "--data",
        &spec,
        "--json",
        "--iw-samples",
        "200",
    ]))
    .unwrap();
    assert_eq!(e["binarized"], true, "{e}");
    let (elbo, nll) = (e["elbo"].as_f64().unwrap(), e["iw_nll"].as_f64().unwrap());
    let (rec, kl) = (
        e["reconstruction_nats"].as_f64().unwrap(),
        e["kl_nats"].as_f64().unwrap(),
    );
    assert!((elbo + rec + kl).abs() < 1e-9, "{e}");
    // The importance-weighted bound is at least as tight as the ELBO (up to sampling noise).
    assert!(nll > 0.0 && nll < -elbo + 0.5, "{e}");
    // Binarizing needs values in [0, 1].
    let err = fails(&[
        "train",
        "--data",
        &spec,
        "--model",
        "vae",
        "--binarize",
        "--scaling",
        "standardize",
        "--out",
        r,
        "--force",
    ]);
    assert!(err.contains("--binarize"), "{err}");
}

#[test]
fn a_gaussian_decoder_learns_its_variance_and_reloads_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = idx_labeled(dir.path(), 60);
    let run = dir.path().join("vae");
    let r = run.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        &spec,
        "--model",
        "vae",
        "--hidden",
        "8,2",
        "--loss",
        "mse",
        "--learned-variance",
        "--epochs",
        "3",
        "--lr",
        "0.01",
        "--out",
        r,
        "--threads",
        "1",
        "--quiet",
    ]);
    let w = ae_core::run::io::read_safetensors(&run.join("model.safetensors")).unwrap();
    let logvar = w.tensors["decoder_logvar"].data()[0];
    // Trained from 0 towards the (small) reconstruction error's log: it moved down.
    assert!(logvar < -0.01, "{logvar}");
    let e: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        r,
        "--data",
        &spec,
        "--json",
        "--iw-samples",
        "20",
    ]))
    .unwrap();
    // The importance-weighted estimate is no worse than the ELBO (up to Monte Carlo noise), and the
    // learned variance sits between 0 and the optimum log σ² = log(MSE), which 3 epochs don't pass.
    let (iw, elbo) = (e["iw_nll"].as_f64().unwrap(), e["elbo"].as_f64().unwrap());
    assert!(iw.is_finite() && iw <= -elbo + 0.5, "{e}");
    let optimum = e["mse"].as_f64().unwrap().ln();
    assert!(
        (optimum as f32) < logvar,
        "{logvar} overshot log(mse) {optimum}"
    );
    let err = fails(&[
        "train",
        "--data",
        &spec,
        "--learned-variance",
        "--out",
        r,
        "--force",
    ]);
    assert!(err.contains("learned-variance"), "{err}");
}
