//! How well a model rebuilds some data: mean squared error, summed squared error per example,
//! binary cross-entropy, PSNR, the encoder Jacobian's norm (how much the code moves with the
//! input), a VAE's ELBO and importance-weighted likelihood; and corruption of inputs, for what
//! denoising gains.
use ae_data::scaling::ScalingKind;
use serde::Serialize;

use crate::analysis::inference::Inference;
use crate::engine::layers::activation::Activation;
use crate::engine::layers::Mode;
use crate::engine::loss::bce_logit;
use crate::engine::rng::{stream, Purpose};
use crate::engine::tensor::Tensor;
use crate::model::Autoencoder;
use crate::objective::noise::Noise;
use crate::objective::{AutoencoderTask, Examples};
use crate::training::fit::evaluate;

/// The model's reconstruction of every row of `x` (scaled input), in the data's own units.
pub fn reconstructed(
    model: &Inference<'_>,
    scaler: &ae_data::scaling::Scaler,
    x: &Tensor,
) -> crate::Result<Vec<f32>> {
    let mut rec = model.reconstruct(x)?.into_vec();
    scaler.inverse(&mut rec);
    Ok(rec)
}

/// Reconstruction metrics of a model on some data.
#[derive(Debug, Serialize)]
pub struct Metrics {
    /// Mean squared error per element (in the model's scaled space).
    pub mse: f64,
    /// Mean over examples of the sum of squared errors of an example.
    pub sse_per_example: f64,
    /// Mean binary cross-entropy per element (from the logits with a sigmoid output, else from the
    /// output clamped into (0, 1)), with targets clamped into [0, 1].
    pub bce: f64,
    /// Peak signal-to-noise ratio in dB, peak = the data's range (1 for unit or min-max scaling).
    pub psnr_db: f64,
    /// Mean over (the first 1,000) examples of ‖J_f(x)‖_F, the Frobenius norm of the encoder's
    /// Jacobian: exact (one backward pass per code unit) for codes of up to 256 units, else
    /// estimated from 64 random sign vectors v (E‖Jᵀv‖² = ‖J‖²_F) on the first 200 examples, e.g.
    /// for a conv feature map.
    pub mean_jacobian_norm: f64,
    /// Number of examples.
    pub n: usize,
}

/// Code sizes up to which the Jacobian norm is computed exactly.
const EXACT_JACOBIAN_UNITS: usize = 256;
/// Random probes of the estimate for larger codes.
const JACOBIAN_PROBES: usize = 64;
/// Examples the estimate averages over.
const ESTIMATE_EXAMPLES: usize = 200;

/// Mean ‖J_f(x)‖_F over the first `max` rows of `x` (scaled input).
pub fn mean_jacobian_norm(model: &mut Autoencoder, x: &Tensor, max: usize) -> f64 {
    let exact = model.config.code_size() <= EXACT_JACOBIAN_UNITS;
    jacobian_norm(model, x, max, exact)
}

fn jacobian_norm(model: &mut Autoencoder, x: &Tensor, max: usize, exact: bool) -> f64 {
    // The estimate makes 64 backward passes whatever the code size; fewer examples keep a conv
    // run's evaluation to seconds.
    let n = x.rows().min(if exact {
        max
    } else {
        max.min(ESTIMATE_EXAMPLES)
    });
    if n == 0 {
        return 0.0;
    }
    let c = x.cols();
    let mut shape = x.shape().to_vec();
    shape[0] = n;
    let batch = Tensor::from_vec(&shape, x.data()[..n * c].to_vec());
    let k = model.config.code_size();
    let mut sq = vec![0.0f64; n];
    let mut dx = Tensor::default();
    model.encode(&batch);
    let passes = if exact { k } else { JACOBIAN_PROBES };
    let mut rng = crate::engine::rng::stream(0, crate::engine::rng::Purpose::Misc, 7, 0);
    for pass in 0..passes {
        // Exact: row `pass` of every example's Jacobian is the input gradient of code unit `pass`.
        // Estimated: the input gradient of v·code for a random sign vector v is Jᵀv.
        model.backward_from_code(&batch, Some(&mut dx), &mut |_, dcode| {
            if exact {
                dcode.fill(0.0);
                for row in dcode.data_mut().chunks_exact_mut(k) {
                    row[pass] = 1.0;
                }
            } else {
                use rand::Rng as _;
                for v in dcode.data_mut() {
                    *v = if rng.random::<bool>() { 1.0 } else { -1.0 };
                }
            }
        });
        for (s, row) in sq.iter_mut().zip(dx.data().chunks_exact(c)) {
            *s += row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
        }
    }
    let scale = if exact { 1.0 } else { 1.0 / passes as f64 };
    sq.iter().map(|s| (s * scale).sqrt()).sum::<f64>() / n as f64
}

