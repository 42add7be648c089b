//! The one training loop: epochs, shuffled batches, validation, early stopping, divergence checks,
//! checkpoints (through an [`Observer`]) and clean interruption. Every model and flavor goes through
//! it by implementing [`Task`], which knows a single step.
use std::time::Instant;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::engine::optim::Optimizer;
use crate::engine::params::Params;
use crate::engine::rng::{stream, Purpose};
pub use crate::objective::task::{Examples, Task, Terms};
use crate::{Error, Result};

/// How to train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopConfig {
    /// Number of passes over the training data.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Seed of shuffling (and of every other draw, through the task).
    pub seed: u64,
    /// Stop after this many epochs without a better validation loss.
    pub early_stopping: Option<usize>,
}

impl LoopConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1, got 0"));
        }
        if self.early_stopping == Some(0) {
            return Err(Error::config(
                "early_stopping",
                "patience must be at least 1 epoch, got 0",
            ));
        }
        Ok(())
    }
}

/// Where training stands; saved in checkpoints so that `--resume` continues exactly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Completed epochs.
    pub epoch: usize,
    /// Steps completed within the current epoch (non-zero only for an interrupted epoch).
    pub step: usize,
    /// Example-weighted sums of the current epoch's training terms so far.
    pub partial: Terms,
    /// Examples seen in the current epoch so far.
    pub partial_examples: usize,
    /// Training seconds spent in the current epoch so far.
    pub partial_seconds: f64,
    /// Best monitored loss (validation if there is validation data, else training).
    pub best_loss: Option<f64>,
    /// Epoch at which `best_loss` was reached.
    pub best_epoch: usize,
    /// Epochs since the best one.
    pub bad_epochs: usize,
    /// True once training ended (all epochs, or early stopping).
    pub finished: bool,
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training terms over the epoch.
    pub train: Terms,
    /// Validation terms, when there is validation data.
    pub val: Option<Terms>,
    /// Seconds spent on training steps (not validation).
    pub seconds: f64,
    /// Training examples per second.
    pub examples_per_second: f64,
    /// True when this epoch reached the best monitored loss so far.
    pub improved: bool,
    /// The task's other figures for the epoch ([`Task::diagnostics`]).
    #[serde(default)]
    pub diagnostics: Terms,
}

/// Progress within an epoch.
#[derive(Clone, Debug)]
pub struct StepInfo<'a> {
    /// 1-based epoch.
    pub epoch: usize,
    /// Steps done in this epoch.
    pub step: usize,
    /// Steps per epoch.
    pub steps: usize,
    /// This step's terms.
    pub terms: &'a Terms,
    /// Examples per second so far this epoch.
    pub examples_per_second: f64,
}

/// What the loop tells the outside world; the CLI draws progress and writes checkpoints here.
pub trait Observer {
    /// After each step.
    fn on_step(&mut self, _info: &StepInfo<'_>) {}
    /// After each epoch, with everything needed for a checkpoint.
    fn on_epoch(
        &mut self,
        record: &EpochRecord,
        params: &Params,
        optimizer: &Optimizer,
        state: &TrainState,
    ) -> Result<()>;
    /// When the loop stops early because [`Observer::stop_requested`] said so; checkpoint here.
    fn on_interrupt(
        &mut self,
        params: &Params,
        optimizer: &Optimizer,
        state: &TrainState,
    ) -> Result<()>;
    /// Polled between steps (Ctrl-C).
    fn stop_requested(&self) -> bool {
        false
    }
}

/// How a call to [`fit`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every epoch ran.
    Completed,
    /// Validation stopped improving for `patience` epochs.
    EarlyStopped {
        /// The epoch after which training stopped.
        epoch: usize,
    },
    /// The observer asked to stop; the state was checkpointed.
    Interrupted,
}

pub use crate::training::trainer::evaluate;
use crate::training::trainer::{CpuTrainer, Trainer};

/// An observer that records nothing: for models trained inside another command (a classifier, a
/// one-class anomaly model) whose epochs need no checkpoint.
pub struct Silent;

impl Observer for Silent {
    fn on_epoch(
        &mut self,
        _: &EpochRecord,
        _: &Params,
        _: &Optimizer,
        _: &TrainState,
    ) -> Result<()> {
        Ok(())
    }
    fn on_interrupt(&mut self, _: &Params, _: &Optimizer, _: &TrainState) -> Result<()> {
        Ok(())
    }
}

