//! A variational autoencoder's objective: the negative ELBO (reconstruction as a negative
//! log-likelihood in nats, plus the KL term of `model::vae`), for one step or an evaluation.
use crate::engine::layers::Mode;
use crate::engine::loss::LossKind;
use crate::engine::tensor::Tensor;
use crate::objective::task::Terms;
use crate::objective::{AutoencoderTask, LOGVAR};

impl AutoencoderTask {
    /// A VAE's step or evaluation on `input` scored against `target`: the reconstruction's negative
    /// log-likelihood in nats per example (Bernoulli from BCE; Gaussian of unit variance from MSE)
    /// and the KL term, raw. The gradient (when `weight` is given) is that of reconstruction +
    /// weight·KL. The sample's ε comes from (seed, epoch, step).
    pub(super) fn vae_terms(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::init::Init;
    use crate::engine::layers::activation::Activation;
    use crate::model::ModelConfig;
    use crate::objective::task::{Examples, Task};
    use crate::objective::{Objective, WeightDecay};

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
                missing_indicator: false,
            };
            vae_fd(cfg, loss, learned);
        }
    }

    #[test]
    fn a_conv_vae_matches_finite_differences_with_the_sample_fixed() {
        let cfg = ModelConfig {
            variational: true,
            missing_indicator: false,
            activation: Activation::Tanh,
            ..ModelConfig::conv(
                &[1, 4, 4],
                crate::model::ConvArch {
                    channels: vec![3],
                    kernel: 3,
                    decoder: crate::model::ConvDecoder::Transpose,
                    code: Some(2),
                },
            )
        };
        vae_fd(cfg, LossKind::Bce, false);
    }

    /// Every parameter's gradient of reconstruction + 0.7·KL against central differences, with
    /// ε fixed by the step's seed; the code is the mean, two units.
    fn vae_fd(cfg: ModelConfig, loss: LossKind, learned: bool) {
        {
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
                missing: None,
            };
            let mut t = AutoencoderTask::new(cfg.build(4).unwrap(), objective).unwrap();
            if learned {
                let id = t.model.params.find(LOGVAR).unwrap();
                t.model.params.values[id.0].data_mut()[0] = -0.4;
            }
            t.seed = 9;
            let d = cfg.input_features();
            let mut shape = vec![3];
            shape.extend(&cfg.input_shape);
            let x = Tensor::from_vec(
                &shape,
                (0..3 * d).map(|i| ((i * 5 % 7) as f32) / 7.0).collect(),
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
            missing_indicator: false,
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
            missing: None,
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