/// Computes [`Metrics`] of `model` given `input` and scored against `target` (both already
/// scaled with a scaler of kind `scaling`; they differ when the input is corrupted).
pub fn metrics(
    model: &mut Autoencoder,
    scaling: ScalingKind,
    input: &Tensor,
    target: &Tensor,
) -> Metrics {
    let mut sums = Sums::new(model.config.output_activation == Activation::Sigmoid);
    let c = input.cols();
    input.for_batches(256, |rows, batch| {
        model.forward(batch, Mode::Eval);
        let rows = rows.start * c..rows.end * c;
        let (pre, out) = (model.logits().data(), model.reconstruction().data());
        sums.add(&target.data()[rows], pre, out);
    });
    sums.metrics(scaling, target, mean_jacobian_norm(model, input, 1000))
}

/// [`metrics`] with the forward passes where `on` runs them (a GPU, say); the Jacobian norm's
/// backward passes are the CPU engine's, on a copy of the model. The same numbers as
/// [`metrics`] on the CPU.
pub fn metrics_on(
    on: &Inference<'_>,
    scaling: ScalingKind,
    input: &Tensor,
    target: &Tensor,
) -> crate::Result<Metrics> {
    let model = on.model();
    let mut sums = Sums::new(model.config.output_activation == Activation::Sigmoid);
    let c = input.cols();
    // A multiple of the CPU's batches of 256: the same batches as `metrics`.
    input.try_for_batches(4096, |rows, batch| {
        let (pre, out) = on.logits_and_reconstructions(batch)?;
        sums.add(
            &target.data()[rows.start * c..rows.end * c],
            pre.data(),
            out.data(),
        );
        Ok(())
    })?;
    let jacobian = mean_jacobian_norm(&mut model.duplicate()?, input, 1000);
    Ok(sums.metrics(scaling, target, jacobian))
}

/// The running sums behind [`Metrics`], added in the data's order.
struct Sums {
    sigmoid_out: bool,
    sse: f64,
    bce: f64,
    lo: f32,
    hi: f32,
}

impl Sums {
    fn new(sigmoid_out: bool) -> Self {
        Sums {
            sigmoid_out,
            sse: 0.0,
            bce: 0.0,
            lo: f32::INFINITY,
            hi: f32::NEG_INFINITY,
        }
    }

    /// Adds rows of targets with the logits and reconstructions of their inputs.
    fn add(&mut self, target: &[f32], pre: &[f32], out: &[f32]) {
        for ((&t, &p), &o) in target.iter().zip(pre).zip(out) {
            self.sse += ((o - t) as f64).powi(2);
            self.lo = self.lo.min(t);
            self.hi = self.hi.max(t);
            // Data scaled by a scaler fitted elsewhere may leave [0, 1] a little.
            let t = t.clamp(0.0, 1.0);
            self.bce += if self.sigmoid_out {
                bce_logit(p, t) as f64
            } else {
                let o = o.clamp(1e-7, 1.0 - 1e-7) as f64;
                -(t as f64 * o.ln() + (1.0 - t as f64) * (1.0 - o).ln())
            };
        }
    }

