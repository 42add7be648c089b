//! `ae pca` writes a run that the other commands read like a trained model.
mod common;

use common::{fails, npy_images, ok};

#[test]
fn pca_run_is_a_linear_autoencoder_the_other_commands_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("img.npy");
    npy_images(&data, 60, 8, 8);
    let spec = format!("npy:{}", data.display());
    let run = dir.path().join("pca");
    let r = run.to_str().unwrap();
    let out = ok(&[
        "pca",
        "--data",
        &spec,
        "--components",
        "4",
        "--out",
        r,
        "--threads",
        "1",
    ]);
    assert!(out.contains("explained variance ratio"), "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("pca.json")).unwrap()).unwrap();
    let ratio: Vec<f64> = report["explained_variance_ratio"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(ratio.len(), 4);
    assert!(ratio.windows(2).all(|w| w[0] >= w[1]) && ratio.iter().sum::<f64>() <= 1.0 + 1e-9);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["flavor"], "pca");
    let eval = |r: &str| -> serde_json::Value {
        serde_json::from_str(&ok(&["eval", r, "--data", &spec, "--json"])).unwrap()
    };
    let m4 = eval(r);
    // Orthonormal encoder rows: ‖J‖_F = √k exactly.
    assert!(
        (m4["mean_jacobian_norm"].as_f64().unwrap() - 2.0).abs() < 1e-3,
        "{m4}"
    );
    // More components reconstruct better; the unexplained share of the variance is the error.
    let run8 = dir.path().join("pca8");
    ok(&[
        "pca",
        "--data",
        &spec,
        "-k",
        "8",
        "--out",
        run8.to_str().unwrap(),
    ]);
    let m8 = eval(run8.to_str().unwrap());
    assert!(
        m8["mse"].as_f64().unwrap() < m4["mse"].as_f64().unwrap(),
        "{m4} {m8}"
    );
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
    let text = std::fs::read_to_string(&codes).unwrap();
    assert_eq!(
        text.lines().filter(|l| !l.is_empty()).count(),
        60 + 1,
        "{text:.200}"
    );
    // An existing run is kept unless --force.
    let err = fails(&["pca", "--data", &spec, "-k", "2", "--out", r]);
    assert!(err.contains("--force"), "{err}");
    let err = fails(&[
        "pca",
        "--data",
        &spec,
        "-k",
        "65",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(err.contains("components") && err.contains("64"), "{err}");
    // Compare: the 4-component subspace contains the 4-component one of the other run, and the
    // 8-component one contains it too: every principal angle is 0.
    let cmp: serde_json::Value = serde_json::from_str(&ok(&[
        "compare",
        r,
        run8.to_str().unwrap(),
        "--data",
        &spec,
        "--json",
    ]))
    .unwrap();
    let angles = cmp["principal_angles_deg"].as_array().unwrap();
    assert_eq!(angles.len(), 4, "{cmp}");
    assert!(angles.iter().all(|a| a.as_f64().unwrap() < 0.01), "{cmp}");
    assert_eq!(cmp["a"]["metrics"]["mse"], m4["mse"]);
    let text = ok(&["compare", r, run8.to_str().unwrap(), "--data", &spec]);
    assert!(
        text.contains("principal angles") && text.contains("pca"),
        "{text}"
    );
}

#[test]
fn compare_says_when_angles_do_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("img.npy");
    npy_images(&data, 40, 8, 8);
    let spec = format!("npy:{}", data.display());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&[
        "pca",
        "--data",
        &spec,
        "-k",
        "3",
        "--out",
        a.to_str().unwrap(),
    ]);
    ok(&[
        "train",
        "--data",
        &spec,
        "--hidden",
        "3",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        b.to_str().unwrap(),
    ]);
    let text = ok(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(
        text.contains("only for two linear one-layer maps"),
        "{text}"
    );
    let cmp: serde_json::Value = serde_json::from_str(&ok(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert!(cmp["principal_angles_deg"].is_null(), "{cmp}");
}
