//! Tables as users have them: a label column, another delimiter, id and text columns, missing
//! cells filled without touching the observed ones, and outputs that never replace inputs.
mod common;

use std::path::Path;

use common::{ae, fails, ok};

/// 240 rows: an id, 6 features near a 2-dimensional plane, a text column and a class (1 for the
/// rows whose first latent factor is positive), joined by `sep`.
fn table(path: &Path, sep: &str) {
    let mut s = ["id", "a", "b", "c", "d", "e", "f", "city", "class"].join(sep) + "\n";
    for i in 0..240 {
        let (u, v) = ((i as f32 * 0.37).sin(), (i as f32 * 0.13).cos());
        let f: Vec<String> = (0..6)
            .map(|j| {
                format!(
                    "{:.4}",
                    u * (1.0 + 0.2 * j as f32) + v * (0.5 - 0.1 * j as f32)
                )
            })
            .collect();
        let city = ["Lyon", "Oslo", "Kyiv"][i % 3];
        s += &format!(
            "r{i}{sep}{}{sep}{city}{sep}{}\n",
            f.join(sep),
            (u > 0.0) as u8
        );
    }
    std::fs::write(path, s).unwrap();
}

fn train(data: &str, run: &Path, extra: &[&str]) -> String {
    let r = run.to_str().unwrap();
    let base = [
        "train",
        "--data",
        data,
        "--hidden",
        "16,2",
        "--epochs",
        "40",
        "--batch-size",
        "32",
        "--threads",
        "1",
        "--quiet",
        "--out",
        r,
    ];
    let o = ae(&[&base[..], extra].concat());
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "train {extra:?}:\n{err}");
    err
}

#[test]
fn a_label_column_ids_text_and_semicolons_and_the_commands_that_use_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    table(&path, ";");
    let spec = format!("csv:{}", path.display());
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();

    // An id column is not taken for a category: the error names it and the way out.
    let err = fails(&["train", "--data", &spec, "--out", r, "--epochs", "1"]);
    assert!(
        err.contains("`r0` is not a number")
            && err.contains("every value of column `id` differs")
            && err.contains("ignore-columns id"),
        "{err}"
    );
    assert!(!run.exists(), "a refused start left a folder");

    let said = train(
        &spec,
        &run,
        &["--label-column", "class", "--ignore-columns", "id,city"],
    );
    assert!(said.contains("training 6-16-2-16-6"), "{said}");
    assert!(said.contains("rows/s") && !said.contains("img/s"), "{said}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("label-column = \"class\""), "{config}");

    // The run remembers how its table is read: eval, probe and the one-class protocol use it.
    assert!(ok(&["eval", r]).contains("examples          24"));
    let probe = ok(&["probe", r]);
    let codes = probe
        .lines()
        .find(|l| l.starts_with("autoencoder codes"))
        .unwrap_or_else(|| panic!("{probe}"));
    let acc: f64 = codes.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(
        acc > 0.8,
        "a linear probe on the codes of a separable table: {probe}"
    );
    let one: serde_json::Value = serde_json::from_str(&ok(&[
        "anomaly",
        r,
        "--normal-class",
        "1",
        "--json",
        "--quiet",
    ]))
    .unwrap();
    assert!(one.to_string().contains("auroc"), "{one}");
    // A classifier keeps the table's reading: `ae predict` on the same file takes the labels
    // from `class` and leaves `id` and `city` out.
    let clf = dir.path().join("clf");
    let c = clf.to_str().unwrap();
    ok(&["classify", r, "--epochs", "30", "--out", c, "--quiet"]);
    let labels = dir.path().join("labels.csv");
    let said = ok(&[
        "predict",
        c,
        "--data",
        &spec,
        "--out",
        labels.to_str().unwrap(),
    ]);
    assert!(
        said.contains("240 predictions") && said.contains("accuracy"),
        "{said}"
    );

    // A label column that is not there is named with the columns that are.
    let err = fails(&[
        "train",
        "--data",
        &spec,
        "--out",
        dir.path().join("x").to_str().unwrap(),
        "--label-column",
        "klass",
    ]);
    assert!(
        err.contains("no label column `klass`") && err.contains("`class`"),
        "{err}"
    );
    let err = fails(&[
        "train",
        "--data",
        &spec,
        "--out",
        dir.path().join("x").to_str().unwrap(),
        "--delimiter",
        "ab",
    ]);
    assert!(err.contains("invalid --delimiter"), "{err}");
}

