//! Safe defaults: a bottleneck that does not die, dead code units named, a collapsed run stopped,
//! and runs written before a default changed read back as they were trained.
mod common;

use std::path::Path;

use common::{ae, csv_data, fails, metrics, ok};

fn train(data: &str, out: &Path, extra: &[&str]) -> String {
    let out = out.to_str().unwrap();
    let base = [
        "train",
        "--data",
        data,
        "--epochs",
        "20",
        "--threads",
        "1",
        "--quiet",
        "--force",
        "--out",
        out,
    ];
    let o = ae(&[&base[..], extra].concat());
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "ae train {extra:?} failed:\n{err}");
    String::from_utf8_lossy(&o.stdout).into_owned() + &err
}

#[test]
fn a_deep_encoder_gets_a_linear_code_and_dead_relu_code_units_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("csv:{}", csv_data(dir.path()).display());
    let run = dir.path().join("run");
    let mut relu_warnings = 0;
    for seed in ["0", "1", "2", "3"] {
        let said = train(&spec, &run, &["--hidden", "16,2", "--seed", seed]);
        assert!(!said.contains("dead"), "seed {seed}, linear code: {said}");
        let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
        assert!(config.contains("code-activation = \"linear\""), "{config}");

        // A ReLU code may lose units (a warning) or die whole (a collapse, an error).
        let o = ae(&[
            "train",
            "--data",
            &spec,
            "--epochs",
            "20",
            "--threads",
            "1",
            "--quiet",
            "--force",
            "--out",
            run.to_str().unwrap(),
            "--hidden",
            "16,2",
            "--seed",
            seed,
            "--code-activation",
            "relu",
        ]);
        let said = String::from_utf8_lossy(&o.stderr).into_owned();
        if said.contains("dead") {
            assert!(
                said.contains("0 for every example (dead, units"),
                "the message should name the dead units: {said}"
            );
            assert!(
                o.status.success() != said.contains("collapsed"),
                "a collapse fails the run, dead units warn: {said}"
            );
            if o.status.success() {
                let eval = ok(&["eval", run.to_str().unwrap()]);
                assert!(
                    eval.contains("of 2 vary; warning:") && eval.contains("(dead, units"),
                    "{eval}"
                );
                let page = dir.path().join("r.html");
                ok(&[
                    "report",
                    run.to_str().unwrap(),
                    "--out",
                    page.to_str().unwrap(),
                    "--force",
                    "--steps",
                    "5",
                ]);
                let html = std::fs::read_to_string(&page).unwrap();
                assert!(
                    html.contains("class=\"warning\">Warning: 1 of 2 code units is 0"),
                    "no warning on the report"
                );
            }
            relu_warnings += 1;
        }
    }
    // The failure the default avoids: a ReLU code of 2 units loses one on some seeds.
    assert!(
        relu_warnings >= 2,
        "fewer than 2 of 4 seeds of the ReLU code lost a unit"
    );
    // One hidden layer is the whole encoder: its code keeps the hidden activation.
    train(&spec, &run, &["--hidden", "4"]);
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("code-activation = \"relu\""), "{config}");
}

#[test]
fn a_collapsed_run_stops_with_an_error_and_keeps_its_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("csv:{}", csv_data(dir.path()).display());
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let flags = [
        "--hidden",
        "16,2",
        "--code-activation",
        "relu",
        "--seed",
        "0",
    ];
    ok(&[
        &[
            "train", "--data", &spec, "--epochs", "2", "--quiet", "--out", r,
        ][..],
        &flags[..],
    ]
    .concat());
    let checkpoint = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    // A learning rate of 10 kills every ReLU in one epoch: the output no longer depends on the input.
    let err = fails(&[
        "train", "--out", r, "--resume", "--epochs", "6", "--lr", "10", "--quiet",
    ]);
    assert!(
        err.contains("collapsed at epoch 3")
            && err.contains("same reconstruction for every input")
            && err.contains("--lr"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(run.join("checkpoint.safetensors")).unwrap(),
        checkpoint,
        "the last good checkpoint changed"
    );
    assert_eq!(metrics(&run).len(), 2, "the collapsed epoch was recorded");
}

#[test]
fn a_run_whose_config_predates_the_linear_code_default_is_read_with_its_relu_code() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("csv:{}", csv_data(dir.path()).display());
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    train(
        &spec,
        &run,
        &[
            "--hidden",
            "16,4",
            "--code-activation",
            "relu",
            "--seed",
            "1",
        ],
    );
    let before = ok(&["eval", r]);
    let config = run.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let old: String = text
        .lines()
        .filter(|l| !l.starts_with("code-activation"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(old, text);
    std::fs::write(&config, old).unwrap();
    assert_eq!(
        ok(&["eval", r]),
        before,
        "an old run's code layer changed meaning"
    );
}

#[test]
fn eval_of_a_table_scores_the_held_out_rows_and_says_so_and_notes_an_unfinished_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("csv:{}", csv_data(dir.path()).display());
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    train(&spec, &run, &["--hidden", "16,3", "--seed", "4"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&["eval", r, "--json"])).unwrap();
    assert_eq!(v["n"], 20, "{v}");
    assert!(
        v["rows"].as_str().unwrap().contains("20 validation rows"),
        "{v}"
    );
    // The same rows the run validated on: the last epoch's validation MSE, exactly.
    let last = metrics(&run).pop().unwrap();
    let val = last["val_mse"].as_f64().unwrap();
    assert!(
        (v["mse"].as_f64().unwrap() - val).abs() <= 1e-9 * val,
        "{v} vs {last}"
    );
    let all: serde_json::Value =
        serde_json::from_str(&ok(&["eval", r, "--json", "--all-rows"])).unwrap();
    assert_eq!(all["n"], 200);
    assert!(all["rows"]
        .as_str()
        .unwrap()
        .contains("the rows the model trained on included"));
    let text = ok(&["eval", r]);
    assert!(
        text.starts_with("rows              the 20 validation rows"),
        "{text}"
    );
    assert!(text.contains("code units        3 of 3 vary"), "{text}");

    // A run killed before its last epoch says so.
    let meta = run.join("meta.json");
    let m = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(
        &meta,
        m.replace("\"finished\": true", "\"finished\": false"),
    )
    .unwrap();
    let o = ae(&["eval", r]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.contains("is unfinished: 20 of 20 epochs"),
        "{err}"
    );
    assert!(err.contains("--resume"), "{err}");
}

#[test]
fn a_cosine_schedule_is_recorded_and_trains_differently_from_a_constant_rate() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("csv:{}", csv_data(dir.path()).display());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    train(
        &spec,
        &a,
        &[
            "--hidden",
            "8,3",
            "--lr-schedule",
            "cosine:2",
            "--epochs",
            "6",
        ],
    );
    train(&spec, &b, &["--hidden", "8,3", "--epochs", "6"]);
    let config = std::fs::read_to_string(a.join("config.toml")).unwrap();
    assert!(config.contains("lr-schedule = \"cosine:2\""), "{config}");
    assert_ne!(
        std::fs::read(a.join("model.safetensors")).unwrap(),
        std::fs::read(b.join("model.safetensors")).unwrap()
    );
    let err = fails(&[
        "train",
        "--data",
        &spec,
        "--out",
        dir.path().join("d").to_str().unwrap(),
        "--lr-schedule",
        "cosine:x",
    ]);
    assert!(
        err.contains("lr-schedule") && err.contains("cosine:WARMUP_EPOCHS"),
        "{err}"
    );
}
