//! The training objective: a reconstruction loss plus named penalty terms, each logged on its own.
use serde::{Deserialize, Serialize};

use crate::engine::layers::Mode;
use crate::engine::loss::LossKind;
use crate::engine::params::{ParamKind, Params};
use crate::engine::rng::{stream, Purpose};
use crate::engine::tensor::Tensor;
use crate::model::parallel::Replicas;
use crate::model::Autoencoder;
use crate::objective::contractive::Contractive;
use crate::objective::noise::Noise;
use crate::objective::sparsity::Sparsity;
use crate::objective::task::{Examples, Task, Terms};
use crate::objective::WeightDecay;
use crate::{Error, Result};

/// What an autoencoder is trained to minimize.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// The reconstruction loss.
    pub loss: LossKind,
    /// Penalty on the weights.
    pub weight_decay: WeightDecay,
    /// Penalty on the code.
    #[serde(default)]
    pub sparsity: Option<Sparsity>,
    /// Corruption of training inputs (denoising).
    #[serde(default)]
    pub noise: Option<Noise>,
    /// λ of the contractive penalty on the encoder's Jacobian.
    #[serde(default)]
    pub contractive: Option<f32>,
    /// The KL term of a variational autoencoder; its presence makes the objective the negative
    /// ELBO, with the reconstruction summed over an example's features.
    #[serde(default)]
    pub kl: Option<crate::model::vae::KlTerm>,
    /// Dynamic binarization: each step trains on a fresh Bernoulli draw of the batch (values in
    /// [0, 1] are probabilities), as input and target.
    #[serde(default)]
    pub binarize: bool,
    /// VAE with a Gaussian decoder (`mse`): learn its variance (one log σ² shared by all features,
    /// the parameter [`LOGVAR`]) instead of fixing it at 1.
    #[serde(default)]
    pub learned_variance: bool,
}

impl Default for Objective {
    /// Mean squared error alone: no penalty, no corruption, not variational.
    fn default() -> Self {
        Objective {
            loss: LossKind::Mse,
            weight_decay: WeightDecay::None,
            sparsity: None,
            noise: None,
            contractive: None,
            kl: None,
            binarize: false,
            learned_variance: false,
        }
    }
}

/// The name of a Gaussian decoder's learned log-variance.
pub const LOGVAR: &str = "decoder_logvar";

/// An autoencoder with its objective: the unit the training loop drives.
#[derive(Debug)]
pub struct AutoencoderTask {
    /// The model.
    pub model: Autoencoder,
    /// The objective.
    pub objective: Objective,
    /// Seed of the per-step randomness (input corruption).
    pub seed: u64,
    /// Per-thread buffers for data-parallel steps.
    replicas: Replicas,
    /// The corrupted batch of a denoising step.
    noisy: Tensor,
    /// The binarized batch of a step with dynamic binarization.
    binary: Tensor,
}

impl AutoencoderTask {
    /// Pairs a model with an objective, checking that they fit together.
    pub fn new(model: Autoencoder, objective: Objective) -> Result<Self> {
        objective.loss.check(model.config.output_activation)?;
        if let Some(sp) = objective.sparsity {
            sp.check(model.config.code_activation())?;
        }
        if objective.contractive.is_some() {
            Contractive::check(model.config.hidden.len())?;
        }
        if model.config.variational != objective.kl.is_some() {
            return Err(Error::config(
                "model",
                "a variational autoencoder and the KL term go together",
            ));
        }
        if objective.learned_variance && (objective.kl.is_none() || objective.loss != LossKind::Mse)
        {
            return Err(Error::config(
                "learned_variance",
                "a learned decoder variance belongs to a VAE with a Gaussian decoder (--model vae --loss mse)",
            ));
        }
        let mut model = model;
        if objective.learned_variance && model.params.find(LOGVAR).is_none() {
            model
                .params
                .add(LOGVAR, ParamKind::Bias, Tensor::zeros(&[1]));
        }
        if let Some(kl) = objective.kl {
            kl.validate()?;
            if objective.sparsity.is_some() || objective.contractive.is_some() {
                return Err(Error::config(
                    "model",
                    "a VAE's code is regularized by its KL term; drop --sparsity and --contractive",
                ));
            }
        }
        Ok(AutoencoderTask {
            model,
            objective,
            seed: 0,
            replicas: Replicas::default(),
            noisy: Tensor::default(),
            binary: Tensor::default(),
        })
    }