#[test]
fn tab_separated_files_are_detected_and_match_the_comma_separated_run() {
    let dir = tempfile::tempdir().unwrap();
    let (tab, comma) = (dir.path().join("t.tsv"), dir.path().join("t.csv"));
    table(&tab, "\t");
    table(&comma, ",");
    let flags = ["--label-column", "8", "--ignore-columns", "0,7"];
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    train(&format!("csv:{}", tab.display()), &a, &flags);
    train(&format!("csv:{}", comma.display()), &b, &flags);
    assert_eq!(
        std::fs::read(a.join("model.safetensors")).unwrap(),
        std::fs::read(b.join("model.safetensors")).unwrap(),
        "the same table with another delimiter trained another model"
    );
}

#[test]
fn impute_fills_only_the_missing_cells_and_copies_the_rest_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.csv");
    table(&full, ",");
    let run = dir.path().join("run");
    train(
        &format!("csv:{}", full.display()),
        &run,
        &["--label-column", "class", "--ignore-columns", "id,city"],
    );
    // Values that a float round trip would respell (0.03003 → 0.030029997), and holes.
    let text = std::fs::read_to_string(&full).unwrap();
    let mut holes = 0;
    let gappy: String = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
            if i > 0 {
                cells[2] = "0.03003".into();
                if i % 7 == 0 {
                    cells[1 + i % 6] = String::new();
                    holes += 1;
                }
            }
            cells.join(",") + "\n"
        })
        .collect();
    let src = dir.path().join("gappy.csv");
    std::fs::write(&src, &gappy).unwrap();
    let out = dir.path().join("filled.csv");
    ok(&[
        "impute",
        run.to_str().unwrap(),
        "--data",
        &format!("csv:{}", src.display()),
        "--out",
        out.to_str().unwrap(),
    ]);
    let filled = std::fs::read_to_string(&out).unwrap();
    let mut seen = 0;
    for (a, b) in gappy.lines().zip(filled.lines()) {
        for (x, y) in a.split(',').zip(b.split(',')) {
            if x.is_empty() {
                let v: f64 = y.parse().unwrap_or_else(|_| panic!("not filled: {b}"));
                assert!(v.is_finite() && (-3.0..3.0).contains(&v), "{b}");
                seen += 1;
            } else {
                assert_eq!(x, y, "an observed cell changed: {a} → {b}");
            }
        }
    }
    assert_eq!((seen, filled.lines().count()), (holes, 241));
}

#[test]
fn outputs_never_replace_inputs_and_existing_files_need_force() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("t.csv");
    table(&data, ",");
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let spec = format!("csv:{}", data.display());
    train(
        &spec,
        &run,
        &["--label-column", "class", "--ignore-columns", "id,city"],
    );
    let before = std::fs::read(&data).unwrap();
    for force in [false, true] {
        let mut args = vec![
            "reconstruct",
            r,
            "--data",
            &spec,
            "--out",
            data.to_str().unwrap(),
        ];
        if force {
            args.push("--force");
        }
        let err = fails(&args);
        assert!(err.contains("input data"), "{err}");
    }
    // The run's own data, when --data is left out, is an input too.
    let err = fails(&["encode", r, "--out", data.to_str().unwrap(), "--force"]);
    assert!(err.contains("input data"), "{err}");
    assert_eq!(std::fs::read(&data).unwrap(), before, "the input changed");
    let inside = run.join("model.safetensors");
    let err = fails(&["encode", r, "--out", inside.to_str().unwrap(), "--force"]);
    assert!(err.contains("inside the run folder"), "{err}");

    let codes = dir.path().join("codes.csv");
    let c = codes.to_str().unwrap();
    ok(&["encode", r, "--out", c]);
    std::fs::write(&codes, "mine").unwrap();
    let err = fails(&["encode", r, "--out", c]);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&codes).unwrap(), "mine");
    ok(&["encode", r, "--out", c, "--force"]);
    assert!(std::fs::read_to_string(&codes)
        .unwrap()
        .starts_with("code_0"));
}