    fn metrics(&self, scaling: ScalingKind, target: &Tensor, jacobian: f64) -> Metrics {
        let n = target.rows();
        let elems = (n * target.cols()).max(1) as f64;
        let mse = self.sse / elems;
        let peak = match scaling {
            ScalingKind::Unit | ScalingKind::MinMax => 1.0,
            _ => (self.hi - self.lo).max(f32::MIN_POSITIVE) as f64,
        };
        Metrics {
            mean_jacobian_norm: jacobian,
            mse,
            sse_per_example: self.sse / n.max(1) as f64,
            bce: self.bce / elems,
            psnr_db: 10.0 * (peak * peak / mse).log10(),
            n,
        }
    }
}

/// A VAE's likelihood figures on some data, in nats per example.
pub struct VaeFigures {
    /// The evidence lower bound.
    pub elbo: f64,
    /// Its reconstruction term (negative log-likelihood of the decoder).
    pub reconstruction: f64,
    /// Its KL term.
    pub kl: f64,
    /// The importance-weighted estimate of −log p(x), when asked for.
    pub iw_nll: Option<f64>,
}

/// The ELBO (one sample per example, in training-sized batches) and, with `samples` > 0, the
/// importance-weighted estimate of −log p(x).
pub fn vae_figures(task: &mut AutoencoderTask, x: &Tensor, samples: usize) -> VaeFigures {
    let terms = evaluate(task, Examples::new(x), 256);
    let reconstruction = terms.get("reconstruction").unwrap_or(f64::NAN);
    let kl = terms.get("kl").unwrap_or(f64::NAN);
    let iw_nll = (samples > 0).then(|| {
        let (loss, logvar) = (task.objective.loss, task.log_variance());
        let nll = crate::model::vae::importance_weighted_nll(
            &mut task.model,
            loss,
            logvar,
            x,
            samples,
            0,
        );
        nll.iter().sum::<f64>() / nll.len().max(1) as f64
    });
    VaeFigures {
        elbo: -(reconstruction + kl),
        reconstruction,
        kl,
        iw_nll,
    }
}

/// A corrupted copy of `x` (scaled data), drawn from `seed`.
pub fn corrupt(x: &Tensor, noise: Noise, seed: u64) -> Tensor {
    let mut out = Tensor::zeros(x.shape());
    noise.corrupt(
        x.data(),
        out.data_mut(),
        &mut stream(seed, Purpose::Misc, 0, 0),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_from_an_inference_on_the_cpu_are_the_engines_own() {
        let mut cfg = crate::model::ModelConfig::dense(&[6], &[5, 2]);
        cfg.output_activation = Activation::Sigmoid;
        let mut model = cfg.build(4).unwrap();
        // More rows than one CPU batch (256).
        let x = Tensor::from_vec(
            &[300, 6],
            (0..1800).map(|i| (i % 17) as f32 / 17.0).collect(),
        );
        let on = metrics_on(&Inference::cpu(&model), ScalingKind::MinMax, &x, &x).unwrap();
        let m = metrics(&mut model, ScalingKind::MinMax, &x, &x);
        assert_eq!(
            serde_json::to_string(&on).unwrap(),
            serde_json::to_string(&m).unwrap()
        );
        assert!(m.mse > 0.0 && m.bce > 0.0 && m.mean_jacobian_norm > 0.0);
    }

    /// The random-probe estimate used for large codes agrees with the exact norm.
    #[test]
    fn estimated_jacobian_norm_is_close_to_exact() {
        let cfg = crate::training::settings::Settings {
            hidden: vec![40],
            activation: crate::engine::layers::activation::Activation::Tanh,
            ..Default::default()
        };
        let mut model = cfg.model_config(&[30]).build(1).unwrap();
        let x = Tensor::from_vec(
            &[20, 30],
            (0..600).map(|i| ((i as f32) * 0.37).sin()).collect(),
        );
        let exact = jacobian_norm(&mut model, &x, 20, true);
        let estimate = jacobian_norm(&mut model, &x, 20, false);
        assert!(exact > 0.1, "{exact}");
        assert!(
            (estimate - exact).abs() < 0.1 * exact,
            "estimate {estimate} vs exact {exact}"
        );
    }
}
