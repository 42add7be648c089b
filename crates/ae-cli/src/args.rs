//! The command line: clap types only.
use std::path::PathBuf;

use ae_core::engine::init::Init;
use ae_core::engine::layers::activation::Activation;
use ae_core::engine::loss::LossKind;
use ae_core::model::ConvDecoder;
use ae_core::objective::noise::Noise;
use ae_core::objective::sparsity::Sparsity;
use ae_core::objective::WeightDecay;
use ae_core::training::presets::Preset;
use ae_core::training::settings::{ArchName, LrSchedule, MissingCells, ModelName, OptimizerName};
use ae_data::scaling::ScalingKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

/// Train, inspect and reuse autoencoders.
#[derive(Debug, Parser)]
#[command(name = "ae", version, about, long_about = None, args_override_self = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train an autoencoder (with no options: a 784-256-64 model on Fashion-MNIST).
    Train(Box<TrainArgs>),
    /// Evaluate a trained run on the test split (or other data).
    Eval(EvalArgs),
    /// Write the codes of some data.
    Encode(EncodeArgs),
    /// Write reconstructions of some data (PNG grid, NPY or CSV).
    Reconstruct(ReconstructArgs),
    /// Corrupt some data, reconstruct it, and write clean / noisy / denoised rows (PNG) or the
    /// denoised data (NPY, CSV).
    Denoise(DenoiseArgs),
    /// Fill the missing cells (empty or NaN) of a CSV table with the model's reconstruction.
    Impute(ImputeArgs),
    /// Fit PCA (exact, on the training split) and save it as a run: a linear autoencoder that
    /// eval, encode and reconstruct read; pca.json holds the explained variance per component.
    Pca(PcaArgs),
    /// Compare two runs on the same data: metrics side by side, and for two linear maps (a linear
    /// autoencoder, PCA) the principal angles between their subspaces.
    Compare(CompareArgs),
    /// Draw what a run learned (PNG): reconstructions, first-layer filters, the inputs that drive
    /// each code unit most, or the input that maximizes it.
    Visualize(VisualizeArgs),
    /// How much of the labels the codes carry: softmax regression and k-NN on the codes, on the
    /// raw inputs and on PCA codes of the same size (test accuracy).
    Probe(ProbeArgs),
    /// Put a softmax head on a run's encoder and train it with few labels (frozen or fine-tuned),
    /// or the same network from scratch; --sweep prints the whole table.
    Classify(ClassifyArgs),
    /// Predict labels with a classifier made by `ae classify`.
    Predict(PredictArgs),
    /// Reconstruction error as an anomaly score: scores and flags per example; with labels, the
    /// one-class protocol (AUROC, average precision).
    Anomaly(AnomalyArgs),
    /// One self-contained HTML page about a run: config, metrics, every picture that fits the
    /// model, the PCA baseline at the same code size, training curves.
    Report(ReportArgs),
    /// Draw from a VAE's prior and decode: new examples (PNG grid, NPY or CSV).
    Sample(SampleArgs),
    /// Walk the code space between two examples and decode each step (PNG strip).
    Interpolate(InterpolateArgs),
    /// The autoencoder as an image codec beside JPEG: bits per pixel against PSNR and SSIM, in
    /// domain and out of domain.
    Compress(CompressArgs),
    /// Write a run's encoder, decoder or both for another runtime (ONNX, with a dynamic batch
    /// dimension), optionally with the run's input scaling built in.
    Export(ExportArgs),
    /// List or download the named data sets.
    Datasets(DatasetsArgs),
}

/// `ae export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run folder, or a classifier folder made by `ae classify`.
    pub run: PathBuf,
    /// The format: onnx (opset 13), or pytorch (OUT is a `.py` module defining the model with
    /// torch.nn, written beside OUT with `.safetensors` for its weights).
    #[arg(long, value_enum, default_value_t)]
    pub format: ExportFormat,
    /// Which part: encoder (input → code; a VAE's mean and log_variance), decoder (code →
    /// reconstruction) or autoencoder (input → reconstruction, the default). A classifier
    /// folder (made by `ae classify`) is exported whole: input → logits and probabilities.
    #[arg(long)]
    pub part: Option<ae_core::export::onnx::Part>,
    /// Take inputs in the units of the data files and give reconstructions in them: the run's
    /// scaling becomes part of the graph.
    #[arg(long)]
    pub with_scaling: bool,
    /// The file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Export formats.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum ExportFormat {
    /// ONNX (ONNX Runtime, and everything that serves it).
    #[default]
    Onnx,
    /// A PyTorch module (`.py`, torch.nn) and its weights (`.safetensors`), to go on training.
    Pytorch,
}

