//! `ae compress`: the autoencoder as a codec beside JPEG, through the real binary.
mod common;

use common::{fails, npy_bytes, npy_images, ok};

#[test]
fn compress_measures_both_codecs_in_and_out_of_domain_and_draws_the_chart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bars.npy");
    npy_images(&data, 300, 16, 16);
    // Out of domain: a checkerboard of random-looking but fixed values.
    let other: Vec<u8> = (0..50 * 256)
        .map(|i| ((i * 37 + i / 16 * 11) % 256) as u8)
        .collect();
    let other_path = dir.path().join("other.npy");
    std::fs::write(&other_path, npy_bytes("|u1", "(50, 16, 16)", &other)).unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        &format!("npy:{}", data.display()),
        "--hidden",
        "64,8",
        "--epochs",
        "30",
        "--batch-size",
        "32",
        "--threads",
        "1",
        "--quiet",
        "--out",
        r,
    ]);
    let (json, png) = (dir.path().join("rd.json"), dir.path().join("rd.png"));
    let printed = ok(&[
        "compress",
        r,
        "--out",
        json.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
        "--bits",
        "2,8",
        "--qualities",
        "10,90",
        "--other",
        &format!("npy:{}", other_path.display()),
    ]);
    assert!(printed.contains("codec  setting"), "{printed}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let sets = v["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 2);
    assert!(sets[1]["data"].as_str().unwrap().contains("out of domain"));
    for set in sets {
        let pts = set["points"].as_array().unwrap();
        let get = |codec: &str, setting: u64, key: &str| {
            pts.iter()
                .find(|p| p["codec"] == codec && p["setting"] == setting)
                .unwrap()[key]
                .as_f64()
                .unwrap()
        };
        // More bits cost more and rebuild better, for both codecs; a receiver's extras cost more.
        assert!(get("ae", 2, "bpp") < get("ae", 8, "bpp"), "{set}");
        assert!(
            get("ae", 2, "psnr_db") <= get("ae", 8, "psnr_db") + 1e-9,
            "{set}"
        );
        assert!(get("jpeg", 10, "bpp") < get("jpeg", 90, "bpp"), "{set}");
        assert!(
            get("jpeg", 10, "psnr_db") < get("jpeg", 90, "psnr_db"),
            "{set}"
        );
        assert!(get("ae", 8, "bpp_total") > get("ae", 8, "bpp"));
        assert!(get("jpeg", 90, "bpp_total") > get("jpeg", 90, "bpp"));
    }
    // The bars are what the model learned: it rebuilds them far better than the other images.
    let psnr = |i: usize| {
        sets[i]["points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["codec"] == "ae" && p["setting"] == 8)
            .unwrap()["psnr_db"]
            .as_f64()
            .unwrap()
    };
    assert!(psnr(0) > psnr(1) + 3.0, "in {} vs out {}", psnr(0), psnr(1));
    let png_bytes = std::fs::read(&png).unwrap();
    assert!(png_bytes.starts_with(b"\x89PNG"));
    // Tables are not images: a clear refusal.
    let table = dir.path().join("t.npy");
    common::npy_f32(&table, 50, 6);
    let trun = dir.path().join("trun");
    ok(&[
        "train",
        "--data",
        &format!("npy:{}", table.display()),
        "--epochs",
        "1",
        "--quiet",
        "--out",
        trun.to_str().unwrap(),
    ]);
    let err = fails(&[
        "compress",
        trun.to_str().unwrap(),
        "--out",
        dir.path().join("t.json").to_str().unwrap(),
    ]);
    assert!(err.contains("images of 1 or 3 channels"), "{err}");
}

#[test]
fn compress_takes_a_vae_by_its_means_and_a_conv_run_with_a_dense_code() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bars.npy");
    npy_images(&data, 120, 16, 16);
    let spec = format!("npy:{}", data.display());
    for (name, flags) in [
        ("vae", &["--model", "vae", "--hidden", "32,4"][..]),
        (
            "conv",
            &["--arch", "conv", "--channels", "4,4", "--code", "6"][..],
        ),
    ] {
        let run = dir.path().join(name);
        let r = run.to_str().unwrap();
        let base = [
            "train",
            "--data",
            &spec,
            "--epochs",
            "3",
            "--threads",
            "1",
            "--quiet",
            "--out",
            r,
        ];
        ok(&[&base[..], flags].concat());
        let json = dir.path().join(format!("{name}.json"));
        ok(&[
            "compress",
            r,
            "--out",
            json.to_str().unwrap(),
            "--bits",
            "3",
            "--qualities",
            "50",
        ]);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let ae = &v["sets"][0]["points"][0];
        assert_eq!(ae["codec"], "ae");
        // A code of k values at 3 bits each costs at most 3k bits per image before coding.
        let k = if name == "vae" { 4.0 } else { 6.0 };
        let bpp = ae["bpp"].as_f64().unwrap();
        assert!(
            bpp > 0.0 && bpp <= 3.0 * k / 256.0 * 1.2 + 0.01,
            "{name}: {v}"
        );
    }
}
