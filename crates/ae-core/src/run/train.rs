//! The one call that trains a run: [`train`]. It owns everything between loaded data and a
//! trained model: the validation split, scaling, target checks, greedy pretraining, the loop, the
//! kill-safe save order of a run folder (or nothing written, in memory), best weights, and the
//! validation scores that anomaly thresholds are set on. The command line, examples and bindings
//! load data, call it and print.
use std::path::{Path, PathBuf};

use ae_data::samples::Samples;
use ae_data::scaling::{Scaler, ScalerFit, ScalingKind};
use ae_data::stream::RowSource;
use std::sync::Arc;

use super::observer::{RunObserver, StageLog};
use crate::analysis::anomaly::reconstruction_scores;
use crate::analysis::inference::Inference;
use crate::cuda::CudaTrainer;
use crate::engine::optim::Optimizer;
use crate::engine::rng::{stream, Purpose};
use crate::engine::tensor::Tensor;
use crate::model::vae::binarized;
use crate::model::CodeHealth;
use crate::objective::{AutoencoderTask, Examples, Terms};
use crate::run::{RunDir, RunMeta, ValScores, FORMAT_VERSION};
use crate::training::device::{Device, Precision};
use crate::training::fit::{fit_feeds, fit_with, EpochRecord, Feed, Outcome, StepInfo, TrainState};
use crate::training::pretrain::{greedy, StageSettings};
use crate::training::settings::MissingCells;
use crate::training::settings::{Checked, Settings};
use crate::training::stream::{default_window_rows, fit_scaling, Part, StreamFeed, SAMPLE_ROWS};
use crate::training::trainer::{CpuTrainer, Trainer};
use crate::training::{configure_threads, prepare};
use crate::{Error, Result};

/// Where a training run keeps its files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Destination {
    /// Nowhere: the trained model is only returned.
    #[default]
    Memory,
    /// A new run folder. A folder that holds a run is refused unless `force`, which replaces that
    /// run's files (and only those) once the data has been checked.
    Folder {
        /// The folder.
        path: PathBuf,
        /// Replace a run already there.
        force: bool,
    },
    /// Continue the run in this folder from its last checkpoint, as it was configured (only the
    /// epochs, learning rate, momentum, threads, early stopping and weight decay may change).
    Resume(PathBuf),
}

impl Destination {
    fn path(&self) -> Option<&Path> {
        match self {
            Destination::Memory => None,
            Destination::Folder { path, .. } | Destination::Resume(path) => Some(path),
        }
    }
}

/// What a caller hears while a run trains (a progress bar, log lines); every method has a default
/// that does nothing.
pub trait Progress {
    /// A line of news: what is about to train, a resumed checkpoint, greedy stages, early stopping.
    fn note(&mut self, _text: &str) {}
    /// After each training step.
    fn step(&mut self, _info: &StepInfo<'_>) {}
    /// After each epoch, once the run folder (if any) holds it; `test` has the figures on the
    /// test data given in [`TrainOptions::test`], named `test_*`.
    fn epoch(&mut self, _record: &EpochRecord, _test: &Terms) {}
    /// After each epoch of greedy pretraining stage `stage` (0-based).
    fn stage_epoch(&mut self, _stage: usize, _record: &EpochRecord) {}
    /// Polled between steps: true stops training after a checkpoint ([`Outcome::Interrupted`]).
    fn stop_requested(&self) -> bool {
        false
    }
}

/// A [`Progress`] that hears nothing.
pub struct Quiet;

impl Progress for Quiet {}

/// How [`train`] runs, besides the settings and the data.
#[derive(Default)]
pub struct TrainOptions<'a> {
    /// Where the run's files go.
    pub destination: Destination,
    /// Data to score after every epoch (unscaled; the run's scaling is applied), logged as
    /// `test_*` in the metrics.
    pub test: Option<Samples>,
    /// Who hears about progress (nobody when none).
    pub progress: Option<&'a mut dyn Progress>,
    /// Where the steps compute ([`crate::cuda`] for a GPU). The run folder is the same on every
    /// device: a run trained on a GPU resumes or evaluates on the CPU and back.
    pub device: Device,
    /// How a GPU computes its matrix products; the CPU always computes in fp32 (and says so when
    /// asked for another precision).
    pub precision: Precision,
}