/// Where a command runs its model's forward passes (`--device`).
#[derive(Clone, Copy, Debug, Args)]
pub struct OnDevice {
    /// Where the model's forward passes run: cpu, cuda, cuda:N (a GPU by number) or auto (the
    /// first GPU when a driver and a GPU are found and the GPU backend computes this model, else
    /// the CPU, saying why). The results agree to rounding; a run's files are the same either way.
    #[arg(long, default_value = "cpu")]
    pub device: ae_core::training::device::Device,
}

/// `ae anomaly`.
#[derive(Debug, Args)]
pub struct AnomalyArgs {
    #[command(flatten)]
    pub input: RunData,
    /// Output CSV: index,score,anomaly[,label][,error_0,…] (with --normal-class: the test
    /// split's index,score,label).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the output file if it exists (an input is never replaced).
    #[arg(long)]
    pub force: bool,
    /// Also write every feature's squared error.
    #[arg(long)]
    pub per_feature: bool,
    /// Flag this share of the scored examples (the threshold is their (1−P) quantile).
    #[arg(long, conflicts_with = "fpr")]
    pub contamination: Option<f64>,
    /// Flag examples scoring above the (1−P) quantile of the run's clean validation scores, saved
    /// at training time (default 0.05 when the run has them; else contamination 0.1).
    #[arg(long)]
    pub fpr: Option<f64>,
    /// One-class protocol: train the run's architecture and settings on this class of the training
    /// split, score the whole test split (other classes are the anomalies), report AUROC and AP.
    #[arg(long, conflicts_with_all = ["all_classes", "contamination", "fpr", "per_feature"])]
    pub normal_class: Option<u32>,
    /// The one-class protocol for every class in turn, with the table and its mean.
    #[arg(long, conflicts_with_all = ["contamination", "fpr", "per_feature"])]
    pub all_classes: bool,
    /// Epochs of each one-class model (default: the run's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Print JSON (one-class protocol).
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Score rows read from their files a window at a time, writing index,score,anomaly as they
    /// come (npy:FILE, npy:FOLDER of .npy shards, idx:IMAGES, parquet:PATH or images:DIR); not
    /// with --per-feature.
    #[arg(long, conflicts_with_all = ["normal_class", "all_classes", "per_feature"])]
    pub stream: bool,
    #[command(flatten)]
    pub on: OnDevice,
}

