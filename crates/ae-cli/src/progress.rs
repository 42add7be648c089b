//! What `ae train` shows while the library trains: a progress bar within the epoch, a line per
//! epoch and per greedy stage, notes; and Ctrl-C as a request to stop after a checkpoint.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ae_core::objective::Terms;
use ae_core::run::Progress;
use ae_core::training::fit::{EpochRecord, StepInfo};
use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar within the epoch, a line per epoch, Ctrl-C.
pub struct CliProgress {
    /// The bar (hidden with --quiet).
    pub bar: ProgressBar,
    stop: Arc<AtomicBool>,
    /// What a throughput counts: `img/s` for images, `rows/s` for tables.
    pub unit: &'static str,
}

impl CliProgress {
    /// A bar, hidden when `quiet`.
    pub fn new(quiet: bool) -> Self {
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
        CliProgress {
            bar,
            stop: Arc::new(AtomicBool::new(false)),
            unit: "examples/s",
        }
    }

    /// The first Ctrl-C asks training to stop after a checkpoint; the second exits at once.
    pub fn stop_on_ctrl_c(&self) {
        let stop = self.stop.clone();
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::Relaxed) {
                note!("\nsecond Ctrl-C: exiting without saving");
                std::process::exit(130);
            }
            note!("\nCtrl-C: saving a checkpoint after this step (press again to exit at once)");
        });
    }

    fn line(&self, line: &str) {
        if self.bar.is_hidden() {
            note!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

impl Progress for CliProgress {
    fn note(&mut self, text: &str) {
        self.line(text);
    }

    fn step(&mut self, info: &StepInfo<'_>) {
        if info.step == 1 || info.step.is_multiple_of(8) || info.step == info.steps {
            self.bar.set_length(info.steps as u64);
            self.bar.set_prefix(info.epoch.to_string());
            self.bar.set_position(info.step as u64);
            self.bar.set_message(format!(
                "loss {:.5}  {:.0} {}",
                info.terms.total(),
                info.examples_per_second,
                self.unit
            ));
        }
    }

    fn epoch(&mut self, r: &EpochRecord, test: &Terms) {
        let val = r
            .val
            .as_ref()
            .map(|v| format!("  val_loss {:.6}", v.total()))
            .unwrap_or_default();
        let test: String = test
            .0
            .iter()
            .map(|(k, v)| format!("  {k} {v:.6}"))
            .collect();
        self.line(&format!(
            "epoch {:>3}  loss {:.6}{val}{test}  {:.1}s  {:.0} {}",
            r.epoch,
            r.train.total(),
            r.seconds,
            r.examples_per_second,
            self.unit,
        ));
    }

    fn stage_epoch(&mut self, stage: usize, r: &EpochRecord) {
        self.line(&format!(
            "stage {} epoch {:>3}  loss {:.6}  {:.1}s",
            stage + 1,
            r.epoch,
            r.train.total(),
            r.seconds
        ));
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
