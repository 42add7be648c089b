//! Everything that defines a training run, resolved: what `config.toml` in a run folder holds.
//!
//! The keys are the `ae train` flag names, so a run's `config.toml` can be given back to
//! `ae train --config` to repeat it.
use ae_data::scaling::ScalingKind;
use serde::{Deserialize, Serialize};

use crate::engine::init::Init;
use crate::engine::layers::activation::Activation;
use crate::engine::loss::LossKind;
use crate::engine::optim::OptimizerKind;
use crate::model::{ConvArch, ConvDecoder, ModelConfig};
use crate::objective::noise::Noise;
use crate::objective::sparsity::Sparsity;
use crate::objective::{Objective, WeightDecay};
use crate::training::fit::LoopConfig;
use crate::{Error, Result};

/// Which optimizer, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerName {
    /// Adam.
    Adam,
    /// SGD with momentum.
    Sgd,
}

impl std::str::FromStr for OptimizerName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "adam" => Ok(OptimizerName::Adam),
            "sgd" => Ok(OptimizerName::Sgd),
            _ => Err(Error::config(
                "optimizer",
                format!("unknown optimizer `{s}`; expected adam or sgd"),
            )),
        }
    }
}

/// How the learning rate moves over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LrSchedule {
    /// `lr` throughout.
    #[default]
    Constant,
    /// Linear warm-up over `warmup` epochs, then cosine decay to 0 at the last epoch.
    Cosine {
        /// Epochs of warm-up.
        warmup: usize,
    },
}

impl LrSchedule {
    /// The optimizer's schedule for `epochs` of `steps` steps each (none when constant).
    pub fn steps(self, epochs: usize, steps: usize) -> Option<crate::engine::optim::Schedule> {
        match self {
            LrSchedule::Constant => None,
            LrSchedule::Cosine { warmup } => Some(crate::engine::optim::Schedule {
                warmup: (warmup * steps) as u64,
                total: (epochs * steps) as u64,
            }),
        }
    }
}

impl std::str::FromStr for LrSchedule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::config(
                "lr-schedule",
                format!(
                    "unknown schedule `{s}`; expected constant, cosine or cosine:WARMUP_EPOCHS"
                ),
            )
        };
        match s.split_once(':') {
            None if s == "constant" => Ok(LrSchedule::Constant),
            None if s == "cosine" => Ok(LrSchedule::Cosine { warmup: 0 }),
            Some(("cosine", w)) => Ok(LrSchedule::Cosine {
                warmup: w.parse().map_err(|_| bad())?,
            }),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LrSchedule::Constant => write!(f, "constant"),
            LrSchedule::Cosine { warmup: 0 } => write!(f, "cosine"),
            LrSchedule::Cosine { warmup } => write!(f, "cosine:{warmup}"),
        }
    }
}

impl TryFrom<String> for LrSchedule {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<LrSchedule> for String {
    fn from(s: LrSchedule) -> String {
        s.to_string()
    }
}

/// What training does with missing cells (empty, `NaN` or `NA` in a CSV file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingCells {
    /// Refuse the data, naming the first missing cell.
    #[default]
    Refuse,
    /// Train on every row: missing cells are left out of the loss and shown to the model as
    /// missing, through indicators or filled with column means ([`crate::objective::missing`]).
    Allow,
}

impl std::str::FromStr for MissingCells {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "refuse" => Ok(MissingCells::Refuse),
            "allow" => Ok(MissingCells::Allow),
            _ => Err(Error::config(
                "missing",
                format!("unknown choice `{s}`; expected allow or refuse"),
            )),
        }
    }
}

/// Which kind of network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchName {
    /// Fully connected layers (`--hidden`).
    #[default]
    Dense,
    /// Convolutions and pooling (`--channels`, `--kernel`, `--decoder`, `--code`).
    Conv,
}

