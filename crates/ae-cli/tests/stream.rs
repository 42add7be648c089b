//! `--stream` through the binary: training on a folder of shards, encoding, reconstructing and
//! scoring with results written as they come, equal to the in-memory commands; and what it
//! refuses.
mod common;

use common::{fails, npy_f32, npy_images, ok};

/// Three float shards of 12 features (150 rows), and the same rows as one file.
fn shards(dir: &std::path::Path) -> (String, String) {
    let folder = dir.join("shards");
    std::fs::create_dir(&folder).unwrap();
    let whole = dir.join("whole.npy");
    npy_f32(&whole, 150, 12);
    let x = ae_data::npy::read(&whole).unwrap();
    for k in 0..3 {
        ae_data::npy::write_f32(
            &folder.join(format!("part-{k}.npy")),
            &[50, 12],
            &x.data[k * 600..(k + 1) * 600],
        )
        .unwrap();
    }
    (
        format!("npy:{}", folder.display()),
        format!("npy:{}", whole.display()),
    )
}

fn read_npy(p: &std::path::Path) -> Vec<f32> {
    ae_data::npy::read(p).unwrap().data
}

#[test]
fn streamed_training_encoding_and_scoring_match_the_in_memory_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, whole) = shards(dir.path());
    let d = |p: &str| dir.path().join(p).display().to_string();
    let common = [
        "--hidden",
        "8,3",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--threads",
        "1",
        "--quiet",
    ];
    // With every row in one window and nothing held out, the weights are the in-memory run's.
    let mut a = vec![
        "train",
        "--data",
        &folder,
        "--stream",
        "--shuffle-buffer",
        "1000",
        "--val-fraction",
        "0",
    ];
    let out_s = d("streamed");
    a.extend(["--out", &out_s]);
    a.extend(common);
    ok(&a);
    let mut b = vec!["train", "--data", &whole, "--val-fraction", "0"];
    let out_m = d("memory");
    b.extend(["--out", &out_m]);
    b.extend(common);
    ok(&b);
    assert_eq!(
        std::fs::read(dir.path().join("streamed/model.safetensors")).unwrap(),
        std::fs::read(dir.path().join("memory/model.safetensors")).unwrap()
    );
    let config = std::fs::read_to_string(dir.path().join("streamed/config.toml")).unwrap();
    assert!(config.contains("stream = true"), "{config}");

    // encode / reconstruct --stream on the shards equal the in-memory commands on the file.
    for (cmd, name) in [("encode", "codes"), ("reconstruct", "rec")] {
        let (s, m) = (d(&format!("{name}-s.npy")), d(&format!("{name}-m.npy")));
        ok(&[cmd, &out_s, "--data", &folder, "--stream", "--out", &s]);
        ok(&[cmd, &out_m, "--data", &whole, "--out", &m]);
        assert_eq!(read_npy(s.as_ref()), read_npy(m.as_ref()), "{cmd}");
        let csv = d(&format!("{name}-s.csv"));
        ok(&[cmd, &out_s, "--stream", "--out", &csv]);
        let back = ae_data::csv_table::read(csv.as_ref(), &Default::default()).unwrap();
        assert_eq!(back.samples.data, read_npy(m.as_ref()), "{cmd} csv");
    }

    // anomaly --stream: the same scores and flags as in memory.
    let (s, m) = (d("scores-s.csv"), d("scores-m.csv"));
    ok(&[
        "anomaly",
        &out_s,
        "--data",
        &folder,
        "--stream",
        "--contamination",
        "0.1",
        "--out",
        &s,
    ]);
    ok(&[
        "anomaly",
        &out_m,
        "--data",
        &whole,
        "--contamination",
        "0.1",
        "--out",
        &m,
    ]);
    assert_eq!(
        std::fs::read_to_string(&s).unwrap(),
        std::fs::read_to_string(&m).unwrap()
    );
}

