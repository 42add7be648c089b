//! Reusing what a run learned: `ae probe`, `ae classify` / `ae predict` and `ae anomaly`, on small
//! labelled images the tests make themselves.
mod common;

use std::path::Path;

use common::{fails, idx_labeled, npy_images, ok};

/// Trains a small dense autoencoder on `spec` into `dir/name`.
fn train(dir: &Path, name: &str, spec: &str, extra: &[&str]) -> String {
    let run = dir.join(name);
    let r = run.to_str().unwrap().to_string();
    let mut args = vec![
        "train",
        "--data",
        spec,
        "--hidden",
        "16,6",
        "--epochs",
        "15",
        "--batch-size",
        "16",
        "--lr",
        "0.005",
        "--out",
        &r,
        "--threads",
        "1",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    ok(&args);
    r
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn probe_scores_codes_raw_inputs_and_pca_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let spec = idx_labeled(dir.path(), 300);
    let run = train(dir.path(), "ae", &spec, &[]);
    let rows = json(&ok(&["probe", &run, "--json", "--quiet"]));
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["features"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["raw inputs", "PCA-6", "autoencoder codes"]);
    assert_eq!(rows[0]["dim"], 64);
    assert_eq!(rows[2]["dim"], 6);
    for r in rows {
        for k in ["softmax_accuracy", "knn_accuracy"] {
            let a = r[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&a), "{r}");
        }
    }
    // Neighbours and a converged softmax regression on a 6-value code still find the class far
    // above chance (1/3).
    assert!(rows[1]["knn_accuracy"].as_f64().unwrap() > 0.9, "{rows:?}");
    assert!(rows[2]["knn_accuracy"].as_f64().unwrap() > 0.7, "{rows:?}");
    // Softmax regression is fitted to convergence: on raw pixels and PCA codes of these easy
    // classes it is near perfect. (On this run's ReLU codes it scores 0.27 while k-NN gets 0.88:
    // the codes are not linearly separable, a property of the representation, not the probe.)
    for r in rows {
        assert_eq!(r["softmax_converged"], true, "{r}");
    }
    assert!(
        rows[1]["softmax_accuracy"].as_f64().unwrap() > 0.95,
        "{rows:?}"
    );
    // Three easy classes: the raw pixels separate them, and chance would be a third.
    assert!(rows[0]["knn_accuracy"].as_f64().unwrap() > 0.9, "{rows:?}");
    assert!(
        rows[0]["softmax_accuracy"].as_f64().unwrap() > 0.9,
        "{rows:?}"
    );
    // The table names the k of k-NN.
    let table = ok(&["probe", &run, "--k", "3", "--quiet"]);
    assert!(
        table.contains("3-NN") && table.contains("autoencoder codes"),
        "{table}"
    );
    // Data without labels cannot be probed; the error says why.
    let npy = dir.path().join("img.npy");
    npy_images(&npy, 40, 8, 8);
    let err = fails(&["probe", &run, "--data", &format!("npy:{}", npy.display())]);
    assert!(err.contains("no labels"), "{err}");
}

