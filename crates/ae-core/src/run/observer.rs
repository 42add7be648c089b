//! The observers of a training run: the kill-safe save order of a run folder with test scores
//! and the caller's progress, and the log of each greedy pretraining stage.
use crate::engine::optim::Optimizer;
use crate::engine::params::Params;
use crate::engine::tensor::Tensor;
use crate::objective::{AutoencoderTask, Examples, Terms};
use crate::run::{Progress, RunDir, RunMeta};
use crate::training::fit::{evaluate, EpochRecord, Observer, StepInfo, TrainState};
use crate::Result;

/// Writes a pretraining stage's epochs to pretrain.jsonl and tells the caller.
pub(super) struct StageLog<'a, 'p> {
    pub(super) run: Option<&'a RunDir>,
    pub(super) stage: usize,
    pub(super) progress: &'a std::cell::RefCell<&'p mut dyn Progress>,
}

impl Observer for StageLog<'_, '_> {
    fn on_epoch(
        &mut self,
        r: &EpochRecord,
        _: &Params,
        _: &Optimizer,
        _: &TrainState,
    ) -> Result<()> {
        self.progress.borrow_mut().stage_epoch(self.stage, r);
        match self.run {
            Some(run) => run.append_stage_metrics(self.stage, r),
            None => Ok(()),
        }
    }
    fn on_interrupt(&mut self, _: &Params, _: &Optimizer, _: &TrainState) -> Result<()> {
        Ok(())
    }
}

/// The kill-safe save order of a run folder, test scores, and the caller's progress.
pub(super) struct RunObserver<'a, 'p> {
    pub(super) run: Option<&'a RunDir>,
    pub(super) meta: RunMeta,
    pub(super) progress: &'p mut dyn Progress,
    /// Test data and a model to score it with.
    pub(super) test: Option<(Tensor, AutoencoderTask)>,
    /// In memory, the best epoch's weights (kept when early stopping is on).
    pub(super) best: Option<Vec<Tensor>>,
    pub(super) keep_best: bool,
    pub(super) history: Vec<EpochRecord>,
    /// When the folder's weights were last written, and the best epoch's weights if they
    /// improved since (written with the next save).
    pub(super) saved_at: Option<std::time::Instant>,
    pub(super) unsaved_best: Option<Vec<Tensor>>,
}

/// Epochs shorter than this share one save of the weights: a table of a few hundred rows trains
/// thousands of epochs of a few milliseconds, and writing four files with `fsync` after each took
/// 9 ms of every 10 (breast cancer, 5,000 epochs: 44 s). A kill loses at most this much work;
/// metrics are still written every epoch, and a resume trims them back to the checkpoint.
const SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl RunObserver<'_, '_> {
    /// Writes the best epoch's weights if they improved since the last save; before a checkpoint,
    /// so that a kill between the two leaves a resume to redo the epochs after it.
    fn save_unsaved_best(&mut self, run: &RunDir, params: &Params) -> Result<()> {
        let Some(best) = self.unsaved_best.take() else {
            return Ok(());
        };
        let mut at_best = params.clone();
        at_best.values = best;
        run.save_best(&at_best)
    }
}

impl Observer for RunObserver<'_, '_> {
    fn on_step(&mut self, info: &StepInfo<'_>) {
        self.progress.step(info);
    }

    fn on_epoch(
        &mut self,
        r: &EpochRecord,
        params: &Params,
        opt: &Optimizer,
        state: &TrainState,
    ) -> Result<()> {
        let mut test = Terms::default();
        if let Some((x, task)) = self.test.as_mut() {
            task.model.params.values.clone_from(&params.values);
            for (n, v) in evaluate(task, Examples::new(x), 256).0 {
                test.push(&format!("test_{n}"), v);
            }
        }
        if self.keep_best && r.improved {
            self.best = Some(params.values.clone());
        }
        if let Some(run) = self.run {
            // Order matters for a kill at any point. Metrics and the best weights come before the
            // checkpoint: if we die before the checkpoint, a resume starts from the previous one,
            // trims the metrics back to it and redoes the epoch, rewriting both identically. The
            // model and metadata come after: a resume rewrites them from the checkpoint.
            let extra: serde_json::Map<String, serde_json::Value> = test
                .0
                .iter()
                .map(|(k, v)| (k.clone(), (*v).into()))
                .collect();
            run.append_metrics(r, &extra)?;
            if r.improved {
                self.unsaved_best = Some(params.values.clone());
            }
        }
        self.meta.epoch = state.epoch;
        self.meta.best_loss = state.best_loss;
        self.meta.best_epoch = state.best_epoch;
        self.meta.finished = state.finished;
        let due = state.finished || self.saved_at.is_none_or(|t| t.elapsed() >= SAVE_EVERY);
        if let (Some(run), true) = (self.run, due) {
            self.save_unsaved_best(run, params)?;
            run.save_checkpoint(params, opt, state)?;
            run.save_model(params)?;
            run.write_meta(&self.meta)?;
            self.saved_at = Some(std::time::Instant::now());
        }
        self.history.push(r.clone());
        self.progress.epoch(r, &test);
        Ok(())
    }

    fn on_interrupt(&mut self, params: &Params, opt: &Optimizer, state: &TrainState) -> Result<()> {
        let Some(run) = self.run else { return Ok(()) };
        self.save_unsaved_best(run, params)?;
        run.save_checkpoint(params, opt, state)
    }

    fn stop_requested(&self) -> bool {
        self.progress.stop_requested()
    }
}