#[test]
fn a_streamed_run_with_validation_scores_flags_as_it_goes_and_eval_scores_its_held_out_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, _) = shards(dir.path());
    let run = dir.path().join("run").display().to_string();
    ok(&[
        "train",
        "--data",
        &folder,
        "--stream",
        "--hidden",
        "8,3",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--val-fraction",
        "0.2",
        "--threads",
        "1",
        "--quiet",
        "--out",
        &run,
    ]);
    let scores = dir.path().join("s.csv").display().to_string();
    let said = ok(&["anomaly", &run, "--stream", "--out", &scores]);
    assert!(said.contains("false-positive rate 0.05"), "{said}");
    let lines = std::fs::read_to_string(&scores).unwrap();
    assert_eq!(lines.lines().count(), 151);
    assert!(lines.starts_with("index,score,anomaly\n0,"));
    // ae eval on the run's own shards scores the rows the hash held out.
    let out = common::ae(&["eval", &run]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let held = (0..150)
        .filter(|&i| ae_core::training::stream::held_out(0, 0.2, i))
        .count();
    let text = format!("{err}{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        text.contains(&format!("the {held} validation rows")),
        "{held}: {text}"
    );
}

#[test]
fn what_streaming_cannot_do_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let csv = common::csv_data(dir.path());
    let run = dir.path().join("run").display().to_string();
    let err = fails(&[
        "train",
        "--data",
        &format!("csv:{}", csv.display()),
        "--stream",
        "--out",
        &run,
    ]);
    assert!(err.contains("--stream reads npy:FILE"), "{err}");
    let imgs = dir.path().join("imgs.npy");
    npy_images(&imgs, 40, 6, 6);
    let spec = format!("npy:{}", imgs.display());
    let err = fails(&[
        "train",
        "--data",
        &spec,
        "--stream",
        "--pretrain",
        "greedy:1",
        "--hidden",
        "8,3",
        "--out",
        &run,
    ]);
    assert!(
        err.contains("pretrain") && err.contains("without --stream"),
        "{err}"
    );
    assert!(!dir.path().join("run").exists(), "nothing written");
    ok(&[
        "train", "--data", &spec, "--stream", "--hidden", "8,3", "--epochs", "1", "--quiet",
        "--out", &run,
    ]);
    let png = dir.path().join("r.png").display().to_string();
    let err = fails(&["reconstruct", &run, "--stream", "--out", &png]);
    assert!(err.contains(".npy or .csv"), "{err}");
    let other = dir.path().join("other.npy");
    npy_f32(&other, 10, 5);
    let err = fails(&[
        "encode",
        &run,
        "--stream",
        "--data",
        &format!("npy:{}", other.display()),
        "--out",
        &dir.path().join("c.npy").display().to_string(),
    ]);
    assert!(err.contains("[5]") && err.contains("[1, 6, 6]"), "{err}");
    assert!(!dir.path().join("c.npy").exists());
}

#[test]
fn a_folder_of_images_trains_streamed_as_in_memory_and_encodes_as_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("imgs");
    for (class, n) in [("a", 30u32), ("b", 26)] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for k in 0..n {
            image::GrayImage::from_fn(7, 6, |x, y| {
                image::Luma([((x * 31 + y * 17 + k * 13) % 256) as u8])
            })
            .save(root.join(class).join(format!("{k:03}.png")))
            .unwrap();
        }
    }
    let spec = format!("images:{}", root.display());
    let d = |p: &str| dir.path().join(p).display().to_string();
    let common = [
        "--data",
        &spec,
        "--hidden",
        "8,3",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--threads",
        "1",
        "--val-fraction",
        "0",
        "--quiet",
    ];
    let (s, m) = (d("streamed"), d("memory"));
    let mut a = vec!["train", "--stream", "--shuffle-buffer", "1000", "--out", &s];
    a.extend(common);
    ok(&a);
    let mut b = vec!["train", "--out", &m];
    b.extend(common);
    ok(&b);
    assert_eq!(
        std::fs::read(dir.path().join("streamed/model.safetensors")).unwrap(),
        std::fs::read(dir.path().join("memory/model.safetensors")).unwrap()
    );
    let (cs, cm) = (d("codes-s.npy"), d("codes-m.npy"));
    ok(&["encode", &s, "--data", &spec, "--stream", "--out", &cs]);
    ok(&["encode", &m, "--data", &spec, "--out", &cm]);
    assert_eq!(
        read_npy(dir.path().join("codes-s.npy").as_path()),
        read_npy(dir.path().join("codes-m.npy").as_path())
    );
}