    /// The contractive penalty bound to this model's encoder, when the objective has one.
    fn contractive(&self) -> Option<Contractive> {
        let lambda = self.objective.contractive?;
        let weight = self.model.params.find("encoder.0.weight")?;
        Some(Contractive {
            lambda,
            weight,
            activation: self.model.config.code_activation(),
        })
    }

    /// One training step on `x` (already binarized when the objective asks for it).
    fn step_on(&mut self, x: &Tensor, epoch: usize, step: usize) -> Terms {
        let mut terms = Terms::default();
        // Denoising: the model sees a corrupted batch and is scored against the clean one.
        let input = match self.objective.noise {
            Some(noise) => {
                self.noisy.resize(x.shape());
                let mut rng = stream(self.seed, Purpose::Step, epoch as u64, step as u64);
                noise.corrupt(x.data(), self.noisy.data_mut(), &mut rng);
                &self.noisy
            }
            None => x,
        };
        if let Some(kl) = self.objective.kl {
            // The corrupted batch moves out while the VAE step borrows the task.
            let noisy = std::mem::take(&mut self.noisy);
            let input = if self.objective.noise.is_some() {
                &noisy
            } else {
                x
            };
            let mut terms = self.vae_terms(kl, input, x, (epoch, step), Some(kl.weight(epoch)));
            self.noisy = noisy;
            if self.objective.weight_decay != WeightDecay::None {
                let wd = self.objective.weight_decay.apply(&mut self.model.params);
                terms.push("weight_decay", wd);
            }
            return terms;
        }
        // Penalties on the code run on the whole batch for now (KL needs batch statistics); plain
        // reconstruction may split the batch across threads.
        let plain = self.objective.sparsity.is_none() && self.objective.contractive.is_none();
        let split = if plain {
            self.replicas.reconstruction_step(
                crate::engine::gemm::threads(),
                &mut self.model,
                self.objective.loss,
                input,
                x,
            )
        } else {
            None
        };
        match split {
            Some(loss) => terms.push(self.recon_name(), loss),
            None => {
                self.model.forward(input, Mode::Train);
                let loss = self.model.reconstruction_loss(self.objective.loss, x);
                terms.push(self.recon_name(), loss);
                let sparsity = self.objective.sparsity;
                let contractive = self.contractive();
                let norms = contractive
                    .map(|c| c.row_norms(&self.model.params))
                    .unwrap_or_default();
                let mut penalty = 0.0;
                self.model.backward_with(
                    input,
                    None,
                    &mut |code, dcode| {
                        if let Some(sp) = sparsity {
                            penalty = sp.apply(code, dcode);
                        }
                    },
                    &mut |i, a, da| {
                        if let (0, Some(c)) = (i, contractive) {
                            c.add_preactivation_grad(&norms, a, da);
                        }
                    },
                );
                if let Some(sp) = sparsity {
                    terms.push(sp.name(), penalty);
                }
                if let Some(c) = contractive {
                    let a = self.model.net.encoder.layer_output(0).clone();
                    terms.push("contractive", c.value(&self.model.params, &a));
                    c.add_weight_grad(&mut self.model.params, &a);
                }
            }
        }
        if self.objective.weight_decay != WeightDecay::None {
            let wd = self.objective.weight_decay.apply(&mut self.model.params);
            terms.push("weight_decay", wd);
        }
        terms
    }