/// `ae classify`.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// The autoencoder run whose encoder to reuse.
    pub run: PathBuf,
    /// Labelled data (default: the run's data set); without a test split, 20% is held out.
    #[arg(long)]
    pub data: Option<String>,
    /// Folder to look for named data sets in first.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Labelled training examples per class, drawn with --seed (default: all).
    #[arg(long)]
    pub labels_per_class: Option<usize>,
    /// Keep the pretrained encoder fixed; train only the head.
    #[arg(long, conflicts_with_all = ["finetune", "scratch"])]
    pub freeze: bool,
    /// Train the pretrained encoder together with the head (the default).
    #[arg(long, conflicts_with = "scratch")]
    pub finetune: bool,
    /// Train the same network from random weights (the baseline pretraining answers to).
    #[arg(long)]
    pub scratch: bool,
    /// Fine-tune with every training example, labelled or not: the labelled ones' cross-entropy,
    /// plus the reconstruction of all of them through the same encoder, plus confident
    /// predictions on them as targets for corrupted copies (pseudo-labels).
    #[arg(long, conflicts_with_all = ["freeze", "finetune", "scratch"])]
    pub semi_supervised: bool,
    /// Semi-supervised: λ, the weight of the reconstruction error (a mean over values).
    #[arg(long, default_value_t = 30.0)]
    pub reconstruction_weight: f32,
    /// Semi-supervised: μ, the weight of the pseudo-label term (0: none).
    #[arg(long, default_value_t = 1.0)]
    pub pseudo_label_weight: f32,
    /// Semi-supervised: the probability a prediction needs to become a pseudo-label.
    #[arg(long, default_value_t = 0.95)]
    pub threshold: f32,
    /// Semi-supervised: epochs over which the pseudo-label weight rises from 0.
    #[arg(long, default_value_t = 1)]
    pub ramp_epochs: usize,
    /// Semi-supervised: epochs over all training examples (default: about 1,500 steps).
    #[arg(long)]
    pub unlabelled_epochs: Option<usize>,
    /// Semi-supervised: how the learning rate moves over those epochs (constant, cosine,
    /// cosine:WARMUP).
    #[arg(long, default_value = "cosine")]
    pub unlabelled_lr_schedule: LrSchedule,
    /// Semi-supervised: unlabelled examples per step.
    #[arg(long, default_value_t = 256)]
    pub unlabelled_batch: usize,
    /// Semi-supervised: images the classifier trains on move by up to this many pixels
    /// (default: a fourteenth of the smaller side, 2 on 28×28; none on images under 14 pixels).
    #[arg(long)]
    pub shift: Option<usize>,
    /// Semi-supervised: images the classifier trains on are mirrored left to right half the time.
    #[arg(long)]
    pub flip: bool,
    /// Semi-supervised: noise on the inputs the classifier trains on (gaussian:STD, mask:P,
    /// salt-pepper:P).
    #[arg(long)]
    pub augment_noise: Option<Noise>,
    /// Semi-supervised: the weight of virtual adversarial training on all examples (0: none).
    #[arg(long, default_value_t = 0.0)]
    pub vat_weight: f32,
    /// Semi-supervised: ε, the length (L2, scaled units) of VAT's adversarial move.
    #[arg(long, default_value_t = 2.0)]
    pub vat_eps: f32,
    /// Semi-supervised: ξ, the length of the random nudge VAT finds its direction from.
    #[arg(long, default_value_t = 0.01)]
    pub vat_xi: f32,
    /// Semi-supervised: pseudo-labels come from a mean teacher, an exponential moving average
    /// of the classifier's weights with this decay (e.g. 0.99); default: the classifier itself.
    #[arg(long)]
    pub teacher_decay: Option<f32>,
    /// Units of a hidden ReLU layer in the head (default: none, a linear softmax head).
    #[arg(long)]
    pub head_hidden: Option<usize>,
    /// Epochs (default: about 200,000 example presentations, between 10 and 200 epochs).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Epochs of fine-tuning, after the head has been trained on the frozen codes (default:
    /// --epochs).
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    /// The pretrained encoder's learning rate while fine-tuning, as a multiple of --lr (the
    /// head's).
    #[arg(long, default_value_t = 1.0)]
    pub encoder_lr_scale: f32,
    /// Examples per step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    /// Weight penalty (none, l2:LAMBDA, l1:LAMBDA).
    #[arg(long, default_value = "none")]
    pub weight_decay: WeightDecay,
    /// Seed of the labelled subset, the head and the batches.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train scratch, frozen and fine-tuned (and semi-supervised, with --semi-supervised) at
    /// each of these label counts per class (e.g. 10,100,1000,all) and print the table; nothing
    /// is saved.
    #[arg(long)]
    pub sweep: Option<String>,
    /// Seeds per cell of the sweep (--seed, --seed+1, ...); the table shows mean ± std.
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Where to save the classifier (default: RUN/classifier).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace a classifier already saved there.
    #[arg(long)]
    pub force: bool,
    /// Threads (default: the run's).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Only examples of these classes (default: the run's own filter, if any), e.g. the
    /// classes an encoder never saw (self-taught learning).
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<u32>>,
}