/// A trained run.
#[derive(Debug)]
pub struct Trained {
    /// The model with its objective: the best epoch's weights when early stopping was on, else
    /// the last epoch's.
    pub task: AutoencoderTask,
    /// Input shape, fitted scaling, epochs and best loss (what `meta.json` holds).
    pub meta: RunMeta,
    /// How the loop ended.
    pub outcome: Outcome,
    /// Where the loop stands (for a resume after an interruption).
    pub state: TrainState,
    /// The epochs this call trained.
    pub history: Vec<EpochRecord>,
    /// The final model's reconstruction error on each validation example, ascending.
    pub val_scores: Option<Vec<f32>>,
    /// The run folder, when there is one.
    pub folder: Option<PathBuf>,
    /// Dead or constant code units of the final model on the validation examples (else the
    /// first training examples); `None` when the run was interrupted.
    pub code_health: Option<CodeHealth>,
}

/// Examples the code-health check looks at when there is no validation set.
const HEALTH_ROWS: usize = 10_000;

/// Trains an autoencoder as `settings` say on `data` (the training examples, unscaled).
///
/// A seeded share of `data` (`val_fraction`) is held out for validation; scaling is fitted on the
/// rest. With a run folder, each epoch writes its metrics, and best weights, a checkpoint, the
/// model and metadata follow in an order that survives a kill at any point (after each epoch, or
/// once a second when epochs are shorter, and at the end). A diverging run stops with
/// [`Error::NonFinite`] and keeps the last good checkpoint. Products and passes use
/// `settings.threads` threads.
pub fn train(settings: &Checked, data: Samples, options: TrainOptions<'_>) -> Result<Trained> {
    // Sizes left to the data are fixed now, and recorded so in the run folder.
    let resolved = settings.resolved_for(&data.shape);
    let s: &Settings = &resolved;
    let resumed = begin(s, &options.destination)?;

    let mut data = data;
    let (mut train, mut val) = split_validation(&mut data, s.val_fraction, s.seed);
    let kind = s
        .scaling
        .unwrap_or_else(|| ScalingKind::default_for(train.source));
    let scaler = Scaler::fit(kind, &train).map_err(|e| Error::Data {
        context: format!("cannot fit {kind:?} scaling on {}", s.data),
        source: e,
    })?;
    scale(&scaler, &mut train)?;
    if let Some(v) = val.as_mut() {
        scale(&scaler, v)?;
    }
    check_targets(s, crate::model::vae::first_outside_unit(&train.data))?;
    let input_shape = train.shape.clone();
    let train = to_tensor(train);
    let mut val = val.map(to_tensor);
    if s.binarize {
        // Validation scores a fixed binarized copy, as the test split is scored.
        val = val.map(|v| binarized(&v)).transpose()?;
    }
    run(
        s,
        options,
        resumed,
        input_shape,
        scaler,
        Feeds::Memory { train, val },
    )
}

