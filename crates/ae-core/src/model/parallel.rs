//! Data-parallel training steps: the batch is cut into one contiguous part per thread, each part
//! runs forward and backward on its own replica of the model's buffers with every product on that
//! thread, and the parts' gradients are summed in a fixed order.
//!
//! Why: on two cores, splitting each of a step's dozen products across threads costs a
//! synchronization per product and leaves small products poorly divided; whole-pass parallelism
//! costs two synchronizations per step. Results are deterministic for a given thread count, and
//! differ from a one-thread run in the last bits (sums are grouped differently).
use std::ops::Range;

use rayon::prelude::*;

use crate::engine::layers::{Grads, Mode};
use crate::engine::loss::LossKind;
use crate::engine::params::Params;
use crate::engine::tensor::Tensor;
use crate::model::{Autoencoder, Net};

/// Fewer rows than this per part and splitting costs more than it saves.
const MIN_ROWS: usize = 32;

/// One thread's buffers and private gradients.
#[derive(Debug)]
struct Worker {
    net: Net,
    grads: Vec<Tensor>,
    x: Tensor,
    target: Tensor,
}

impl Worker {
    fn new(model: &Autoencoder) -> Self {
        Worker {
            net: model.net.replica(),
            grads: model
                .params
                .values
                .iter()
                .map(|v| Tensor::zeros(v.shape()))
                .collect(),
            x: Tensor::default(),
            target: Tensor::default(),
        }
    }

    /// Forward and backward of the reconstruction loss on `rows` of `input` against the same rows
    /// of `target`; gradients (into `self.grads`) and the returned loss are weighted by the part's
    /// share of the batch, so that the parts add up to the whole batch's mean.
    fn step(
        &mut self,
        params: &Params,
        loss: LossKind,
        input: &Tensor,
        target: &Tensor,
        rows: Range<usize>,
    ) -> f64 {
        copy_rows(input, rows.clone(), &mut self.x);
        copy_rows(target, rows.clone(), &mut self.target);
        self.net.forward(params, &self.x, Mode::Train);
        let value = self.net.reconstruction_loss(loss, &self.target);
        let share = rows.len() as f32 / input.rows() as f32;
        self.net
            .decoder
            .output_grad_mut()
            .data_mut()
            .iter_mut()
            .for_each(|d| *d *= share);
        for g in &mut self.grads {
            g.fill(0.0);
        }
        let mut g = Grads {
            values: &params.values,
            grads: &mut self.grads,
            frozen: &params.frozen,
        };
        self.net
            .backward_into(&mut g, &self.x, None, &mut |_, _| {}, &mut |_, _, _| {});
        value * share as f64
    }
}

/// What a VAE step needs besides the batch: the KL term and its weight now, the factor that turns
/// the per-element loss into per-example nats, and the (seed, epoch, step) of the samples.
#[derive(Clone, Copy, Debug)]
pub struct VaeStep {
    /// The KL term.
    pub kl: crate::model::vae::KlTerm,
    /// Its weight at this step (β with warm-up).
    pub weight: f32,
    /// Multiplies the gradient of the mean per-element loss (D, or D/(2σ²)).
    pub scale: f32,
    /// Seed, epoch and step of ε.
    pub at: (u64, usize, usize),
}

impl Worker {
    /// A VAE's forward and backward on `rows` (ε drawn for `part`): returns the part's share of
    /// the batch's mean per-element loss and of its KL, gradients weighted likewise.
    #[allow(clippy::too_many_arguments)]
    fn vae_step(
        &mut self,
        params: &Params,
        loss: LossKind,
        v: VaeStep,
        input: &Tensor,
        target: &Tensor,
        rows: Range<usize>,
        part: usize,
    ) -> (f64, f64) {
        copy_rows(input, rows.clone(), &mut self.x);
        copy_rows(target, rows.clone(), &mut self.target);
        let (seed, epoch, step) = v.at;
        if let Some(g) = self.net.gaussian.as_mut() {
            g.seed_part(seed, epoch, step, part);
        }
        self.net.forward(params, &self.x, Mode::Train);
        let value = self.net.reconstruction_loss(loss, &self.target);
        let share = rows.len() as f32 / input.rows() as f32;
        let s = v.scale * share;
        self.net
            .decoder
            .output_grad_mut()
            .data_mut()
            .iter_mut()
            .for_each(|d| *d *= s);
        for g in &mut self.grads {
            g.fill(0.0);
        }
        let mut g = Grads {
            values: &params.values,
            grads: &mut self.grads,
            frozen: &params.frozen,
        };
        let mut kl = 0.0;
        self.net.backward_into(
            &mut g,
            &self.x,
            None,
            &mut |h, dh| kl = v.kl.apply(h, v.weight * share, Some(dh)),
            &mut |_, _, _| {},
        );
        (value * share as f64, kl * share as f64)
    }
}

