//! Reconstruction losses, computed against the output layer's pre-activation so that binary cross
//! entropy can be taken from logits, which stays finite where a saturated sigmoid would not.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::layers::activation::Activation;
use crate::tensor::Tensor;
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
                let d = dpre.data_mut();
                // f32 partial sums over short blocks vectorize; blocks are summed in f64.
                let sum: f64 = crate::simd::vectorized(|| {
                    d.chunks_mut(BLOCK)
                        .zip(o.chunks(BLOCK).zip(t.chunks(BLOCK)))
                        .map(|(d, (o, t))| {
                            let mut s = 0.0f32;
                            for ((d, &o), &t) in d.iter_mut().zip(o).zip(t) {
                                let e = o - t;
                                s += e * e;
                                *d = 2.0 * e / m;
                            }
                            s as f64
                        })
                        .sum()
                });
                // ∂/∂pre = ∂/∂out · act'(out), in place.
                act.scale_by_derivative(o, dpre.data_mut());
                sum / target.len() as f64
            }
            LossKind::Bce => {
                // d/dz [softplus(z) − t·z] = σ(z) − t, and σ(z) is the output.
                let d = dpre.data_mut();
                let z = pre.data();
                let sum: f64 = crate::simd::vectorized(|| {
                    d.chunks_mut(BLOCK)
                        .zip(z.chunks(BLOCK).zip(o.chunks(BLOCK).zip(t.chunks(BLOCK))))
                        .map(|(d, (z, (o, t)))| {
                            let mut s = 0.0f32;
                            for (((d, &z), &o), &t) in d.iter_mut().zip(z).zip(o).zip(t) {
                                s += bce_logit(z, t);
                                *d = (o - t) / m;
                            }
                            s as f64
                        })
                        .sum()
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

/// Elements summed in f32 before the running f64 sum: short enough that f32 loses nothing that
/// matters, long enough to vectorize.
const BLOCK: usize = 256;

/// Binary cross-entropy of target `t` against logit `z`: max(z, 0) − z·t + log(1 + e^−|z|).
#[inline]
pub fn bce_logit(z: f32, t: f32) -> f32 {
    z.max(0.0) - z * t + (-z.abs()).exp().ln_1p()
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
