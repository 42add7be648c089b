//! A run folder: the self-describing directory a training run writes and every other command reads.
//!
//! | file | holds |
//! |---|---|
//! | `config.toml` | the resolved [`Settings`]; keys are `ae train` flags, so it can be passed back with `--config` |
//! | `meta.json` | [`RunMeta`]: format version, flavor, input shape, scaling, epoch, best loss |
//! | `model.safetensors` | the weights, PyTorch `state_dict` names (`encoder.0.weight`, …) |
//! | `best.safetensors` | the weights of the epoch with the best monitored loss |
//! | `checkpoint.safetensors` | weights, optimizer moments and loop state, for `--resume` |
//! | `metrics.jsonl` | one JSON object per epoch |
//! | `pretrain.jsonl` | one JSON object per epoch of each greedy pretraining stage |
//! | `val_scores.json` | the final model's reconstruction error on each validation example (anomaly thresholds) |
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use ae_data::scaling::Scaler;
use serde::{Deserialize, Serialize};

use crate::engine::optim::Optimizer;
use crate::engine::params::Params;
use crate::engine::tensor::Tensor;
use crate::model::ModelConfig;
use crate::objective::AutoencoderTask;
use crate::run::io::{
    load_params_from, read_safetensors, save_params, to_safetensors, write_atomic,
};
use crate::training::fit::{EpochRecord, TrainState};
use crate::training::settings::Settings;
use crate::{Error, Result};

/// Version of the run-folder format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const CONFIG: &str = "config.toml";
const META: &str = "meta.json";
const MODEL: &str = "model.safetensors";
const BEST: &str = "best.safetensors";
const CHECKPOINT: &str = "checkpoint.safetensors";
const METRICS: &str = "metrics.jsonl";
const PRETRAIN_METRICS: &str = "pretrain.jsonl";
/// Written by `ae pca`.
const PCA_REPORT: &str = "pca.json";
const VAL_SCORES: &str = "val_scores.json";
const OWNED: [&str; 9] = [
    CONFIG,
    META,
    MODEL,
    BEST,
    CHECKPOINT,
    METRICS,
    PRETRAIN_METRICS,
    PCA_REPORT,
    VAL_SCORES,
];

/// The anomaly scores of the validation examples, kept so that `ae anomaly --fpr` can set a
/// threshold on clean data without a contamination guess.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValScores {
    /// How each score is computed (`mse`: mean squared error of the example's reconstruction).
    pub score: String,
    /// One score per validation example, ascending.
    pub scores: Vec<f32>,
}

/// The family of model a run folder holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// Fully connected layers.
    Dense,
    /// Convolutions and pooling.
    Conv,
    /// Principal component analysis saved as a linear autoencoder.
    Pca,
}

impl Flavor {
    /// The name written in `meta.json`.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Dense => "dense",
            Flavor::Conv => "conv",
            Flavor::Pca => "pca",
        }
    }
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl From<crate::training::settings::ArchName> for Flavor {
    fn from(a: crate::training::settings::ArchName) -> Self {
        match a {
            crate::training::settings::ArchName::Dense => Flavor::Dense,
            crate::training::settings::ArchName::Conv => Flavor::Conv,
        }
    }
}

/// The small metadata file of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// The model family.
    pub flavor: Flavor,
    /// Per-example input shape.
    pub input_shape: Vec<usize>,
    /// Scaling fitted on the training data; applied to any data given to the model.
    pub scaler: Scaler,
    /// Completed epochs.
    pub epoch: usize,
    /// Best monitored loss (validation when there is validation data).
    pub best_loss: Option<f64>,
    /// The epoch that reached it.
    pub best_epoch: usize,
    /// True once training ended.
    pub finished: bool,
    /// Number of scalar parameters.
    pub parameters: usize,
    /// Version of the program that wrote the run.
    pub written_by: String,
}