/// Copies `rows` of `t` into `buf`, reusing its allocation.
fn copy_rows(t: &Tensor, rows: Range<usize>, buf: &mut Tensor) {
    let c = t.cols();
    let mut shape = t.shape().to_vec();
    shape[0] = rows.len();
    buf.resize(&shape);
    buf.data_mut()
        .copy_from_slice(&t.data()[rows.start * c..rows.end * c]);
}

/// The replicas of a model for data-parallel steps, made on first use.
#[derive(Debug, Default)]
pub struct Replicas {
    workers: Vec<Worker>,
}

/// Rows of part `w` of `parts` over `n` rows: contiguous, the last one possibly shorter.
fn part_rows(w: usize, parts: usize, n: usize) -> Range<usize> {
    let per = n.div_ceil(parts);
    (w * per).min(n)..((w + 1) * per).min(n)
}

impl Replicas {
    /// How many parts `n` rows split into on `threads` threads, with a worker made for each;
    /// `None` when splitting does not pay (one thread, or too few rows).
    fn prepare(&mut self, threads: usize, model: &Autoencoder, n: usize) -> Option<usize> {
        let parts = threads.min(n / MIN_ROWS);
        if parts < 2 {
            return None;
        }
        while self.workers.len() < parts {
            self.workers.push(Worker::new(model));
        }
        Some(parts)
    }

    /// Runs a reconstruction step — `input` in, `target` (the same, or the clean version of a
    /// corrupted input) to match — split into up to `threads` parts, leaving the summed gradients
    /// in `model.params.grads` and returning the batch's mean loss; `None` (and nothing done) when
    /// there is one thread or too few rows to split.
    pub fn reconstruction_step(
        &mut self,
        threads: usize,
        model: &mut Autoencoder,
        loss: LossKind,
        input: &Tensor,
        target: &Tensor,
    ) -> Option<f64> {
        let n = input.rows();
        let parts = self.prepare(threads, model, n)?;
        let params = &model.params;
        let losses: Vec<f64> = self.workers[..parts]
            .par_iter_mut()
            .enumerate()
            .map(|(w, worker)| {
                let rows = part_rows(w, parts, n);
                crate::engine::gemm::serial(|| worker.step(params, loss, input, target, rows))
            })
            .collect();
        self.sum_grads(parts, &mut model.params);
        Some(losses.iter().sum())
    }

    /// Adds up the first `parts` workers' gradients into `params.grads`, in worker order.
    fn sum_grads(&self, parts: usize, params: &mut Params) {
        let workers = &self.workers[..parts];
        let frozen = &params.frozen;
        params
            .grads
            .par_iter_mut()
            .enumerate()
            .filter(|(i, _)| !frozen[*i])
            .for_each(|(i, g)| {
                g.copy_from(&workers[0].grads[i]);
                for w in &workers[1..] {
                    crate::engine::layers::update(g.data_mut(), w.grads[i].data(), |a, b| a + b);
                }
            });
    }

