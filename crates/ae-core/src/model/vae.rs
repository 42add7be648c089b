//! The variational bottleneck (Kingma & Welling 2014): the encoder's last layer gives a mean μ and
//! a log-variance log σ² per latent unit, side by side (`[μ | log σ²]`, as PyTorch code writes
//! `mu, logvar = h.chunk(2, dim=1)`), and the decoder reads z = μ + σ·ε with ε ~ N(0, I) in
//! training (the reparameterization), z = μ in evaluation.
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::rng::{stream, Purpose, Rng};
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// The sampling stage between encoder and decoder, with its buffers.
#[derive(Debug, Clone)]
pub struct Gaussian {
    /// Latent units.
    pub latent: usize,
    /// μ of the last forward pass, `[N, latent]`: the code of a VAE.
    pub mu: Tensor,
    /// z of the last forward pass, `[N, latent]`: what the decoder read.
    pub z: Tensor,
    /// ε of the last training pass (zeros in evaluation).
    pub eps: Tensor,
    /// ∂loss/∂z, filled by the decoder's backward pass.
    pub dz: Tensor,
    /// Where ε comes from; set per step so that a resumed run draws the same ε.
    rng: Option<Rng>,
}

impl Gaussian {
    /// A stage for `latent` units.
    pub fn new(latent: usize) -> Self {
        Gaussian {
            latent,
            mu: Tensor::default(),
            z: Tensor::default(),
            eps: Tensor::default(),
            dz: Tensor::default(),
            rng: None,
        }
    }

    /// Seeds the next training passes' ε with (seed, epoch, step).
    pub fn seed(&mut self, seed: u64, epoch: usize, step: usize) {
        self.seed_part(seed, epoch, step, 0);
    }

    /// [`Gaussian::seed`] for part `part` of a batch split across threads (part 0 draws what an
    /// unsplit step draws).
    pub fn seed_part(&mut self, seed: u64, epoch: usize, step: usize, part: usize) {
        let b = (step as u64) | (1 << 40) | ((part as u64) << 48);
        self.rng = Some(stream(seed, Purpose::Step, epoch as u64, b));
    }

    /// From `h = [μ | log σ²]` (`[N, 2·latent]`) to z: sampled when `sample`, else μ.
    pub fn forward(&mut self, h: &Tensor, sample: bool) {
        let (n, k) = (h.rows(), self.latent);
        self.eps.resize(&[n, k]);
        let rng = self
            .rng
            .get_or_insert_with(|| stream(0, Purpose::Step, u64::MAX, 0));
        for e in self.eps.data_mut() {
            *e = if sample {
                StandardNormal.sample(rng)
            } else {
                0.0
            };
        }
        self.reparameterize(h);
    }

    /// z = μ + exp(log σ² / 2)·ε from `h = [μ | log σ²]` and the ε in [`Gaussian::eps`]
    /// (`[N, latent]`), as `forward` computes it after drawing ε.
    pub fn reparameterize(&mut self, h: &Tensor) {
        let (n, k) = (h.rows(), self.latent);
        for t in [&mut self.mu, &mut self.z] {
            t.resize(&[n, k]);
        }
        for (r, hr) in h.data().chunks_exact(2 * k).enumerate() {
            let (mu, lv) = hr.split_at(k);
            let row = r * k..(r + 1) * k;
            self.mu.data_mut()[row.clone()].copy_from_slice(mu);
            let eps = &self.eps.data()[row.clone()];
            let z = &mut self.z.data_mut()[row];
            for j in 0..k {
                z[j] = mu[j] + (0.5 * lv[j]).exp() * eps[j];
            }
        }
    }

    /// ∂loss/∂h from ∂loss/∂z (in `self.dz`): ∂z/∂μ = 1, ∂z/∂log σ² = ε·σ/2.
    pub fn backward(&self, h: &Tensor, dh: &mut Tensor) {
        let k = self.latent;
        dh.resize(h.shape());
        for (((hr, dhr), dz), eps) in h
            .data()
            .chunks_exact(2 * k)
            .zip(dh.data_mut().chunks_exact_mut(2 * k))
            .zip(self.dz.data().chunks_exact(k))
            .zip(self.eps.data().chunks_exact(k))
        {
            let lv = &hr[k..];
            let (dmu, dlv) = dhr.split_at_mut(k);
            for j in 0..k {
                dmu[j] = dz[j];
                dlv[j] = dz[j] * eps[j] * 0.5 * (0.5 * lv[j]).exp();
            }
        }
    }