/// `ae predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The classifier folder (made by `ae classify`).
    pub run: PathBuf,
    /// Data (default: the data the classifier was trained on; its test split when it has one).
    #[arg(long)]
    pub data: Option<String>,
    /// Split of a named data set.
    #[arg(long, value_enum, default_value_t)]
    pub split: SplitArg,
    /// Folder to look for named data sets in first.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output CSV: index,label,probability.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the output file if it exists (an input is never replaced).
    #[arg(long)]
    pub force: bool,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `ae probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The run folder.
    pub run: PathBuf,
    /// Labelled data (default: the run's data set); without a test split, 20% is held out.
    #[arg(long)]
    pub data: Option<String>,
    /// Folder to look for named data sets in first.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Neighbours of the k-NN classifier.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// Most L-BFGS iterations of softmax regression (fitted to convergence, full batch; the table
    /// says when it stopped short).
    #[arg(long, default_value_t = 1000)]
    pub max_iter: u64,
    /// L2 penalty λ of softmax regression on standardized features: mean cross-entropy +
    /// (λ/2)·‖W‖² (scikit-learn's C = 1/(λ·N)).
    #[arg(long, default_value_t = 1e-4)]
    pub l2: f64,
    /// Use only the first N training examples (k-NN on raw inputs is the slow part).
    #[arg(long)]
    pub max_train: Option<usize>,
    /// Seed of the classifiers (and of the held-out split for data without one).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads (default: the run's).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Only examples of these classes (default: the run's own filter, if any), e.g. the
    /// classes an encoder never saw (self-taught learning).
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<u32>>,
    #[command(flatten)]
    pub on: OnDevice,
}

/// What `ae visualize` draws.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum What {
    /// Originals above their reconstructions.
    Reconstructions,
    /// First-layer weights of each unit, as images (dense) or kernels (conv).
    Filters,
    /// For each of the first --n code units, the --k inputs of the data that activate it most
    /// (one row per unit).
    TopActivations,
    /// For each of the first --n code units, the input of bounded norm (the data's mean norm)
    /// that maximizes it, by gradient ascent from noise.
    ActivationMax,
    /// The codes of up to --points examples in 2-D (the code itself if it has two units, else
    /// its first two principal components), coloured by label, with a legend.
    Latent,
    /// Training, validation and test curves of every logged term (from metrics.jsonl).
    Losses,
    /// Clean, corrupted and denoised examples (the run's own noise, or --noise).
    Denoising,
    /// A VAE's draws from its prior, decoded.
    Samples,
    /// Decoded points on the line between the codes of examples --from and --to.
    Interpolation,
}

/// `ae visualize`.
#[derive(Debug, Args)]
pub struct VisualizeArgs {
    #[command(flatten)]
    pub input: RunData,
    /// What to draw.
    #[arg(long, value_enum)]
    pub what: What,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the output file if it exists (an input is never replaced).
    #[arg(long)]
    pub force: bool,
    /// How many examples (reconstructions) or units (filters, code units) to draw.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Inputs per code unit (top-activations).
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Gradient-ascent steps (activation-max, default 200); decoded points (interpolation,
    /// default 10).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Seed of the starting noise (activation-max), of the corruption (denoising), of the prior
    /// draws (samples).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Examples in the scatter (latent).
    #[arg(long, default_value_t = 5000)]
    pub points: usize,
    /// Corruption (denoising; default: the run's training noise): gaussian:STD, mask:P,
    /// salt-pepper:P.
    #[arg(long)]
    pub noise: Option<Noise>,
    /// First example (interpolation).
    #[arg(long, default_value_t = 0)]
    pub from: usize,
    /// Last example (interpolation).
    #[arg(long, default_value_t = 1)]
    pub to: usize,
}

/// `ae report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub input: RunData,
    /// Output HTML file (one file: pictures embedded, nothing fetched from the network).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the output file if it exists (an input is never replaced).
    #[arg(long)]
    pub force: bool,
    /// Leave out the PCA baseline (PCA with as many components as the code, fitted on the
    /// run's training data).
    #[arg(long)]
    pub no_pca: bool,
    /// Gradient-ascent steps of the activation-maximization picture.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
}

/// `ae compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The first run.
    pub run_a: PathBuf,
    /// The second run.
    pub run_b: PathBuf,
    /// Data (default: the first run's; its test split when it has one).
    #[arg(long)]
    pub data: Option<String>,
    /// Split of a named data set.
    #[arg(long, value_enum, default_value_t)]
    pub split: SplitArg,
    /// Folder to look for named data sets in first.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `ae pca`.