    /// A VAE's training step split like [`Replicas::reconstruction_step`], each part drawing its
    /// own ε; returns the batch's mean per-element loss and mean KL, or `None` when it does not
    /// split. Free bits floor each unit's KL over the whole batch, so callers do not split then.
    pub fn vae_step(
        &mut self,
        threads: usize,
        model: &mut Autoencoder,
        loss: LossKind,
        v: VaeStep,
        input: &Tensor,
        target: &Tensor,
    ) -> Option<(f64, f64)> {
        let n = input.rows();
        let parts = self.prepare(threads, model, n)?;
        let params = &model.params;
        let out: Vec<(f64, f64)> = self.workers[..parts]
            .par_iter_mut()
            .enumerate()
            .map(|(w, worker)| {
                let rows = part_rows(w, parts, n);
                crate::engine::gemm::serial(|| {
                    worker.vae_step(params, loss, v, input, target, rows, w)
                })
            })
            .collect();
        self.sum_grads(parts, &mut model.params);
        Some(out.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y)))
    }

    /// The mean per-element reconstruction `loss` of `x` against itself, evaluated (no noise, no
    /// gradient) in up to `threads` parts; `None` when there is one thread or too few rows. Uses
    /// the training replicas' buffers, so evaluation allocates nothing new.
    pub fn reconstruction_loss(
        &mut self,
        threads: usize,
        model: &Autoencoder,
        loss: LossKind,
        x: &Tensor,
    ) -> Option<f64> {
        if x.is_empty() {
            return None;
        }
        let n = x.rows();
        let parts = self.prepare(threads, model, n)?;
        let params = &model.params;
        let sums: Vec<f64> = self.workers[..parts]
            .par_iter_mut()
            .enumerate()
            .map(|(w, worker)| {
                copy_rows(x, part_rows(w, parts, n), &mut worker.x);
                crate::engine::gemm::serial(|| {
                    worker.net.forward(params, &worker.x, Mode::Eval);
                    worker.net.loss_sum(loss, &worker.x)
                })
            })
            .collect();
        Some(sums.iter().sum::<f64>() / x.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::init::Init;
    use crate::engine::layers::activation::Activation;
    use crate::model::ModelConfig;

    #[test]
    fn split_step_matches_the_whole_batch() {
        let cfg = ModelConfig {
            input_shape: vec![20],
            hidden: vec![16, 5],
            activation: Activation::Tanh,
            code_activation: None,
            output_activation: Activation::Sigmoid,
            tied: true,
            init: Init::GlorotUniform,
            conv: None,
            variational: false,
            missing_indicator: false,
        };
        let x = Tensor::from_vec(
            &[100, 20],
            (0..2000)
                .map(|i| (1.0 + (i as f32 * 0.37).sin()) / 2.0)
                .collect(),
        );
        for loss in [LossKind::Mse, LossKind::Bce] {
            let mut whole = cfg.build(1).unwrap();
            whole.params.zero_grads();
            whole.forward(&x, Mode::Train);
            let want = whole.reconstruction_loss(loss, &x);
            whole.backward(&x, None, &mut |_, _| {});

            let mut split = cfg.build(1).unwrap();
            split.params.zero_grads();
            let mut replicas = Replicas::default();
            assert!(replicas
                .reconstruction_step(2, &mut split, loss, &x, &x)
                .is_some());
            let got = replicas
                .reconstruction_step(3, &mut split, loss, &x, &x)
                .expect("three parts of 33+ rows");
            assert!(
                (got - want).abs() < 1e-6 * want.abs().max(1.0),
                "{loss}: loss {got} vs {want}"
            );
            for (i, (a, b)) in split
                .params
                .grads
                .iter()
                .zip(&whole.params.grads)
                .enumerate()
            {
                for (p, q) in a.data().iter().zip(b.data()) {
                    assert!(
                        (p - q).abs() < 1e-5 * (1.0 + q.abs()),
                        "{loss} {}: {p} vs {q}",
                        whole.params.names[i]
                    );
                }
            }
            assert!(replicas
                .reconstruction_step(1, &mut split, loss, &x, &x)
                .is_none());
            // Evaluation in parts: the mean per-element loss of an Eval-mode pass over all rows.
            whole.forward(&x, Mode::Eval);
            let want_eval = whole.net.loss_sum(loss, &x) / x.len() as f64;
            let got_eval = replicas
                .reconstruction_loss(3, &whole, loss, &x)
                .expect("three parts");
            assert!(
                (got_eval - want_eval).abs() < 1e-6 * want_eval.abs().max(1.0),
                "{loss}: eval {got_eval} vs {want_eval}"
            );
            let small = Tensor::from_vec(&[40, 20], x.data()[..800].to_vec());
            assert!(
                replicas
                    .reconstruction_step(2, &mut split, loss, &small, &small)
                    .is_none(),
                "40 rows are too few to split"
            );
        }
    }
}
