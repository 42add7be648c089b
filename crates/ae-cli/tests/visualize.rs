//! `ae visualize`: pictures from a run folder.
mod common;

use common::{csv_data, fails, npy_images, ok};

#[test]
fn filters_and_reconstructions_of_dense_and_conv_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("img.npy");
    npy_images(&data, 40, 8, 8);
    let spec = format!("npy:{}", data.display());
    let pca = dir.path().join("pca");
    ok(&[
        "pca",
        "--data",
        &spec,
        "-k",
        "5",
        "--out",
        pca.to_str().unwrap(),
    ]);
    let png = dir.path().join("f.png");
    let p = png.to_str().unwrap();
    ok(&[
        "visualize",
        pca.to_str().unwrap(),
        "--what",
        "filters",
        "--out",
        p,
        "--force",
    ]);
    let img = image::open(&png).unwrap().to_rgb8();
    // Five 8×8 tiles zoomed 4× in one row, 2-pixel gaps.
    assert_eq!((img.width(), img.height()), (5 * (32 + 2) + 2, 32 + 2 + 4));
    // Each filter is scaled to its own range: every tile holds black and white.
    let tile: Vec<u8> = (0..32)
        .flat_map(|y| (0..32).map(move |x| (x, y)))
        .map(|(x, y)| img.get_pixel(2 + x, 2 + y)[0])
        .collect();
    assert_eq!(
        (tile.iter().min(), tile.iter().max()),
        (Some(&0), Some(&255))
    );

    let conv = dir.path().join("conv");
    ok(&[
        "train",
        "--data",
        &spec,
        "--arch",
        "conv",
        "--channels",
        "3",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        conv.to_str().unwrap(),
    ]);
    ok(&[
        "visualize",
        conv.to_str().unwrap(),
        "--what",
        "filters",
        "--out",
        p,
        "--force",
        "--n",
        "2",
    ]);
    let img = image::open(&png).unwrap();
    // Two 3×3 kernels, zoomed 13× (kernels are drawn about 40 pixels wide).
    assert_eq!((img.width(), img.height()), (2 * (39 + 2) + 2, 39 + 2 + 4));
    ok(&[
        "visualize",
        conv.to_str().unwrap(),
        "--what",
        "reconstructions",
        "--out",
        p,
        "--force",
    ]);
    assert!(image::open(&png).unwrap().height() > 2 * 32);

    let table = dir.path().join("t");
    let csv = format!("csv:{}", csv_data(dir.path()).display());
    ok(&[
        "train",
        "--data",
        &csv,
        "--hidden",
        "3",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        table.to_str().unwrap(),
    ]);
    let err = fails(&[
        "visualize",
        table.to_str().unwrap(),
        "--what",
        "filters",
        "--out",
        p,
        "--force",
    ]);
    assert!(err.contains("1 or 3 channels"), "{err}");
}

#[test]
fn top_activations_and_activation_maxima_of_code_units() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::idx_labeled(dir.path(), 120);
    let run = dir.path().join("ae");
    let r = run.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        &spec,
        "--hidden",
        "16,6",
        "--activation",
        "tanh",
        "--epochs",
        "3",
        "--out",
        r,
        "--threads",
        "1",
        "--quiet",
    ]);
    let png = dir.path().join("t.png");
    let p = png.to_str().unwrap();
    ok(&[
        "visualize",
        r,
        "--what",
        "top-activations",
        "--n",
        "3",
        "--k",
        "5",
        "--out",
        p,
        "--force",
    ]);
    let img = image::open(&png).unwrap().to_rgb8();
    // One row per unit, five 8×8 tiles zoomed 4× per row, 2-pixel gaps.
    assert_eq!((img.width(), img.height()), (5 * 34 + 2, 3 * (34 + 2) + 2));
    // Asking for more units than the code has draws the code's six.
    ok(&[
        "visualize",
        r,
        "--what",
        "top-activations",
        "--n",
        "50",
        "--k",
        "2",
        "--out",
        p,
        "--force",
    ]);
    assert_eq!(image::open(&png).unwrap().height(), 6 * 36 + 2);
    ok(&[
        "visualize",
        r,
        "--what",
        "activation-max",
        "--n",
        "4",
        "--steps",
        "20",
        "--out",
        p,
        "--force",
    ]);
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (4 * 34 + 2, 34 + 2 + 2));
    // Table data has no picture to draw; the error says so.
    let csv = csv_data(dir.path());
    let tab = dir.path().join("tab");
    ok(&[
        "train",
        "--data",
        &format!("csv:{}", csv.display()),
        "--hidden",
        "3",
        "--epochs",
        "1",
        "--out",
        tab.to_str().unwrap(),
        "--quiet",
    ]);
    let err = fails(&[
        "visualize",
        tab.to_str().unwrap(),
        "--what",
        "activation-max",
        "--out",
        p,
        "--force",
    ]);
    assert!(err.contains("image data"), "{err}");
}
