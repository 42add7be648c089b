//! Optimizers: Adam and SGD with momentum, with PyTorch's update rules so that golden values from
//! `torch.optim` check them step by step.
use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::params::Params;
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// Which optimizer, with its hyperparameters (the learning rate lives on [`Optimizer`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba 2015), PyTorch's formulation with bias correction.
    Adam {
        /// Decay of the first moment.
        beta1: f32,
        /// Decay of the second moment.
        beta2: f32,
        /// Added to the root of the second moment.
        eps: f32,
    },
    /// Stochastic gradient descent with heavy-ball momentum, PyTorch's convention (v = μv + g).
    Sgd {
        /// μ, the share of the previous velocity kept.
        momentum: f32,
    },
}

impl OptimizerKind {
    /// Adam with the usual betas (0.9, 0.999) and epsilon 1e-8.
    pub const ADAM: OptimizerKind = OptimizerKind::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };

    /// Checks hyperparameters.
    pub fn validate(&self) -> Result<()> {
        match *self {
            OptimizerKind::Adam { beta1, beta2, eps } => {
                if !(0.0..1.0).contains(&beta1) || !(0.0..1.0).contains(&beta2) {
                    return Err(Error::config(
                        "optimizer",
                        format!("adam betas must be in [0, 1), got {beta1}, {beta2}"),
                    ));
                }
                if eps.is_nan() || eps <= 0.0 {
                    return Err(Error::config(
                        "optimizer",
                        format!("adam eps must be positive, got {eps}"),
                    ));
                }
            }
            OptimizerKind::Sgd { momentum } => {
                if !(0.0..1.0).contains(&momentum) {
                    return Err(Error::config(
                        "momentum",
                        format!("must be in [0, 1), got {momentum}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptimizerKind::Adam { .. } => f.write_str("adam"),
            OptimizerKind::Sgd { .. } => f.write_str("sgd"),
        }
    }
}

impl FromStr for OptimizerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "adam" => Ok(OptimizerKind::ADAM),
            "sgd" => Ok(OptimizerKind::Sgd { momentum: 0.9 }),
            _ => Err(Error::config(
                "optimizer",
                format!("unknown optimizer `{s}`; expected adam or sgd"),
            )),
        }
    }
}

/// The scalars of one update, the same on every device: Adam's per-step size (the rate over its
/// first bias correction) and inverse root of its second, or SGD's rate. A parameter's own rate
/// multiplies `step_size` or `lr` ([`Optimizer::lr_scale`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepRule {
    /// p −= step_size · m / (√v · inv_sqrt_c2 + eps), after the moment updates.
    Adam {
        /// Decay of the first moment.
        beta1: f32,
        /// Decay of the second moment.
        beta2: f32,
        /// Added to the corrected root of the second moment.
        eps: f32,
        /// The rate divided by 1 − β₁ᵗ.
        step_size: f32,
        /// 1 / √(1 − β₂ᵗ).
        inv_sqrt_c2: f32,
    },
    /// v = μv + g; p −= lr · v.
    Sgd {
        /// μ.
        momentum: f32,
        /// The rate of this step.
        lr: f32,
    },
}

/// Adam's scalars for one step.
#[derive(Clone, Copy)]
struct AdamConsts {
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,
    inv_sqrt_c2: f32,
}

/// One Adam update over a chunk, as a vectorized kernel (see `simd`).
struct AdamKernel<'a> {
    p: &'a mut [f32],
    g: &'a [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
    k: AdamConsts,
}

impl pulp::WithSimd for AdamKernel<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let AdamConsts {
            beta1,
            beta2,
            eps,
            step_size,
            inv_sqrt_c2,
        } = self.k;
        // Re-slicing to one length lets the compiler drop bounds checks and vectorize.
        let n = self.p.len();
        let (g, m, v) = (&self.g[..n], &mut self.m[..n], &mut self.v[..n]);
        for j in 0..n {
            let gj = g[j];
            let mj = beta1 * m[j] + (1.0 - beta1) * gj;
            let vj = beta2 * v[j] + (1.0 - beta2) * gj * gj;
            m[j] = mj;
            v[j] = vj;
            self.p[j] -= step_size * mj / (vj.sqrt() * inv_sqrt_c2 + eps);
        }
    }
}

/// An optimizer with its per-parameter state.
#[derive(Clone, Debug)]
pub struct Optimizer {
    /// The rule and its hyperparameters.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub lr: f32,
    /// Steps taken so far (Adam's bias correction needs it).
    pub step: u64,
    /// First moment (Adam) or velocity (SGD), one per parameter.
    pub m: Vec<Tensor>,
    /// Second moment (Adam only; empty tensors for SGD).
    pub v: Vec<Tensor>,
    /// Per-parameter multiplier of the learning rate (1 unless set: e.g. a smaller rate for a
    /// pretrained encoder than for a new head, as PyTorch's parameter groups allow).
    pub lr_scale: Vec<f32>,
    /// How the learning rate changes with the step (none: `lr` throughout).
    pub schedule: Option<Schedule>,
}

/// A learning-rate schedule over a known number of steps: linear warm-up from 0, then cosine decay
/// to 0 (Loshchilov & Hutter's SGDR without restarts, as PyTorch's `CosineAnnealingLR` after a
/// `LinearLR` warm-up).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Steps of linear warm-up.
    pub warmup: u64,
    /// Steps in all (warm-up included); the rate reaches 0 at the last.
    pub total: u64,
}

impl Schedule {
    /// The multiplier of the base rate at `step` (1-based).
    pub fn factor(&self, step: u64) -> f64 {
        if step <= self.warmup {
            return step as f64 / self.warmup.max(1) as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1) as f64;
        let done = ((step - self.warmup) as f64 / span).min(1.0);
        0.5 * (1.0 + (std::f64::consts::PI * done).cos())
    }
}