#[derive(Debug, Args)]
pub struct PcaArgs {
    /// Data, as for `ae train` (default fashion-mnist).
    #[arg(long, default_value = "fashion-mnist")]
    pub data: String,
    /// Number of principal components (the code size).
    #[arg(long, short = 'k')]
    pub components: usize,
    /// Run folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace a run already in --out.
    #[arg(long)]
    pub force: bool,
    /// Input scaling, as for `ae train` (default: unit for 8-bit data, else minmax).
    #[arg(long)]
    pub scaling: Option<ScalingKind>,
    /// Folder to look for named data sets in first.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// auto (exact up to 4,096 features, else randomized), exact (eigendecomposition of the
    /// covariance) or randomized (randomized SVD with subspace iteration).
    #[arg(long, default_value = "auto")]
    pub solver: ae_core::analysis::pca::Solver,
    /// Seed of the randomized solver's starting directions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `ae train`. Every option may also come from `--config FILE.toml` (same names, e.g.
/// `batch-size = 128`); flags override the file.
#[derive(Debug, Default, Args, Serialize)]
#[serde(rename_all = "kebab-case")]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// Data: fashion-mnist, mnist, idx:IMAGES[,LABELS], csv:PATH, npy:PATH (a file or a folder
    /// of .npy shards), parquet:PATH (a file or a folder of .parquet files),
    /// images:DIR[,WxH][,gray|rgb] (subfolders are classes) or cifar10:DIR (binary version).
    #[arg(long)]
    pub data: Option<String>,
    /// Run folder to write.
    #[arg(long)]
    #[serde(skip)]
    pub out: Option<PathBuf>,
    /// A TOML file of options (keys are these flags' names).
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Start from a classic flavor's settings (sources in `ae train --help` and presets.rs); flags
    /// and --config override it.
    #[arg(long, value_parser = preset_parser())]
    #[serde(skip)]
    pub preset: Option<Preset>,
    /// Folder to look for named data sets in first.
    #[arg(long)]
    #[serde(skip)]
    pub data_dir: Option<PathBuf>,
    /// CSV: the column holding labels (header name or 0-based index). It is kept out of the
    /// features, and `probe`, `classify` and `anomaly --normal-class` use it.
    #[arg(long)]
    pub label_column: Option<String>,
    /// CSV: the field delimiter (`,` `;` `|` or `tab`; default: detected from the first line).
    #[arg(long)]
    pub delimiter: Option<String>,
    /// CSV: columns (header names or 0-based indices, comma-separated) left out of the
    /// features: ids, dates, text.
    #[arg(long, value_delimiter = ',')]
    pub ignore_columns: Option<Vec<String>>,
    /// Tables (CSV, Parquet): the only columns read as features (header names or 0-based
    /// indices, comma-separated; kept in the file's order); the label column is read as well.
    #[arg(long, value_delimiter = ',', conflicts_with = "ignore_columns")]
    pub columns: Option<Vec<String>>,
    /// CSV: what a value of a categorical (text) column that training did not see becomes:
    /// error (default) or zero (a row of zeros in its one-hot block).
    #[arg(long)]
    pub unknown_levels: Option<ae_data::csv_table::UnknownLevels>,
    /// Train on these classes only (labelled data), e.g. 5,6,7,8,9; later commands on the run's
    /// own data keep the filter unless they give theirs.
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<u32>>,
    /// Missing cells (empty, NaN, NA in a CSV file): refuse (default), or allow: every row
    /// trains, its missing cells left out of the loss and shown to the model as missing (what
    /// `ae impute` wants).
    #[arg(long)]
    pub missing: Option<MissingCells>,
    /// With --missing allow: the share of observed cells hidden at each step, which the model
    /// learns to rebuild from the rest (default 0.1).
    #[arg(long)]
    pub missing_hide: Option<f32>,
    /// With --missing allow: a dense, untied encoder also reads one indicator per feature saying
    /// whether the cell is missing (default true; false: missing cells are only filled with
    /// column means).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub missing_indicator: Option<bool>,
    /// Network kind: dense (--hidden) or conv (--channels, --kernel, --decoder, --code).
    #[arg(long)]
    pub arch: Option<ArchName>,
    /// Model family: ae, or vae (variational: the last --hidden size, or --code, is the latent
    /// size; the loss is the negative ELBO, --loss bce for a Bernoulli decoder, mse for a Gaussian
    /// one of unit variance).
    #[arg(long)]
    pub model: Option<ModelName>,
    /// VAE: weight β of the KL term (β-VAE; default 1, the ELBO).
    #[arg(long)]
    pub beta: Option<f32>,
    /// VAE: grow the KL weight linearly from 0 to β over this many epochs.
    #[arg(long)]
    pub kl_warmup: Option<usize>,
    /// VAE: free bits, each latent unit's KL counts as at least this many nats.
    #[arg(long)]
    pub free_bits: Option<f32>,
    /// Dynamic binarization: every step trains on a fresh Bernoulli draw of the batch (scaled
    /// values in [0, 1] are the probabilities), as for published binarized-MNIST likelihoods.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub binarize: Option<bool>,
    /// VAE with --loss mse: learn the Gaussian decoder's variance (one log σ², saved as
    /// `decoder_logvar`) instead of fixing it at 1.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub learned_variance: Option<bool>,
    /// Conv: output channels of each encoder stage (conv + activation + 2×2 max-pool), comma-separated
    /// (default 32,32).
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set)]
    pub channels: Option<Vec<usize>>,
    /// Conv: kernel size, odd (default 3).
    #[arg(long)]
    pub kernel: Option<usize>,
    /// Conv: decoder stages upsample (conv + nearest ×2) or transpose (stride-2 transposed conv).
    #[arg(long)]
    pub decoder: Option<ConvDecoder>,
    /// Conv: a dense code of this size after the last stage (default: the last feature map).
    #[arg(long)]
    pub code: Option<usize>,
    /// Dense: encoder layer sizes, comma-separated; the last is the code (e.g. 256,64). Default:
    /// 256, then a code as wide as the input but at most 64 (784-256-64 on 28×28 images).
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set)]
    pub hidden: Option<Vec<usize>>,
    /// Hidden activation: relu, leaky-relu[:SLOPE], sigmoid, tanh, linear.
    #[arg(long)]
    pub activation: Option<Activation>,
    /// Code-layer activation (default: as --activation).
    #[arg(long)]
    pub code_activation: Option<Activation>,
    /// Output activation (default sigmoid).
    #[arg(long)]
    pub output_activation: Option<Activation>,
    /// Decoder uses the encoder's weights transposed.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub tied: Option<bool>,
    /// Shorthand for --activation linear --output-activation linear (the PCA-like autoencoder).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub linear: Option<bool>,
    /// Weight init: auto, glorot-uniform, glorot-normal, he-uniform, he-normal, torch.
    #[arg(long)]
    pub init: Option<Init>,
    /// Reconstruction loss: mse or bce.
    #[arg(long)]
    pub loss: Option<LossKind>,
    /// Optimizer: adam or sgd.
    #[arg(long)]
    pub optimizer: Option<OptimizerName>,
    /// Learning rate.
    #[arg(long)]
    pub lr: Option<f32>,
    /// Learning-rate schedule: constant (default), or cosine[:WARMUP_EPOCHS]: linear warm-up,
    /// then cosine decay to 0 at the last epoch.
    #[arg(long)]
    pub lr_schedule: Option<LrSchedule>,
    /// SGD momentum.
    #[arg(long)]
    pub momentum: Option<f32>,
    /// Examples per step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Passes over the training data.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed of every random draw.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Weight penalty: none, l2:LAMBDA or l1:LAMBDA.
    #[arg(long)]
    pub weight_decay: Option<WeightDecay>,
    /// Sparsity penalty on the code: l1:LAMBDA (λ·mean|h|) or kl:RHO:BETA (β·Σ KL(ρ‖ρ̂_j), needs
    /// --code-activation sigmoid).
    #[arg(long)]
    pub sparsity: Option<Sparsity>,
    /// Corrupt training inputs (denoising autoencoder): gaussian:STD, mask:P or salt-pepper:P.
    #[arg(long)]
    pub noise: Option<Noise>,
    /// Contractive penalty λ·‖J_f(x)‖²_F on the encoder's Jacobian (one-layer encoders).
    #[arg(long)]
    pub contractive: Option<f32>,
    /// Greedy layer-wise pretraining: greedy[:EPOCHS per stage] (default: --epochs), then fine-tuning
    /// for --epochs. Stage metrics go to pretrain.jsonl.
    #[arg(long)]
    pub pretrain: Option<ae_core::training::pretrain::Pretrain>,
    /// Share of the training data held out for validation (default 0.1).
    #[arg(long)]
    pub val_fraction: Option<f32>,
    /// Stop after this many epochs without a better validation loss.
    #[arg(long)]
    pub early_stopping: Option<usize>,
    /// Input scaling: none, unit (÷255, for 8-bit data), minmax, standardize.
    #[arg(long)]
    pub scaling: Option<ScalingKind>,
    /// Also evaluate on the test split after every epoch (logged as test_* in metrics.jsonl).
    #[arg(long)]
    #[serde(skip)]
    pub eval_test: bool,
    /// Where the steps compute: cpu, cuda, cuda:N (a GPU by number) or auto (the first GPU when a
    /// driver and a GPU are found and the GPU backend trains this model, else the CPU). The GPU
    /// backend trains dense and conv models (plain, denoising, sparse, contractive, variational,
    /// weight decay, greedy pretraining) with mse or bce so far; not yet --missing allow.
    /// A run folder is the same on every device: resume or evaluate it anywhere.
    #[arg(long, default_value = "cpu")]
    #[serde(skip)]
    pub device: ae_core::training::device::Device,
    /// How a GPU computes its matrix products: fp32 (the default, IEEE throughout) or tf32
    /// (tensor cores with TF32 inputs, fp32 accumulation, weights and optimizer, as PyTorch's
    /// allow_tf32). The CPU computes in fp32 whatever this says.
    #[arg(long, default_value = "fp32")]
    #[serde(skip)]
    pub precision: ae_core::training::device::Precision,
    /// Read the data from its files as training goes instead of loading it, so memory stays
    /// constant in the data's size: npy:FILE, npy:FOLDER (every .npy shard in it, in name order),
    /// idx:IMAGES (uncompressed), parquet:PATH (row group by row group) or images:DIR (decoded
    /// on worker threads as windows are read ahead). Validation rows are chosen by a seeded hash of the row index;
    /// rows are shuffled within windows of --shuffle-buffer rows (README, "Data larger than memory").
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub stream: Option<bool>,
    /// With --stream: rows shuffled together in memory (default: as many as fit in 96 MB).
    #[arg(long)]
    pub shuffle_buffer: Option<usize>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    #[serde(skip)]
    pub resume: bool,
    /// Overwrite an existing run in --out.
    #[arg(long)]
    #[serde(skip)]
    pub force: bool,
    /// No progress bar.
    #[arg(long, short)]
    #[serde(skip)]
    pub quiet: bool,
}