/// Trains an autoencoder as `settings` say on rows read from `source` as training goes, for
/// data larger than memory: memory holds a few windows of rows ([`crate::training::stream`]),
/// whatever the data's size.
///
/// As [`train`], but the validation rows are chosen by a seeded hash of each row's index
/// ([`crate::training::stream::held_out`], about `val_fraction` of them, not the in-memory
/// split's rows), scaling is fitted in streaming passes, and the validation scores and the
/// code-health check look at the first [`SAMPLE_ROWS`] validation rows. With `val_fraction` 0 and
/// a shuffle buffer that holds every row, the weights equal [`train`]'s on the same rows.
/// Greedy pretraining, missing cells, binarization and class filters need the data in memory and
/// are refused.
pub fn train_streamed(
    settings: &Checked,
    source: RowSource,
    options: TrainOptions<'_>,
) -> Result<Trained> {
    let resolved = settings.resolved_for(source.shape());
    let s: &Settings = &resolved;
    let refused = [
        (s.pretrain.is_some(), "pretrain", "greedy pretraining"),
        (
            s.missing != MissingCells::Refuse,
            "missing",
            "missing cells",
        ),
        (s.binarize, "binarize", "binarization"),
        (!s.classes.is_empty(), "classes", "a class filter"),
    ];
    if let Some((_, field, what)) = refused.iter().find(|r| r.0) {
        return Err(Error::config(
            field,
            format!("{what} needs the data in memory; train without --stream"),
        ));
    }
    let resumed = begin(s, &options.destination)?;
    let d = source.features();
    let kind = s
        .scaling
        .unwrap_or_else(|| ScalingKind::default_for(source.source()));
    let window = s.shuffle_buffer.unwrap_or_else(|| default_window_rows(d));
    // 8-bit data divided by 255 needs no pass over the data: the scaling is fixed and its values
    // lie in [0, 1]. Unscaled data is read once only when the loss needs to know its range.
    let needs_pass = match kind {
        ScalingKind::Unit => false,
        ScalingKind::None => s.loss == crate::engine::loss::LossKind::Bce,
        ScalingKind::MinMax | ScalingKind::Standardize => true,
    };
    let scaler = if needs_pass {
        let fit = fit_scaling(&source, kind, s.seed, s.val_fraction, (window / 16).max(1))?;
        let (mut lo, mut hi) = (fit.range().0.to_vec(), fit.range().1.to_vec());
        let scaler = fit.finish();
        // The scaled data's extremes are its features' extremes, scaled: scaling is monotone.
        scaler.apply(&mut lo);
        scaler.apply(&mut hi);
        let outside = lo
            .iter()
            .chain(&hi)
            .copied()
            .find(|v| v.is_finite() && !(0.0..=1.0).contains(v));
        check_targets(s, outside)?;
        scaler
    } else {
        ScalerFit::new(kind, source.source(), d)
            .map_err(|e| Error::Data {
                context: format!("cannot fit {kind:?} scaling on {}", s.data),
                source: e,
            })?
            .finish()
    };
    let input_shape = source.shape().to_vec();
    let source = Arc::new(source);
    let shared = Arc::new(scaler.clone());
    let feed = |part| {
        StreamFeed::new(
            source.clone(),
            shared.clone(),
            part,
            s.seed,
            s.val_fraction,
            window,
        )
    };
    let train = Box::new(feed(Part::Train)?);
    let val = match s.val_fraction > 0.0 {
        true => Some(Box::new(feed(Part::Validation)?)).filter(|v| v.rows() > 0),
        false => None,
    };
    run(
        s,
        options,
        resumed,
        input_shape,
        scaler,
        Feeds::Stream { train, val },
    )
}

/// The training and validation examples of a run: in memory (scaled) or streamed.
enum Feeds {
    Memory {
        train: Tensor,
        val: Option<Tensor>,
    },
    Stream {
        train: Box<StreamFeed>,
        val: Option<Box<StreamFeed>>,
    },
}

impl Feeds {
    fn train_rows(&self) -> usize {
        match self {
            Feeds::Memory { train, .. } => train.rows(),
            Feeds::Stream { train, .. } => train.rows(),
        }
    }

    fn val_rows(&self) -> usize {
        match self {
            Feeds::Memory { val, .. } => val.as_ref().map_or(0, |v| v.rows()),
            Feeds::Stream { val, .. } => val.as_ref().map_or(0, |v| v.rows()),
        }
    }
}

/// What both entry points do before the data is touched: threads, and the run folder checked
/// (free, or resumable as configured).
fn begin(s: &Settings, destination: &Destination) -> Result<Option<RunDir>> {
    configure_threads(s.threads);
    let resumed = open_resumed(destination, s)?;
    if let Destination::Folder { path, force } = destination {
        RunDir::check_free(path, *force)?;
    }
    Ok(resumed)
}

