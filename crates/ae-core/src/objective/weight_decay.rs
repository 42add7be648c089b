//! Weight decay: an L2 or L1 penalty on the weights (not the biases), added to the loss.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::engine::params::{ParamKind, Params};
use crate::{Error, Result};

/// A penalty on the weights (not the biases), added to the loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum WeightDecay {
    /// No penalty.
    None,
    /// (λ/2)·Σw²: gradient λ·w, the same update as PyTorch's `weight_decay=λ`.
    L2(f32),
    /// λ·Σ|w|: gradient λ·sign(w).
    L1(f32),
}

impl WeightDecay {
    /// Adds the penalty's gradient to the gradients of every unfrozen weight and returns its value.
    pub fn apply(self, params: &mut Params) -> f64 {
        let mut total = 0.0f64;
        for i in 0..params.len() {
            if params.kinds[i] != ParamKind::Weight || params.frozen[i] {
                continue;
            }
            let (w, g) = (params.values[i].data(), params.grads[i].data_mut());
            match self {
                WeightDecay::None => return 0.0,
                WeightDecay::L2(l) => {
                    let mut s = 0.0f64;
                    for (g, &w) in g.iter_mut().zip(w) {
                        s += (w * w) as f64;
                        *g += l * w;
                    }
                    total += 0.5 * l as f64 * s;
                }
                WeightDecay::L1(l) => {
                    let mut s = 0.0f64;
                    for (g, &w) in g.iter_mut().zip(w) {
                        s += w.abs() as f64;
                        // sign(0) = 0, as torch.sign, so a weight at zero feels no pull.
                        *g += l * if w > 0.0 {
                            1.0
                        } else if w < 0.0 {
                            -1.0
                        } else {
                            0.0
                        };
                    }
                    total += l as f64 * s;
                }
            }
        }
        total
    }

    /// The penalty's value without touching gradients.
    pub fn value(self, params: &Params) -> f64 {
        let weights = (0..params.len())
            .filter(|&i| params.kinds[i] == ParamKind::Weight && !params.frozen[i]);
        match self {
            WeightDecay::None => 0.0,
            WeightDecay::L2(l) => {
                0.5 * l as f64
                    * weights
                        .map(|i| {
                            params.values[i]
                                .data()
                                .iter()
                                .map(|&w| (w * w) as f64)
                                .sum::<f64>()
                        })
                        .sum::<f64>()
            }
            WeightDecay::L1(l) => {
                l as f64
                    * weights
                        .map(|i| {
                            params.values[i]
                                .data()
                                .iter()
                                .map(|&w| w.abs() as f64)
                                .sum::<f64>()
                        })
                        .sum::<f64>()
            }
        }
    }
}

impl fmt::Display for WeightDecay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightDecay::None => f.write_str("none"),
            WeightDecay::L2(l) => write!(f, "l2:{l}"),
            WeightDecay::L1(l) => write!(f, "l1:{l}"),
        }
    }
}

impl FromStr for WeightDecay {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "none" || s == "0" {
            return Ok(WeightDecay::None);
        }
        let bad = || {
            Error::config(
                "weight_decay",
                format!("expected none, l2:LAMBDA or l1:LAMBDA, got `{s}`"),
            )
        };
        let (kind, v) = s.split_once(':').ok_or_else(bad)?;
        let v: f32 = v.parse().map_err(|_| bad())?;
        if !(v >= 0.0 && v.is_finite()) {
            return Err(Error::config(
                "weight_decay",
                format!("lambda must be a finite number ≥ 0, got {v}"),
            ));
        }
        match kind {
            "l2" => Ok(WeightDecay::L2(v)),
            "l1" => Ok(WeightDecay::L1(v)),
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for WeightDecay {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<WeightDecay> for String {
    fn from(w: WeightDecay) -> String {
        w.to_string()
    }
}