    fn recon_name(&self) -> &'static str {
        match self.objective.loss {
            LossKind::Mse => "mse",
            LossKind::Bce => "bce",
        }
    }

    /// A VAE's step or evaluation on `input` scored against `target`: the reconstruction's negative
    /// log-likelihood in nats per example (Bernoulli from BCE; Gaussian of unit variance from MSE)
    /// and the KL term, raw. The gradient (when `weight` is given) is that of reconstruction +
    /// weight·KL. The sample's ε comes from (seed, epoch, step).
    fn vae_terms(
        &mut self,
        kl: crate::model::vae::KlTerm,
        input: &Tensor,
        target: &Tensor,
        (epoch, step): (usize, usize),
        weight: Option<f32>,
    ) -> Terms {
        let d = target.cols() as f64;
        // Per-example sums: BCE·D, or ½·SSE/σ² + ½·D·log σ² + ½·D·log 2π for the Gaussian.
        let logvar = self.log_variance();
        let (scale, constant) = match self.objective.loss {
            LossKind::Bce => (d, 0.0),
            LossKind::Mse => (
                d / 2.0 * (-logvar).exp(),
                d / 2.0 * (logvar + (2.0 * std::f64::consts::PI).ln()),
            ),
        };
        let mut terms = Terms::default();
        // Training without free bits may split the batch across threads, each part with its own ε.
        let split = match weight {
            Some(w) if kl.free_bits.is_none() => self.replicas.vae_step(
                crate::engine::gemm::threads(),
                &mut self.model,
                self.objective.loss,
                crate::model::parallel::VaeStep {
                    kl,
                    weight: w,
                    scale: scale as f32,
                    at: (self.seed, epoch, step),
                },
                input,
                target,
            ),
            _ => None,
        };
        let (mean, value) = match split {
            Some(v) => v,
            None => {
                if let Some(g) = self.model.net.gaussian.as_mut() {
                    g.seed(self.seed, epoch, step);
                }
                self.model.forward(input, Mode::Train);
                let mean = self.model.reconstruction_loss(self.objective.loss, target);
                let Some(w) = weight else {
                    terms.push("reconstruction", scale * mean + constant);
                    terms.push("kl", kl.apply(self.model.net.encoder.output(), 0.0, None));
                    return terms;
                };
                let s = scale as f32;
                self.model
                    .net
                    .decoder
                    .output_grad_mut()
                    .data_mut()
                    .iter_mut()
                    .for_each(|g| *g *= s);
                let mut value = 0.0;
                self.model.backward(input, None, &mut |h, dh| {
                    value = kl.apply(h, w, Some(dh));
                });
                (mean, value)
            }
        };
        terms.push("reconstruction", scale * mean + constant);
        if let Some(id) = self.model.params.find(LOGVAR) {
            // ∂/∂log σ² of ½·SSE·e^(−log σ²) + ½·D·log σ², per example.
            let g = 0.5 * d * (1.0 - (-logvar).exp() * mean);
            if !self.model.params.frozen[id.0] {
                self.model.params.grads[id.0].data_mut()[0] += g as f32;
            }
        }
        terms.push("kl", value);
        terms
    }

    /// The Gaussian decoder's log-variance: learned, or 0 (unit variance).
    pub fn log_variance(&self) -> f64 {
        self.model
            .params
            .find(LOGVAR)
            .map_or(0.0, |id| self.model.params.values[id.0].data()[0] as f64)
    }
}

impl Task for AutoencoderTask {
    fn params(&self) -> &Params {
        &self.model.params
    }

    fn params_mut(&mut self) -> &mut Params {
        &mut self.model.params
    }