/// The trainer of `task` on `gpu`, with `resident` examples kept there, or on the CPU.
fn trainer_on<'a>(
    gpu: Option<&'a crate::cuda::Gpu>,
    task: &'a mut AutoencoderTask,
    optimizer: &'a mut Optimizer,
    resident: &[&'a Tensor],
) -> Result<Box<dyn Trainer + 'a>> {
    Ok(match gpu {
        Some(g) => Box::new(CudaTrainer::new(g, task, optimizer, resident)?),
        None => Box::new(CpuTrainer::new(task, optimizer)),
    })
}

/// Everything after the data is ready: the model, the run folder, the loop, the best weights,
/// the validation scores and the code-health check.
fn run(
    s: &Settings,
    options: TrainOptions<'_>,
    resumed: Option<RunDir>,
    input_shape: Vec<usize>,
    scaler: Scaler,
    mut feeds: Feeds,
) -> Result<Trained> {
    let TrainOptions {
        destination,
        test,
        progress,
        device,
        precision,
    } = options;
    let mut quiet = Quiet;
    let progress: &mut dyn Progress = match progress {
        Some(p) => p,
        None => &mut quiet,
    };
    let config = s.model_config(&input_shape);
    // A resumed run's weights are checked against its config before anything is built (a
    // config that lies about sizes must not allocate them); a new run's model is built before
    // its folder is made (a configuration that does not fit the data leaves nothing behind).
    if let (Destination::Resume(_), Some(run)) = (&destination, &resumed) {
        run.check_checkpoint(&config)?;
    }
    let (mut task, mut optimizer) = prepare(s, &input_shape)?;
    if let (Some(_), Feeds::Memory { train, .. }) = (&task.objective.missing, &feeds) {
        task.fill = crate::objective::missing::column_means(train.data(), train.cols());
    }
    // The device is opened (or refused) before the folder is made.
    let (mut gpu, device_note) = crate::cuda::choose(device, &task)?;
    if let Some(note) = device_note {
        progress.note(&note);
    }
    match &mut gpu {
        Some(g) => g.set_precision(precision)?,
        None if precision != Precision::Fp32 => progress.note(&format!(
            "--precision {precision} applies to a GPU's matrix products; the CPU computes in fp32"
        )),
        None => {}
    }
    let run = match (&destination, resumed) {
        (Destination::Memory, _) => None,
        (Destination::Folder { path, force }, _) => Some(RunDir::create(path, *force)?),
        (Destination::Resume(_), Some(run)) => Some(run),
        (Destination::Resume(_), None) => unreachable!("open_resumed opens a resumed run"),
    };
    let resuming = matches!(destination, Destination::Resume(_));
    let mut meta = RunMeta {
        format_version: FORMAT_VERSION,
        flavor: s.arch.into(),
        input_shape: input_shape.clone(),
        scaler,
        epoch: 0,
        best_loss: None,
        best_epoch: 0,
        finished: false,
        parameters: task.model.params.count(),
        written_by: format!("ae {}", env!("CARGO_PKG_VERSION")),
    };
    optimizer.schedule = s
        .lr_schedule
        .steps(s.epochs, feeds.train_rows().div_ceil(s.batch_size.max(1)));
    let mut state = TrainState::default();
    match (&run, resuming) {
        (Some(run), true) => {
            (meta, state) = restore(run, s, meta, &mut task, &mut optimizer)?;
            progress.note(&format!(
                "resuming {} at epoch {}, step {}",
                run.path().display(),
                state.epoch + 1,
                state.step
            ));
        }
        (Some(run), false) => {
            run.write_settings(s)?;
            run.write_meta(&meta)?;
        }
        (None, _) => {}
    }

    let test = match test {
        Some(mut t) => {
            scale(&meta.scaler, &mut t)?;
            let task = AutoencoderTask::new(config.build(s.seed)?, s.objective())?;
            Some((to_tensor(t), task))
        }
        None => None,
    };
    if let (Some(p), false, Feeds::Memory { train, .. }) = (s.pretrain, resuming, &feeds) {
        pretrain(run.as_ref(), &mut task, s, p, train, gpu.as_ref(), progress)?;
    }
    let on = match &gpu {
        Some(g) => g.describe(),
        None => format!("{} threads", s.threads),
    };
    progress.note(&format!(
        "training {} on {} ({} train, {} validation examples), {} parameters, {on}{}",
        s.describe(&input_shape),
        s.data,
        feeds.train_rows(),
        feeds.val_rows(),
        task.model.params.count(),
        destination
            .path()
            .map(|p| format!(" → {}", p.display()))
            .unwrap_or_default()
    ));
    let keep_best = s.early_stopping.is_some();
    let mut observer = RunObserver {
        run: run.as_ref(),
        meta,
        progress,
        test,
        best: None,
        keep_best: keep_best && run.is_none(),
        history: Vec::new(),
        saved_at: None,
        unsaved_best: None,
    };
    let (outcome, notes) = match &mut feeds {
        Feeds::Memory { train, val } => {
            // Examples in memory stay on a GPU when they fit there.
            let resident: Vec<&Tensor> = std::iter::once(&*train).chain(val.as_ref()).collect();
            let mut trainer = trainer_on(gpu.as_ref(), &mut task, &mut optimizer, &resident)?;
            let outcome = fit_with(
                trainer.as_mut(),
                &mut state,
                &s.loop_config(),
                Examples::new(train),
                val.as_ref().map(Examples::new),
                &mut observer,
            )?;
            (outcome, trainer.notes())
        }
        Feeds::Stream { train, val } => {
            let mut trainer = trainer_on(gpu.as_ref(), &mut task, &mut optimizer, &[])?;
            let outcome = fit_feeds(
                trainer.as_mut(),
                &mut state,
                &s.loop_config(),
                train.as_mut(),
                val.as_deref_mut().map(|v| v as &mut dyn Feed),
                &mut observer,
            )?;
            (outcome, trainer.notes())
        }
    };
    let RunObserver {
        meta,
        progress,
        best,
        history,
        ..
    } = observer;
    for note in &notes {
        progress.note(note);
    }
    let folder = run.as_ref().map(|r| r.path().to_path_buf());
    if outcome == Outcome::Interrupted {
        return Ok(Trained {
            task,
            meta,
            outcome,
            state,
            history,
            val_scores: None,
            folder,
            code_health: None,
        });
    }
    if let Outcome::EarlyStopped { epoch } = outcome {
        progress.note(&format!(
            "early stopping after epoch {epoch}; kept the weights of epoch {}",
            state.best_epoch
        ));
    }
    if keep_best {
        match &run {
            Some(run) => {
                run.promote_best()?;
                crate::run::io::load_params(&run.model_path(), &mut task.model.params)?;
            }
            None => {
                if let Some(b) = best {
                    task.model.params.values = b;
                }
            }
        }
    }
    // The validation rows scored (all in memory; the first ones when streamed), and the rows the
    // code-health check looks at.
    let (val, seen) = match feeds {
        Feeds::Memory { train, val } => {
            let val = val.map(|mut v| {
                task.fill_missing(&mut v);
                v
            });
            let seen = match &val {
                Some(_) => None,
                None => Some(
                    task.filled(&train.first_rows(HEALTH_ROWS.min(train.rows())))
                        .into_owned(),
                ),
            };
            (val, seen)
        }
        Feeds::Stream { train, val } => match val {
            Some(v) => (Some(v.first_rows(SAMPLE_ROWS.min(v.rows()))?), None),
            None => (None, Some(train.first_rows(SAMPLE_ROWS.min(train.rows()))?)),
        },
    };
    let val_scores = match &val {
        Some(v) => {
            // A model with indicators reads validation rows with missing cells as they are; their
            // scores would be NaN, so the scores (anomaly thresholds) are of complete rows.
            let complete;
            let d = v.cols().max(1);
            let keep = crate::objective::missing::complete_rows(v.data(), d);
            let v = if keep.len() < v.rows() {
                let rows: Vec<f32> = keep
                    .iter()
                    .flat_map(|&i| &v.data()[i * d..(i + 1) * d])
                    .copied()
                    .collect();
                complete = Tensor::from_vec(&[keep.len(), d], rows);
                &complete
            } else {
                v
            };
            let (mut scores, _) = reconstruction_scores(&Inference::cpu(&task.model), v, false)?;
            scores.sort_by(f32::total_cmp);
            if let Some(run) = &run {
                run.write_val_scores(&ValScores {
                    score: "mse".into(),
                    scores: scores.clone(),
                })?;
            }
            Some(scores)
        }
        None => None,
    };
    let seen = match (&val, seen) {
        (_, Some(rows)) => task.model.codes(&rows),
        (Some(v), None) => task.model.codes(v),
        (None, None) => unreachable!("rows are seen when there is no validation"),
    };
    let code_health = Some(CodeHealth::of(&seen));
    Ok(Trained {
        task,
        meta,
        outcome,
        state,
        history,
        val_scores,
        folder,
        code_health,
    })
}

