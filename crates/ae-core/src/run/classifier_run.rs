//! A classifier's run folder, written by `ae classify` and read by `ae predict`:
//!
//! | file | holds |
//! |---|---|
//! | `classifier.json` | [`ClassifierMeta`]: format version, architecture, scaling, how it was trained, test accuracy |
//! | `model.safetensors` | encoder (`encoder.*`, the autoencoder's names) and head (`head.*`) weights |
use std::path::{Path, PathBuf};

use ae_data::scaling::Scaler;
use serde::{Deserialize, Serialize};

use crate::analysis::classifier::{Classifier, ClassifierConfig};
use crate::run::check_shapes;
use crate::run::io::{load_params_from, read_safetensors, save_params, write_atomic};
use crate::{Error, Result};

const META: &str = "classifier.json";
const MODEL: &str = "model.safetensors";

/// What a classifier folder says about its model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierMeta {
    /// [`crate::run::FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// The architecture.
    pub config: ClassifierConfig,
    /// Scaling of the inputs (the autoencoder's).
    pub scaler: Scaler,
    /// The autoencoder run the encoder came from.
    pub source_run: PathBuf,
    /// The data it was trained on.
    pub data: String,
    /// `scratch`, `frozen`, `fine-tuned` or `semi-supervised`.
    pub mode: String,
    /// Labelled examples per class it saw (none: all).
    pub labels_per_class: Option<usize>,
    /// Number of labelled training examples.
    pub examples: usize,
    /// Training epochs.
    pub epochs: usize,
    /// Seed of the head's initialization, the labelled subset and the batches.
    pub seed: u64,
    /// Accuracy on the test data, when there was one.
    pub test_accuracy: Option<f64>,
    /// The autoencoder run's settings, so that data is read as it read it (a table's label,
    /// ignored and categorical columns, its delimiter); absent in folders written before.
    #[serde(default)]
    pub settings: Option<crate::training::settings::Settings>,
}

/// A classifier folder on disk.
#[derive(Clone, Debug)]
pub struct ClassifierDir {
    path: PathBuf,
}

impl ClassifierDir {
    /// Writes `model` and `meta` into `path` (created if needed); an existing classifier there is
    /// replaced only with `force`. Weights are written before the metadata that points at them.
    pub fn save(
        path: &Path,
        force: bool,
        model: &Classifier,
        meta: &ClassifierMeta,
    ) -> Result<Self> {
        if path.join(META).exists() && !force {
            return Err(Error::RunExists {
                path: path.to_path_buf(),
            });
        }
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        save_params(&path.join(MODEL), &model.params, Default::default())?;
        let json = serde_json::to_vec_pretty(meta).expect("metadata serializes");
        write_atomic(&path.join(META), &json)?;
        Ok(ClassifierDir {
            path: path.to_path_buf(),
        })
    }

    /// Opens a classifier folder (it must have `classifier.json`).
    pub fn open(path: &Path) -> Result<Self> {
        if !path.join(META).is_file() {
            return Err(Error::format(
                path,
                "not a classifier folder: it has no classifier.json (make one with `ae classify`)",
            ));
        }
        Ok(ClassifierDir {
            path: path.to_path_buf(),
        })
    }

    /// Reads the metadata and builds the classifier with its saved weights; the weights are checked
    /// against the architecture before anything is built.
    pub fn load(&self) -> Result<(ClassifierMeta, Classifier)> {
        let meta_path = self.path.join(META);
        let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
        let meta: ClassifierMeta =
            serde_json::from_str(&text).map_err(|e| Error::format(&meta_path, e.to_string()))?;
        if meta.format_version > crate::run::FORMAT_VERSION {
            return Err(Error::format(
                &meta_path,
                format!(
                    "written by a newer ae (format {}; this one reads up to {})",
                    meta.format_version,
                    crate::run::FORMAT_VERSION
                ),
            ));
        }
        let path = self.path.join(MODEL);
        let mut file = read_safetensors(&path)?;
        let expected = meta.config.param_shapes()?;
        check_shapes(&path, &file, "", &expected)?;
        if let Some(extra) = file
            .tensors
            .keys()
            .filter(|k| !expected.iter().any(|(n, _)| n == *k))
            .min()
        {
            return Err(Error::format(
                &path,
                format!("classifier.json and the weights disagree: unexpected tensor `{extra}`"),
            ));
        }
        let mut model = meta.config.build(meta.seed)?;
        load_params_from(&path, &mut file, "", &mut model.params)?;
        Ok((meta, model))
    }
}
