//! Convolutional runs through the real `ae`: training, the run folder's weights (PyTorch names),
//! eval / encode / reconstruct unchanged, and clear errors for data a conv model cannot take.
mod common;

use std::path::Path;

use common::{csv_data, fails, metrics, npy_images, ok, tensor_shapes};

fn train_conv(data: &Path, run: &Path, extra: &[&str]) {
    let spec = format!("npy:{}", data.display());
    let mut args = vec![
        "train",
        "--data",
        &spec,
        "--arch",
        "conv",
        "--channels",
        "4,4",
        "--epochs",
        "12",
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--val-fraction",
        "0",
        "--threads",
        "2",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(&args);
}

fn npy_shape(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let header = String::from_utf8_lossy(&bytes[10..bytes.len().min(128)]).to_string();
    let start = header.find("'shape': (").unwrap() + 10;
    let dims = &header[start..start + header[start..].find(')').unwrap()];
    dims.trim_end_matches([',', ' ']).to_string()
}

/// The payload of a version-1 `.npy` file (after its header).
fn npy_payload(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + len..].to_vec()
}

/// `data`'s 8×8 u8 images with a small deterministic dither (as f32 `.npy`), and the mean over
/// them of the Frobenius norm of the encoder's Jacobian with respect to the scaled input (÷255),
/// by central differences of codes from `ae encode`.
fn fd_jacobian_norm(dir: &Path, data: &Path, run: &Path) -> (std::path::PathBuf, f64) {
    let images: Vec<f32> = npy_payload(data)
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f32 + 3.0 * ((i * 37 % 101) as f32 / 101.0))
        .collect();
    let (n, d, h) = (images.len() / 64, 64, 0.05f32);
    let dithered = dir.join("dithered.npy");
    let bytes: Vec<u8> = images.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(
        &dithered,
        common::npy_bytes("<f4", &format!("({n}, 8, 8)"), &bytes),
    )
    .unwrap();
    let mut rows = Vec::with_capacity(n * 2 * d * d * 4);
    for e in 0..n {
        for i in 0..d {
            for sign in [1.0f32, -1.0] {
                for (j, &v) in images[e * d..(e + 1) * d].iter().enumerate() {
                    let v = v + if j == i { sign * h } else { 0.0 };
                    rows.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
    let moved = dir.join("moved.npy");
    let shape = format!("({}, 8, 8)", n * 2 * d);
    std::fs::write(&moved, common::npy_bytes("<f4", &shape, &rows)).unwrap();
    let codes = dir.join("moved_codes.npy");
    ok(&[
        "encode",
        run.to_str().unwrap(),
        "--data",
        &format!("npy:{}", moved.display()),
        "--out",
        codes.to_str().unwrap(),
        "--force",
    ]);
    let c: Vec<f32> = npy_payload(&codes)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let k = c.len() / (n * 2 * d);
    let step = 2.0 * h as f64 / 255.0;
    let mut total = 0.0;
    for e in 0..n {
        let mut sq = 0.0f64;
        for i in 0..d {
            let up = &c[((e * d + i) * 2) * k..][..k];
            let down = &c[((e * d + i) * 2 + 1) * k..][..k];
            sq += up
                .iter()
                .zip(down)
                .map(|(u, w)| ((u - w) as f64 / step).powi(2))
                .sum::<f64>();
        }
        total += sq.sqrt();
    }
    (dithered, total / n as f64)
}

#[test]
fn conv_run_learns_and_is_reused_like_a_dense_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("img.npy");
    npy_images(&data, 96, 8, 8);
    let run = dir.path().join("run");
    train_conv(&data, &run, &[]);
    let m = metrics(&run);
    let (first, last) = (
        m[0]["loss"].as_f64().unwrap(),
        m[11]["loss"].as_f64().unwrap(),
    );
    assert!(last < 0.7 * first, "loss {first} → {last}");
    // The weights carry the names of the equivalent nn.Sequential (ReLU and pooling counted).
    let shapes = tensor_shapes(&run.join("model.safetensors"));
    let want = [
        ("decoder.0.weight", vec![4, 4, 3, 3]),
        ("decoder.3.weight", vec![4, 4, 3, 3]),
        ("decoder.6.bias", vec![1]),
        ("decoder.6.weight", vec![1, 4, 3, 3]),
        ("encoder.0.weight", vec![4, 1, 3, 3]),
        ("encoder.3.weight", vec![4, 4, 3, 3]),
    ];
    for (name, shape) in want {
        assert!(
            shapes.iter().any(|(n, s)| n == name && *s == shape),
            "{name} {shape:?} not in {shapes:?}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        run.to_str().unwrap(),
        "--data",
        &format!("npy:{}", data.display()),
        "--json",
    ]))
    .unwrap();
    assert!(json["mse"].as_f64().unwrap() < first, "{json}");
    assert!(json["mean_jacobian_norm"].as_f64().unwrap() > 0.0, "{json}");
    // ‖J_f(x)‖_F against central differences through `ae encode`, every example and pixel, on
    // the images with a small dither: two-valued images tie inside pooling windows, where a
    // difference quotient sees half of the (sub)gradient.
    let (dithered, fd) = fd_jacobian_norm(dir.path(), &data, &run);
    let on_dithered: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        run.to_str().unwrap(),
        "--data",
        &format!("npy:{}", dithered.display()),
        "--json",
    ]))
    .unwrap();
    let want = on_dithered["mean_jacobian_norm"].as_f64().unwrap();
    assert!(
        (want - fd).abs() < 0.02 * fd,
        "eval ‖J‖ {want} vs finite differences {fd}"
    );
    // The code is the last feature map, channels first: 4 channels of 2×2.
    let codes = dir.path().join("codes.npy");
    ok(&[
        "encode",
        run.to_str().unwrap(),
        "--data",
        &format!("npy:{}", data.display()),
        "--out",
        codes.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(npy_shape(&codes), "96, 16");
    let png = dir.path().join("rec.png");
    ok(&[
        "reconstruct",
        run.to_str().unwrap(),
        "--data",
        &format!("npy:{}", data.display()),
        "--out",
        png.to_str().unwrap(),
        "--force",
    ]);
    // 16 examples, 8 to a row, each 8×8 image drawn 4× with 2-pixel gaps: two blocks of
    // originals above reconstructions, a gap between blocks.
    let img = image::open(&png).unwrap().to_luma8();
    assert_eq!((img.width(), img.height()), (8 * 34 + 2, 4 * 34 + 2 + 4));
    // Reconstruction tiles are drawn, not left blank: their pixels vary.
    let tile: Vec<u8> = (0..32)
        .map(|y| img.get_pixel(2 + y % 32, 36 + y).0[0])
        .collect();
    assert!(tile.iter().max() > tile.iter().min(), "{tile:?}");
}

#[test]
fn transposed_decoder_with_a_dense_code_and_denoising() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("img.npy");
    npy_images(&data, 64, 8, 8);
    let run = dir.path().join("run");
    train_conv(
        &data,
        &run,
        &[
            "--decoder",
            "transpose",
            "--code",
            "5",
            "--noise",
            "mask:0.2",
        ],
    );
    let shapes = tensor_shapes(&run.join("model.safetensors"));
    // Flatten is encoder.6 and the dense code encoder.7; the decoder's transposed convs are
    // (in, out, kh, kw).
    for (name, shape) in [
        ("encoder.7.weight", vec![5, 16]),
        ("decoder.0.weight", vec![16, 5]),
        ("decoder.3.weight", vec![4, 4, 3, 3]),
        ("decoder.7.weight", vec![1, 4, 3, 3]),
    ] {
        assert!(
            shapes.iter().any(|(n, s)| n == name && *s == shape),
            "{name} {shape:?} not in {shapes:?}"
        );
    }
    let codes = dir.path().join("codes.npy");
    ok(&[
        "encode",
        run.to_str().unwrap(),
        "--data",
        &format!("npy:{}", data.display()),
        "--out",
        codes.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(npy_shape(&codes), "64, 5");
    // The run's config.toml repeats it.
    let text = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        text.contains("arch = \"conv\"") && text.contains("decoder = \"transpose\""),
        "{text}"
    );
}

#[test]
fn data_a_conv_model_cannot_take_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let csv = format!("csv:{}", csv_data(dir.path()).display());
    let out = dir.path().join("run");
    let out = out.to_str().unwrap();
    let err = fails(&[
        "train", "--data", &csv, "--arch", "conv", "--out", out, "--quiet",
    ]);
    assert!(
        err.contains("image data shaped (channels, height, width)"),
        "{err}"
    );
    // Two pooling stages need sides divisible by 4.
    let npy = dir.path().join("six.npy");
    npy_images(&npy, 10, 6, 6);
    let spec = format!("npy:{}", npy.display());
    let err = fails(&[
        "train", "--data", &spec, "--arch", "conv", "--out", out, "--quiet",
    ]);
    assert!(
        err.contains("multiples of 4") && err.contains("6×6"),
        "{err}"
    );
    let err = fails(&[
        "train", "--data", &spec, "--arch", "conv", "--kernel", "4", "--out", out, "--quiet",
    ]);
    assert!(err.contains("kernel") && err.contains("odd"), "{err}");
    let err = fails(&[
        "train",
        "--data",
        &spec,
        "--arch",
        "conv",
        "--contractive",
        "0.1",
        "--out",
        out,
    ]);
    assert!(err.contains("contractive"), "{err}");
    assert!(!Path::new(out).join("model.safetensors").exists());
}