#[test]
fn classify_saves_a_classifier_that_predict_applies() {
    let dir = tempfile::tempdir().unwrap();
    let spec = idx_labeled(dir.path(), 300);
    let run = train(dir.path(), "ae", &spec, &[]);
    let out = dir.path().join("clf");
    let o = out.to_str().unwrap();
    let t = json(&ok(&[
        "classify",
        &run,
        "--labels-per-class",
        "20",
        "--epochs",
        "60",
        "--lr",
        "0.01",
        "--out",
        o,
        "--json",
        "--quiet",
    ]));
    assert_eq!(t["mode"], "fine-tuned");
    assert_eq!(t["examples"], 60);
    let acc = t["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.6, "{t}");
    // `ae predict` labels every example of the data it is given (here the whole file, of which
    // classify held a fifth out for its test accuracy) and scores them against the labels.
    let csv = dir.path().join("labels.csv");
    let said = ok(&["predict", o, "--out", csv.to_str().unwrap(), "--force"]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "index,label,probability");
    assert_eq!(lines.len() - 1, 300);
    let truth: Vec<u32> = (0..300).map(|i| ((i * 7 + i / 3) % 3) as u32).collect();
    let mut right = 0;
    for (i, l) in lines[1..].iter().enumerate() {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f[0], i.to_string());
        let p: f64 = f[2].parse().unwrap();
        assert!(p > 1.0 / 3.0 - 1e-6 && p <= 1.0, "{l}");
        right += usize::from(f[1].parse::<u32>().unwrap() == truth[i]);
    }
    let printed = said
        .split("accuracy ")
        .nth(1)
        .unwrap()
        .trim()
        .parse::<f64>()
        .unwrap();
    assert!((printed - right as f64 / 300.0).abs() < 1e-4, "{said}");
    assert!(printed > 0.6, "{said}");
    // An existing classifier is kept unless --force.
    let err = fails(&[
        "classify",
        &run,
        "--labels-per-class",
        "2",
        "--epochs",
        "1",
        "--out",
        o,
    ]);
    assert!(err.contains("--force"), "{err}");
    // Frozen: the saved encoder is the autoencoder's, bit for bit; the head is new.
    ok(&[
        "classify",
        &run,
        "--freeze",
        "--labels-per-class",
        "5",
        "--epochs",
        "5",
        "--out",
        o,
        "--force",
        "--quiet",
    ]);
    let clf = ae_core::run::io::read_safetensors(&out.join("model.safetensors")).unwrap();
    let base =
        ae_core::run::io::read_safetensors(&Path::new(&run).join("model.safetensors")).unwrap();
    let mut names: Vec<&String> = clf.tensors.keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "encoder.0.bias",
            "encoder.0.weight",
            "encoder.2.bias",
            "encoder.2.weight",
            "head.0.bias",
            "head.0.weight"
        ]
    );
    for n in names.iter().filter(|n| n.starts_with("encoder.")) {
        assert_eq!(clf.tensors[*n], base.tensors[*n], "{n}");
    }
    assert_eq!(clf.tensors["head.0.weight"].shape(), [3, 6]);
    // Not a classifier folder: a clear error.
    let err = fails(&["predict", &run, "--out", csv.to_str().unwrap(), "--force"]);
    assert!(err.contains("classifier.json"), "{err}");
}

#[test]
fn a_sweep_runs_every_mode_at_every_size() {
    let dir = tempfile::tempdir().unwrap();
    let spec = idx_labeled(dir.path(), 150);
    let run = train(dir.path(), "ae", &spec, &[]);
    let cells = json(&ok(&[
        "classify",
        &run,
        "--sweep",
        "2,all",
        "--seeds",
        "2",
        "--epochs",
        "3",
        "--head-hidden",
        "8",
        "--json",
        "--quiet",
    ]));
    let cells = cells.as_array().unwrap();
    assert_eq!(cells.len(), 6);
    let modes: Vec<&str> = cells.iter().map(|c| c["mode"].as_str().unwrap()).collect();
    assert_eq!(
        modes,
        [
            "scratch",
            "frozen",
            "fine-tuned",
            "scratch",
            "frozen",
            "fine-tuned"
        ]
    );
    assert_eq!(cells[0]["examples"], 6);
    assert_eq!(cells[0]["accuracies"].as_array().unwrap().len(), 2);
    // Different seeds draw different labelled examples and heads.
    let a = cells[0]["accuracies"].as_array().unwrap();
    let m = cells[0]["mean"].as_f64().unwrap();
    assert!((m - (a[0].as_f64().unwrap() + a[1].as_f64().unwrap()) / 2.0).abs() < 1e-12);
    let err = fails(&["classify", &run, "--sweep", "10,0"]);
    assert!(err.contains("--sweep"), "{err}");
    let err = fails(&["classify", &run, "--encoder-lr-scale=-0.5"]);
    assert!(err.contains("--encoder-lr-scale"), "{err}");
}