impl std::str::FromStr for ArchName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "dense" => Ok(ArchName::Dense),
            "conv" => Ok(ArchName::Conv),
            _ => Err(Error::config(
                "arch",
                format!("unknown architecture `{s}`; expected dense or conv"),
            )),
        }
    }
}

/// Which model family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelName {
    /// A deterministic autoencoder.
    #[default]
    Ae,
    /// A variational autoencoder: the code is a Gaussian, the loss the negative ELBO.
    Vae,
}

impl std::str::FromStr for ModelName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ae" => Ok(ModelName::Ae),
            "vae" => Ok(ModelName::Vae),
            _ => Err(Error::config(
                "model",
                format!("unknown model `{s}`; expected ae or vae"),
            )),
        }
    }
}

fn default_beta() -> f32 {
    1.0
}

fn default_channels() -> Vec<usize> {
    vec![32, 32]
}

fn default_kernel() -> usize {
    3
}

/// A fully resolved training configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Settings {
    /// The data spec (`fashion-mnist`, `idx:…`, `csv:…`, `npy:…`).
    pub data: String,
    /// Input scaling; `None` picks by the data's type (unit for 8-bit images, min-max otherwise).
    pub scaling: Option<ScalingKind>,
    /// Dense or convolutional.
    #[serde(default)]
    pub arch: ArchName,
    /// Encoder layer sizes of a dense model; the last is the code. Empty: chosen from the data
    /// ([`auto_hidden`]: 256, then a code as wide as the input, at most 64).
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Output channels of each encoder stage of a conv model.
    #[serde(default = "default_channels")]
    pub channels: Vec<usize>,
    /// Kernel size of a conv model.
    #[serde(default = "default_kernel")]
    pub kernel: usize,
    /// How a conv model's decoder upsamples.
    #[serde(default)]
    pub decoder: ConvDecoder,
    /// Size of a conv model's dense code; none: the last feature map is the code.
    #[serde(default)]
    pub code: Option<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Code activation; unset: linear after other encoder layers, else `activation`
    /// ([`crate::model::default_code_activation`]). Checked settings always hold it.
    pub code_activation: Option<Activation>,
    /// Output activation.
    pub output_activation: Activation,
    /// Tie decoder weights to the encoder's.
    pub tied: bool,
    /// Weight initialization.
    pub init: Init,
    /// Reconstruction loss.
    pub loss: LossKind,
    /// Optimizer.
    pub optimizer: OptimizerName,
    /// Learning rate.
    pub lr: f32,
    /// How the learning rate moves over the run: constant, or cosine decay to 0 (with warm-up).
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Momentum for SGD.
    pub momentum: f32,
    /// Examples per step.
    pub batch_size: usize,
    /// Passes over the data.
    pub epochs: usize,
    /// Seed of every random draw.
    pub seed: u64,
    /// Threads for products and elementwise kernels.
    pub threads: usize,
    /// Weight penalty.
    pub weight_decay: WeightDecay,
    /// Sparsity penalty on the code.
    #[serde(default)]
    pub sparsity: Option<Sparsity>,
    /// Corruption of training inputs (denoising).
    #[serde(default)]
    pub noise: Option<Noise>,
    /// λ of the contractive penalty (one-layer encoders).
    #[serde(default)]
    pub contractive: Option<f32>,
    /// Greedy layer-wise pretraining before fine-tuning.
    #[serde(default)]
    pub pretrain: Option<crate::training::pretrain::Pretrain>,
    /// Share of the training data held out for validation.
    pub val_fraction: f32,
    /// Patience in epochs; none disables early stopping.
    pub early_stopping: Option<usize>,
    /// Autoencoder or variational autoencoder.
    #[serde(default)]
    pub model: ModelName,
    /// VAE: weight of the KL term (β-VAE).
    #[serde(default = "default_beta")]
    pub beta: f32,
    /// VAE: epochs over which the KL weight grows from 0 to β.
    #[serde(default)]
    pub kl_warmup: usize,
    /// VAE: free bits, the floor in nats of each latent unit's KL.
    #[serde(default)]
    pub free_bits: Option<f32>,
    /// Dynamic binarization of the (scaled, [0, 1]) training data at every step.
    #[serde(default)]
    pub binarize: bool,
    /// VAE with `--loss mse`: learn the Gaussian decoder's variance.
    #[serde(default)]
    pub learned_variance: bool,
    /// CSV: the column holding labels (header name or 0-based index), kept out of the features.
    #[serde(default)]
    pub label_column: Option<String>,
    /// CSV: the field delimiter (one character, or `tab`); unset: detected from the first line.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// CSV: columns (header names or 0-based indices) left out of the features.
    #[serde(default)]
    pub ignore_columns: Vec<String>,
    /// Tables: when not empty, the only columns (header names or 0-based indices) read as
    /// features, in the file's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// CSV: categorical columns with their levels (one 0/1 feature per level). Text columns not
    /// listed are fitted when a run starts (their distinct values, sorted) and recorded here, so
    /// later data is encoded the same way.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub categories: std::collections::BTreeMap<String, Vec<String>>,
    /// CSV: what a categorical value outside the recorded levels becomes: an error, or zeros.
    #[serde(default)]
    pub unknown_levels: ae_data::csv_table::UnknownLevels,
    /// Only examples of these classes (labelled data); empty: all. Later commands on the run's
    /// own data keep the same filter unless they set theirs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<u32>,
    /// Missing cells: refused, or allowed (filled for the input, left out of the loss).
    #[serde(default)]
    pub missing: MissingCells,
    /// With missing cells allowed: the share of observed cells hidden (filled like missing ones)
    /// at each step, which the model learns to rebuild from the rest.
    #[serde(default = "default_missing_hide")]
    pub missing_hide: f32,
    /// With missing cells allowed: a dense, untied encoder also reads which cells are missing
    /// (one indicator per feature; [`crate::engine::layers::indicator`]), so it can tell a missing
    /// cell from an observed one. Off: missing cells are filled with column means only.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub missing_indicator: bool,
    /// Read the training data from its files as training goes rather than load it
    /// ([`crate::run::train_streamed`]): for `.npy` files, folders of `.npy` shards, raw IDX,
    /// Parquet tables and folders of images.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Streaming: rows shuffled together in memory (a window); unset: as many as fit in 96 MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle_buffer: Option<usize>,
}