/// Trains `task` with `optimizer` on this crate's CPU engine: [`fit_with`] a [`CpuTrainer`].
pub fn fit(
    task: &mut dyn Task,
    optimizer: &mut Optimizer,
    state: &mut TrainState,
    cfg: &LoopConfig,
    train: Examples<'_>,
    val: Option<Examples<'_>>,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    fit_with(
        &mut CpuTrainer::new(task, optimizer),
        state,
        cfg,
        train,
        val,
        observer,
    )
}

/// The loop: trains on `train` (examples along the first axis) from `state` until `cfg.epochs`,
/// whatever device `trainer` computes on ([`fit_feeds`] with the examples in memory).
pub fn fit_with(
    trainer: &mut dyn Trainer,
    state: &mut TrainState,
    cfg: &LoopConfig,
    train: Examples<'_>,
    val: Option<Examples<'_>>,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    let mut val = val.map(MemoryFeed::new);
    fit_feeds(
        trainer,
        state,
        cfg,
        &mut MemoryFeed::new(train),
        val.as_mut().map(|v| v as &mut dyn Feed),
        observer,
    )
}

/// Where the loop's examples come from, batch by batch: memory ([`MemoryFeed`]) or a stream
/// read from files as it goes ([`crate::training::stream::StreamFeed`]).
pub trait Feed {
    /// Examples in one epoch.
    fn rows(&self) -> usize;
    /// Gets epoch `epoch` (0-based) of a run seeded with `seed` ready, in batches of
    /// `batch_size`, its first `skip` batches already trained (a resumed epoch).
    fn start_epoch(
        &mut self,
        seed: u64,
        epoch: usize,
        batch_size: usize,
        skip: usize,
    ) -> Result<()>;
    /// The trainer's next step of the epoch: its loss terms and how many examples it took.
    fn step(
        &mut self,
        trainer: &mut dyn Trainer,
        epoch: usize,
        step: usize,
    ) -> Result<(Terms, usize)>;
    /// Mean loss terms over every example, in batches of `batch_size`, without updates.
    fn evaluate(&mut self, trainer: &mut dyn Trainer, batch_size: usize) -> Result<Terms>;
    /// Examples in memory for the collapse check and the diagnostics: all, or the first ones.
    fn sample(&self) -> Examples<'_>;
}

/// Examples in memory, shuffled whole every epoch.
pub struct MemoryFeed<'a> {
    data: Examples<'a>,
    order: Vec<usize>,
    batch_size: usize,
}

impl<'a> MemoryFeed<'a> {
    /// Feeds `data`.
    pub fn new(data: Examples<'a>) -> Self {
        MemoryFeed {
            data,
            order: Vec::new(),
            batch_size: 1,
        }
    }
}

impl Feed for MemoryFeed<'_> {
    fn rows(&self) -> usize {
        self.data.len()
    }

    fn start_epoch(&mut self, seed: u64, epoch: usize, batch_size: usize, _: usize) -> Result<()> {
        self.order = (0..self.data.len()).collect();
        self.order
            .shuffle(&mut stream(seed, Purpose::Shuffle, epoch as u64, 0));
        self.batch_size = batch_size;
        Ok(())
    }

    fn step(
        &mut self,
        trainer: &mut dyn Trainer,
        epoch: usize,
        step: usize,
    ) -> Result<(Terms, usize)> {
        let n = self.order.len();
        let idx =
            &self.order[(step * self.batch_size).min(n)..((step + 1) * self.batch_size).min(n)];
        Ok((trainer.step(self.data, idx, epoch, step)?, idx.len()))
    }

    fn evaluate(&mut self, trainer: &mut dyn Trainer, batch_size: usize) -> Result<Terms> {
        trainer.evaluate(self.data, batch_size)
    }

    fn sample(&self) -> Examples<'_> {
        self.data
    }
}