#[test]
fn semi_supervised_and_vae_encoders_train_classifiers_that_predict_applies() {
    let dir = tempfile::tempdir().unwrap();
    let spec = idx_labeled(dir.path(), 240);
    let run = train(dir.path(), "ae", &spec, &[]);
    let out = dir.path().join("semi");
    let o = out.to_str().unwrap();
    // Ten labels per class, and every training image through the reconstruction and the
    // pseudo-label terms (the shift is off by default on 8×8 images, whose classes it changes).
    let t = json(&ok(&[
        "classify",
        &run,
        "--semi-supervised",
        "--labels-per-class",
        "10",
        "--epochs",
        "60",
        "--lr",
        "0.01",
        "--unlabelled-epochs",
        "30",
        "--teacher-decay",
        "0.9",
        "--batch-size",
        "8",
        "--unlabelled-batch",
        "32",
        "--threshold",
        "0.6",
        "--flip",
        "--out",
        o,
        "--json",
        "--quiet",
    ]));
    assert_eq!(t["mode"], "semi-supervised");
    assert_eq!(t["examples"], 30);
    assert!(t["test_accuracy"].as_f64().unwrap() > 0.8, "{t}");
    let clf = ae_core::run::io::read_safetensors(&out.join("model.safetensors")).unwrap();
    assert!(clf.tensors.keys().all(|n| !n.starts_with("decoder.")));
    assert!(clf.tensors.contains_key("head.0.weight"));
    let csv = dir.path().join("semi.csv");
    let said = ok(&["predict", o, "--out", csv.to_str().unwrap()]);
    assert!(said.contains("accuracy"), "{said}");
    let err = fails(&["classify", &run, "--semi-supervised", "--threshold", "0"]);
    assert!(err.contains("threshold"), "{err}");
    let err = fails(&["classify", &run, "--semi-supervised", "--freeze"]);
    assert!(err.contains("--freeze"), "{err}");
    // M1 (Kingma et al., 2014): a classifier on a VAE's latent means.
    // β = 0.1: at β = 1 this tiny VAE's posterior collapses onto the prior (KL 0.001 nats), and
    // means that carry nothing classify at chance.
    let vae = train(
        dir.path(),
        "vae",
        &spec,
        &["--model", "vae", "--beta", "0.1"],
    );
    let out = dir.path().join("m1");
    let t = json(&ok(&[
        "classify",
        &vae,
        "--freeze",
        "--labels-per-class",
        "20",
        "--epochs",
        "60",
        "--lr",
        "0.01",
        "--out",
        out.to_str().unwrap(),
        "--json",
        "--quiet",
    ]));
    assert!(t["test_accuracy"].as_f64().unwrap() > 0.5, "{t}");
    let clf = ae_core::run::io::read_safetensors(&out.join("model.safetensors")).unwrap();
    // The head reads the 6 means, not the 12 means and log-variances.
    assert_eq!(clf.tensors["head.0.weight"].shape(), [3, 6]);
    let said = ok(&[
        "predict",
        out.to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
        "--force",
    ]);
    let printed: f64 = said
        .split("accuracy ")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(printed > 0.5, "{said}");
}

/// Rows of a scores CSV as (score, flag).
fn scores(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    (header, rows)
}