/// For a resume: the run folder, checked to hold a checkpoint of a run configured as `s` (the
/// settings that define the model, the data and the seed unchanged).
fn open_resumed(destination: &Destination, s: &Settings) -> Result<Option<RunDir>> {
    let Destination::Resume(path) = destination else {
        return Ok(None);
    };
    let run = RunDir::open(path)?;
    run.remove_stale_temporaries()?;
    if !run.has_checkpoint() {
        return Err(Error::format(path, "no checkpoint to resume from"));
    }
    let saved = run.read_settings()?;
    if s.model_config(&[1]) != saved.model_config(&[1])
        || s.data != saved.data
        || s.seed != saved.seed
    {
        return Err(Error::config(
            "resume",
            "continues a run as it was configured: only epochs, lr, momentum, threads, \
             early-stopping and weight-decay may change",
        ));
    }
    let done = run.read_meta()?.epoch;
    if s.epochs <= done {
        return Err(Error::config(
            "epochs",
            format!(
                "the run has already trained {done} epochs; to continue it, ask for more than \
                 that (nothing was changed)"
            ),
        ));
    }
    Ok(Some(run))
}

/// Brings a resumed run's model, optimizer and metadata to its last checkpoint.
fn restore(
    run: &RunDir,
    s: &Settings,
    meta: RunMeta,
    task: &mut AutoencoderTask,
    optimizer: &mut Optimizer,
) -> Result<(RunMeta, TrainState)> {
    let saved = run.read_meta()?;
    if saved.input_shape != meta.input_shape || saved.scaler != meta.scaler {
        return Err(Error::format(
            run.path(),
            "the data no longer matches the run (input shape or fitted scaling changed)",
        ));
    }
    let mut state = run.load_checkpoint(&mut task.model.params, optimizer)?;
    optimizer.lr = s.lr;
    state.finished = false;
    run.trim_metrics(state.epoch)?;
    let meta = RunMeta {
        epoch: state.epoch,
        best_loss: state.best_loss,
        best_epoch: state.best_epoch,
        ..saved
    };
    if state.step == 0 {
        // A kill may have come between the checkpoint and the model or metadata of its epoch: the
        // checkpoint is the truth, so bring them in line with it.
        run.save_model(&task.model.params)?;
        run.write_meta(&meta)?;
    }
    run.write_settings(s)?;
    Ok((meta, state))
}

