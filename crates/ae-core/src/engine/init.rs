//! Weight initialization schemes.
use std::fmt;
use std::str::FromStr;

use rand::Rng as _;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::engine::layers::activation::Activation;
use crate::engine::rng::Rng;
use crate::{Error, Result};

/// How weights (and biases) start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// He-uniform before ReLU-like activations, Glorot-uniform elsewhere; zero biases (a model
    /// with missing-cell indicators: [`Init::Torch`], see `ModelConfig::initialization`).
    Auto,
    /// Glorot & Bengio (2010) uniform, bound √(6/(fan_in+fan_out)); zero biases (Keras' default).
    GlorotUniform,
    /// Glorot normal, std √(2/(fan_in+fan_out)); zero biases.
    GlorotNormal,
    /// He et al. (2015) uniform, bound √(6/fan_in); zero biases.
    HeUniform,
    /// He normal, std √(2/fan_in); zero biases.
    HeNormal,
    /// PyTorch's `nn.Linear` default: weights and biases uniform in ±1/√fan_in.
    Torch,
}

impl Init {
    /// Fills `weight` (fan_in inputs, fan_out outputs) and `bias` for a layer followed by `next`.
    pub fn fill(
        self,
        weight: &mut [f32],
        bias: Option<&mut [f32]>,
        fan_in: usize,
        fan_out: usize,
        next: Activation,
        rng: &mut Rng,
    ) {
        let scheme = match self {
            Init::Auto if matches!(next, Activation::Relu | Activation::LeakyRelu { .. }) => {
                Init::HeUniform
            }
            Init::Auto => Init::GlorotUniform,
            other => other,
        };
        let (fi, fo) = (fan_in as f32, fan_out as f32);
        let uniform = |w: &mut [f32], bound: f32, rng: &mut Rng| {
            w.iter_mut()
                .for_each(|w| *w = rng.random_range(-bound..bound))
        };
        let normal = |w: &mut [f32], std: f32, rng: &mut Rng| {
            let d = Normal::new(0.0, std).expect("std is positive");
            w.iter_mut().for_each(|w| *w = d.sample(rng));
        };
        match scheme {
            Init::GlorotUniform => uniform(weight, (6.0 / (fi + fo)).sqrt(), rng),
            Init::GlorotNormal => normal(weight, (2.0 / (fi + fo)).sqrt(), rng),
            Init::HeUniform => uniform(weight, (6.0 / fi).sqrt(), rng),
            Init::HeNormal => normal(weight, (2.0 / fi).sqrt(), rng),
            Init::Torch => uniform(weight, 1.0 / fi.sqrt(), rng),
            Init::Auto => unreachable!("resolved above"),
        }
        if let Some(b) = bias {
            match scheme {
                Init::Torch => uniform(b, 1.0 / fi.sqrt(), rng),
                _ => b.fill(0.0),
            }
        }
    }
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Init::Auto => "auto",
            Init::GlorotUniform => "glorot-uniform",
            Init::GlorotNormal => "glorot-normal",
            Init::HeUniform => "he-uniform",
            Init::HeNormal => "he-normal",
            Init::Torch => "torch",
        })
    }
}

impl FromStr for Init {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "auto" => Init::Auto,
            "glorot" | "glorot-uniform" | "xavier" => Init::GlorotUniform,
            "glorot-normal" => Init::GlorotNormal,
            "he" | "he-uniform" | "kaiming" => Init::HeUniform,
            "he-normal" => Init::HeNormal,
            "torch" | "pytorch" => Init::Torch,
            _ => {
                return Err(Error::config(
                    "init",
                    format!("unknown init `{s}`; expected auto, glorot-uniform, glorot-normal, he-uniform, he-normal or torch"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::{stream, Purpose};

    #[test]
    fn uniform_bounds_and_spread() {
        let mut rng = stream(1, Purpose::Init, 0, 0);
        let mut w = vec![0.0; 100 * 50];
        let mut b = vec![1.0; 50];
        Init::HeUniform.fill(&mut w, Some(&mut b), 100, 50, Activation::Relu, &mut rng);
        let bound = (6.0f32 / 100.0).sqrt();
        assert!(w.iter().all(|x| x.abs() <= bound));
        let var: f32 = w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32;
        // Uniform(-a, a) has variance a²/3 = 2/fan_in.
        assert!((var - 0.02).abs() < 0.002, "variance {var}");
        assert!(b.iter().all(|&x| x == 0.0));
    }
}
