//! The layer interface of the engine and the layers that implement it.
//!
//! We write our own layers rather than use burn or candle because the foundation issue measured them
//! 1.6–3× slower than hand-written layers on a fast GEMM for these networks (REFERENCE.md). A layer
//! has an explicit forward and backward pass over reusable buffers: nothing is allocated per step
//! once the buffers have grown to the batch size.
pub mod activation;
pub mod columns;
pub mod conv;
pub mod dense;
mod direct;
pub mod indicator;
pub mod patches;
pub mod spatial;

use crate::engine::params::ParamId;
use crate::engine::tensor::Tensor;
use crate::Result;

/// Whether a forward pass is for training or evaluation (noise and sampling layers care).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Training: corruption and sampling are active.
    Train,
    /// Evaluation: deterministic.
    Eval,
}

/// What a backward pass may touch: parameter values, their gradients, and which are frozen.
pub struct Grads<'a> {
    /// Parameter values, indexed by `ParamId`.
    pub values: &'a [Tensor],
    /// Gradients to add to, indexed by `ParamId`.
    pub grads: &'a mut [Tensor],
    /// Frozen parameters get no gradient.
    pub frozen: &'a [bool],
}

/// A layer with an explicit forward and backward pass.
pub trait Layer: Send + Sync + std::fmt::Debug {
    /// Short name of the layer kind, for summaries.
    fn kind(&self) -> &'static str;

    /// A copy of the layer (same parameter ids), for the per-thread replicas of data-parallel steps.
    fn clone_box(&self) -> Box<dyn Layer>;

    /// The per-example output shape for a per-example input shape, or an error naming the mismatch.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>>;

    /// Computes `y` from `x`, resizing `y` as needed.
    ///
    /// # Shapes
    /// `x` is `[N, ..input]`, `y` becomes `[N, ..output_shape(input)]`.
    fn forward(&mut self, values: &[Tensor], x: &Tensor, y: &mut Tensor, mode: Mode);

    /// Adds parameter gradients into `g.grads` and, when `dx` is given, writes the input gradient.
    ///
    /// `x` and `y` are the input and output of the last forward pass, `dy` is ∂loss/∂y.
    fn backward(
        &mut self,
        g: &mut Grads<'_>,
        x: &Tensor,
        y: &Tensor,
        dy: &Tensor,
        dx: Option<&mut Tensor>,
    );

    /// The parameters this layer reads.
    fn params(&self) -> Vec<ParamId> {
        Vec::new()
    }

    /// FLOPs of forward plus backward per example, for throughput reports.
    fn flops_per_example(&self, _input: &[usize]) -> u64 {
        0
    }
}

/// `out[i] = f(a[i])`, vectorized, on the rayon pool when there are at least `min_len` elements
/// (below that, waking threads costs more than it saves; transcendental functions pay off sooner
/// than a max or a multiply). One chunk per thread, fixed by length and thread count, so results
/// are deterministic.
pub(crate) fn par_map(
    out: &mut [f32],
    a: &[f32],
    min_len: usize,
    f: impl Fn(f32) -> f32 + Sync + Copy,
) {
    use rayon::prelude::*;
    let t = crate::engine::gemm::threads();
    if t <= 1 || out.len() < min_len {
        crate::engine::simd::run(crate::engine::simd::Map { out, a, f });
        return;
    }
    let chunk = out.len().div_ceil(t);
    out.par_chunks_mut(chunk)
        .zip(a.par_chunks(chunk))
        .for_each(|(out, a)| crate::engine::simd::run(crate::engine::simd::Map { out, a, f }));
}

/// `out[i] = f(out[i], a[i])`, vectorized, on one thread (these passes are cheap).
pub fn update(out: &mut [f32], a: &[f32], f: impl Fn(f32, f32) -> f32) {
    crate::engine::simd::run(crate::engine::simd::Update { out, a, f });
}

/// Elements from which a cheap elementwise pass (max, multiply) is split across threads.
pub(crate) const PAR_CHEAP: usize = 1 << 20;
/// Elements from which a pass with exp or tanh is split across threads.
pub(crate) const PAR_COSTLY: usize = 1 << 15;