/// The dense sizes when `hidden` is left empty: 256 units, then a code as wide as the input but
/// at most 64: 784-256-64 for 28×28 images, as in the Keras and PyTorch tutorials; on a table the
/// code is never wider than the input (a code of 64 on iris' 4 columns scores anomalies at AUROC
/// 0.955, one of 4 at 0.974; BENCHMARKS.md).
pub fn auto_hidden(features: usize) -> Vec<usize> {
    vec![256, features.clamp(1, 64)]
}

fn yes() -> bool {
    true
}

fn is_yes(v: &bool) -> bool {
    *v
}

fn default_missing_hide() -> f32 {
    0.1
}

impl Default for Settings {
    /// The default run: a 784-256-64 autoencoder on Fashion-MNIST as in the Keras and PyTorch
    /// tutorials (ReLU, sigmoid output, MSE, Adam 1e-3, batch 256), with a linear code; on other
    /// data the sizes follow the input ([`auto_hidden`]).
    fn default() -> Self {
        Settings {
            data: "fashion-mnist".into(),
            scaling: None,
            arch: ArchName::Dense,
            hidden: Vec::new(),
            channels: default_channels(),
            kernel: default_kernel(),
            decoder: ConvDecoder::Upsample,
            code: None,
            activation: Activation::Relu,
            code_activation: None,
            output_activation: Activation::Sigmoid,
            tied: false,
            init: Init::Auto,
            loss: LossKind::Mse,
            optimizer: OptimizerName::Adam,
            lr: 1e-3,
            lr_schedule: LrSchedule::Constant,
            momentum: 0.9,
            batch_size: 256,
            epochs: 20,
            seed: 0,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            weight_decay: WeightDecay::None,
            sparsity: None,
            noise: None,
            contractive: None,
            pretrain: None,
            val_fraction: 0.1,
            early_stopping: None,
            model: ModelName::Ae,
            beta: 1.0,
            kl_warmup: 0,
            free_bits: None,
            binarize: false,
            learned_variance: false,
            label_column: None,
            delimiter: None,
            ignore_columns: Vec::new(),
            columns: Vec::new(),
            categories: Default::default(),
            unknown_levels: Default::default(),
            classes: Vec::new(),
            missing: MissingCells::Refuse,
            missing_hide: default_missing_hide(),
            missing_indicator: true,
            stream: false,
            shuffle_buffer: None,
        }
    }
}