#[test]
fn training_on_incomplete_rows_with_missing_allow_beats_column_means_in_impute() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.csv");
    table(&full, ",");
    // Every 5th feature cell (by a fixed pattern) removed: no row is complete.
    let text = std::fs::read_to_string(&full).unwrap();
    let mut truth = Vec::new();
    let gappy: String = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
            if i > 0 {
                let j = 1 + (i * 7) % 6;
                truth.push((i, j, cells[j].parse::<f64>().unwrap()));
                cells[j] = String::new();
            }
            cells.join(",") + "\n"
        })
        .collect();
    let src = dir.path().join("gappy.csv");
    std::fs::write(&src, &gappy).unwrap();
    let spec = format!("csv:{}", src.display());
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let flags = ["--label-column", "class", "--ignore-columns", "id,city"];
    let err = fails(&[&["train", "--data", &spec, "--out", r][..], &flags[..]].concat());
    assert!(
        err.contains("--missing allow") && err.contains("empty cell"),
        "{err}"
    );
    train(
        &spec,
        &run,
        &[&flags[..], &["--missing", "allow", "--epochs", "150"]].concat(),
    );
    // Scores need complete rows; none is, and the error says how to get them.
    let err = fails(&["eval", r]);
    assert!(
        err.contains("24 of 24 rows have missing cells") && err.contains("ae impute"),
        "{err}"
    );

    let out = dir.path().join("filled.csv");
    ok(&["impute", r, "--data", &spec, "--out", out.to_str().unwrap()]);
    let filled: Vec<Vec<String>> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    // Column means of the observed cells: the baseline every imputer must beat.
    let rows: Vec<Vec<String>> = gappy
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let mean = |j: usize| {
        let v: Vec<f64> = rows[1..].iter().filter_map(|r| r[j].parse().ok()).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (mut ae_err, mut mean_err) = (0.0, 0.0);
    for &(i, j, want) in &truth {
        let got: f64 = filled[i][j].parse().unwrap();
        ae_err += (got - want).powi(2);
        mean_err += (mean(j) - want).powi(2);
    }
    assert!(
        ae_err < 0.25 * mean_err,
        "imputed squared error {ae_err:.3} against column means' {mean_err:.3}"
    );
}

#[test]
fn a_text_column_is_one_hot_encoded_with_levels_recorded_for_later_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    table(&path, ",");
    let spec = format!("csv:{}", path.display());
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let said = train(
        &spec,
        &run,
        &["--label-column", "class", "--ignore-columns", "id"],
    );
    // 6 numbers and city's 3 levels.
    assert!(said.contains("training 9-16-2-16-9"), "{said}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains("city = [") && config.contains("\"Kyiv\""),
        "{config}"
    );
    let codes = dir.path().join("codes.csv");
    ok(&["encode", r, "--out", codes.to_str().unwrap()]);
    // New rows with a city the run never saw: refused, naming it.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("Oslo", "Rome");
    let new = dir.path().join("new.csv");
    std::fs::write(&new, text).unwrap();
    let spec2 = format!("csv:{}", new.display());
    let c2 = dir.path().join("c2.csv");
    let err = fails(&["encode", r, "--data", &spec2, "--out", c2.to_str().unwrap()]);
    assert!(
        err.contains("`Rome` is not a level of the categorical column `city`"),
        "{err}"
    );
}

#[test]
fn a_fortran_order_int64_array_as_pandas_saves_it_trains_like_the_same_table_in_c_order() {
    let dir = tempfile::tempdir().unwrap();
    // 120 rows × 5 integer columns; `df.to_numpy()` of such a frame is Fortran-ordered `<i8`.
    let (n, d) = (120usize, 5usize);
    let value = |i: usize, j: usize| ((i * 7 + j * 13) % 31) as i64 * (j as i64 + 1);
    let fortran: Vec<u8> = (0..d)
        .flat_map(|j| (0..n).map(move |i| value(i, j)))
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let c_order: Vec<u8> = (0..n)
        .flat_map(|i| (0..d).map(move |j| value(i, j) as f32))
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let shape = format!("({n}, {d})");
    let mut bytes = common::npy_bytes("<i8", &shape, &fortran);
    let at = bytes.windows(5).position(|w| w == b"False").unwrap();
    bytes[at..at + 5].copy_from_slice(b"True "); // same length: the header stays aligned
    let (a, b) = (dir.path().join("f.npy"), dir.path().join("c.npy"));
    std::fs::write(&a, bytes).unwrap();
    std::fs::write(&b, common::npy_bytes("<f4", &shape, &c_order)).unwrap();
    let (ra, rb) = (dir.path().join("ra"), dir.path().join("rb"));
    train(&format!("npy:{}", a.display()), &ra, &[]);
    train(&format!("npy:{}", b.display()), &rb, &[]);
    assert_eq!(
        std::fs::read(ra.join("model.safetensors")).unwrap(),
        std::fs::read(rb.join("model.safetensors")).unwrap(),
        "the Fortran int64 array was read differently from its C-order float copy"
    );
}