impl TrainArgs {
    /// The options given on the command line, as keys to lay over settings (see
    /// `Settings::overlay`).
    pub fn overlay(&self) -> toml::Table {
        toml::Table::try_from(self).expect("flags always serialize")
    }
}

/// Parses `--preset` and lists every preset with its source in `--help`.
fn preset_parser() -> impl clap::builder::TypedValueParser<Value = Preset> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        Preset::ALL
            .iter()
            .map(|p| PossibleValue::new(p.name()).help(p.about())),
    )
    .map(|s| s.parse::<Preset>().expect("a listed preset"))
}

/// Which split of a named data set to use.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum SplitArg {
    /// The training split.
    Train,
    /// The test split.
    #[default]
    Test,
}

/// Options shared by commands that read a run and some data.
#[derive(Debug, Args)]
pub struct RunData {
    /// The run folder.
    pub run: PathBuf,
    /// Data (default: the run's training data set; its test split when it has one).
    #[arg(long)]
    pub data: Option<String>,
    /// Split of a named data set.
    #[arg(long, value_enum, default_value_t)]
    pub split: SplitArg,
    /// Folder to look for named data sets in first.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Only examples of these classes (default: the run's own filter, if any).
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<u32>>,
}

/// `ae eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub input: RunData,
    /// Corrupt the inputs first (gaussian:STD, mask:P, salt-pepper:P) and also report the PSNR of
    /// the corrupted input, to see what denoising gains.
    #[arg(long)]
    pub noise: Option<Noise>,
    /// Seed of the corruption.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Binarize the data with a fixed seed first (the standard binarized test set; on by
    /// default for runs trained with --binarize).
    #[arg(long)]
    pub binarize: bool,
    /// VAE: importance samples per example of the log-likelihood estimate (0 skips it).
    #[arg(long, default_value_t = 1000)]
    pub iw_samples: usize,
    /// Evaluate only the first N examples.
    #[arg(long)]
    pub limit: Option<usize>,
    /// On the run's own data without a test split (a CSV or NumPy file), score every row, the
    /// training rows included (default: only the validation rows the run held out).
    #[arg(long)]
    pub all_rows: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub on: OnDevice,
}