fn scale(scaler: &Scaler, s: &mut Samples) -> Result<()> {
    scaler.transform(s).map_err(|e| Error::Data {
        context: "cannot scale the data".into(),
        source: e,
    })
}

/// Moves samples into a tensor of shape `[N, ..shape]` without copying.
pub fn to_tensor(s: Samples) -> Tensor {
    let mut shape = vec![s.n];
    shape.extend(&s.shape);
    Tensor::from_vec(&shape, s.data)
}

/// Moves a seeded random `fraction` of the examples into a validation set, in place: the training
/// rows are compacted without a second copy of the data.
pub fn split_validation(s: &mut Samples, fraction: f32, seed: u64) -> (Samples, Option<Samples>) {
    use rand::seq::SliceRandom;
    let n = s.n;
    let k = ((n as f64) * fraction as f64).round() as usize;
    let taken = std::mem::replace(
        s,
        Samples {
            data: Vec::new(),
            n: 0,
            shape: s.shape.clone(),
            labels: None,
            source: s.source,
        },
    );
    if k == 0 || k >= n {
        return (taken, None);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut stream(seed, Purpose::Split, 0, 0));
    let mut is_val = vec![false; n];
    let mut val_idx: Vec<usize> = order[..k].to_vec();
    val_idx.sort_unstable();
    for &i in &val_idx {
        is_val[i] = true;
    }
    let val = taken.subset(&val_idx);
    let Samples {
        mut data,
        shape,
        labels,
        source,
        ..
    } = taken;
    let c: usize = shape.iter().product();
    let mut w = 0;
    for (i, _) in is_val.iter().enumerate().filter(|(_, v)| !**v) {
        if w != i {
            data.copy_within(i * c..(i + 1) * c, w * c);
        }
        w += 1;
    }
    // No shrink_to_fit: it would copy the data once more; the spare tenth is cheaper.
    data.truncate(w * c);
    let labels = labels.map(|l| {
        l.iter()
            .enumerate()
            .filter(|(i, _)| !is_val[*i])
            .map(|(_, &v)| v)
            .collect()
    });
    (
        Samples {
            data,
            n: w,
            shape,
            labels,
            source,
        },
        Some(val),
    )
}

