//! Sparsity penalties on the code: L1 activity (Keras' `activity_regularizer`) and the KL
//! divergence to a target mean activation (Ng's sparse autoencoder notes, CS294A, 2011).
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::engine::layers::activation::Activation;
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// A penalty that pushes code units towards inactivity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Sparsity {
    /// λ · mean over the batch and the units of |h|.
    L1 {
        /// λ.
        lambda: f32,
    },
    /// β · Σ_j KL(ρ ‖ ρ̂_j), ρ̂_j the batch-mean activation of code unit j; needs codes in (0, 1).
    Kl {
        /// Target mean activation ρ.
        rho: f32,
        /// Weight β.
        beta: f32,
    },
}

/// ρ̂ is kept this far inside (0, 1) so that the divergence and its gradient stay finite.
const EPS: f64 = 1e-6;

impl Sparsity {
    /// The name the term is logged under.
    pub fn name(self) -> &'static str {
        match self {
            Sparsity::L1 { .. } => "sparsity_l1",
            Sparsity::Kl { .. } => "sparsity_kl",
        }
    }

    /// Checks that the code activation suits the penalty.
    pub fn check(self, code_activation: Activation) -> Result<()> {
        match self {
            Sparsity::Kl { .. } if !code_activation.is_unit_interval() => Err(Error::config(
                "sparsity",
                format!("kl sparsity needs code activations in (0, 1), i.e. code-activation sigmoid; the code activation is {code_activation}"),
            )),
            _ => Ok(()),
        }
    }

    /// True when the penalty depends on statistics of the whole batch (so a batch cannot be split
    /// across threads without exchanging them).
    pub fn needs_whole_batch(self) -> bool {
        matches!(self, Sparsity::Kl { .. })
    }

    /// Per-unit batch means ρ̂_j of a code `[N, K]`.
    pub fn unit_means(code: &Tensor) -> Vec<f64> {
        let (n, k) = (code.rows(), code.cols());
        let mut mean = vec![0.0f64; k];
        for row in code.data().chunks_exact(k) {
            for (m, &h) in mean.iter_mut().zip(row) {
                *m += h as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
        mean
    }

    /// The penalty's value on a code `[N, K]`.
    pub fn value(self, code: &Tensor) -> f64 {
        match self {
            Sparsity::L1 { lambda } => {
                lambda as f64 * code.data().iter().map(|h| h.abs() as f64).sum::<f64>()
                    / code.len().max(1) as f64
            }
            Sparsity::Kl { rho, beta } => {
                let rho = rho as f64;
                let kl = |m: f64| {
                    let m = m.clamp(EPS, 1.0 - EPS);
                    rho * (rho / m).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - m)).ln()
                };
                beta as f64 * Self::unit_means(code).into_iter().map(kl).sum::<f64>()
            }
        }
    }

    /// Adds the penalty's gradient with respect to the code into `dcode` and returns its value.
    pub fn apply(self, code: &Tensor, dcode: &mut Tensor) -> f64 {
        match self {
            Sparsity::L1 { lambda } => {
                let scale = lambda / code.len().max(1) as f32;
                for (d, &h) in dcode.data_mut().iter_mut().zip(code.data()) {
                    // sign(0) = 0, as torch.sign.
                    *d += scale
                        * if h > 0.0 {
                            1.0
                        } else if h < 0.0 {
                            -1.0
                        } else {
                            0.0
                        };
                }
            }
            Sparsity::Kl { rho, beta } => {
                let (n, k) = (code.rows(), code.cols());
                let rho = rho as f64;
                // ∂/∂h_ij = β/N · (−ρ/ρ̂_j + (1−ρ)/(1−ρ̂_j))
                let per_unit: Vec<f32> = Self::unit_means(code)
                    .into_iter()
                    .map(|m| {
                        let m = m.clamp(EPS, 1.0 - EPS);
                        (beta as f64 / n.max(1) as f64 * (-rho / m + (1.0 - rho) / (1.0 - m)))
                            as f32
                    })
                    .collect();
                for row in dcode.data_mut().chunks_exact_mut(k) {
                    for (d, g) in row.iter_mut().zip(&per_unit) {
                        *d += g;
                    }
                }
            }
        }
        self.value(code)
    }
}