/// Settings that passed [`Settings::check`]: the only kind that training takes. Read them through
/// `Deref`; change them by going back to [`Settings`] ([`Checked::into_inner`]) and checking again.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked(Settings);

impl std::ops::Deref for Checked {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.0
    }
}

impl Checked {
    /// The plain settings.
    pub fn into_inner(self) -> Settings {
        self.0
    }
}

impl Settings {
    /// Checks every value once; the result is what training takes.
    pub fn check(mut self) -> Result<Checked> {
        self.validate()?;
        // Written out, so that a run's config.toml says what it trained whatever later defaults are.
        self.code_activation = Some(self.resolved_code_activation());
        Ok(Checked(self))
    }

    /// These settings for inputs of `input_shape`, with the sizes left to the data (an empty
    /// `hidden`) written out: what a run folder records.
    pub fn resolved_for(&self, input_shape: &[usize]) -> Settings {
        let mut s = self.clone();
        if s.arch == ArchName::Dense && s.hidden.is_empty() {
            s.hidden = auto_hidden(input_shape.iter().product());
        }
        s
    }

    /// Epochs for training on incomplete rows (`missing = allow`) when none were asked for: enough
    /// for about 10,000 steps on `rows` examples (at least `epochs`, at most 10,000). Learning to
    /// rebuild hidden cells takes far longer than the 20 epochs a data set of images needs: on
    /// breast cancer's 569 rows at 10% missing, 20 epochs are 40 steps and fill cells 2.9× worse
    /// than scikit-learn's IterativeImputer; 10,000 steps 0.95× (with indicators; BENCHMARKS.md).
    pub fn epochs_for_incomplete(&self, rows: usize) -> usize {
        let train = (rows as f64 * (1.0 - self.val_fraction as f64)).ceil() as usize;
        let steps = train.div_ceil(self.batch_size.max(1)).max(1);
        10_000usize
            .div_ceil(steps)
            .clamp(self.epochs, 10_000.max(self.epochs))
    }

    /// How a CSV file of these settings is read (label column, delimiter, ignored columns).
    pub fn csv_options(&self) -> Result<ae_data::csv_table::CsvOptions> {
        let delimiter = match self.delimiter.as_deref() {
            None => None,
            Some("tab" | "\\t" | "\t") => Some(b'\t'),
            Some(d) if d.len() == 1 && d.is_ascii() && !d.as_bytes()[0].is_ascii_alphanumeric() => {
                Some(d.as_bytes()[0])
            }
            Some(d) => {
                return Err(Error::config(
                    "delimiter",
                    format!("must be one character such as , ; | or the word tab, got `{d}`"),
                ))
            }
        };
        Ok(ae_data::csv_table::CsvOptions {
            allow_missing: self.missing == MissingCells::Allow,
            label_column: self.label_column.clone(),
            delimiter,
            ignore_columns: self.ignore_columns.clone(),
            columns: self.columns.clone(),
            categories: self.categories.clone(),
            unknown_levels: self.unknown_levels,
        })
    }

    /// The code activation these settings give: the one set, else the default for the encoder.
    pub fn resolved_code_activation(&self) -> Activation {
        self.model_config(&[1]).code_activation()
    }

