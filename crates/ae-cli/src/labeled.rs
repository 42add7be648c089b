//! Labelled training and test data for the commands that reuse a run (probe, classify, anomaly),
//! scaled the way the run was trained.
use std::path::{Path, PathBuf};

use ae_core::run::{RunDir, RunMeta};
use ae_core::training::settings::Settings;
use ae_core::Tensor;
use ae_data::datasets::Split;
use anyhow::{bail, Context, Result};

use crate::data;

/// Examples with one label each.
pub struct Labeled {
    /// Scaled inputs, `[N, ..input_shape]`.
    pub x: Tensor,
    /// One class per example.
    pub labels: Vec<u32>,
}

/// A run's labelled training and test data.
pub struct Splits {
    /// The training split.
    pub train: Labeled,
    /// The test split (named data sets), or a seeded share held out of the data.
    pub test: Labeled,
    /// Number of classes (largest label + 1).
    pub classes: usize,
}

/// Opens `run` and reads its settings and metadata.
pub fn open_run(run: &Path) -> Result<(RunDir, Settings, RunMeta)> {
    let dir = RunDir::open(run)?;
    let settings = dir
        .read_settings()
        .with_context(|| format!("cannot read the run in {}", run.display()))?;
    let meta = dir.read_meta()?;
    Ok((dir, settings, meta))
}

/// Loads `data` (default: the run's own), with labels, scaled by the run's scaler. Data without a
/// test split has `test_fraction` of it held out (drawn with `seed`) as the test split.
pub fn load_splits(
    (settings, meta): (&Settings, &RunMeta),
    data: &str,
    data_dir: Option<PathBuf>,
    test_fraction: f32,
    seed: u64,
) -> Result<Splits> {
    let spec = data::parse_spec(data)?;
    let csv = settings.csv_options()?;
    let classes = &settings.classes;
    let mut train = data::load_with(&spec, data_dir.clone(), Split::Train, false, &csv)?
        .only_classes(classes)?;
    let mut test = if spec.has_test_split() {
        Some(data::load_with(&spec, data_dir, Split::Test, true, &csv)?.only_classes(classes)?)
    } else {
        None
    };
    if train.shape.iter().product::<usize>() != meta.input_shape.iter().product::<usize>() {
        bail!(
            "{data} has examples of shape {:?} but the model takes {:?}",
            train.shape,
            meta.input_shape
        );
    }
    if test.is_none() {
        let (rest, held) = ae_core::run::split_validation(&mut train, test_fraction, seed);
        let Some(held) = held else {
            bail!("{data} has no test split and too few examples ({}) to hold {test_fraction} of them out", rest.n);
        };
        train = rest;
        test = Some(held);
    }
    let mut test = test.expect("set above");
    meta.scaler.transform(&mut train)?;
    meta.scaler.transform(&mut test)?;
    let take = |s: ae_data::samples::Samples, what: &str| -> Result<Labeled> {
        let Some(labels) = s.labels.clone() else {
            bail!("{data} has no labels ({what} split); this command needs one class per example (e.g. idx:IMAGES,LABELS, or a named data set)");
        };
        let mut x = data::to_tensor(s);
        let mut shape = vec![x.rows()];
        shape.extend(&meta.input_shape);
        x = Tensor::from_vec(&shape, x.into_vec());
        Ok(Labeled { x, labels })
    };
    let train = take(train, "training")?;
    let test = take(test, "test")?;
    let classes = train
        .labels
        .iter()
        .chain(&test.labels)
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(0);
    if classes < 2 {
        bail!("{data}: a classifier needs at least two classes, the labels hold {classes}");
    }
    if classes > 100_000 {
        bail!(
            "{data}: labels go up to {}, too many classes for a softmax head",
            classes - 1
        );
    }
    Ok(Splits {
        train,
        test,
        classes,
    })
}
