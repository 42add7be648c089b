//! Reconstruction losses, computed against the output layer's pre-activation so that binary cross
//! entropy can be taken from logits, which stays finite where a saturated sigmoid would not.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::engine::layers::activation::Activation;
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// A reconstruction loss, averaged over every element of the batch (PyTorch's `reduction='mean'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Mean squared error.
    Mse,
    /// Binary cross-entropy; needs a sigmoid output and targets in [0, 1].
    Bce,
}

impl LossKind {
    /// Checks that the loss fits the output activation.
    pub fn check(self, output: Activation) -> Result<()> {
        match (self, output) {
            (LossKind::Bce, Activation::Sigmoid) | (LossKind::Mse, _) => Ok(()),
            (LossKind::Bce, other) => Err(Error::config(
                "loss",
                format!("bce needs a sigmoid output activation (it is computed from the logits), got {other}"),
            )),
        }
    }

    /// Returns the mean loss over all elements and writes ∂loss/∂pre into `dpre`.
    ///
    /// `pre` is the output layer's pre-activation, `out = act(pre)` the reconstruction.
    ///
    /// # Shapes
    /// `pre`, `out`, `target`: the same `[N, ..]`; `dpre` is resized to it.
    pub fn loss_and_grad(
        self,
        act: Activation,
        pre: &Tensor,
        out: &Tensor,
        target: &Tensor,
        dpre: &mut Tensor,
    ) -> f64 {
        let m = target.len() as f32;
        dpre.resize(pre.shape());
        let (o, t) = (out.data(), target.data());
        match self {
            LossKind::Mse => {
                let sum = crate::engine::simd::run(crate::engine::simd::SumMap3 {
                    out: dpre.data_mut(),
                    a: o,
                    b: o,
                    c: t,
                    f: |o: f32, _: f32, t: f32| {
                        let e = o - t;
                        (e * e, 2.0 * e / m)
                    },
                });
                // ∂/∂pre = ∂/∂out · act'(out), in place.
                act.scale_by_derivative(o, dpre.data_mut());
                sum / target.len() as f64
            }
            LossKind::Bce => {
                // d/dz [softplus(z) − t·z] = σ(z) − t, and σ(z) is the output.
                let sum = crate::engine::simd::run(crate::engine::simd::SumMap3 {
                    out: dpre.data_mut(),
                    a: pre.data(),
                    b: o,
                    c: t,
                    f: |z: f32, o: f32, t: f32| (bce_logit(z, t), (o - t) / m),
                });
                sum / target.len() as f64
            }
        }
    }

    /// The per-element loss of an output against a target, from the logit when the loss needs one.
    pub fn element(self, pre: f32, out: f32, target: f32) -> f64 {
        match self {
            LossKind::Mse => ((out - target) as f64).powi(2),
            LossKind::Bce => bce_logit(pre, target) as f64,
        }
    }
}

/// Binary cross-entropy of target `t` against logit `z`: max(z, 0) − z·t + log(1 + e^−|z|).
///
/// Written without libm calls (expf and log1pf were a call each per element, 10% of a VAE
/// step) so that loops over it vectorize; within f32 rounding of the libm form.
#[inline(always)]
pub fn bce_logit(z: f32, t: f32) -> f32 {
    z.max(0.0) - z * t + log1p_unit(crate::engine::layers::activation::fast_exp(-z.abs()))
}

/// log(1 + u) for u in [0, 1]: 2·atanh(s) with s = u / (2 + u) ≤ 1/3, by its odd series to s¹³
/// (the first term left out is below 10⁻⁸).
#[inline(always)]
fn log1p_unit(u: f32) -> f32 {
    let s = u / (2.0 + u);
    let s2 = s * s;
    2.0 * s
        * (1.0
            + s2 * (1.0 / 3.0
                + s2 * (1.0 / 5.0
                    + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 / 13.0))))))
}

impl fmt::Display for LossKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossKind::Mse => "mse",
            LossKind::Bce => "bce",
        })
    }
}