    fn train_step(&mut self, batch: Examples<'_>, epoch: usize, step: usize) -> Terms {
        if self.objective.binarize {
            let mut binary = std::mem::take(&mut self.binary);
            binary.resize(batch.x.shape());
            let mut rng = stream(
                self.seed,
                Purpose::Step,
                epoch as u64,
                (step as u64) | (2 << 40),
            );
            crate::model::vae::binarize(batch.x.data(), binary.data_mut(), &mut rng);
            let terms = self.step_on(&binary, epoch, step);
            self.binary = binary;
            return terms;
        }
        self.step_on(batch.x, epoch, step)
    }
    /// With KL sparsity: the mean code activation and the share of code units whose mean
    /// activation is within 0.02 of ρ, over (at most the first 10,000 examples of) `data`.
    fn diagnostics(&mut self, data: Examples<'_>) -> Terms {
        let mut out = Terms::default();
        let Some(Sparsity::Kl { rho, .. }) = self.objective.sparsity else {
            return out;
        };
        let codes = self.model.encode_rows(data.x, 10_000);
        let k = codes.cols();
        let means = Sparsity::unit_means(&codes);
        out.push(
            "code_mean_activation",
            means.iter().sum::<f64>() / k.max(1) as f64,
        );
        let near = means
            .iter()
            .filter(|m| (*m - rho as f64).abs() <= 0.02)
            .count();
        out.push("code_units_near_rho", near as f64 / k.max(1) as f64);
        out
    }