/// One JSON object per line; an error names the file and the line.
fn read_jsonl(p: &Path) -> Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::format(p, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// A run folder on disk.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Prepares `path` for a new run. A folder that already holds a run is refused unless `force`,
    /// which removes that run's files (and only those).
    pub fn create(path: &Path, force: bool) -> Result<Self> {
        Self::refuse_foreign(path)?;
        let existing: Vec<PathBuf> = OWNED
            .iter()
            .map(|f| path.join(f))
            .filter(|p| p.exists())
            .collect();
        if !existing.is_empty() {
            if !force {
                return Err(Error::RunExists {
                    path: path.to_path_buf(),
                });
            }
            for p in existing {
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let run = RunDir {
            path: path.to_path_buf(),
        };
        run.remove_stale_temporaries()?;
        Ok(run)
    }

    /// Removes temporary files that a killed process left before it could rename them (they are
    /// never a run's real files; see `io::write_atomic`).
    pub fn remove_stale_temporaries(&self) -> Result<()> {
        let entries = std::fs::read_dir(&self.path).map_err(|e| Error::io(&self.path, e))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let p = entry.path();
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
        Ok(())
    }

    /// Fails with [`Error::RunExists`] when `path` holds a run and `force` is not given; changes
    /// nothing.
    pub fn check_free(path: &Path, force: bool) -> Result<()> {
        Self::refuse_foreign(path)?;
        if !force && OWNED.iter().any(|f| path.join(f).exists()) {
            return Err(Error::RunExists {
                path: path.to_path_buf(),
            });
        }
        Ok(())
    }

    /// Refuses a folder that holds a file named like one of a run's (a user's own `config.toml`)
    /// but no run (no `meta.json`): forcing replaces a run's files, never someone else's.
    fn refuse_foreign(path: &Path) -> Result<()> {
        if path.join(META).exists() {
            return Ok(());
        }
        match OWNED.iter().find(|f| path.join(f).exists()) {
            Some(f) => Err(Error::format(
                path.join(f),
                "is not part of a run (the folder has no meta.json); a run is never written \
                 over it, even when forced: choose another folder",
            )),
            None => Ok(()),
        }
    }

    /// A handle on `path` that neither checks nor creates anything (see [`RunDir::create`]).
    pub fn lazy(path: &Path) -> Self {
        RunDir {
            path: path.to_path_buf(),
        }
    }

    /// Opens an existing run folder (it must have `meta.json`).
    pub fn open(path: &Path) -> Result<Self> {
        if !path.join(META).is_file() {
            return Err(Error::format(
                path,
                "not a run folder: it has no meta.json (train one with `ae train --out PATH`)",
            ));
        }
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The weights file.
    pub fn model_path(&self) -> PathBuf {
        self.path.join(MODEL)
    }

    /// The metrics file.
    pub fn metrics_path(&self) -> PathBuf {
        self.path.join(METRICS)
    }

    /// True when the folder has a checkpoint to resume from.
    pub fn has_checkpoint(&self) -> bool {
        self.path.join(CHECKPOINT).is_file()
    }

    /// Writes `config.toml`.
    pub fn write_settings(&self, s: &Settings) -> Result<()> {
        write_atomic(&self.path.join(CONFIG), s.to_toml().as_bytes())
    }

    /// Reads `config.toml`.
    pub fn read_settings(&self) -> Result<Settings> {
        let p = self.path.join(CONFIG);
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        let mut table: toml::Table =
            toml::from_str(&text).map_err(|e| Error::format(&p, e.to_string()))?;
        // Runs written before the code activation was always recorded (ae 0.1 up to the linear
        // code default) used the hidden activation for their code layer.
        if !table.contains_key("code-activation") {
            if let Some(a) = table.get("activation").cloned() {
                table.insert("code-activation".into(), a);
            }
        }
        // Runs trained on incomplete rows before missing-cell indicators existed had none.
        if table.get("missing").and_then(|v| v.as_str()) == Some("allow")
            && !table.contains_key("missing-indicator")
        {
            table.insert("missing-indicator".into(), toml::Value::Boolean(false));
        }
        table
            .try_into()
            .map_err(|e: toml::de::Error| Error::format(&p, e.to_string()))
    }

    /// Writes `meta.json`.
    pub fn write_meta(&self, m: &RunMeta) -> Result<()> {
        let text = serde_json::to_string_pretty(m).expect("meta always serializes");
        write_atomic(&self.path.join(META), text.as_bytes())
    }

    /// Reads `meta.json`, refusing other format versions.
    pub fn read_meta(&self) -> Result<RunMeta> {
        let p = self.path.join(META);
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        // The version first: a newer writer's fields are not ours to judge.
        let version = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("format_version").and_then(|v| v.as_u64()));
        if let Some(v) = version.filter(|&v| v != FORMAT_VERSION as u64) {
            return Err(Error::format(
                &p,
                format!("format version {v} is not supported (this build reads {FORMAT_VERSION})"),
            ));
        }
        serde_json::from_str(&text).map_err(|e| Error::format(&p, e.to_string()))
    }

    /// Writes `val_scores.json`.
    pub fn write_val_scores(&self, v: &ValScores) -> Result<()> {
        let text = serde_json::to_string(v).expect("scores serialize");
        write_atomic(&self.path.join(VAL_SCORES), text.as_bytes())
    }

    /// Reads `val_scores.json`, or `None` when the run kept none (it had no validation split).
    pub fn read_val_scores(&self) -> Result<Option<ValScores>> {
        let p = self.path.join(VAL_SCORES);
        if !p.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        let v: ValScores =
            serde_json::from_str(&text).map_err(|e| Error::format(&p, e.to_string()))?;
        if v.scores.iter().any(|s| !s.is_finite()) {
            return Err(Error::format(
                &p,
                "holds a score that is not a finite number",
            ));
        }
        Ok(Some(v))
    }

    /// Saves the current weights as the model.
    pub fn save_model(&self, params: &Params) -> Result<()> {
        save_params(
            &self.model_path(),
            params,
            HashMap::from([("format".into(), "pt".into())]),
        )
    }

    /// Saves the weights of the best epoch so far.
    pub fn save_best(&self, params: &Params) -> Result<()> {
        save_params(
            &self.path.join(BEST),
            params,
            HashMap::from([("format".into(), "pt".into())]),
        )
    }

    /// Makes the best epoch's weights the model (early stopping restores them).
    pub fn promote_best(&self) -> Result<()> {
        let best = self.path.join(BEST);
        let bytes = std::fs::read(&best).map_err(|e| Error::io(&best, e))?;
        write_atomic(&self.model_path(), &bytes)
    }

    /// Writes weights, optimizer state and loop state to `checkpoint.safetensors` in one atomic file.
    pub fn save_checkpoint(
        &self,
        params: &Params,
        opt: &Optimizer,
        state: &TrainState,
    ) -> Result<()> {
        let mut named: Vec<(String, &Tensor)> = params
            .names
            .iter()
            .map(|n| format!("param/{n}"))
            .zip(params.values.iter())
            .collect();
        for (kind, i, t) in opt.state() {
            named.push((format!("optim.{kind}/{}", params.names[i]), t));
        }
        let meta = HashMap::from([
            (
                "state".to_string(),
                serde_json::to_string(state).expect("state serializes"),
            ),
            ("optimizer_step".to_string(), opt.step.to_string()),
            ("optimizer".to_string(), opt.kind.to_string()),
        ]);
        write_atomic(&self.path.join(CHECKPOINT), &to_safetensors(&named, meta)?)
    }

    /// Restores weights, optimizer state and loop state from the checkpoint.
    pub fn load_checkpoint(&self, params: &mut Params, opt: &mut Optimizer) -> Result<TrainState> {
        let p = self.path.join(CHECKPOINT);
        let mut file = read_safetensors(&p)?;
        load_params_from(&p, &mut file, "param/", params)?;
        let missing = |k: &str| Error::format(&p, format!("checkpoint metadata lacks `{k}`"));
        let kind = file
            .metadata
            .get("optimizer")
            .ok_or_else(|| missing("optimizer"))?;
        if *kind != opt.kind.to_string() {
            return Err(Error::format(
                &p,
                format!(
                    "checkpoint was made with optimizer {kind}, the run now asks for {}",
                    opt.kind
                ),
            ));
        }
        for i in 0..params.len() {
            for (kind, slot) in [("m", &mut opt.m[i]), ("v", &mut opt.v[i])] {
                if slot.is_empty() && kind == "v" {
                    continue;
                }
                let key = format!("optim.{kind}/{}", params.names[i]);
                let t = file
                    .tensors
                    .remove(&key)
                    .ok_or_else(|| Error::format(&p, format!("missing tensor `{key}`")))?;
                if t.shape() != slot.shape() {
                    return Err(Error::format(
                        &p,
                        format!(
                            "tensor `{key}` has shape {:?}, expected {:?}",
                            t.shape(),
                            slot.shape()
                        ),
                    ));
                }
                *slot = t;
            }
        }
        let step = file
            .metadata
            .get("optimizer_step")
            .ok_or_else(|| missing("optimizer_step"))?;
        opt.step = step
            .parse()
            .map_err(|_| Error::format(&p, format!("bad optimizer_step `{step}`")))?;
        let state = file.metadata.get("state").ok_or_else(|| missing("state"))?;
        serde_json::from_str(state).map_err(|e| Error::format(&p, format!("bad loop state: {e}")))
    }

    /// Appends one epoch's figures to `metrics.jsonl`, flattened: `loss`, each term, `val_loss`,
    /// `val_<term>`, plus any `extra` fields (e.g. test metrics).
    pub fn append_metrics(
        &self,
        r: &EpochRecord,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        self.append_record(&self.metrics_path(), r, extra)
    }

    /// Appends one epoch of greedy pretraining stage `stage` to `pretrain.jsonl`.
    pub fn append_stage_metrics(&self, stage: usize, r: &EpochRecord) -> Result<()> {
        let mut extra = serde_json::Map::new();
        extra.insert("stage".into(), stage.into());
        self.append_record(&self.path.join(PRETRAIN_METRICS), r, &extra)
    }

    fn append_record(
        &self,
        p: &Path,
        r: &EpochRecord,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let mut obj = serde_json::Map::new();
        obj.insert("epoch".into(), r.epoch.into());
        obj.insert("loss".into(), r.train.total().into());
        for (n, v) in &r.train.0 {
            obj.insert(n.clone(), (*v).into());
        }
        if let Some(val) = &r.val {
            obj.insert("val_loss".into(), val.total().into());
            for (n, v) in &val.0 {
                obj.insert(format!("val_{n}"), (*v).into());
            }
        }
        for (n, v) in &r.diagnostics.0 {
            obj.insert(n.clone(), (*v).into());
        }
        obj.extend(extra.clone());
        obj.insert("seconds".into(), r.seconds.into());
        obj.insert("examples_per_second".into(), r.examples_per_second.into());
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| Error::io(p, e))?;
        writeln!(f, "{}", serde_json::Value::Object(obj)).map_err(|e| Error::io(p, e))
    }

    /// Drops metric lines of epochs after `epoch` (written after the checkpoint a resume starts from).
    pub fn trim_metrics(&self, epoch: usize) -> Result<()> {
        let p = self.metrics_path();
        let Ok(text) = std::fs::read_to_string(&p) else {
            return Ok(());
        };
        let keep: Vec<&str> = text
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v["epoch"].as_u64())
                    .is_some_and(|e| e as usize <= epoch)
            })
            .collect();
        let mut out = keep.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        write_atomic(&p, out.as_bytes())
    }

    /// Reads `metrics.jsonl`.
    pub fn read_metrics(&self) -> Result<Vec<serde_json::Value>> {
        read_jsonl(&self.metrics_path())
    }

    /// Reads `pretrain.jsonl` (one record per epoch of each greedy stage, `stage` from 0); empty
    /// when the run had no greedy pretraining.
    pub fn read_pretrain_metrics(&self) -> Result<Vec<serde_json::Value>> {
        let p = self.path.join(PRETRAIN_METRICS);
        if !p.exists() {
            return Ok(Vec::new());
        }
        read_jsonl(&p)
    }

    /// Checks that the checkpoint holds the parameters `config` describes, before anything of that
    /// size is allocated (a resumed run builds its model from `config.toml`).
    pub fn check_checkpoint(&self, config: &ModelConfig) -> Result<()> {
        let p = self.path.join(CHECKPOINT);
        let file = read_safetensors(&p)?;
        check_shapes(&p, &file, "param/", &config.param_shapes()?)
    }

    /// Loads the trained model: settings, metadata and the task with its weights. Fails loudly when
    /// the config and the weights disagree.
    pub fn load(&self) -> Result<(Settings, RunMeta, AutoencoderTask)> {
        let settings = self.read_settings()?;
        let meta = self.read_meta()?;
        let config = settings.model_config(&meta.input_shape);
        config.validate()?;
        // Check the weights against the config before building: the file's size bounds what we
        // allocate, not the config's claims.
        let path = self.model_path();
        let mut file = read_safetensors(&path)?;
        let objective = settings.objective();
        let mut expected = config.param_shapes()?;
        if objective.learned_variance {
            expected.push((crate::objective::LOGVAR.to_string(), vec![1]));
        }
        check_shapes(&path, &file, "", &expected)?;
        if let Some(extra) = file
            .tensors
            .keys()
            .filter(|k| !expected.iter().any(|(n, _)| n == *k))
            .min()
        {
            return Err(Error::format(
                &path,
                format!("config.toml and the weights disagree: unexpected tensor `{extra}`"),
            ));
        }
        let model = config.build(settings.seed)?;
        // The task adds the objective's own parameters (a learned decoder variance) before the
        // weights are read into all of them.
        let mut task = AutoencoderTask::new(model, objective)?;
        load_params_from(&path, &mut file, "", &mut task.model.params)?;
        Ok((settings, meta, task))
    }
}

/// Every expected `prefix + name` must be in `file` with its shape; names a missing or misshapen
/// tensor.
pub(crate) fn check_shapes(
    path: &Path,
    file: &crate::run::io::TensorFile,
    prefix: &str,
    expected: &[(String, Vec<usize>)],
) -> Result<()> {
    for (name, shape) in expected {
        let key = format!("{prefix}{name}");
        match file.tensors.get(&key) {
            None => return Err(Error::format(path, format!("config.toml and the weights disagree: missing tensor `{key}`"))),
            Some(t) if t.shape() != shape.as_slice() => {
                return Err(Error::format(
                    path,
                    format!("config.toml and the weights disagree: tensor `{key}` has shape {:?}, the config needs {shape:?}", t.shape()),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}