/// The loop: trains on the examples `train` feeds from `state` until `cfg.epochs`, whatever
/// device `trainer` computes on and wherever the examples come from.
///
/// Divergence (a NaN or infinite term) returns [`Error::NonFinite`] before the optimizer applies
/// the bad step, and before the observer writes anything: the last checkpoint stays good. A model
/// that gives the same output for every input after an epoch returns [`Error::Collapsed`], its
/// epoch unsaved. A feed that fails (a file gone mid-epoch) returns its error, likewise unsaved.
pub fn fit_feeds(
    trainer: &mut dyn Trainer,
    state: &mut TrainState,
    cfg: &LoopConfig,
    train: &mut dyn Feed,
    mut val: Option<&mut dyn Feed>,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    cfg.validate()?;
    let n = train.rows();
    if n == 0 {
        return Err(Error::config("data", "the training set is empty"));
    }
    let steps = n.div_ceil(cfg.batch_size);
    while state.epoch < cfg.epochs && !state.finished {
        let epoch = state.epoch; // 0-based
        train.start_epoch(cfg.seed, epoch, cfg.batch_size, state.step)?;
        let started = Instant::now() - std::time::Duration::from_secs_f64(state.partial_seconds);
        for step in state.step..steps {
            if observer.stop_requested() {
                state.partial_seconds = started.elapsed().as_secs_f64();
                let (params, optimizer) = trainer.host()?;
                observer.on_interrupt(params, optimizer, state)?;
                return Ok(Outcome::Interrupted);
            }
            // The trainer applies the update only when every term is finite.
            let (terms, taken) = train.step(trainer, epoch, step)?;
            if let Some((term, value)) = terms.non_finite() {
                return Err(Error::NonFinite {
                    epoch: epoch + 1,
                    step: step + 1,
                    term,
                    value,
                });
            }
            state.partial.add_weighted(&terms, taken as f64);
            state.partial_examples += taken;
            state.step = step + 1;
            let secs = started.elapsed().as_secs_f64();
            observer.on_step(&StepInfo {
                epoch: epoch + 1,
                step: step + 1,
                steps,
                terms: &terms,
                examples_per_second: state.partial_examples as f64 / secs.max(1e-9),
            });
        }
        let seconds = started.elapsed().as_secs_f64();
        let train_terms = state
            .partial
            .scaled(1.0 / state.partial_examples.max(1) as f64);
        // In training-sized batches: a conv model's activations for 1,024 examples take over 300 MB.
        let val_terms = match val.as_deref_mut() {
            Some(v) => Some(v.evaluate(trainer, cfg.batch_size)?),
            None => None,
        };
        let monitored = val_terms.as_ref().unwrap_or(&train_terms).total();
        if let Some((term, value)) = val_terms.as_ref().and_then(Terms::non_finite) {
            return Err(Error::NonFinite {
                epoch: epoch + 1,
                step: steps,
                term: format!("val_{term}"),
                value,
            });
        }
        let seen = match val.as_deref() {
            Some(v) => v.sample(),
            None => train.sample(),
        };
        // A collapsed model gets no useful gradient again: stop before its epoch is saved.
        if let Some(what) = trainer.collapse(seen)? {
            return Err(Error::Collapsed {
                epoch: epoch + 1,
                what,
            });
        }
        let improved = state.best_loss.is_none_or(|b| monitored < b);
        if improved {
            state.best_loss = Some(monitored);
            state.best_epoch = epoch + 1;
            state.bad_epochs = 0;
        } else {
            state.bad_epochs += 1;
        }
        let diagnostics = trainer.diagnostics(seen)?;
        let record = EpochRecord {
            epoch: epoch + 1,
            train: train_terms,
            val: val_terms,
            seconds,
            examples_per_second: state.partial_examples as f64 / seconds.max(1e-9),
            improved,
            diagnostics,
        };
        state.epoch += 1;
        state.step = 0;
        state.partial = Terms::default();
        state.partial_examples = 0;
        state.partial_seconds = 0.0;
        let stop_early = cfg.early_stopping.is_some_and(|p| state.bad_epochs >= p);
        state.finished = stop_early || state.epoch >= cfg.epochs;
        let (params, optimizer) = trainer.host()?;
        observer.on_epoch(&record, params, optimizer, state)?;
        if stop_early {
            return Ok(Outcome::EarlyStopped { epoch: state.epoch });
        }
    }
    Ok(Outcome::Completed)
}

/// Trains `task` from a fresh state with nothing observed or written: for models trained inside
/// another computation (a classifier, a one-class model, a probe).
pub fn fit_quietly(
    task: &mut dyn Task,
    optimizer: &mut Optimizer,
    cfg: &LoopConfig,
    train: Examples<'_>,
) -> Result<Outcome> {
    fit(
        task,
        optimizer,
        &mut TrainState::default(),
        cfg,
        train,
        None,
        &mut Silent,
    )
}