    fn eval_batch(&mut self, batch: Examples<'_>) -> Terms {
        let x = batch.x;
        if let Some(kl) = self.objective.kl {
            // One sample per example from a fixed stream: the ELBO estimate of every evaluation.
            let mut terms = self.vae_terms(kl, x, x, (usize::MAX, 0), None);
            if self.objective.weight_decay != WeightDecay::None {
                terms.push(
                    "weight_decay",
                    self.objective.weight_decay.value(&self.model.params),
                );
            }
            return terms;
        }
        let plain = self.objective.sparsity.is_none()
            && self.objective.contractive.is_none()
            && self.objective.weight_decay == WeightDecay::None;
        if plain {
            let split = self.replicas.reconstruction_loss(
                crate::engine::gemm::threads(),
                &self.model,
                self.objective.loss,
                x,
            );
            if let Some(v) = split {
                let mut terms = Terms::default();
                terms.push(self.recon_name(), v);
                return terms;
            }
        }
        self.model.forward(x, Mode::Eval);
        let sum = self.model.net.loss_sum(self.objective.loss, x);
        let mut terms = Terms::default();
        terms.push(self.recon_name(), sum / x.len() as f64);
        if let Some(sp) = self.objective.sparsity {
            terms.push(sp.name(), sp.value(self.model.code()));
        }
        if let Some(c) = self.contractive() {
            terms.push(
                "contractive",
                c.value(&self.model.params, self.model.net.encoder.layer_output(0)),
            );
        }
        if self.objective.weight_decay != WeightDecay::None {
            terms.push(
                "weight_decay",
                self.objective.weight_decay.value(&self.model.params),
            );
        }
        terms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::init::Init;
    use crate::engine::layers::activation::Activation;
    use crate::model::ModelConfig;

    fn task(noise: Option<Noise>) -> AutoencoderTask {
        let cfg = ModelConfig {
            input_shape: vec![6],
            hidden: vec![3],
            activation: Activation::Tanh,
            code_activation: None,
            output_activation: Activation::Sigmoid,
            tied: false,
            init: Init::GlorotUniform,
            conv: None,
            variational: false,
        };
        let objective = Objective {
            loss: LossKind::Mse,
            weight_decay: WeightDecay::None,
            sparsity: None,
            noise,
            contractive: None,
            kl: None,
            binarize: false,
            learned_variance: false,
        };
        AutoencoderTask::new(cfg.build(2).unwrap(), objective).unwrap()
    }

    #[test]
    fn denoising_scores_the_corrupted_input_against_the_clean_one() {
        let x = Tensor::from_vec(
            &[4, 6],
            (0..24)
                .map(|i| 0.2 + 0.6 * ((i * 5 % 7) as f32 / 7.0))
                .collect(),
        );
        // Masking everything: the model sees zeros and must still be scored against x.
        let mut masked = task(Some(Noise::Mask { p: 1.0 }));
        let got = masked
            .train_step(Examples::new(&x), 0, 0)
            .get("mse")
            .unwrap();
        let mut plain = task(None);
        let zeros = Tensor::zeros(x.shape());
        plain.model.forward(&zeros, Mode::Eval);
        let want: f64 = plain
            .model
            .reconstruction()
            .data()
            .iter()
            .zip(x.data())
            .map(|(o, t)| ((o - t) as f64).powi(2))
            .sum::<f64>()
            / 24.0;
        assert!((got - want).abs() < 1e-7, "{got} vs {want}");
        // Evaluation never corrupts.
        assert_eq!(
            masked.eval_batch(Examples::new(&x)),
            plain.eval_batch(Examples::new(&x))
        );
        // The corruption is drawn per (seed, epoch, step): the same step repeats, another differs.
        let mut a = task(Some(Noise::Gaussian { std: 0.3 }));
        let mut b = task(Some(Noise::Gaussian { std: 0.3 }));
        assert_eq!(
            a.train_step(Examples::new(&x), 1, 2),
            b.train_step(Examples::new(&x), 1, 2)
        );
        assert_ne!(
            a.train_step(Examples::new(&x), 1, 3).get("mse"),
            b.train_step(Examples::new(&x), 1, 2).get("mse")
        );
    }

    #[test]
    fn penalties_apply_on_batches_large_enough_to_split() {
        // A regression: a batch big enough for the data-parallel path once skipped the contractive
        // term. Penalties must show in the terms whatever the batch size or thread count.
        let x = Tensor::from_vec(
            &[128, 6],
            (0..768).map(|i| ((i * 7 % 11) as f32) / 11.0).collect(),
        );
        let terms = crate::engine::gemm::with_threads(2, || {
            let mut t = task(None);
            t.objective.contractive = Some(0.1);
            t.train_step(Examples::new(&x), 0, 0)
        });
        assert!(terms.get("contractive").is_some(), "{terms:?}");
    }

    #[test]
    fn vae_gradients_match_finite_differences_with_the_sample_fixed() {
        for (loss, out, learned) in [
            (LossKind::Bce, Activation::Sigmoid, false),
            (LossKind::Mse, Activation::Linear, false),
            (LossKind::Mse, Activation::Sigmoid, true),
        ] {
            let cfg = ModelConfig {
                input_shape: vec![6],
                hidden: vec![5, 2],
                activation: Activation::Tanh,
                code_activation: None,
                output_activation: out,
                tied: false,
                init: Init::GlorotUniform,
                conv: None,
                variational: true,
            };
            let kl = crate::model::vae::KlTerm {
                beta: 0.7,
                warmup: 0,
                free_bits: None,
            };
            let objective = Objective {
                loss,
                weight_decay: WeightDecay::None,
                sparsity: None,
                noise: None,
                contractive: None,
                kl: Some(kl),
                binarize: false,
                learned_variance: learned,
            };
            let mut t = AutoencoderTask::new(cfg.build(4).unwrap(), objective).unwrap();
            if learned {
                let id = t.model.params.find(LOGVAR).unwrap();
                t.model.params.values[id.0].data_mut()[0] = -0.4;
            }
            t.seed = 9;
            let x = Tensor::from_vec(
                &[3, 6],
                (0..18).map(|i| ((i * 5 % 7) as f32) / 7.0).collect(),
            );
            t.params_mut().zero_grads();
            let terms = t.train_step(Examples::new(&x), 0, 0);
            assert_eq!(
                terms.0.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
                ["reconstruction", "kl"]
            );
            let grads = t.model.params.grads.clone();
            // The same (seed, epoch, step) draws the same ε, so the objective is a function of
            // the weights alone.
            let objective = |t: &mut AutoencoderTask| {
                let terms = t.vae_terms(kl, &x, &x, (0, 0), None);
                terms.get("reconstruction").unwrap() + 0.7 * terms.get("kl").unwrap()
            };
            let base = terms.get("reconstruction").unwrap() + 0.7 * terms.get("kl").unwrap();
            assert!((objective(&mut t) - base).abs() < 1e-9);
            let h = 1e-2f32;
            #[allow(clippy::needless_range_loop)] // finite differences write into what they index
            for p in 0..t.model.params.len() {
                for i in (0..t.model.params.values[p].len()).step_by(2) {
                    t.model.params.values[p].data_mut()[i] += h;
                    let up = objective(&mut t);
                    t.model.params.values[p].data_mut()[i] -= 2.0 * h;
                    let down = objective(&mut t);
                    t.model.params.values[p].data_mut()[i] += h;
                    let fd = (up - down) / (2.0 * h as f64);
                    let a = grads[p].data()[i] as f64;
                    assert!(
                        (fd - a).abs() < 5e-3 + 2e-2 * a.abs(),
                        "{loss:?} {} [{i}]: fd {fd} vs {a}",
                        t.model.params.names[p]
                    );
                }
            }
            // The code of a VAE is its mean, two units.
            t.model.encode(&x);
            assert_eq!(t.model.code().shape(), [3, 2]);
        }
    }

    #[test]
    fn a_split_vae_step_is_the_mean_of_its_parts() {
        let cfg = ModelConfig {
            input_shape: vec![6],
            hidden: vec![5, 2],
            activation: Activation::Tanh,
            code_activation: None,
            output_activation: Activation::Sigmoid,
            tied: false,
            init: Init::GlorotUniform,
            conv: None,
            variational: true,
        };
        let kl = crate::model::vae::KlTerm {
            beta: 0.5,
            warmup: 0,
            free_bits: None,
        };
        let objective = Objective {
            loss: LossKind::Bce,
            weight_decay: WeightDecay::None,
            sparsity: None,
            noise: None,
            contractive: None,
            kl: Some(kl),
            binarize: false,
            learned_variance: false,
        };
        let mut t = AutoencoderTask::new(cfg.build(4).unwrap(), objective).unwrap();
        t.seed = 2;
        let x = Tensor::from_vec(
            &[128, 6],
            (0..768).map(|i| ((i * 5 % 11) as f32) / 11.0).collect(),
        );
        let terms = crate::engine::gemm::with_threads(2, || {
            t.params_mut().zero_grads();
            t.train_step(Examples::new(&x), 0, 3)
        });
        let split = t.model.params.grads.clone();
        // Each half by hand, with the ε its part draws; the step is their mean.
        let mut want: Vec<Tensor> = split.iter().map(|g| Tensor::zeros(g.shape())).collect();
        let (mut rec, mut kls) = (0.0, 0.0);
        for part in 0..2 {
            let xp = Tensor::from_vec(&[64, 6], x.data()[part * 384..(part + 1) * 384].to_vec());
            t.model.params.zero_grads();
            t.model
                .net
                .gaussian
                .as_mut()
                .unwrap()
                .seed_part(2, 0, 3, part);
            t.model.forward(&xp, Mode::Train);
            rec += 0.5 * 6.0 * t.model.reconstruction_loss(LossKind::Bce, &xp);
            t.model
                .net
                .decoder
                .output_grad_mut()
                .data_mut()
                .iter_mut()
                .for_each(|g| *g *= 6.0);
            let mut v = 0.0;
            t.model
                .backward(&xp, None, &mut |h, dh| v = kl.apply(h, 0.5, Some(dh)));
            kls += 0.5 * v;
            for (w, g) in want.iter_mut().zip(&t.model.params.grads) {
                for (a, b) in w.data_mut().iter_mut().zip(g.data()) {
                    *a += 0.5 * b;
                }
            }
        }
        assert!((terms.get("reconstruction").unwrap() - rec).abs() < 1e-4);
        assert!((terms.get("kl").unwrap() - kls).abs() < 1e-5);
        for (a, b) in split.iter().zip(&want) {
            for (x, y) in a.data().iter().zip(b.data()) {
                assert!((x - y).abs() < 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
            }
        }
    }
}