/// BCE and binarization need targets in [0, 1]; say so before training rather than train on
/// nonsense.
fn check_targets(s: &Settings, outside: Option<f32>) -> Result<()> {
    let outside = || outside;
    if s.binarize {
        if let Some(v) = outside() {
            return Err(Error::config(
                "binarize",
                format!("draws each value as a probability and needs inputs scaled into [0, 1], but the scaled data holds {v}; use scaling minmax or unit"),
            ));
        }
    }
    if s.loss == crate::engine::loss::LossKind::Bce {
        if let Some(v) = outside() {
            return Err(Error::config(
                "loss",
                format!("bce needs inputs scaled into [0, 1], but the scaled data holds {v}; use scaling minmax or unit"),
            ));
        }
    }
    Ok(())
}

/// Greedy layer-wise pretraining of `task`'s model on `train`; each stage's epochs go to
/// pretrain.jsonl (with a folder) and to `progress`.
fn pretrain(
    run: Option<&RunDir>,
    task: &mut AutoencoderTask,
    s: &Settings,
    p: crate::training::pretrain::Pretrain,
    train: &Tensor,
    gpu: Option<&crate::cuda::Gpu>,
    progress: &mut dyn Progress,
) -> Result<()> {
    let stages = StageSettings {
        epochs: p.epochs.unwrap_or(s.epochs),
        batch_size: s.batch_size,
        seed: s.seed,
        optimizer: s.optimizer_kind(),
        lr: s.lr,
        objective: s.objective(),
    };
    progress.note(&format!(
        "greedy pretraining: {} stages of {} epochs{}",
        s.hidden.len(),
        stages.epochs,
        gpu.map_or(String::new(), |g| format!(" on {}", g.describe()))
    ));
    let progress = std::cell::RefCell::new(progress);
    let notes = greedy(&mut task.model, train, &stages, gpu, &mut |stage| {
        Box::new(StageLog {
            run,
            stage,
            progress: &progress,
        })
    })?;
    for note in notes {
        progress.borrow_mut().note(&note);
    }
    Ok(())
}