impl Optimizer {
    /// A fresh optimizer for `params`.
    pub fn new(kind: OptimizerKind, lr: f32, params: &Params) -> Self {
        let zeros = |p: &Tensor| Tensor::zeros(p.shape());
        let m = params.values.iter().map(zeros).collect();
        let v = match kind {
            OptimizerKind::Adam { .. } => params.values.iter().map(zeros).collect(),
            OptimizerKind::Sgd { .. } => params.values.iter().map(|_| Tensor::default()).collect(),
        };
        Optimizer {
            kind,
            lr,
            step: 0,
            m,
            v,
            lr_scale: vec![1.0; params.len()],
            schedule: None,
        }
    }

    /// Counts one more step and returns its scalars (the rate from the schedule, Adam's bias
    /// corrections): what an update of any device needs besides the tensors.
    pub fn advance(&mut self) -> StepRule {
        self.step += 1;
        let lr = match self.schedule {
            Some(s) => (self.lr as f64 * s.factor(self.step)) as f32,
            None => self.lr,
        };
        match self.kind {
            OptimizerKind::Adam { beta1, beta2, eps } => {
                let t = self.step as i32;
                let c1 = 1.0 - (beta1 as f64).powi(t);
                let c2 = 1.0 - (beta2 as f64).powi(t);
                StepRule::Adam {
                    beta1,
                    beta2,
                    eps,
                    step_size: (lr as f64 / c1) as f32,
                    inv_sqrt_c2: (1.0 / c2.sqrt()) as f32,
                }
            }
            OptimizerKind::Sgd { momentum } => StepRule::Sgd { momentum, lr },
        }
    }

    /// Applies one update from the gradients in `params`; frozen parameters are left alone.
    pub fn apply(&mut self, params: &mut Params) {
        match self.advance() {
            StepRule::Adam {
                beta1,
                beta2,
                eps,
                step_size,
                inv_sqrt_c2,
            } => {
                for i in 0..params.len() {
                    if params.frozen[i] {
                        continue;
                    }
                    let g = params.grads[i].data();
                    let p = params.values[i].data_mut();
                    let (m, v) = (self.m[i].data_mut(), self.v[i].data_mut());
                    // One chunk per thread: finer chunks only add wake-ups.
                    let chunk = p.len().div_ceil(crate::engine::gemm::threads()).max(4096);
                    let k = AdamConsts {
                        beta1,
                        beta2,
                        eps,
                        step_size: step_size * self.lr_scale[i],
                        inv_sqrt_c2,
                    };
                    p.par_chunks_mut(chunk)
                        .zip(g.par_chunks(chunk))
                        .zip(m.par_chunks_mut(chunk))
                        .zip(v.par_chunks_mut(chunk))
                        .for_each(|(((p, g), m), v)| {
                            crate::engine::simd::run(AdamKernel { p, g, m, v, k })
                        });
                }
            }
            StepRule::Sgd { momentum, lr } => {
                for i in 0..params.len() {
                    if params.frozen[i] {
                        continue;
                    }
                    let g = params.grads[i].data();
                    let p = params.values[i].data_mut();
                    let m = self.m[i].data_mut();
                    let lr = lr * self.lr_scale[i];
                    for ((p, &g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
                        *m = momentum * *m + g;
                        *p -= lr * *m;
                    }
                }
            }
        }
    }

    /// Named state tensors, for checkpoints: `("m", i, tensor)` and `("v", i, tensor)`.
    pub fn state(&self) -> impl Iterator<Item = (&'static str, usize, &Tensor)> {
        let m = self.m.iter().enumerate().map(|(i, t)| ("m", i, t));
        let v = self
            .v
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.is_empty())
            .map(|(i, t)| ("v", i, t));
        m.chain(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::params::ParamKind;

    /// A parameter's update is its learning-rate multiple of the plain one, for both rules: Adam's
    /// first step moves every weight by lr · sign(g), SGD's by lr · g.
    #[test]
    fn the_schedule_warms_up_linearly_then_decays_by_a_half_cosine_to_zero() {
        let s = Schedule {
            warmup: 10,
            total: 110,
        };
        assert_eq!(s.factor(5), 0.5);
        assert_eq!(s.factor(10), 1.0);
        assert!((s.factor(60) - 0.5).abs() < 1e-12);
        assert!(s.factor(110).abs() < 1e-12);
        assert!(s.factor(200).abs() < 1e-12);
        let none = Schedule {
            warmup: 0,
            total: 4,
        };
        assert!((none.factor(2) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn learning_rate_scale_multiplies_each_parameters_step() {
        for kind in [OptimizerKind::ADAM, OptimizerKind::Sgd { momentum: 0.9 }] {
            let mut params = Params::default();
            for name in ["encoder.0.weight", "head.weight", "other"] {
                params.add(
                    name,
                    ParamKind::Weight,
                    Tensor::from_vec(&[2], vec![1.0, -1.0]),
                );
            }
            for g in params.grads.iter_mut() {
                g.data_mut().copy_from_slice(&[0.5, -0.25]);
            }
            let mut opt = Optimizer::new(kind, 0.1, &params);
            opt.lr_scale[0] = 0.1;
            opt.lr_scale[2] = 0.0;
            opt.apply(&mut params);
            let moved = |i: usize| 1.0 - params.values[i].data()[0];
            assert!(moved(1) > 0.0);
            assert!((moved(0) - 0.1 * moved(1)).abs() < 1e-6, "{kind:?}");
            assert_eq!(params.values[2].data(), &[1.0, -1.0]);
        }
    }
}
