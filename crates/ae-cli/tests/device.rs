//! `--device`: a GPU where there is one, a clear refusal where there is none, the CPU for `auto`
//! when no GPU can take the run, and run folders that move between devices.
mod common;

use common::{ae, csv_data, fails, ok, skip};

#[test]
fn device_cuda_trains_on_a_gpu_or_says_there_is_none_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("csv:{}", csv_data(dir.path()).display());
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let args = [
        "train", "--data", &data, "--hidden", "8,3", "--epochs", "2", "--device", "cuda", "--out",
        run_s,
    ];
    let out = ae(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains("cuda:0:"), "{err}");
        assert!(err.contains("--device cpu"), "{err}");
        assert!(!run.exists(), "a refused device made {}", run.display());
        skip(
            "device_cuda_trains_on_a_gpu (the CPU resume of a GPU run)",
            "no usable GPU here; checked the refusal instead",
        );
        return;
    }
    // Trained on the GPU: the same folder resumes on the CPU and evaluates there.
    assert!(err.contains("cuda:0 ("), "{err}");
    ok(&[
        "train", "--out", run_s, "--resume", "--epochs", "3", "--device", "cpu",
    ]);
    ok(&["eval", run_s]);
}

#[test]
fn device_auto_falls_back_to_the_cpu_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("csv:{}", csv_data(dir.path()).display());
    let run = dir.path().join("run");
    // Training on incomplete rows is not on the GPU yet: auto trains it on the CPU on any machine.
    let out = ae(&[
        "train",
        "--data",
        &data,
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--missing",
        "allow",
        "--device",
        "auto",
        "--out",
        run.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("device auto: on the CPU"), "{err}");
    assert!(err.contains("--missing allow"), "{err}");
    assert!(run.join("model.safetensors").exists());
}

#[test]
fn an_unknown_device_is_refused_with_the_choices() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("csv:{}", csv_data(dir.path()).display());
    let err = fails(&["train", "--data", &data, "--device", "tpu"]);
    assert!(err.contains("--device"), "{err}");
    assert!(err.contains("cpu, cuda, cuda:N"), "{err}");
    let err = fails(&["train", "--data", &data, "--device", "cuda:x"]);
    assert!(err.contains("cuda:N"), "{err}");
}

#[test]
fn precision_tf32_on_the_cpu_trains_in_fp32_and_says_so_and_bf16_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("csv:{}", csv_data(dir.path()).display());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let train = |run: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            &data,
            "--hidden",
            "8,3",
            "--epochs",
            "2",
            "--out",
            run.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ae(&args)
    };
    let out = train(&a, &["--precision", "tf32"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("the CPU computes in fp32"), "{err}");
    // On the CPU, tf32 changes nothing: the weights equal an fp32 run's.
    assert!(train(&b, &[]).status.success());
    let weights = |r: &std::path::Path| std::fs::read(r.join("model.safetensors")).unwrap();
    assert_eq!(weights(&a), weights(&b));
    let err = fails(&["train", "--data", &data, "--precision", "bf16"]);
    assert!(err.contains("--precision"), "{err}");
    assert!(err.contains("bf16 is not computed yet"), "{err}");
}

#[test]
fn commands_that_use_a_model_take_device_and_agree_with_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("csv:{}", csv_data(dir.path()).display());
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    ok(&[
        "train", "--data", &data, "--hidden", "8,3", "--epochs", "2", "--out", run_s,
    ]);
    let read = |p: &std::path::Path| -> Vec<f64> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .skip(1)
            .flat_map(|l| {
                l.split(',')
                    .map(|v| v.parse::<f64>().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    for (cmd, extra) in [
        ("encode", vec![]),
        ("reconstruct", vec![]),
        ("anomaly", vec!["--contamination", "0.1"]),
    ] {
        let cpu = dir.path().join(format!("{cmd}-cpu.csv"));
        let mut args = vec![cmd, run_s, "--out", cpu.to_str().unwrap()];
        args.extend(&extra);
        ok(&args);
        for device in ["auto", "cuda"] {
            let other = dir.path().join(format!("{cmd}-{device}.csv"));
            let mut args = vec![
                cmd,
                run_s,
                "--device",
                device,
                "--out",
                other.to_str().unwrap(),
            ];
            args.extend(&extra);
            let out = ae(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!err.contains("panicked"), "{err}");
            if !out.status.success() {
                // Only `cuda` on a machine without one may fail, naming the device and the way out.
                assert_eq!(device, "cuda", "{err}");
                assert!(err.contains("cuda:0"), "{err}");
                assert!(
                    !other.exists(),
                    "a refused device wrote {}",
                    other.display()
                );
                continue;
            }
            if err.contains("device auto: on the CPU") {
                // The same engine: the same numbers.
                assert_eq!(read(&cpu), read(&other), "{cmd} --device {device}");
                continue;
            }
            assert!(err.contains("computing on cuda:0"), "{err}");
            for (a, b) in read(&cpu).iter().zip(read(&other)) {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + a.abs()),
                    "{cmd} on the GPU: {a} vs {b}"
                );
            }
        }
    }
    // ae eval: the same figures from the GPU's forward passes (the Jacobian norm is the CPU's).
    let eval = |device: &str| {
        let out = ae(&["eval", run_s, "--json", "--device", device]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (ok_cpu, cpu) = eval("cpu");
    assert!(ok_cpu, "{cpu}");
    let field = |json: &str, name: &str| -> f64 {
        let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        v[name].as_f64().unwrap()
    };
    let (ok_auto, auto) = eval("auto");
    assert!(ok_auto, "{auto}");
    for name in ["mse", "bce", "sse_per_example", "mean_jacobian_norm"] {
        let (a, b) = (field(&cpu, name), field(&auto, name));
        assert!(
            (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
            "eval {name}: cpu {a}, auto {b}"
        );
    }
    if !ae_core::cuda::gpu_present() {
        assert_eq!(cpu, auto, "auto on the CPU gives the CPU's figures exactly");
        skip(
            "commands_that_use_a_model_take_device (the GPU's outputs)",
            "no usable GPU here; checked auto's fallback and cuda's refusal",
        );
    }
}
