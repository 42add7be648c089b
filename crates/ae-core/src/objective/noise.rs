//! Input corruption for denoising autoencoders (Vincent et al., 2008): applied to training inputs
//! only, fresh for every batch, drawn from a stream keyed by (seed, epoch, step); the loss compares
//! the reconstruction with the clean input.
use std::fmt;
use std::str::FromStr;

use rand::Rng as _;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::engine::rng::Rng;
use crate::{Error, Result};

/// How inputs are corrupted.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Noise {
    /// Adds N(0, std²) to every value.
    Gaussian {
        /// Standard deviation, in the scaled data's units.
        std: f32,
    },
    /// Sets each value to 0 with probability `p` (masking noise).
    Mask {
        /// Probability of masking a value.
        p: f32,
    },
    /// Sets each value, with probability `p`, to 0 or 1 with equal chance (for data in [0, 1]).
    SaltPepper {
        /// Probability of corrupting a value.
        p: f32,
    },
}

impl Noise {
    /// Writes a corrupted copy of `x` into `out`.
    pub fn corrupt(self, x: &[f32], out: &mut [f32], rng: &mut Rng) {
        match self {
            Noise::Gaussian { std } => {
                let d = Normal::new(0.0f32, std).expect("std validated ≥ 0 and finite");
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = v + d.sample(rng);
                }
            }
            Noise::Mask { p } => {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = if rng.random::<f32>() < p { 0.0 } else { v };
                }
            }
            Noise::SaltPepper { p } => {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = if rng.random::<f32>() < p {
                        if rng.random::<bool>() {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        v
                    };
                }
            }
        }
    }
}

impl fmt::Display for Noise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Noise::Gaussian { std } => write!(f, "gaussian:{std}"),
            Noise::Mask { p } => write!(f, "mask:{p}"),
            Noise::SaltPepper { p } => write!(f, "salt-pepper:{p}"),
        }
    }
}

impl FromStr for Noise {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::config(
                "noise",
                format!("{why}; expected gaussian:STD, mask:P or salt-pepper:P, got `{s}`"),
            )
        };
        let (kind, v) = s.split_once(':').ok_or_else(|| bad("missing value"))?;
        let v: f32 = v
            .parse()
            .ok()
            .filter(|x: &f32| x.is_finite())
            .ok_or_else(|| bad("not a number"))?;
        let prob = |v: f32| {
            if (0.0..=1.0).contains(&v) {
                Ok(v)
            } else {
                Err(bad("a probability must be in [0, 1]"))
            }
        };
        match kind {
            "gaussian" if v >= 0.0 => Ok(Noise::Gaussian { std: v }),
            "gaussian" => Err(bad("std must be ≥ 0")),
            "mask" => Ok(Noise::Mask { p: prob(v)? }),
            "salt-pepper" | "salt_pepper" | "sp" => Ok(Noise::SaltPepper { p: prob(v)? }),
            _ => Err(bad("unknown kind")),
        }
    }
}

impl TryFrom<String> for Noise {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Noise> for String {
    fn from(n: Noise) -> String {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::{stream, Purpose};

    fn corrupt(n: Noise, x: &[f32], step: u64) -> Vec<f32> {
        let mut out = vec![0.0; x.len()];
        n.corrupt(x, &mut out, &mut stream(9, Purpose::Step, 1, step));
        out
    }

    #[test]
    fn statistics_and_determinism() {
        let x = vec![0.5f32; 100_000];
        let g = corrupt(Noise::Gaussian { std: 0.2 }, &x, 0);
        let var = g.iter().map(|v| ((v - 0.5) as f64).powi(2)).sum::<f64>() / g.len() as f64;
        assert!((var.sqrt() - 0.2).abs() < 0.005, "std {}", var.sqrt());
        let m = corrupt(Noise::Mask { p: 0.3 }, &x, 0);
        let masked = m.iter().filter(|&&v| v == 0.0).count() as f64 / m.len() as f64;
        assert!((masked - 0.3).abs() < 0.01, "masked share {masked}");
        assert!(m.iter().all(|&v| v == 0.0 || v == 0.5));
        let sp = corrupt(Noise::SaltPepper { p: 0.2 }, &x, 0);
        let salt = sp.iter().filter(|&&v| v == 1.0).count() as f64 / sp.len() as f64;
        let pepper = sp.iter().filter(|&&v| v == 0.0).count() as f64 / sp.len() as f64;
        assert!(
            (salt - 0.1).abs() < 0.01 && (pepper - 0.1).abs() < 0.01,
            "salt {salt} pepper {pepper}"
        );
        // Same position, same draw; another step, another draw.
        assert_eq!(corrupt(Noise::Mask { p: 0.3 }, &x, 0), m);
        assert_ne!(corrupt(Noise::Mask { p: 0.3 }, &x, 1), m);
    }

    #[test]
    fn parses_and_refuses() {
        for s in ["gaussian:0.1", "mask:0.3", "salt-pepper:0.05"] {
            assert_eq!(s.parse::<Noise>().unwrap().to_string(), s);
        }
        for s in ["mask:1.5", "gaussian:-1", "blur:2", "mask"] {
            assert!(
                s.parse::<Noise>()
                    .unwrap_err()
                    .to_string()
                    .contains("noise"),
                "{s}"
            );
        }
    }
}