#[test]
fn columns_picks_the_features_and_later_commands_read_the_same_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    table(&path, ",");
    let spec = format!("csv:{}", path.display());
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    // Only b, c and e (the id and the text column are never read, so need no --ignore-columns).
    train(
        &spec,
        &run,
        &[
            "--columns",
            "e,b,c",
            "--label-column",
            "class",
            "--hidden",
            "2",
        ],
    );
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let listed: String = config
        .split("\ncolumns = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(listed, "\"e\",\"b\",\"c\",", "{config}");
    let rec = dir.path().join("rec.csv");
    ok(&["reconstruct", r, "--out", rec.to_str().unwrap()]);
    let text = std::fs::read_to_string(&rec).unwrap();
    let header = text.lines().next().unwrap();
    assert_eq!(
        header.split(',').filter(|c| !c.is_empty()).count(),
        3,
        "{header}"
    );
    // With --ignore-columns it is refused, naming both.
    let err = fails(&[
        "train",
        "--data",
        &spec,
        "--columns",
        "a",
        "--ignore-columns",
        "id",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(
        err.contains("--columns") && err.contains("--ignore-columns"),
        "{err}"
    );
}

#[test]
fn missing_allow_shows_a_dense_encoder_which_cells_are_missing_unless_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.csv");
    table(&full, ",");
    let gappy: String = std::fs::read_to_string(&full)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut cells: Vec<&str> = line.split(',').collect();
            if i > 0 {
                cells[1 + (i * 5) % 6] = "";
            }
            cells.join(",") + "\n"
        })
        .collect();
    let src = dir.path().join("gappy.csv");
    std::fs::write(&src, gappy).unwrap();
    let spec = format!("csv:{}", src.display());
    let flags = [
        "--label-column",
        "class",
        "--ignore-columns",
        "id,city",
        "--missing",
        "allow",
    ];
    let (with, without) = (dir.path().join("with"), dir.path().join("without"));
    train(&spec, &with, &flags);
    train(
        &spec,
        &without,
        &[&flags[..], &["--missing-indicator", "false"]].concat(),
    );
    // Six feature columns: with indicators the first layer reads six values and six flags.
    let first = |run: &Path| {
        let shapes = common::tensor_shapes(&run.join("model.safetensors"));
        let (_, shape) = shapes
            .into_iter()
            .find(|(n, _)| n == "encoder.0.weight")
            .unwrap();
        shape
    };
    assert_eq!(first(&with), vec![16, 12]);
    assert_eq!(first(&without), vec![16, 6]);
    let config = std::fs::read_to_string(without.join("config.toml")).unwrap();
    assert!(config.contains("missing-indicator = false"), "{config}");

    // A run with indicators fills in one pass and says so when asked for more; one without
    // iterates from column means.
    let out = dir.path().join("filled.csv");
    let o = out.to_str().unwrap();
    let w = with.to_str().unwrap();
    let err = fails(&[
        "impute",
        w,
        "--data",
        &spec,
        "--out",
        o,
        "--iterations",
        "3",
    ]);
    assert!(
        err.contains("one pass") && err.contains("--iterations"),
        "{err}"
    );
    assert!(!out.exists());
    ok(&["impute", w, "--data", &spec, "--out", o]);
    let filled = std::fs::read_to_string(&out).unwrap();
    assert!(
        !filled.lines().skip(1).any(|l| l.contains(",,")),
        "{filled}"
    );
    let wo = without.to_str().unwrap();
    ok(&[
        "impute",
        wo,
        "--data",
        &spec,
        "--out",
        o,
        "--iterations",
        "3",
        "--force",
    ]);
    // Codes and reconstructions of the incomplete rows, which only a run with indicators takes.
    let codes = dir.path().join("codes.csv");
    let c = codes.to_str().unwrap();
    ok(&["encode", w, "--data", &spec, "--out", c]);
    let text = std::fs::read_to_string(&codes).unwrap();
    assert_eq!(text.lines().count(), 241);
    for line in text.lines().skip(1) {
        assert!(
            line.split(',')
                .all(|v| v.parse::<f64>().unwrap().is_finite()),
            "{line}"
        );
    }
    ok(&["reconstruct", w, "--data", &spec, "--out", c, "--force"]);
    let text = std::fs::read_to_string(&codes).unwrap();
    assert!(text
        .lines()
        .skip(1)
        .all(|l| l.split(',').count() == 6 && !l.contains("NaN")));
    let err = fails(&["encode", wo, "--data", &spec, "--out", c, "--force"]);
    assert!(
        err.contains("missing cells") && err.contains("ae impute"),
        "{err}"
    );
    // Validation scores (anomaly thresholds) are of complete rows, so they are numbers.
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(with.join("val_scores.json")).unwrap())
            .unwrap();
    assert!(scores["scores"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v.as_f64().is_some_and(f64::is_finite)));
    let config = std::fs::read_to_string(with.join("config.toml")).unwrap();
    assert!(config.contains("missing-indicator = true"), "{config}");
    // A run from before indicators existed has no key: it reads back as without them.
    let config = std::fs::read_to_string(without.join("config.toml")).unwrap();
    std::fs::write(
        without.join("config.toml"),
        config.replace("missing-indicator = false\n", ""),
    )
    .unwrap();
    ok(&["impute", wo, "--data", &spec, "--out", o, "--force"]);
    // Indicators go in front of dense, untied encoders only.
    let tied = dir.path().join("tied");
    train(&spec, &tied, &[&flags[..], &["--tied"]].concat());
    assert_eq!(first(&tied), vec![16, 6]);
}