    /// A copy with empty buffers.
    pub fn replica(&self) -> Gaussian {
        Gaussian::new(self.latent)
    }
}

/// Binarizes values in [0, 1] the standard way: each becomes 1 with probability equal to its value
/// (dynamic binarization draws anew every step; a fixed seed gives the fixed test set).
pub fn binarize(x: &[f32], out: &mut [f32], rng: &mut Rng) {
    use rand::Rng as _;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = if rng.random::<f32>() < v { 1.0 } else { 0.0 };
    }
}

/// The first value of `data` that is not a probability, allowing an ulp past either end (min-max
/// scaling computes (x − lo)·(1/(hi − lo)), which can land just past 1).
pub fn first_outside_unit(data: &[f32]) -> Option<f32> {
    data.iter()
        .copied()
        .find(|v| !(-1e-6..=1.0 + 1e-6).contains(v))
}

/// The fixed binarized copy of `x` (values in [0, 1]): one Bernoulli draw from a seed of its own,
/// the same on every call, as the standard binarized test sets are.
pub fn binarized(x: &Tensor) -> Result<Tensor> {
    if let Some(v) = first_outside_unit(x.data()) {
        return Err(Error::config(
            "binarize",
            format!("binarizing needs data scaled into [0, 1], but it holds {v}"),
        ));
    }
    let mut b = Tensor::zeros(x.shape());
    let mut rng = stream(0, Purpose::Misc, 41, 0);
    binarize(x.data(), b.data_mut(), &mut rng);
    Ok(b)
}

/// The importance-weighted estimate of −log p(x) in nats for each row of `x` (Burda, Grosse &
/// Salakhutdinov 2016): −log (1/K) Σₖ p(x|zₖ)p(zₖ)/q(zₖ|x), zₖ ~ q(z|x), K = `samples`. The
/// decoder is Bernoulli for `LossKind::Bce` (logits) and a unit-variance Gaussian for
/// `LossKind::Mse`. Rows of examples are decoded together, many samples at a time.
pub fn importance_weighted_nll(
    model: &mut crate::model::Autoencoder,
    loss: crate::engine::loss::LossKind,
    log_variance: f64,
    x: &Tensor,
    samples: usize,
    seed: u64,
) -> Vec<f64> {
    let inv_var = (-log_variance).exp();
    use crate::engine::layers::Mode;
    let k = model.config.code_size();
    let d = x.cols();
    let samples = samples.max(1);
    let ln2pi = (2.0 * std::f64::consts::PI).ln();
    // Samples decoded per pass, per example: a pass decodes up to 1,024 rows.
    let chunk = samples.min(1024);
    let mut nll = Vec::with_capacity(x.rows());
    let mut z = Tensor::default();
    let mut rng = stream(seed, Purpose::Misc, 31, 0);
    let mut one = x.shape().to_vec();
    one[0] = 1;
    for i in 0..x.rows() {
        let xi = Tensor::from_vec(&one, x.row(i).to_vec());
        model.net.encoder.forward(&model.params, &xi, Mode::Eval);
        let h = model.net.encoder.output().row(0).to_vec();
        let (mu, lv) = h.split_at(k);
        // Running log-sum-exp of the log weights.
        let (mut max, mut sum) = (f64::NEG_INFINITY, 0.0f64);
        let mut done = 0;
        while done < samples {
            let c = chunk.min(samples - done);
            z.resize(&[c, k]);
            let mut log_w = vec![0.0f64; c];
            for (r, zr) in z.data_mut().chunks_exact_mut(k).enumerate() {
                let mut lw = 0.0f64;
                for j in 0..k {
                    let e: f32 = StandardNormal.sample(&mut rng);
                    zr[j] = mu[j] + (0.5 * lv[j]).exp() * e;
                    // log p(z) − log q(z|x) = −½z² + ½ε² + ½ log σ² (the 2π terms cancel).
                    lw += 0.5 * ((e * e) as f64 - (zr[j] * zr[j]) as f64 + lv[j] as f64);
                }
                log_w[r] = lw;
            }
            model.net.decoder.forward(&model.params, &z, Mode::Eval);
            let logits = model.net.decoder.output();
            let act = model.net.output_activation;
            let t = xi.data();
            // log p(x|z) of each decoded row, rows in parallel, each summed in vector lanes.
            let log_px: Vec<f64> = (0..c)
                .into_par_iter()
                .map(|r| {
                    let pre = logits.row(r);
                    match loss {
                        crate::engine::loss::LossKind::Bce => {
                            -crate::engine::simd::run(crate::engine::simd::SumZip {
                                a: pre,
                                b: t,
                                f: |p: f32, t: f32| crate::engine::loss::bce_logit(p, t),
                            })
                        }
                        crate::engine::loss::LossKind::Mse => {
                            let mut o = vec![0.0f32; pre.len()];
                            act.apply(pre, &mut o);
                            let sq = crate::engine::simd::run(crate::engine::simd::SumZip {
                                a: &o,
                                b: t,
                                f: |o: f32, t: f32| (o - t) * (o - t),
                            });
                            -0.5 * sq * inv_var - 0.5 * d as f64 * (ln2pi + log_variance)
                        }
                    }
                })
                .collect();
            for (lw, log_px) in log_w.iter_mut().zip(log_px) {
                *lw += log_px;
                if *lw > max {
                    sum = sum * (max - *lw).exp() + 1.0;
                    max = *lw;
                } else {
                    sum += (*lw - max).exp();
                }
            }
            done += c;
        }
        nll.push(-(max + sum.ln() - (samples as f64).ln()));
    }
    nll
}

