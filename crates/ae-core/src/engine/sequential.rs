//! A chain of layers that keeps every intermediate output, so that penalties can read any layer's
//! activations and add gradient there, and so that greedy pretraining can cache them.
use crate::engine::layers::{Grads, Layer, Mode};
use crate::engine::params::Params;
use crate::engine::tensor::Tensor;
use crate::Result;

/// Layers applied in order, with the buffers for their outputs and output gradients.
#[derive(Debug, Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Layer>>,
    /// `outs[i]` is the output of layer `i` from the last forward pass.
    outs: Vec<Tensor>,
    /// `grads[i]` is ∂loss/∂outs[i] during a backward pass.
    grads: Vec<Tensor>,
}

impl Sequential {
    /// An empty chain (the identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a layer.
    pub fn push(&mut self, layer: impl Layer + 'static) {
        self.layers.push(Box::new(layer));
        self.outs.push(Tensor::default());
        self.grads.push(Tensor::default());
    }

    /// Appends a boxed layer (a copy of another chain's, when building a classifier on an encoder).
    pub fn push_boxed(&mut self, layer: Box<dyn Layer>) {
        self.layers.push(layer);
        self.outs.push(Tensor::default());
        self.grads.push(Tensor::default());
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when the chain has no layer.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The per-example output shape for a per-example input shape.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let mut s = input.to_vec();
        for l in &self.layers {
            s = l.output_shape(&s)?;
        }
        Ok(s)
    }

    /// Runs every layer on `x`; the result is [`Sequential::output`] (or `x` itself for an empty chain).
    pub fn forward(&mut self, params: &Params, x: &Tensor, mode: Mode) {
        for i in 0..self.layers.len() {
            let (before, rest) = self.outs.split_at_mut(i);
            let input = if i == 0 { x } else { &before[i - 1] };
            self.layers[i].forward(&params.values, input, &mut rest[0], mode);
        }
    }

    /// The output of the last forward pass.
    ///
    /// # Panics
    /// On an empty chain.
    pub fn output(&self) -> &Tensor {
        self.outs.last().expect("output of an empty Sequential")
    }

    /// The output of layer `i` from the last forward pass.
    pub fn layer_output(&self, i: usize) -> &Tensor {
        &self.outs[i]
    }

    /// The buffer for ∂loss/∂output; fill it before [`Sequential::backward`].
    pub fn output_grad_mut(&mut self) -> &mut Tensor {
        self.grads
            .last_mut()
            .expect("output gradient of an empty Sequential")
    }

    /// The output of the last forward pass and the buffer for ∂loss/∂output, together, so a loss can
    /// read one and write the other.
    pub fn output_and_grad_mut(&mut self) -> (&Tensor, &mut Tensor) {
        (
            self.outs.last().expect("output of an empty Sequential"),
            self.grads.last_mut().expect("empty Sequential"),
        )
    }

    /// Backpropagates from the gradient in [`Sequential::output_grad_mut`] down to the input.
    ///
    /// `x` must be the input of the last forward pass. `hook(i, out_i, grad_i)` runs just before layer
    /// `i`'s backward pass, so a penalty on that layer's output can add its gradient. The input
    /// gradient is written to `dx` when given (activation maximization, or a chain below this one).
    pub fn backward(
        &mut self,
        params: &mut Params,
        x: &Tensor,
        dx: Option<&mut Tensor>,
        hook: &mut dyn FnMut(usize, &Tensor, &mut Tensor),
    ) {
        let (values, grads, frozen) = params.split();
        let mut g = Grads {
            values,
            grads,
            frozen,
        };
        self.backward_into(&mut g, x, dx, hook);
    }

    /// [`Sequential::backward`] adding parameter gradients into `g.grads`, which need not be the
    /// parameters' own (a data-parallel replica sums into its private copy).
    pub fn backward_into(
        &mut self,
        g: &mut Grads<'_>,
        x: &Tensor,
        dx: Option<&mut Tensor>,
        hook: &mut dyn FnMut(usize, &Tensor, &mut Tensor),
    ) {
        let mut dx = dx;
        // Without an input gradient to return, layers below the lowest one with parameters need no
        // backward pass, and that one needs no input gradient (e.g. the layout change before a
        // network's first convolution).
        let lowest = match dx {
            Some(_) => 0,
            None => self
                .layers
                .iter()
                .position(|l| !l.params().is_empty())
                .unwrap_or(self.layers.len()),
        };
        for i in (lowest..self.layers.len()).rev() {
            hook(i, &self.outs[i], &mut self.grads[i]);
            let (gbefore, grest) = self.grads.split_at_mut(i);
            let input = if i == 0 { x } else { &self.outs[i - 1] };
            let dxi = if i == 0 {
                dx.as_deref_mut()
            } else if i == lowest {
                None
            } else {
                Some(&mut gbefore[i - 1])
            };
            self.layers[i].backward(g, input, &self.outs[i], &grest[0], dxi);
        }
    }

    /// A copy with the same layers (and parameter ids) and empty buffers.
    pub fn replica(&self) -> Sequential {
        Sequential {
            layers: self.layers.iter().map(|l| l.clone_box()).collect(),
            outs: vec![Tensor::default(); self.layers.len()],
            grads: vec![Tensor::default(); self.layers.len()],
        }
    }

    /// Forward plus backward FLOPs per example.
    pub fn flops_per_example(&self, input: &[usize]) -> u64 {
        let mut s = input.to_vec();
        let mut total = 0;
        for l in &self.layers {
            total += l.flops_per_example(&s);
            s = l.output_shape(&s).unwrap_or_default();
        }
        total
    }
}