/// `ae encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub input: RunData,
    /// Output file: codes.csv or codes.npy.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the output file if it exists (an input is never replaced).
    #[arg(long)]
    pub force: bool,
    /// VAE: write the log-variances after the means (columns mu_*, logvar_*).
    #[arg(long)]
    pub with_variance: bool,
    /// Read the data from its files a window at a time and write the results as they come, so
    /// memory stays constant in the data's size: npy:FILE, npy:FOLDER of .npy shards,
    /// idx:IMAGES (uncompressed), parquet:PATH or images:DIR.
    #[arg(long)]
    pub stream: bool,
    #[command(flatten)]
    pub on: OnDevice,
}

/// `ae sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The VAE run.
    pub run: PathBuf,
    /// How many samples.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Output: a PNG grid (image data), or .npy / .csv.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the output file if it exists (an input is never replaced).
    #[arg(long)]
    pub force: bool,
    /// Seed of the draws from the prior.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub on: OnDevice,
}

/// `ae interpolate`.
#[derive(Debug, Args)]
pub struct InterpolateArgs {
    #[command(flatten)]
    pub input: RunData,
    /// Index of the first example.
    #[arg(long)]
    pub from: usize,
    /// Index of the second example.
    #[arg(long)]
    pub to: usize,
    /// Decoded points on the straight line between the two codes, ends included.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Output PNG: the first example, the decoded steps, the second example, in one row.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the output file if it exists (an input is never replaced).
    #[arg(long)]
    pub force: bool,
}

