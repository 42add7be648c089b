//! What the training loop drives: a [`Task`] takes one step on a batch of [`Examples`] and
//! reports its loss as named [`Terms`].
use serde::{Deserialize, Serialize};

use crate::engine::params::Params;
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// Named loss terms of one step or epoch; the total is their sum.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Terms(pub Vec<(String, f64)>);

impl Terms {
    /// Adds a term.
    pub fn push(&mut self, name: &str, value: f64) {
        self.0.push((name.to_string(), value));
    }

    /// The sum of all terms: what is minimized.
    pub fn total(&self) -> f64 {
        self.0.iter().map(|(_, v)| v).sum()
    }

    /// The value of a term by name.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// The first term that is NaN or infinite, if any (the total counts as a term named `loss`).
    pub fn non_finite(&self) -> Option<(String, f64)> {
        self.0
            .iter()
            .find(|(_, v)| !v.is_finite())
            .cloned()
            .or_else(|| {
                let t = self.total();
                (!t.is_finite()).then(|| ("loss".to_string(), t))
            })
    }

    /// Adds `w · other` term by term (names in `other` that are new get appended).
    pub(crate) fn add_weighted(&mut self, other: &Terms, w: f64) {
        for (name, v) in &other.0 {
            match self.0.iter_mut().find(|(n, _)| n == name) {
                Some((_, s)) => *s += w * v,
                None => self.0.push((name.clone(), w * v)),
            }
        }
    }

    pub(crate) fn scaled(&self, w: f64) -> Terms {
        Terms(self.0.iter().map(|(n, v)| (n.clone(), v * w)).collect())
    }
}

/// Examples along the first axis of `x`, with one label each when the task learns from labels
/// (an autoencoder ignores them; a classifier needs them).
#[derive(Clone, Copy, Debug)]
pub struct Examples<'a> {
    /// The inputs, `[N, ..shape]`.
    pub x: &'a Tensor,
    /// One class per example, or empty.
    pub labels: &'a [u32],
}

impl<'a> Examples<'a> {
    /// Inputs without labels.
    pub fn new(x: &'a Tensor) -> Self {
        Examples { x, labels: &[] }
    }

    /// Inputs with one label per example.
    pub fn labeled(x: &'a Tensor, labels: &'a [u32]) -> Result<Self> {
        if labels.len() != x.rows() {
            return Err(Error::Shape {
                what: "labels".into(),
                expected: vec![x.rows()],
                got: vec![labels.len()],
            });
        }
        Ok(Examples { x, labels })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.x.rows()
    }

    /// True when there is no example.
    pub fn is_empty(&self) -> bool {
        self.x.rows() == 0
    }
}

/// A model and objective that the loop can drive one step at a time.
pub trait Task {
    /// The parameters the optimizer updates.
    fn params(&self) -> &Params;
    /// The parameters, mutable.
    fn params_mut(&mut self) -> &mut Params;
    /// Forward and backward on one batch; adds gradients to the (zeroed) parameter gradients and
    /// returns the batch's loss terms. `epoch` and `step` seed any randomness of the step.
    fn train_step(&mut self, batch: Examples<'_>, epoch: usize, step: usize) -> Terms;
    /// Loss terms on a batch, without gradients or randomness.
    fn eval_batch(&mut self, batch: Examples<'_>) -> Terms;
    /// Figures to log after each epoch besides the loss terms (how sparse the code is, a
    /// classifier's accuracy), computed on `data` (the validation set, else the training set).
    fn diagnostics(&mut self, _data: Examples<'_>) -> Terms {
        Terms::default()
    }
    /// Whether the model has collapsed on `data` (the same output for every input, so no step
    /// can teach it anything again), in words; checked after each epoch.
    fn collapse(&mut self, _data: Examples<'_>) -> Option<String> {
        None
    }
}
