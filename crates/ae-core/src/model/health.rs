//! Signs that a model stopped learning: code units that never move (a ReLU unit that is 0 for
//! every example is dead and gets no gradient again), and a model that gives the same
//! reconstruction for every input (collapsed: its loss is frozen at what a constant output scores).
use serde::{Deserialize, Serialize};

use super::Autoencoder;
use crate::engine::tensor::Tensor;

/// A unit whose values over the examples span less than this (relative to their size) is constant.
const CONSTANT: f32 = 1e-6;

/// Rows the collapse check looks at: enough to see that outputs differ, cheap once an epoch.
const COLLAPSE_ROWS: usize = 256;

/// Which code units carry no information about the input, over a set of examples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeHealth {
    /// Code units in all.
    pub units: usize,
    /// Examples looked at.
    pub examples: usize,
    /// Units that are exactly 0 for every example (dead ReLUs), 0-based.
    pub dead: Vec<usize>,
    /// Other units with the same value for every example, 0-based.
    pub constant: Vec<usize>,
}

impl CodeHealth {
    /// The health of codes `[N, K]`. With fewer than two examples nothing can be called constant.
    pub fn of(codes: &Tensor) -> Self {
        let (n, k) = (codes.rows(), codes.cols());
        let mut health = CodeHealth {
            units: k,
            examples: n,
            ..CodeHealth::default()
        };
        if n < 2 {
            return health;
        }
        let mut lo = vec![f32::INFINITY; k];
        let mut hi = vec![f32::NEG_INFINITY; k];
        for row in codes.data().chunks_exact(k) {
            for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                *l = l.min(v);
                *h = h.max(v);
            }
        }
        for (u, (&l, &h)) in lo.iter().zip(&hi).enumerate() {
            if l == 0.0 && h == 0.0 {
                health.dead.push(u);
            } else if h - l <= CONSTANT * l.abs().max(h.abs()).max(1.0) {
                health.constant.push(u);
            }
        }
        health
    }

    /// Units that are dead or constant.
    pub fn useless(&self) -> usize {
        self.dead.len() + self.constant.len()
    }

    /// True when every unit varies over the examples.
    pub fn is_healthy(&self) -> bool {
        self.useless() == 0
    }

    /// A sentence naming the dead and constant units, or `None` when there are none:
    /// "2 of 16 code units are 0 for every example (dead: 3, 7)".
    pub fn describe(&self) -> Option<String> {
        let list = |u: &[usize]| {
            let mut s: Vec<String> = u.iter().take(12).map(|i| i.to_string()).collect();
            if u.len() > 12 {
                s.push(format!("… {} more", u.len() - 12));
            }
            s.join(", ")
        };
        let mut parts = Vec::new();
        if !self.dead.is_empty() {
            parts.push(format!(
                "{} of {} code units {} 0 for every example (dead, units {})",
                self.dead.len(),
                self.units,
                if self.dead.len() == 1 { "is" } else { "are" },
                list(&self.dead)
            ));
        }
        if !self.constant.is_empty() {
            parts.push(format!(
                "{} of {} code units {} the same value for every example (constant, units {})",
                self.constant.len(),
                self.units,
                if self.constant.len() == 1 {
                    "has"
                } else {
                    "have"
                },
                list(&self.constant)
            ));
        }
        (!parts.is_empty()).then(|| {
            format!(
                "{} over {} examples: they carry nothing about the input",
                parts.join("; "),
                self.examples
            )
        })
    }
}

/// Whether `model` has collapsed on `x` (`[N, ..input_shape]`, scaled): the same reconstruction
/// for every one of its first rows. Returns what happened in words, or `None`.
pub fn collapse(model: &Autoencoder, x: &Tensor) -> Option<String> {
    let n = x.rows().min(COLLAPSE_ROWS);
    if n < 2 {
        return None;
    }
    let x = x.first_rows(n);
    let recon = model.reconstruct(&x);
    let same = CodeHealth::of(&recon);
    if same.useless() < same.units {
        return None;
    }
    let codes = CodeHealth::of(&model.codes(&x));
    let out = recon.data();
    let (lo, hi) = out
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let output = if hi - lo <= 1e-3 {
        format!("every output is {:.3}", (lo + hi) / 2.0)
    } else {
        "the output varies only across features".to_string()
    };
    let code = match codes.describe() {
        Some(d) => d,
        None => "the code still varies but the decoder ignores it".into(),
    };
    Some(format!(
        "the model gives the same reconstruction for every input ({output}; {code})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    #[test]
    fn dead_and_constant_units_are_named_and_varying_ones_are_not() {
        // Unit 0 varies, unit 1 is 0 everywhere, unit 2 is 0.5 everywhere.
        let codes = Tensor::from_vec(&[3, 3], vec![0.1, 0.0, 0.5, 0.7, 0.0, 0.5, 0.0, 0.0, 0.5]);
        let h = CodeHealth::of(&codes);
        assert_eq!((h.dead.clone(), h.constant.clone()), (vec![1], vec![2]));
        let text = h.describe().unwrap();
        assert!(
            text.contains("1 of 3 code units is 0 for every example (dead, units 1)"),
            "{text}"
        );
        assert!(text.contains("constant, units 2"), "{text}");
        let fine = Tensor::from_vec(&[2, 2], vec![0.0, 1.0, 1.0, 2.0]);
        assert!(CodeHealth::of(&fine).is_healthy());
        assert_eq!(CodeHealth::of(&fine).describe(), None);
    }

    #[test]
    fn a_model_whose_code_layer_died_has_collapsed_and_a_fresh_one_has_not() {
        let mut model = ModelConfig::dense(&[6], &[4, 2]).build(0).unwrap();
        let x = Tensor::from_vec(&[8, 6], (0..48).map(|i| (i % 7) as f32 / 7.0).collect());
        assert_eq!(collapse(&model, &x), None);
        // Every encoder bias far below zero: every ReLU is 0 for every input.
        let p = &mut model.params;
        for (name, t) in p.names.iter().zip(p.values.iter_mut()) {
            if name.starts_with("encoder") && name.ends_with("bias") {
                t.data_mut().iter_mut().for_each(|b| *b = -1e3);
            }
        }
        let what = collapse(&model, &x).expect("collapsed");
        assert!(
            what.contains("same reconstruction for every input"),
            "{what}"
        );
    }
}