/// `n` draws of the prior N(0, I) over `latent` units, `[n, latent]`, from `seed`.
pub fn prior_samples(n: usize, latent: usize, seed: u64) -> Tensor {
    let mut rng = stream(seed, Purpose::Misc, 21, 0);
    Tensor::from_vec(
        &[n, latent],
        (0..n * latent)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect(),
    )
}

/// The KL part of a VAE's objective.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KlTerm {
    /// Weight of the KL term (β-VAE, Higgins et al. 2017); 1 is the ELBO.
    pub beta: f32,
    /// Epochs over which the weight grows linearly from 0 to β (0: none).
    #[serde(default)]
    pub warmup: usize,
    /// Free bits (Kingma et al. 2016): each latent unit's batch-mean KL counts as at least this many
    /// nats, so units below it feel no pull towards the prior.
    #[serde(default)]
    pub free_bits: Option<f32>,
}

impl KlTerm {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return Err(Error::config(
                "beta",
                format!("must be a finite number ≥ 0, got {}", self.beta),
            ));
        }
        if let Some(f) = self.free_bits {
            if !(f >= 0.0 && f.is_finite()) {
                return Err(Error::config(
                    "free_bits",
                    format!("must be a finite number ≥ 0 nats, got {f}"),
                ));
            }
        }
        Ok(())
    }

    /// The weight at 0-based `epoch`: β·min(1, epoch / warmup), so the first epoch of a warm-up
    /// trains the reconstruction alone.
    pub fn weight(&self, epoch: usize) -> f32 {
        if self.warmup == 0 {
            self.beta
        } else {
            self.beta * (epoch as f32 / self.warmup as f32).min(1.0)
        }
    }

    /// The mean over the batch of KL(N(μ, σ²) ‖ N(0, I)) = ½ Σⱼ (μ² + σ² − 1 − log σ²), from
    /// `h = [μ | log σ²]`. When `dh` is given, adds `weight` times the gradient of the penalized
    /// term (with free bits, units under the floor add nothing).
    pub fn apply(&self, h: &Tensor, weight: f32, dh: Option<&mut Tensor>) -> f64 {
        let k = h.cols() / 2;
        let n = h.rows().max(1);
        let mut per_unit = vec![0.0f64; k];
        for hr in h.data().chunks_exact(2 * k) {
            let (mu, lv) = hr.split_at(k);
            for j in 0..k {
                per_unit[j] += 0.5 * (mu[j] * mu[j] + lv[j].exp() - 1.0 - lv[j]) as f64;
            }
        }
        per_unit.iter_mut().for_each(|v| *v /= n as f64);
        if let Some(dh) = dh {
            let scale = weight / n as f32;
            let active: Vec<bool> = per_unit
                .iter()
                .map(|&v| self.free_bits.is_none_or(|f| v >= f as f64))
                .collect();
            for (hr, dhr) in h
                .data()
                .chunks_exact(2 * k)
                .zip(dh.data_mut().chunks_exact_mut(2 * k))
            {
                let (mu, lv) = hr.split_at(k);
                let (dmu, dlv) = dhr.split_at_mut(k);
                for j in 0..k {
                    if active[j] {
                        dmu[j] += scale * mu[j];
                        dlv[j] += scale * 0.5 * (lv[j].exp() - 1.0);
                    }
                }
            }
        }
        per_unit.iter().sum()
    }

    /// The penalized value: with free bits, Σⱼ max(floor, KLⱼ); else the KL.
    pub fn penalized(&self, h: &Tensor) -> f64 {
        let k = h.cols() / 2;
        match self.free_bits {
            None => self.apply(h, 0.0, None),
            Some(f) => (0..k)
                .map(|j| {
                    let one = Tensor::from_vec(
                        &[h.rows(), 2],
                        h.data()
                            .chunks_exact(2 * k)
                            .flat_map(|r| [r[j], r[k + j]])
                            .collect(),
                    );
                    self.apply(&one, 0.0, None).max(f as f64)
                })
                .sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> Tensor {
        Tensor::from_vec(
            &[3, 4],
            vec![
                0.5, -1.0, 0.2, -0.3, 0.0, 0.3, -0.7, 0.4, -1.2, 0.8, 0.1, 0.0,
            ],
        )
    }

    #[test]
    fn kl_matches_the_closed_form_and_its_gradient_finite_differences() {
        let kl = KlTerm {
            beta: 1.0,
            warmup: 0,
            free_bits: None,
        };
        let h = h();
        let mut want = 0.0f64;
        for r in 0..3 {
            for j in 0..2 {
                let (m, lv) = (h.row(r)[j] as f64, h.row(r)[2 + j] as f64);
                // KL(N(m, e^lv) ‖ N(0, 1)) = −½(1 + lv − m² − e^lv)
                want += -0.5 * (1.0 + lv - m * m - lv.exp());
            }
        }
        want /= 3.0;
        let mut dh = Tensor::zeros(h.shape());
        let got = kl.apply(&h, 2.0, Some(&mut dh));
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        for i in 0..12 {
            let e = 1e-3;
            let mut up = h.clone();
            up.data_mut()[i] += e;
            let mut down = h.clone();
            down.data_mut()[i] -= e;
            let fd =
                2.0 * (kl.apply(&up, 0.0, None) - kl.apply(&down, 0.0, None)) / (2.0 * e as f64);
            assert!(
                (fd - dh.data()[i] as f64).abs() < 1e-3,
                "{i}: {fd} vs {}",
                dh.data()[i]
            );
        }
    }

    #[test]
    fn free_bits_floor_each_unit_and_stop_its_gradient() {
        let h = h();
        let plain = KlTerm {
            beta: 1.0,
            warmup: 0,
            free_bits: None,
        };
        let unit = |j: usize| {
            let one = Tensor::from_vec(
                &[3, 2],
                (0..3)
                    .flat_map(|r| [h.row(r)[j], h.row(r)[2 + j]])
                    .collect(),
            );
            plain.apply(&one, 0.0, None)
        };
        let (k0, k1) = (unit(0), unit(1));
        let floor = ((k0.min(k1) + k0.max(k1)) / 2.0) as f32;
        let fb = KlTerm {
            free_bits: Some(floor),
            ..plain
        };
        let want = k0.max(floor as f64) + k1.max(floor as f64);
        assert!((fb.penalized(&h) - want).abs() < 1e-9);
        let mut dh = Tensor::zeros(h.shape());
        fb.apply(&h, 1.0, Some(&mut dh));
        let low = if k0 < k1 { 0 } else { 1 };
        for r in 0..3 {
            assert_eq!(dh.row(r)[low], 0.0);
            assert_eq!(dh.row(r)[2 + low], 0.0);
        }
        assert_eq!(fb.weight(5), 1.0);
        let warm = KlTerm { warmup: 4, ..plain };
        assert_eq!(
            (warm.weight(0), warm.weight(2), warm.weight(9)),
            (0.0, 0.5, 1.0)
        );
    }

    #[test]
    fn sampling_gradient_matches_finite_differences_with_eps_fixed() {
        let h = h();
        let mut g = Gaussian::new(2);
        g.seed(3, 0, 0);
        g.forward(&h, true);
        let eps = g.eps.clone();
        // loss = Σ c·z with fixed weights c: ∂loss/∂z = c.
        let c: Vec<f32> = (0..6).map(|i| 0.3 * i as f32 - 0.7).collect();
        g.dz = Tensor::from_vec(&[3, 2], c.clone());
        let mut dh = Tensor::default();
        g.backward(&h, &mut dh);
        let loss = |h: &Tensor| -> f64 {
            let mut s = 0.0;
            for r in 0..3 {
                for j in 0..2 {
                    let z = h.row(r)[j] + (0.5 * h.row(r)[2 + j]).exp() * eps.row(r)[j];
                    s += (c[r * 2 + j] * z) as f64;
                }
            }
            s
        };
        for i in 0..12 {
            let e = 1e-3;
            let mut up = h.clone();
            up.data_mut()[i] += e;
            let mut down = h.clone();
            down.data_mut()[i] -= e;
            let fd = (loss(&up) - loss(&down)) / (2.0 * e as f64);
            assert!(
                (fd - dh.data()[i] as f64).abs() < 1e-3,
                "{i}: {fd} vs {}",
                dh.data()[i]
            );
        }
        // Evaluation reads the mean.
        g.forward(&h, false);
        assert_eq!(g.z, g.mu);
        assert_eq!(g.mu.row(1), &h.row(1)[..2]);
    }

    #[test]
    fn importance_weighted_nll_approaches_the_exact_likelihood_of_a_one_unit_latent() {
        use crate::engine::init::Init;
        use crate::engine::layers::activation::Activation;
        use crate::engine::loss::LossKind;
        use crate::model::ModelConfig;
        let cfg = ModelConfig {
            input_shape: vec![4],
            hidden: vec![3, 1],
            activation: Activation::Tanh,
            code_activation: None,
            output_activation: Activation::Sigmoid,
            tied: false,
            init: Init::GlorotUniform,
            conv: None,
            variational: true,
            missing_indicator: false,
        };
        let mut m = cfg.build(7).unwrap();
        let x = Tensor::from_vec(&[2, 4], vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0]);
        // log p(x) = log ∫ p(x|z) N(z; 0, 1) dz by the trapezoid rule on a fine grid.
        let (lo, hi, g) = (-9.0f64, 9.0f64, 6001usize);
        let step = (hi - lo) / (g - 1) as f64;
        let grid = Tensor::from_vec(
            &[g, 1],
            (0..g).map(|i| (lo + i as f64 * step) as f32).collect(),
        );
        m.decode(&grid);
        let logits = m.logits().clone();
        for r in 0..2 {
            let terms: Vec<f64> = (0..g)
                .map(|i| {
                    let z = grid.data()[i] as f64;
                    let log_px: f64 = logits
                        .row(i)
                        .iter()
                        .zip(x.row(r))
                        .map(|(&p, &t)| -crate::engine::loss::bce_logit(p, t) as f64)
                        .sum();
                    log_px - 0.5 * z * z - 0.5 * (2.0 * std::f64::consts::PI).ln() + step.ln()
                })
                .collect();
            let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exact = -(max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln());
            let iw = importance_weighted_nll(&mut m, LossKind::Bce, 0.0, &x, 20_000, 1)[r];
            assert!(
                (iw - exact).abs() < 0.02,
                "row {r}: IWAE {iw} vs exact {exact}"
            );
            // One sample is the ELBO's estimate: on average no better than the exact value.
            let one: f64 = (0..200)
                .map(|s| importance_weighted_nll(&mut m, LossKind::Bce, 0.0, &x, 1, s)[r])
                .sum::<f64>()
                / 200.0;
            assert!(
                one > exact - 0.05,
                "row {r}: K=1 mean {one} vs exact {exact}"
            );
        }
    }
}
