//! Crashes, divergence, full disks and reproducibility: the guarantees README.md states.
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{fails, metrics, metrics_without_times, npy_f32, ok};

/// Training flags of a run that takes about three seconds (0.3 s per epoch), with a checkpoint
/// every epoch.
fn train_args<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--data",
        data,
        "--hidden",
        "512,64",
        "--epochs",
        "10",
        "--batch-size",
        "4",
        "--threads",
        "1",
        "--seed",
        "5",
        "--quiet",
        "--out",
        out,
    ]
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn same_seed_gives_identical_runs_and_another_seed_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("x.npy");
    npy_f32(&data, 300, 24);
    let spec = format!("npy:{}", data.display());
    let run = |name: &str, seed: &str| {
        let out = dir.path().join(name);
        ok(&[
            "train",
            "--data",
            &spec,
            "--hidden",
            "16,4",
            "--epochs",
            "3",
            "--batch-size",
            "64",
            "--threads",
            "2",
            "--seed",
            seed,
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        out
    };
    let (a, b, c) = (run("a", "1"), run("b", "1"), run("c", "2"));
    assert_eq!(
        bytes(&a.join("model.safetensors")),
        bytes(&b.join("model.safetensors"))
    );
    assert_eq!(metrics_without_times(&a), metrics_without_times(&b));
    assert_ne!(
        bytes(&a.join("model.safetensors")),
        bytes(&c.join("model.safetensors"))
    );
}

/// SIGKILL at several points of training (mid-epoch, and wherever a checkpoint write happens to
/// be), then `--resume`, until the run ends: the weights equal an uninterrupted run's, bit for bit,
/// and no temporary file is left behind.
#[test]
fn sigkill_then_resume_ends_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("x.npy");
    npy_f32(&data, 3000, 256);
    let spec = format!("npy:{}", data.display());
    let straight = dir.path().join("straight");
    ok(&train_args(&spec, straight.to_str().unwrap()));

    let killed = dir.path().join("killed");
    let k = killed.to_str().unwrap();
    let (mut kills, mut resumes) = (0, 0);
    for (round, delay_ms) in [120u64, 250, 60, 310, 180, 20, 400, 90].iter().enumerate() {
        let mut args = train_args(&spec, k);
        if round > 0 {
            args = vec!["train", "--out", k, "--resume", "--quiet"];
            resumes += 1;
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_ae"))
            .args(&args)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill only once a checkpoint exists, so that every later round resumes from one
        // however slow the machine is; then after a varying delay, to land anywhere in an epoch.
        let started = std::time::Instant::now();
        while !killed.join("checkpoint.safetensors").exists()
            && child.try_wait().unwrap().is_none()
            && started.elapsed() < Duration::from_secs(120)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(*delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(killed.join("meta.json")).unwrap_or("{}".into()),
        )
        .unwrap();
        if meta["finished"] == true {
            break;
        }
    }
    // Finish whatever is left.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(killed.join("meta.json")).unwrap()).unwrap();
    if meta["finished"] != true {
        ok(&["train", "--out", k, "--resume", "--quiet"]);
        resumes += 1;
    }
    assert!(resumes >= 1, "no round resumed from a checkpoint");
    assert!(
        kills >= 2,
        "the run ended before it could be killed; make it longer"
    );
    assert_eq!(
        bytes(&straight.join("model.safetensors")),
        bytes(&killed.join("model.safetensors")),
        "after {kills} kills"
    );
    assert_eq!(
        metrics_without_times(&straight),
        metrics_without_times(&killed)
    );
    let litter: Vec<_> = std::fs::read_dir(&killed)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(litter.is_empty(), "temporary files left: {litter:?}");
}

#[test]
fn divergence_keeps_the_last_good_checkpoint_and_resume_with_smaller_lr_continues() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("x.npy");
    npy_f32(&data, 200, 16);
    let spec = format!("npy:{}", data.display());
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let base = [
        "--data",
        &spec,
        "--hidden",
        "8",
        "--linear",
        "--optimizer",
        "sgd",
        "--lr",
        "0.01",
        "--batch-size",
        "20",
        "--quiet",
        "--out",
        r,
    ];
    ok(&[&["train", "--epochs", "2"][..], &base[..]].concat());
    let checkpoint = bytes(&run.join("checkpoint.safetensors"));
    let err = fails(&[
        "train", "--out", r, "--resume", "--epochs", "4", "--lr", "1e12", "--quiet",
    ]);
    assert!(
        err.contains("diverged at epoch 3") && err.contains("step") && err.contains("mse"),
        "{err}"
    );
    assert!(
        err.contains("--resume"),
        "the error should say how to go on: {err}"
    );
    assert_eq!(
        bytes(&run.join("checkpoint.safetensors")),
        checkpoint,
        "the last good checkpoint changed"
    );
    assert_eq!(metrics(&run).len(), 2);
    ok(&[
        "train", "--out", r, "--resume", "--epochs", "4", "--lr", "0.005", "--quiet",
    ]);
    let m = metrics(&run);
    assert_eq!(m.len(), 4);
    assert!(m[3]["loss"].as_f64().unwrap().is_finite());
}

