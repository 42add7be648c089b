//! The parameter store: every trainable tensor of a model, its gradient, and how it is treated.
//!
//! Layers hold [`ParamId`]s rather than tensors so that one tensor can serve two layers (tied
//! weights: the decoder reads the encoder's weight transposed and adds its gradient to the same
//! slot), so that the optimizer sees one flat list, and so that freezing is a flag, not a copy.
use crate::engine::tensor::Tensor;

/// Index of a parameter in its [`Params`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamId(pub usize);

/// What kind of parameter a tensor is; weight decay applies to weights only, as in Keras.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A weight matrix or kernel.
    Weight,
    /// A bias vector.
    Bias,
}

/// All parameters of a model with their gradients.
#[derive(Clone, Debug, Default)]
pub struct Params {
    /// Values, indexed by `ParamId`.
    pub values: Vec<Tensor>,
    /// Gradients, same shapes as `values`.
    pub grads: Vec<Tensor>,
    /// Names as saved in safetensors (`encoder.0.weight`, ...).
    pub names: Vec<String>,
    /// Weight or bias.
    pub kinds: Vec<ParamKind>,
    /// Frozen parameters get no gradient and are not updated.
    pub frozen: Vec<bool>,
}

impl Params {
    /// Adds a parameter and returns its id.
    pub fn add(&mut self, name: impl Into<String>, kind: ParamKind, value: Tensor) -> ParamId {
        self.grads.push(Tensor::zeros(value.shape()));
        self.values.push(value);
        self.names.push(name.into());
        self.kinds.push(kind);
        self.frozen.push(false);
        ParamId(self.values.len() - 1)
    }

    /// Number of parameters tensors.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there is no parameter.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Total number of scalar parameters.
    pub fn count(&self) -> usize {
        self.values.iter().map(Tensor::len).sum()
    }

    /// Looks a parameter up by name.
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.names.iter().position(|n| n == name).map(ParamId)
    }

    /// Sets every gradient to zero.
    pub fn zero_grads(&mut self) {
        for g in &mut self.grads {
            g.fill(0.0);
        }
    }

    /// Splits into read-only values and mutable gradients, for a backward pass.
    pub fn split(&mut self) -> (&[Tensor], &mut [Tensor], &[bool]) {
        (&self.values, &mut self.grads, &self.frozen)
    }
}
