//! The seam between the training loop and where a step computes. The loop ([`fit_with`]) decides
//! the order of examples, checks every step for divergence, validates, stops early and tells the
//! observer; a [`Trainer`] holds a model, its objective and its optimizer on some device and
//! takes one step at a time. [`CpuTrainer`] is this crate's engine; a GPU backend implements the
//! same trait with parameters, optimizer state and data kept on the device, and brings
//! parameters and optimizer state to the host only when the loop asks (checkpoints, the end).
use crate::engine::optim::Optimizer;
use crate::engine::params::Params;
use crate::engine::tensor::Tensor;
use crate::objective::{Examples, Task, Terms};
use crate::Result;

/// A model with its objective and optimizer that the loop drives one step at a time.
pub trait Trainer {
    /// One optimization step on the examples `idx` of `data` (`epoch` and `step` seed its
    /// randomness): forward, backward and, only when every loss term is finite, the optimizer's
    /// update. Returns the step's loss terms, or the device's error (a GPU out of memory).
    fn step(
        &mut self,
        data: Examples<'_>,
        idx: &[usize],
        epoch: usize,
        step: usize,
    ) -> Result<Terms>;
    /// Mean loss terms over `data`, in batches of `batch_size`, without randomness or updates.
    fn evaluate(&mut self, data: Examples<'_>, batch_size: usize) -> Result<Terms>;
    /// Figures to log after an epoch besides the loss ([`Task::diagnostics`]).
    fn diagnostics(&mut self, data: Examples<'_>) -> Result<Terms>;
    /// Whether the model has collapsed on `data` ([`Task::collapse`]).
    fn collapse(&mut self, data: Examples<'_>) -> Result<Option<String>>;
    /// The parameters and the optimizer's state, on the host (for checkpoints).
    fn host(&mut self) -> Result<(&Params, &Optimizer)>;
    /// What the user should know about how the steps ran (a GPU that fell back to a slower
    /// path, say); none by default.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The CPU engine as a [`Trainer`]: a task and its optimizer, batches gathered into reusable
/// buffers.
pub struct CpuTrainer<'a> {
    task: &'a mut dyn Task,
    optimizer: &'a mut Optimizer,
    batch: Tensor,
    labels: Vec<u32>,
}

impl<'a> CpuTrainer<'a> {
    /// Drives `task` with `optimizer`.
    pub fn new(task: &'a mut dyn Task, optimizer: &'a mut Optimizer) -> Self {
        CpuTrainer {
            task,
            optimizer,
            batch: Tensor::default(),
            labels: Vec::new(),
        }
    }
}

impl Trainer for CpuTrainer<'_> {
    fn step(
        &mut self,
        data: Examples<'_>,
        idx: &[usize],
        epoch: usize,
        step: usize,
    ) -> Result<Terms> {
        gather(data, idx, &mut self.batch, &mut self.labels);
        self.task.params_mut().zero_grads();
        let terms = self.task.train_step(
            Examples {
                x: &self.batch,
                labels: &self.labels,
            },
            epoch,
            step,
        );
        if terms.non_finite().is_none() {
            self.optimizer.apply(self.task.params_mut());
        }
        Ok(terms)
    }

    fn evaluate(&mut self, data: Examples<'_>, batch_size: usize) -> Result<Terms> {
        Ok(evaluate(self.task, data, batch_size))
    }

    fn diagnostics(&mut self, data: Examples<'_>) -> Result<Terms> {
        Ok(self.task.diagnostics(data))
    }

    fn collapse(&mut self, data: Examples<'_>) -> Result<Option<String>> {
        Ok(self.task.collapse(data))
    }

    fn host(&mut self) -> Result<(&Params, &Optimizer)> {
        Ok((self.task.params(), self.optimizer))
    }
}

/// Batches examples (and their labels, if any) by index into reusable buffers.
pub(crate) fn gather(data: Examples<'_>, idx: &[usize], out: &mut Tensor, labels: &mut Vec<u32>) {
    let mut shape = data.x.shape().to_vec();
    shape[0] = idx.len();
    out.resize(&shape);
    let c = data.x.cols();
    for (dst, &i) in out.data_mut().chunks_exact_mut(c).zip(idx) {
        dst.copy_from_slice(data.x.row(i));
    }
    labels.clear();
    if !data.labels.is_empty() {
        labels.extend(idx.iter().map(|&i| data.labels[i]));
    }
}

/// Mean loss terms of `task` over `data`, in batches.
pub fn evaluate(task: &mut dyn Task, data: Examples<'_>, batch_size: usize) -> Terms {
    let n = data.len();
    let mut sum = Terms::default();
    let (mut batch, mut labels) = (Tensor::default(), Vec::new());
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(batch_size.max(1)) {
        gather(data, chunk, &mut batch, &mut labels);
        let t = task.eval_batch(Examples {
            x: &batch,
            labels: &labels,
        });
        sum.add_weighted(&t, chunk.len() as f64);
    }
    sum.scaled(1.0 / n.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::optim::OptimizerKind;
    use crate::model::ModelConfig;
    use crate::objective::{AutoencoderTask, Objective};
    use crate::training::fit::{fit, fit_with, LoopConfig, Silent, TrainState};

    /// A trainer that counts what the loop asks of it, around the CPU one.
    struct Counting<'a> {
        inner: CpuTrainer<'a>,
        steps: usize,
        host: usize,
    }

    impl Trainer for Counting<'_> {
        fn step(
            &mut self,
            data: Examples<'_>,
            idx: &[usize],
            epoch: usize,
            step: usize,
        ) -> Result<Terms> {
            self.steps += 1;
            self.inner.step(data, idx, epoch, step)
        }
        fn evaluate(&mut self, data: Examples<'_>, batch_size: usize) -> Result<Terms> {
            self.inner.evaluate(data, batch_size)
        }
        fn diagnostics(&mut self, data: Examples<'_>) -> Result<Terms> {
            self.inner.diagnostics(data)
        }
        fn collapse(&mut self, data: Examples<'_>) -> Result<Option<String>> {
            self.inner.collapse(data)
        }
        fn host(&mut self) -> Result<(&Params, &Optimizer)> {
            self.host += 1;
            self.inner.host()
        }
    }

    #[test]
    fn the_loop_asks_for_host_state_once_an_epoch_and_a_wrapped_trainer_changes_nothing() {
        let x = Tensor::from_vec(
            &[50, 6],
            (0..300).map(|i| ((i * 7 % 11) as f32) / 11.0).collect(),
        );
        let cfg = LoopConfig {
            epochs: 3,
            batch_size: 8,
            seed: 1,
            early_stopping: None,
        };
        let run = |wrap: bool| {
            let mut task = AutoencoderTask::new(
                ModelConfig::dense(&[6], &[3]).build(1).unwrap(),
                Objective::default(),
            )
            .unwrap();
            let mut opt = Optimizer::new(OptimizerKind::ADAM, 0.01, &task.model.params);
            let mut state = TrainState::default();
            let counts = if wrap {
                let mut t = Counting {
                    inner: CpuTrainer::new(&mut task, &mut opt),
                    steps: 0,
                    host: 0,
                };
                fit_with(
                    &mut t,
                    &mut state,
                    &cfg,
                    Examples::new(&x),
                    None,
                    &mut Silent,
                )
                .unwrap();
                (t.steps, t.host)
            } else {
                fit(
                    &mut task,
                    &mut opt,
                    &mut state,
                    &cfg,
                    Examples::new(&x),
                    None,
                    &mut Silent,
                )
                .unwrap();
                (0, 0)
            };
            (task.model.params.values, counts)
        };
        let (plain, _) = run(false);
        let (wrapped, (steps, host)) = run(true);
        assert_eq!(plain, wrapped);
        assert_eq!((steps, host), (3 * 7, 3));
    }
}