impl fmt::Display for Sparsity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sparsity::L1 { lambda } => write!(f, "l1:{lambda}"),
            Sparsity::Kl { rho, beta } => write!(f, "kl:{rho}:{beta}"),
        }
    }
}

impl FromStr for Sparsity {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::config(
                "sparsity",
                format!("{why}; expected l1:LAMBDA or kl:RHO:BETA, got `{s}`"),
            )
        };
        let num = |v: &str| v.parse::<f32>().ok().filter(|x| x.is_finite());
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["l1", l] => {
                let lambda = num(l)
                    .filter(|&x| x >= 0.0)
                    .ok_or_else(|| bad("lambda must be a number ≥ 0"))?;
                Ok(Sparsity::L1 { lambda })
            }
            ["kl", r, b] => {
                let rho = num(r)
                    .filter(|&x| x > 0.0 && x < 1.0)
                    .ok_or_else(|| bad("rho must be in (0, 1)"))?;
                let beta = num(b)
                    .filter(|&x| x >= 0.0)
                    .ok_or_else(|| bad("beta must be a number ≥ 0"))?;
                Ok(Sparsity::Kl { rho, beta })
            }
            _ => Err(bad("unknown form")),
        }
    }
}

impl TryFrom<String> for Sparsity {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Sparsity> for String {
    fn from(s: Sparsity) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> Tensor {
        Tensor::from_vec(
            &[4, 3],
            (0..12)
                .map(|i| 0.5 + 0.45 * (1.3 * i as f32).sin())
                .collect(),
        )
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            "l1:0.001".parse::<Sparsity>().unwrap(),
            Sparsity::L1 { lambda: 0.001 }
        );
        assert_eq!(
            "kl:0.05:3".parse::<Sparsity>().unwrap(),
            Sparsity::Kl {
                rho: 0.05,
                beta: 3.0
            }
        );
        for bad in ["kl:1.5:3", "kl:0.05", "l1:-1", "l2:1", "kl:x:3"] {
            assert!(
                bad.parse::<Sparsity>()
                    .unwrap_err()
                    .to_string()
                    .contains("sparsity"),
                "{bad}"
            );
        }
        assert!(Sparsity::Kl {
            rho: 0.05,
            beta: 3.0
        }
        .check(Activation::Relu)
        .is_err());
        assert!(Sparsity::Kl {
            rho: 0.05,
            beta: 3.0
        }
        .check(Activation::Sigmoid)
        .is_ok());
    }

    #[test]
    fn gradients_match_finite_differences() {
        for p in [
            Sparsity::L1 { lambda: 0.3 },
            Sparsity::Kl {
                rho: 0.05,
                beta: 3.0,
            },
        ] {
            let h = code();
            let mut d = Tensor::zeros(h.shape());
            p.apply(&h, &mut d);
            for j in 0..h.len() {
                let eps = 1e-3;
                let mut up = h.clone();
                up.data_mut()[j] += eps;
                let mut down = h.clone();
                down.data_mut()[j] -= eps;
                let fd = (p.value(&up) - p.value(&down)) / (2.0 * eps as f64);
                assert!(
                    (fd - d.data()[j] as f64).abs() < 1e-3 * (1.0 + fd.abs()),
                    "{p} [{j}]: {fd} vs {}",
                    d.data()[j]
                );
            }
        }
    }

    #[test]
    fn kl_is_zero_at_the_target() {
        let h = Tensor::from_vec(&[2, 2], vec![0.05; 4]);
        assert!(
            Sparsity::Kl {
                rho: 0.05,
                beta: 3.0
            }
            .value(&h)
            .abs()
                < 1e-9
        );
    }
}