    /// These settings with the keys of `table` laid over them: keys as in `config.toml` (the
    /// `ae train` flag names). A config file and the command line are such overlays. Besides the
    /// fields, `linear = true` sets both activations to linear (before other keys apply), and
    /// `code`, `free-bits` and `early-stopping` of 0 mean none.
    pub fn overlay(&self, table: &toml::Table) -> Result<Settings> {
        let mut base = toml::Table::try_from(self).expect("settings always serialize");
        if let Some(v) = table.get("linear") {
            match v.as_bool() {
                Some(true) => {
                    base.insert("activation".into(), "linear".into());
                    base.insert("output-activation".into(), "linear".into());
                }
                Some(false) => {}
                None => {
                    return Err(Error::config(
                        "linear",
                        format!("must be true or false, got {v}"),
                    ))
                }
            }
        }
        for (k, v) in table {
            let none = match k.as_str() {
                "linear" => continue,
                "code" | "early-stopping" => v.as_integer() == Some(0),
                "free-bits" => v.as_float() == Some(0.0) || v.as_integer() == Some(0),
                _ => false,
            };
            if none {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
        toml::Value::Table(base)
            .try_into()
            .map_err(|e: toml::de::Error| Error::config("settings", e.message().to_string()))
    }

    /// A one-line description of the network for inputs of `input_shape`.
    pub fn describe(&self, input_shape: &[usize]) -> String {
        let arch = self.describe_arch(input_shape);
        match self.model {
            ModelName::Vae => format!(
                "VAE {arch} (latent {}, β {}{})",
                self.model_config(input_shape).code_size(),
                self.beta,
                if self.kl_warmup > 0 {
                    format!(", KL warm-up {} epochs", self.kl_warmup)
                } else {
                    String::new()
                }
            ),
            ModelName::Ae => arch,
        }
    }

    fn describe_arch(&self, input_shape: &[usize]) -> String {
        if self.arch == ArchName::Conv {
            let stages: Vec<String> = self.channels.iter().map(|c| c.to_string()).collect();
            let dims: Vec<String> = input_shape.iter().map(|c| c.to_string()).collect();
            return format!(
                "conv {} → channels {} (kernel {}, {} decoder){}",
                dims.join("×"),
                stages.join(","),
                self.kernel,
                match self.decoder {
                    ConvDecoder::Upsample => "upsampling",
                    ConvDecoder::Transpose => "transposed-conv",
                },
                self.code
                    .map(|c| format!(" → code {c}"))
                    .unwrap_or_default()
            );
        }
        let d: usize = input_shape.iter().product();
        let mut sizes = vec![d.to_string()];
        sizes.extend(
            self.model_config(input_shape)
                .hidden
                .iter()
                .map(|h| h.to_string()),
        );
        let mirror: Vec<String> = sizes.iter().rev().skip(1).cloned().collect();
        format!(
            "{}-{}{}",
            sizes.join("-"),
            mirror.join("-"),
            if self.tied { " (tied)" } else { "" }
        )
    }

    /// Checks values that no type rules out; errors name the field and the value.
    pub fn validate(&self) -> Result<()> {
        self.csv_options()?;
        if !self.columns.is_empty() && !self.ignore_columns.is_empty() {
            return Err(Error::config(
                "columns",
                "--columns names the features to read; leave --ignore-columns out beside it",
            ));
        }
        match (self.stream, self.shuffle_buffer) {
            (_, Some(0)) => {
                return Err(Error::config(
                    "shuffle-buffer",
                    "must be at least 1 row, got 0",
                ))
            }
            (false, Some(_)) => {
                return Err(Error::config(
                    "shuffle-buffer",
                    "sets the rows shuffled together when the data is streamed; add --stream",
                ))
            }
            _ => {}
        }
        if !(0.0..1.0).contains(&self.missing_hide) {
            return Err(Error::config(
                "missing-hide",
                format!("must be in [0, 1), got {}", self.missing_hide),
            ));
        }
        if self.missing == MissingCells::Allow {
            let other = if self.model == ModelName::Vae {
                Some("model vae")
            } else if self.sparsity.is_some() {
                Some("sparsity")
            } else if self.contractive.is_some() {
                Some("contractive")
            } else if self.binarize {
                Some("binarize")
            } else if self.pretrain.is_some() {
                Some("pretrain")
            } else {
                None
            };
            if let Some(o) = other {
                return Err(Error::config(
                    "missing",
                    format!("allow trains a plain or denoising autoencoder; it does not combine with {o} yet"),
                ));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::config(
                "lr",
                format!("must be a positive number, got {}", self.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(Error::config(
                "val-fraction",
                format!("must be in [0, 1), got {}", self.val_fraction),
            ));
        }
        if self.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1, got 0"));
        }
        if self.threads == 0 {
            return Err(Error::config("threads", "must be at least 1, got 0"));
        }
        if self.early_stopping.is_some() && self.val_fraction == 0.0 {
            return Err(Error::config(
                "early-stopping",
                "needs validation data: set val-fraction above 0",
            ));
        }
        self.optimizer_kind().validate()?;
        self.loop_config().validate()?;
        if let Some(sp) = self.sparsity {
            sp.check(self.resolved_code_activation())?;
        }
        if let Some(l) = self.contractive {
            if !(l >= 0.0 && l.is_finite()) {
                return Err(Error::config(
                    "contractive",
                    format!("lambda must be a finite number ≥ 0, got {l}"),
                ));
            }
            if self.arch == ArchName::Conv {
                return Err(Error::config(
                    "contractive",
                    "the exact contractive penalty is for one-layer dense encoders, not arch conv",
                ));
            }
            crate::objective::contractive::Contractive::check(self.hidden.len())?;
        }
        if self.model == ModelName::Vae {
            let refuse = |field, what: &str| {
                Err(Error::config(
                    field,
                    format!("a variational autoencoder {what}"),
                ))
            };
            if self.sparsity.is_some() || self.contractive.is_some() {
                let field = match self.sparsity {
                    Some(_) => "sparsity",
                    None => "contractive",
                };
                return refuse(
                    field,
                    "is regularized by its KL term; leave sparsity and contractive unset",
                );
            }
            if self.pretrain.is_some() {
                return refuse("pretrain", "is trained end to end; leave pretrain unset");
            }
            if self.tied {
                return refuse(
                    "tied",
                    "cannot tie weights: its code layer is twice the code size",
                );
            }
            if self.arch == ArchName::Conv && self.code.is_none() {
                return refuse(
                    "code",
                    "with arch conv needs a dense latent code: set code to its size",
                );
            }
            if self
                .code_activation
                .is_some_and(|a| a != Activation::Linear)
            {
                return refuse(
                    "code-activation",
                    "has a linear code layer (mean and log-variance)",
                );
            }
            self.kl().expect("vae").validate()?;
        }
        if self.learned_variance && (self.model != ModelName::Vae || self.loss != LossKind::Mse) {
            return Err(Error::config(
                "learned-variance",
                "belongs to a VAE with a Gaussian decoder: model vae, loss mse",
            ));
        }
        if self.arch == ArchName::Conv && self.pretrain.is_some() {
            return Err(Error::config(
                "pretrain",
                "greedy layer-wise pretraining stacks dense layers; it is not available with arch conv",
            ));
        }
        self.loss.check(self.output_activation)
    }

    /// The model's architecture for inputs of `input_shape`.
    pub fn model_config(&self, input_shape: &[usize]) -> ModelConfig {
        let conv = (self.arch == ArchName::Conv).then(|| ConvArch {
            channels: self.channels.clone(),
            kernel: self.kernel,
            decoder: self.decoder,
            code: self.code,
        });
        ModelConfig {
            input_shape: input_shape.to_vec(),
            hidden: if conv.is_some() {
                Vec::new()
            } else if self.hidden.is_empty() {
                auto_hidden(input_shape.iter().product())
            } else {
                self.hidden.clone()
            },
            conv,
            activation: self.activation,
            code_activation: self.code_activation,
            output_activation: self.output_activation,
            tied: self.tied,
            init: self.init,
            variational: self.model == ModelName::Vae,
            missing_indicator: self.uses_missing_indicator(),
        }
    }

    /// Whether the model reads missing-cell indicators: with missing cells allowed, for a dense,
    /// untied autoencoder, unless turned off.
    pub fn uses_missing_indicator(&self) -> bool {
        self.missing == MissingCells::Allow
            && self.missing_indicator
            && self.arch != ArchName::Conv
            && !self.tied
            && self.model != ModelName::Vae
    }

    /// The KL term of a VAE.
    pub fn kl(&self) -> Option<crate::model::vae::KlTerm> {
        (self.model == ModelName::Vae).then_some(crate::model::vae::KlTerm {
            beta: self.beta,
            warmup: self.kl_warmup,
            free_bits: self.free_bits,
        })
    }

    /// The objective.
    pub fn objective(&self) -> Objective {
        Objective {
            loss: self.loss,
            weight_decay: self.weight_decay,
            sparsity: self.sparsity,
            noise: self.noise,
            contractive: self.contractive,
            kl: self.kl(),
            binarize: self.binarize,
            learned_variance: self.learned_variance,
            missing: (self.missing == MissingCells::Allow).then_some(self.missing_hide),
        }
    }

    /// The optimizer rule.
    pub fn optimizer_kind(&self) -> OptimizerKind {
        match self.optimizer {
            OptimizerName::Adam => OptimizerKind::ADAM,
            OptimizerName::Sgd => OptimizerKind::Sgd {
                momentum: self.momentum,
            },
        }
    }

    /// The loop's settings.
    pub fn loop_config(&self) -> LoopConfig {
        LoopConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            seed: self.seed,
            early_stopping: self.early_stopping,
        }
    }

    /// TOML text of these settings.
    pub fn to_toml(&self) -> String {
        let mut table = toml::Table::try_from(self).expect("settings always serialize");
        // With missing cells allowed the indicator choice is always written: runs from before
        // indicators existed have no key and read back as `false` (`RunDir::read_settings`).
        if self.missing == MissingCells::Allow {
            table.insert(
                "missing-indicator".into(),
                toml::Value::Boolean(self.missing_indicator),
            );
        }
        toml::to_string_pretty(&table).expect("settings always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip() {
        let mut s = Settings {
            early_stopping: Some(3),
            code_activation: Some(Activation::Sigmoid),
            ..Settings::default()
        };
        s.weight_decay = WeightDecay::L2(1e-4);
        let text = s.to_toml();
        assert!(text.contains("batch-size = 256"), "{text}");
        let back: Settings = toml::from_str(&text).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn columns_and_ignored_columns_together_are_refused_wherever_they_come_from() {
        let s = Settings {
            columns: vec!["a".into()],
            ignore_columns: vec!["b".into()],
            ..Settings::default()
        };
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.contains("columns") && e.contains("--ignore-columns"),
            "{e}"
        );
        let one = Settings {
            columns: vec!["a".into()],
            ..Settings::default()
        };
        one.validate().unwrap();
        // Not written when empty: configs of runs without it are unchanged.
        assert!(!Settings::default().to_toml().contains("\ncolumns"));
        assert!(one.to_toml().contains("\ncolumns = ["));
    }

    #[test]
    fn validation_names_the_field() {
        let s = Settings {
            lr: -1.0,
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().to_string().contains("lr"));
        let s = Settings {
            early_stopping: Some(2),
            val_fraction: 0.0,
            ..Settings::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("early-stopping"));
        let s = Settings {
            loss: LossKind::Bce,
            output_activation: Activation::Linear,
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().to_string().contains("sigmoid"));
    }
}