#[test]
fn colour_image_folders_and_cifar10_train_conv_models() {
    let dir = tempfile::tempdir().unwrap();
    // Two classes of 8×8 colour images: reddish and bluish, with a varying bright column.
    for (class, base) in [("blue", [10u8, 30, 200]), ("red", [200, 20, 10])] {
        let sub = dir.path().join("imgs").join(class);
        std::fs::create_dir_all(&sub).unwrap();
        for i in 0..24u32 {
            image::RgbImage::from_fn(8, 8, |x, _| {
                if x == i % 8 {
                    image::Rgb([250, 250, 250])
                } else {
                    image::Rgb(base)
                }
            })
            .save(sub.join(format!("{i}.png")))
            .unwrap();
        }
    }
    let run = dir.path().join("run");
    let spec = format!("images:{}", dir.path().join("imgs").display());
    ok(&[
        "train",
        "--data",
        &spec,
        "--arch",
        "conv",
        "--channels",
        "6",
        "--epochs",
        "15",
        "--batch-size",
        "8",
        "--lr",
        "0.01",
        "--val-fraction",
        "0",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["input_shape"], serde_json::json!([3, 8, 8]));
    assert_eq!(meta["flavor"], "conv");
    let m = metrics(&run);
    let (first, last) = (
        m[0]["loss"].as_f64().unwrap(),
        m[14]["loss"].as_f64().unwrap(),
    );
    assert!(last < 0.5 * first, "loss {first} → {last}");

    // CIFAR-10's binary layout: five training batches and a test batch (tiny here).
    let cifar = dir.path().join("cifar");
    std::fs::create_dir(&cifar).unwrap();
    for (name, n) in [
        ("data_batch_1.bin", 6),
        ("data_batch_2.bin", 6),
        ("data_batch_3.bin", 6),
        ("data_batch_4.bin", 6),
        ("data_batch_5.bin", 6),
        ("test_batch.bin", 4),
    ] {
        let mut bytes = Vec::new();
        for i in 0..n {
            bytes.push((i % 10) as u8);
            bytes.extend((0..3072).map(|p| ((p / 1024) * 60 + (p % 32) * 3 + i) as u8));
        }
        std::fs::write(cifar.join(name), bytes).unwrap();
    }
    let run = dir.path().join("cifar-run");
    let out = ok(&[
        "train",
        "--data",
        &format!("cifar10:{}", cifar.display()),
        "--arch",
        "conv",
        "--channels",
        "4,4",
        "--epochs",
        "2",
        "--batch-size",
        "10",
        "--val-fraction",
        "0",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["eval", run.to_str().unwrap(), "--json"])).unwrap();
    // Evaluated on the test split: 4 examples.
    assert_eq!(json["n"], 4, "{out} {json}");
    std::fs::remove_file(cifar.join("test_batch.bin")).unwrap();
    let err = fails(&["eval", run.to_str().unwrap()]);
    assert!(
        err.contains("test_batch.bin") && err.contains("missing"),
        "{err}"
    );
}