#[test]
fn anomaly_scores_are_reconstruction_errors_with_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let spec = idx_labeled(dir.path(), 200);
    let run = train(dir.path(), "ae", &spec, &["--val-fraction", "0.2"]);
    assert!(Path::new(&run).join("val_scores.json").is_file());
    let csv = dir.path().join("s.csv");
    let c = csv.to_str().unwrap();
    let said = ok(&[
        "anomaly",
        &run,
        "--out",
        c,
        "--force",
        "--contamination",
        "0.25",
        "--per-feature",
    ]);
    let (header, rows) = scores(&csv);
    assert_eq!(&header[..4], ["index", "score", "anomaly", "label"]);
    assert_eq!(header.len(), 4 + 64);
    assert_eq!(rows.len(), 200);
    // Each score is the mean of the example's squared errors, and their mean is eval's MSE.
    for r in &rows {
        let mean: f64 = r[4..].iter().sum::<f64>() / 64.0;
        assert!((mean - r[1]).abs() < 1e-5, "{r:?}");
    }
    let eval = json(&ok(&["eval", &run, "--data", &spec, "--json"]));
    let mean: f64 = rows.iter().map(|r| r[1]).sum::<f64>() / 200.0;
    assert!(
        (mean - eval["mse"].as_f64().unwrap()).abs() < 1e-5,
        "{mean} vs {eval}"
    );
    // Contamination 0.25 flags a quarter, the highest scores.
    let flagged: Vec<&Vec<f64>> = rows.iter().filter(|r| r[2] == 1.0).collect();
    assert_eq!(flagged.len(), 50, "{said}");
    let lowest_flagged = flagged.iter().map(|r| r[1]).fold(f64::INFINITY, f64::min);
    assert!(rows
        .iter()
        .filter(|r| r[2] == 0.0)
        .all(|r| r[1] <= lowest_flagged));
    // --fpr sets the threshold on the run's clean validation scores.
    let said = ok(&["anomaly", &run, "--out", c, "--force", "--fpr", "0.1"]);
    assert!(
        said.contains("false-positive rate 0.1 on the run's 40 clean validation"),
        "{said}"
    );
    for bad in ["0", "1.5", "nan"] {
        let err = fails(&[
            "anomaly",
            &run,
            "--out",
            c,
            "--force",
            "--contamination",
            bad,
        ]);
        assert!(err.contains("--contamination"), "{bad}: {err}");
    }
    // A run without validation data has no clean scores to take a false-positive rate from.
    let bare = train(dir.path(), "bare", &spec, &["--val-fraction", "0"]);
    let err = fails(&["anomaly", &bare, "--out", c, "--force", "--fpr", "0.1"]);
    assert!(err.contains("kept no validation scores"), "{err}");
}

#[test]
fn the_one_class_protocol_separates_an_unseen_class() {
    let dir = tempfile::tempdir().unwrap();
    let spec = idx_labeled(dir.path(), 600);
    let run = train(dir.path(), "ae", &spec, &[]);
    let r = json(&ok(&[
        "anomaly",
        &run,
        "--normal-class",
        "0",
        "--epochs",
        "40",
        "--json",
        "--quiet",
    ]));
    let auroc = r["classes"][0]["auroc"].as_f64().unwrap();
    assert!(auroc > 0.9, "{r}");
    assert!((r["mean_auroc"].as_f64().unwrap() - auroc).abs() < 1e-12);
    let table = ok(&["anomaly", &run, "--all-classes", "--epochs", "2", "--quiet"]);
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with(char::is_numeric))
        .collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(table.contains("mean"), "{table}");
    let err = fails(&["anomaly", &run, "--normal-class", "7"]);
    assert!(err.contains("classes 0 to 2"), "{err}");
    // clap refuses the pair before anything runs, naming both flags.
    let err = fails(&["anomaly", &run, "--normal-class", "0", "--fpr", "0.1"]);
    assert!(
        err.contains("--normal-class") && err.contains("--fpr"),
        "{err}"
    );
}

#[test]
fn a_class_filter_trains_on_some_classes_and_probes_others() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::idx_labeled(dir.path(), 300);
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let out = common::ae(&[
        "train",
        "--data",
        &spec,
        "--classes",
        "0,1",
        "--hidden",
        "16,4",
        "--epochs",
        "3",
        "--quiet",
        "--out",
        r,
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    // 300 examples of 3 classes: 200 of classes 0 and 1, 20 of them held out.
    assert!(
        said.contains("(180 train, 20 validation examples)"),
        "{said}"
    );
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("classes = ["), "{config}");
    assert!(ok(&["eval", r]).contains("classes [0, 1] only"));
    // Self-taught learning: the encoder of classes 0 and 1 gives features for classes 1 and 2.
    let probe = ok(&["probe", r, "--classes", "1,2", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&probe).unwrap();
    assert!(rows.to_string().contains("autoencoder codes"), "{rows}");
    let err = fails(&["probe", r, "--classes", "7"]);
    assert!(
        err.contains("none; the data's classes are [0, 1, 2]"),
        "{err}"
    );
    let table = dir.path().join("t.csv");
    std::fs::write(&table, "a,b\n1,2\n3,4\n5,6\n").unwrap();
    let err = fails(&[
        "train",
        "--data",
        &format!("csv:{}", table.display()),
        "--classes",
        "1",
        "--out",
        dir.path().join("t").to_str().unwrap(),
    ]);
    assert!(err.contains("labelled data"), "{err}");
}