/// `ae reconstruct`.
#[derive(Debug, Args)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub input: RunData,
    /// Output file: FILE.png (grid of originals above reconstructions), FILE.npy or FILE.csv.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the output file if it exists (an input is never replaced).
    #[arg(long)]
    pub force: bool,
    /// How many examples to draw in a PNG (from the start of the data).
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// Read the data from its files a window at a time and write the results as they come, so
    /// memory stays constant in the data's size: npy:FILE, npy:FOLDER of .npy shards,
    /// idx:IMAGES (uncompressed), parquet:PATH or images:DIR.
    #[arg(long)]
    pub stream: bool,
    #[command(flatten)]
    pub on: OnDevice,
}

/// `ae denoise`.
#[derive(Debug, Args)]
pub struct DenoiseArgs {
    #[command(flatten)]
    pub input: RunData,
    /// The corruption: gaussian:STD, mask:P or salt-pepper:P.
    #[arg(long)]
    pub noise: Noise,
    /// Output: FILE.png (clean / noisy / denoised rows), FILE.npy or FILE.csv (denoised data).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the output file if it exists (an input is never replaced).
    #[arg(long)]
    pub force: bool,
    /// How many examples (from the start of the data).
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// Seed of the corruption.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub on: OnDevice,
}

/// `ae impute`.
#[derive(Debug, Args)]
pub struct ImputeArgs {
    /// The run folder (trained on tables with the same columns).
    pub run: PathBuf,
    /// The table: csv:PATH.
    #[arg(long)]
    pub data: String,
    /// Output CSV with the holes filled (in the data's own units).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the output file if it exists (an input is never replaced).
    #[arg(long)]
    pub force: bool,
    /// Rounds of reconstruct-and-fill (default: 1 for a run trained with --missing allow, which
    /// learned to rebuild cells filled with column means in one pass; 10 otherwise).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub on: OnDevice,
}

/// `ae datasets`.
#[derive(Debug, Args)]
pub struct DatasetsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: DatasetsAction,
}

/// `ae datasets` subcommands.
#[derive(Debug, Subcommand)]
pub enum DatasetsAction {
    /// Show where each named data set is found.
    List {
        /// Folder to look in first.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Download a named data set and check its SHA-256.
    Fetch {
        /// fashion-mnist or mnist.
        name: String,
        /// Destination folder (default: $AE_DATA_DIR/NAME or the user cache folder).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Base URL to download from instead of the official one.
        #[arg(long)]
        mirror: Option<String>,
    },
}

/// `ae compress`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    #[command(flatten)]
    pub input: RunData,
    /// Images of another kind (out of domain), with as many pixels as the run takes: e.g.
    /// images:DIR,28x28,gray.
    #[arg(long)]
    pub other: Option<String>,
    /// Output JSON: every rate-distortion point of both codecs on both sets.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the output files if they exist.
    #[arg(long)]
    pub force: bool,
    /// Bits per code value of the autoencoder's points.
    #[arg(long, value_delimiter = ',', default_value = "2,3,4,6,8")]
    pub bits: Vec<u32>,
    /// JPEG qualities.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20,30,50,70,90,95")]
    pub qualities: Vec<u8>,
    /// Also draw the rate-distortion chart (PSNR against bits per pixel) as a PNG.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Images per set (from the start).
    #[arg(long, default_value_t = 2000)]
    pub limit: usize,
    /// Training examples the quantizer ranges and the coder's model are fitted on.
    #[arg(long, default_value_t = 10000)]
    pub train_limit: usize,
}