/// A file-size limit (`ulimit -f`) makes the checkpoint write fail as a full disk would: the
/// error is reported and the previous checkpoint stays whole.
#[test]
fn a_full_disk_while_saving_keeps_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("x.npy");
    npy_f32(&data, 100, 400);
    let spec = format!("npy:{}", data.display());
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        &spec,
        "--hidden",
        "300",
        "--epochs",
        "1",
        "--batch-size",
        "50",
        "--quiet",
        "--out",
        r,
    ]);
    let checkpoint = bytes(&run.join("checkpoint.safetensors"));
    assert!(
        checkpoint.len() > 2_000_000,
        "the checkpoint must exceed the limit below"
    );
    // 1,000 blocks of 1 KiB: config and metadata fit, the 2.9 MB checkpoint does not.
    let script = format!(
        "ulimit -f 1000; exec '{}' train --out '{r}' --resume --epochs 2 --quiet",
        env!("CARGO_BIN_EXE_ae")
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "training should fail to save");
    assert!(
        err.contains(".safetensors") && err.to_lowercase().contains("too large"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        bytes(&run.join("checkpoint.safetensors")),
        checkpoint,
        "the previous checkpoint was damaged"
    );
    let litter: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(litter.is_empty(), "temporary files left: {litter:?}");
}

/// A run folder whose config.toml was edited to claim another (or an enormous) network: loading
/// refuses it by name before allocating anything of the claimed size.
#[test]
fn config_and_weights_that_disagree_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("x.npy");
    npy_f32(&data, 100, 12);
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        &format!("npy:{}", data.display()),
        "--hidden",
        "6,3",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        r,
    ]);
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    for (hidden, what) in [
        ("[\n    6,\n    4,\n]", "shape"),
        ("[\n    100000000,\n    100000000,\n]", "shape"),
        ("[\n    6,\n]", "tensor"),
    ] {
        let edited = config.replace("[\n    6,\n    3,\n]", hidden);
        assert_ne!(
            edited, config,
            "the test's pattern no longer matches config.toml:\n{config}"
        );
        std::fs::write(run.join("config.toml"), edited).unwrap();
        let err = fails(&["eval", r, "--json"]);
        assert!(
            err.contains("model.safetensors") && err.contains("disagree") && err.contains(what),
            "{err}"
        );
        let err = fails(&["train", "--out", r, "--resume", "--epochs", "2", "--quiet"]);
        assert!(
            err.contains("disagree") || err.contains("only --epochs"),
            "{err}"
        );
    }
}

/// A permission error while saving (the run folder is not writable by the user training) is
/// reported and leaves the previous checkpoint whole. Needs root, to train as `nobody` with
/// `setpriv`; elsewhere it says so and returns.
#[test]
fn a_permission_error_while_saving_keeps_the_previous_checkpoint() {
    use std::os::unix::fs::PermissionsExt;
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let name = "a_permission_error_while_saving_keeps_the_previous_checkpoint";
    if !is_root || !Path::new("/usr/bin/setpriv").exists() {
        // CI runs as root on Debian, where setpriv comes with util-linux: a skip there is a fault.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run as root with setpriv for the permission test"
        );
        common::skip(name, "needs root and setpriv to act as another user");
        return;
    }
    // The binary must be reachable by `nobody` (it is not when the checkout sits under a private
    // home folder); otherwise this check cannot run here.
    let probe = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_ae"),
            "--version",
        ])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        // The machine truly cannot: the checkout sits where `nobody` may not enter.
        common::skip(
            name,
            &format!("`nobody` cannot run {}", env!("CARGO_BIN_EXE_ae")),
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("x.npy");
    npy_f32(&data, 100, 20);
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        &format!("npy:{}", data.display()),
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        r,
    ]);
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let checkpoint = bytes(&run.join("checkpoint.safetensors"));
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_ae"),
            "train",
            "--out",
            r,
            "--resume",
            "--epochs",
            "2",
            "--quiet",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "saving into a read-only folder should fail:\n{err}"
    );
    assert!(
        err.contains(r) && err.contains("Permission denied"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        bytes(&run.join("checkpoint.safetensors")),
        checkpoint,
        "the previous checkpoint was damaged"
    );
}
