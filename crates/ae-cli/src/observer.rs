//! The training observer of the command line: progress bar, checkpoints, metrics, Ctrl-C.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ae_core::engine::optim::Optimizer;
use ae_core::engine::params::Params;
use ae_core::objective::AutoencoderTask;
use ae_core::run::{RunDir, RunMeta};
use ae_core::training::fit::{evaluate, EpochRecord, Observer, StepInfo, TrainState};
use ae_core::Tensor;
use indicatif::{ProgressBar, ProgressStyle};

/// Writes each epoch to the run folder and draws progress.
pub struct CliObserver<'a> {
    /// The run folder.
    pub run: &'a RunDir,
    /// Metadata, updated each epoch.
    pub meta: RunMeta,
    /// Set by Ctrl-C.
    pub stop: Arc<AtomicBool>,
    /// Progress bar (hidden with --quiet).
    pub bar: ProgressBar,
    /// Test data to evaluate after each epoch (`--eval-test`), with a model to evaluate it on.
    pub test: Option<(&'a Tensor, &'a mut AutoencoderTask)>,
    /// Print one line per epoch.
    pub quiet: bool,
}

impl<'a> CliObserver<'a> {
    /// A progress bar for `steps` steps per epoch.
    pub fn bar(quiet: bool) -> ProgressBar {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix:>3} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    }
}

impl Observer for CliObserver<'_> {
    fn on_step(&mut self, info: &StepInfo<'_>) {
        if info.step == 1 || info.step.is_multiple_of(8) || info.step == info.steps {
            self.bar.set_length(info.steps as u64);
            self.bar.set_prefix(info.epoch.to_string());
            self.bar.set_position(info.step as u64);
            self.bar.set_message(format!(
                "loss {:.5}  {:.0} img/s",
                info.terms.total(),
                info.examples_per_second
            ));
        }
    }

    fn on_epoch(
        &mut self,
        r: &EpochRecord,
        params: &Params,
        opt: &Optimizer,
        state: &TrainState,
    ) -> ae_core::Result<()> {
        // Order matters for a kill at any point. Metrics and the best weights come before the
        // checkpoint: if we die before the checkpoint, a resume starts from the previous one, trims
        // the metrics back to it and redoes the epoch, rewriting both identically. The model and
        // metadata come after: a resume rewrites them from the checkpoint.
        let mut extra = serde_json::Map::new();
        if let Some((test, task)) = self.test.as_mut() {
            task.model.params.values.clone_from(&params.values);
            for (n, v) in evaluate(*task, ae_core::training::fit::Examples::new(test), 256).0 {
                extra.insert(format!("test_{n}"), v.into());
            }
        }
        self.run.append_metrics(r, &extra)?;
        if r.improved {
            self.run.save_best(params)?;
        }
        self.run.save_checkpoint(params, opt, state)?;
        self.run.save_model(params)?;
        self.meta.epoch = state.epoch;
        self.meta.best_loss = state.best_loss;
        self.meta.best_epoch = state.best_epoch;
        self.meta.finished = state.finished;
        self.run.write_meta(&self.meta)?;
        let val = r
            .val
            .as_ref()
            .map(|v| format!("  val_loss {:.6}", v.total()))
            .unwrap_or_default();
        let test = extra
            .iter()
            .map(|(k, v)| format!("  {k} {:.6}", v.as_f64().unwrap_or(f64::NAN)))
            .collect::<String>();
        let line = format!(
            "epoch {:>3}  loss {:.6}{val}{test}  {:.1}s  {:.0} img/s",
            r.epoch,
            r.train.total(),
            r.seconds,
            r.examples_per_second,
        );
        if self.quiet || self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
        Ok(())
    }

    fn on_interrupt(
        &mut self,
        params: &Params,
        opt: &Optimizer,
        state: &TrainState,
    ) -> ae_core::Result<()> {
        self.bar.finish_and_clear();
        self.run.save_checkpoint(params, opt, state)?;
        eprintln!(
            "interrupted at epoch {}, step {}: checkpoint saved; continue with `ae train --out {} --resume`",
            state.epoch + 1,
            state.step,
            self.run.path().display()
        );
        Ok(())
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
