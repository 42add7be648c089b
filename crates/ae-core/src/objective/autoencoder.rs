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
    /// Training on incomplete rows: missing (NaN) cells are filled with their column's mean and
    /// left out of the loss, and this share of the observed cells is hidden the same way at each
    /// step ([`crate::objective::missing`]). `None`: the data must be complete.
    #[serde(default)]
    pub missing: Option<f32>,
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
            missing: None,
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
    pub(super) replicas: Replicas,
    /// The corrupted batch of a denoising step.
    noisy: Tensor,
    /// The binarized batch of a step with dynamic binarization.
    binary: Tensor,
    /// Column means (scaled) that missing cells are filled with, when the objective allows them.
    pub fill: Vec<f32>,
    /// The target of a step on incomplete rows.
    target: Tensor,
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
                "a learned decoder variance belongs to a VAE with a Gaussian decoder (model vae, loss mse)",
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
                    "a VAE's code is regularized by its KL term; leave sparsity and contractive unset",
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
            fill: Vec::new(),
            target: Tensor::default(),
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
        if let Some(hide) = self.objective.missing {
            return self.step_incomplete(x, hide, epoch, step);
        }
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

    /// One training step on rows with missing (NaN) cells: the input has them (and a `hide` share
    /// of the observed cells) filled with column means, the loss counts the observed cells only.
    fn step_incomplete(&mut self, x: &Tensor, hide: f32, epoch: usize, step: usize) -> Terms {
        let mut input = std::mem::take(&mut self.noisy);
        input.resize(x.shape());
        let mut rng = stream(
            self.seed,
            Purpose::Step,
            epoch as u64,
            (step as u64) | (3 << 40),
        );
        // A model with indicators reads hidden cells as missing (NaN) and fills them itself.
        let fill = (!self.model.config.missing_indicator).then_some(&self.fill[..]);
        super::missing::fill_input(x.data(), fill, hide, &mut rng, input.data_mut());
        if let Some(noise) = self.objective.noise {
            let filled = input.clone();
            let mut rng = stream(self.seed, Purpose::Step, epoch as u64, step as u64);
            noise.corrupt(filled.data(), input.data_mut(), &mut rng);
            // Noise corrupts what the model sees; a missing cell stays missing.
            for (v, &f) in input.data_mut().iter_mut().zip(filled.data()) {
                if f.is_nan() {
                    *v = f32::NAN;
                }
            }
        }
        self.model.forward(&input, Mode::Train);
        let mut target = std::mem::take(&mut self.target);
        target.resize(x.shape());
        super::missing::target(
            x.data(),
            self.model.reconstruction().data(),
            target.data_mut(),
        );
        self.model.reconstruction_loss(self.objective.loss, &target);
        let mut terms = Terms::default();
        terms.push(
            self.recon_name(),
            super::missing::observed_loss(
                self.objective.loss,
                self.model.reconstruction().data(),
                x.data(),
            ),
        );
        self.model.backward(&input, None, &mut |_, _| {});
        if self.objective.weight_decay != WeightDecay::None {
            let wd = self.objective.weight_decay.apply(&mut self.model.params);
            terms.push("weight_decay", wd);
        }
        self.noisy = input;
        self.target = target;
        terms
    }

    /// Fills `x`'s missing cells in place, when the objective allows them and the model does not
    /// read them itself through indicators (else leaves it).
    pub fn fill_missing(&self, x: &mut Tensor) {
        if self.objective.missing.is_some() && !self.model.config.missing_indicator {
            super::missing::fill_in_place(x.data_mut(), &self.fill);
        }
    }

    /// `x` with its missing cells filled (a copy only when it has any), for inference. A model
    /// with indicators reads missing cells as they are.
    pub fn filled<'a>(&self, x: &'a Tensor) -> std::borrow::Cow<'a, Tensor> {
        if self.objective.missing.is_none()
            || self.model.config.missing_indicator
            || !x.data().iter().any(|v| v.is_nan())
        {
            return std::borrow::Cow::Borrowed(x);
        }
        let mut t = x.clone();
        super::missing::fill_in_place(t.data_mut(), &self.fill);
        std::borrow::Cow::Owned(t)
    }

    /// The name of the reconstruction term in logs (`mse`, `bce`).
    pub(crate) fn recon_name(&self) -> &'static str {
        match self.objective.loss {
            LossKind::Mse => "mse",
            LossKind::Bce => "bce",
        }
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

    fn collapse(&mut self, data: Examples<'_>) -> Option<String> {
        crate::model::health::collapse(&self.model, &self.filled(data.x))
    }

    fn eval_batch(&mut self, batch: Examples<'_>) -> Terms {
        let x = batch.x;
        if self.objective.missing.is_some() {
            let input = self.filled(x).into_owned();
            self.model.forward(&input, Mode::Eval);
            let mut terms = Terms::default();
            terms.push(
                self.recon_name(),
                super::missing::observed_loss(
                    self.objective.loss,
                    self.model.reconstruction().data(),
                    x.data(),
                ),
            );
            if self.objective.weight_decay != WeightDecay::None {
                terms.push(
                    "weight_decay",
                    self.objective.weight_decay.value(&self.model.params),
                );
            }
            return terms;
        }
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
            missing_indicator: false,
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
            missing: None,
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
        let step = |threads| {
            crate::engine::gemm::with_threads(threads, || {
                let mut t = task(None);
                t.objective.contractive = Some(0.1);
                let terms = t.train_step(Examples::new(&x), 0, 0);
                // The penalty's value from its own formula, on the same weights and batch.
                t.model.forward(&x, Mode::Train);
                let c = t.contractive().unwrap();
                let a = t.model.net.encoder.layer_output(0).clone();
                (terms, c.value(&t.model.params, &a))
            })
        };
        for threads in [1, 2] {
            let (terms, want) = step(threads);
            let got = terms.get("contractive").expect("the term is logged");
            assert!(
                want > 0.0 && (got - want).abs() < 1e-9 * want,
                "{got} vs {want}"
            );
        }
    }
}