impl FromStr for LossKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mse" => Ok(LossKind::Mse),
            "bce" => Ok(LossKind::Bce),
            _ => Err(Error::config(
                "loss",
                format!("unknown loss `{s}`; expected mse or bce"),
            )),
        }
    }
}

/// Mean softmax cross-entropy of `logits` (`[N, C]`) against class indices `labels`, as PyTorch's
/// `F.cross_entropy`; writes ∂loss/∂logits (divided by N, like the mean) into `dlogits`.
///
/// Computed with the log-sum-exp shift, so large logits stay finite.
///
/// # Panics
/// When a label is not below C or `labels` has not N entries (callers check labels first).
pub fn softmax_cross_entropy(logits: &Tensor, labels: &[u32], dlogits: &mut Tensor) -> f64 {
    let (n, c) = (logits.rows(), logits.cols());
    assert_eq!(labels.len(), n, "one label per row");
    dlogits.resize(logits.shape());
    let mut total = 0.0f64;
    for ((z, d), &y) in logits
        .data()
        .chunks_exact(c)
        .zip(dlogits.data_mut().chunks_exact_mut(c))
        .zip(labels)
    {
        let y = y as usize;
        assert!(y < c, "label {y} out of {c} classes");
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f64;
        for (d, &z) in d.iter_mut().zip(z) {
            let e = ((z - max) as f64).exp();
            *d = e as f32;
            sum += e;
        }
        total += sum.ln() + (max - z[y]) as f64;
        for d in d.iter_mut() {
            *d = (*d as f64 / sum / n as f64) as f32;
        }
        d[y] -= 1.0 / n as f32;
    }
    total / n.max(1) as f64
}

#[cfg(test)]
mod softmax_tests {
    use super::*;

    /// The libm-free binary cross-entropy agrees with the f64 formula across the logit range
    /// (saturated logits included) for hard and soft targets.
    #[test]
    fn bce_from_logits_matches_the_f64_formula() {
        for i in -2000..=2000 {
            let z = i as f32 * 0.05;
            for t in [0.0f32, 0.3, 1.0] {
                let (zd, td) = (z as f64, t as f64);
                let exact = zd.max(0.0) - zd * td + (-zd.abs()).exp().ln_1p();
                let ours = bce_logit(z, t) as f64;
                assert!(
                    (ours - exact).abs() <= 2e-7 * (1.0 + exact.abs()),
                    "z {z} t {t}: {ours} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn cross_entropy_matches_its_definition_and_finite_differences() {
        let logits = Tensor::from_vec(
            &[3, 4],
            (0..12).map(|i| ((i * 7 % 5) as f32) - 2.0).collect(),
        );
        let labels = [2u32, 0, 3];
        let mut d = Tensor::default();
        let got = softmax_cross_entropy(&logits, &labels, &mut d);
        let mut want = 0.0;
        for (r, &y) in labels.iter().enumerate() {
            let z = logits.row(r);
            let s: f64 = z.iter().map(|&v| (v as f64).exp()).sum();
            want -= ((z[y as usize] as f64).exp() / s).ln();
        }
        want /= 3.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        let mut scratch = Tensor::default();
        for i in 0..12 {
            let h = 1e-2;
            let mut up = logits.clone();
            up.data_mut()[i] += h;
            let mut down = logits.clone();
            down.data_mut()[i] -= h;
            let fd = (softmax_cross_entropy(&up, &labels, &mut scratch)
                - softmax_cross_entropy(&down, &labels, &mut scratch))
                / (2.0 * h as f64);
            assert!(
                (fd - d.data()[i] as f64).abs() < 1e-4,
                "{i}: {fd} vs {}",
                d.data()[i]
            );
        }
        // Huge logits stay finite.
        let big = Tensor::from_vec(&[1, 2], vec![1e4, -1e4]);
        assert!(softmax_cross_entropy(&big, &[1], &mut d).is_finite());
    }
}
