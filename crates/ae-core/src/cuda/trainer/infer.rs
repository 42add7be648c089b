//! A trained model's forward passes on the GPU, for the commands that use one (`ae encode`,
//! `reconstruct`, `anomaly`, `sample`, …): the trainer's buffers and forward kernels, without a
//! step. A VAE's decoder reads its mean, as in the CPU engine's evaluation mode.
use cudarc::driver::CudaSlice;

use super::CudaTrainer;
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// Rows of one pass: enough to keep the GPU busy, little next to its memory for the models this
/// crate builds (a conv preset's activations take about 120 MB at this size).
const BATCH: usize = 4096;
/// The fewest rows a pass is cut down to when memory is short.
const MIN_BATCH: usize = 64;

/// What a forward pass brings back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The codes, `[N, code]` (a VAE's mean; a feature map channels-first, as the CPU's: the
    /// GPU chain's encoder ends in the same flattening permute as the CPU's).
    Codes,
    /// The encoder's output: a VAE's `[μ | log σ²]`, `[N, 2·code]`; the codes for other models.
    Encoder,
    /// The logits: the last layer's outputs before the output activation, `[N, features]`.
    Logits,
    /// The reconstructions, `[N, features]`.
    Reconstructions,
}

impl CudaTrainer<'_> {
    /// Values in a row of codes.
    pub(crate) fn code_width(&self) -> usize {
        self.net
            .latent
            .unwrap_or_else(|| self.net.ops[self.net.code].outputs())
    }

    /// The codes or reconstructions of every row of `x` (`[N, ..input_shape]`), in batches.
    pub fn infer(&mut self, x: &Tensor, output: Output) -> Result<Tensor> {
        let mut one = self.infer_all(x, &[output])?;
        Ok(one.pop().expect("one output"))
    }

    /// Each of `outputs` for every row of `x`, from one forward pass per batch (through the
    /// encoder only when no output needs the decoder).
    pub fn infer_all(&mut self, x: &Tensor, outputs: &[Output]) -> Result<Vec<Tensor>> {
        let f = self.net.features;
        if x.cols() != f {
            return Err(Error::Shape {
                what: "rows to run through the model".into(),
                expected: vec![f],
                got: vec![x.cols()],
            });
        }
        let widths: Vec<usize> = outputs
            .iter()
            .map(|o| match (o, self.net.latent) {
                (Output::Encoder, Some(k)) => 2 * k,
                (Output::Codes | Output::Encoder, _) => self.code_width(),
                (Output::Logits | Output::Reconstructions, _) => f,
            })
            .collect();
        let whole = outputs
            .iter()
            .any(|o| matches!(o, Output::Logits | Output::Reconstructions));
        let n = x.rows();
        let mut outs: Vec<Vec<f32>> = widths.iter().map(|w| vec![0f32; n * w]).collect();
        self.draw = false;
        let done = self.batches(n, |t, start, end| {
            let rows = end - start;
            t.load_range(x, start, end)?;
            if whole {
                t.forward_ops(rows, false, true, 0..t.net.ops.len())?;
                t.activate_output(rows)?;
            } else {
                t.forward_ops(rows, false, true, 0..t.net.code + 1)?;
            }
            for ((output, out), &width) in outputs.iter().zip(&mut outs).zip(&widths) {
                let src = match (output, t.net.latent) {
                    (Output::Codes, Some(_)) => &t.z,
                    (Output::Codes | Output::Encoder, _) => &t.acts[t.net.code],
                    (Output::Logits, _) => &t.acts[t.net.ops.len() - 1],
                    (Output::Reconstructions, _) => &t.out,
                };
                t.read_rows(src, &mut out[start * width..end * width])?;
            }
            Ok(())
        });
        self.draw = true;
        done?;
        Ok(outs
            .into_iter()
            .zip(widths)
            .map(|(out, width)| Tensor::from_vec(&[n, width], out))
            .collect())
    }

    /// The decoder's outputs for codes `z` (`[N, code]`, laid out as [`CudaTrainer::infer`] gives
    /// them), `[N, features]`.
    pub fn decode(&mut self, z: &Tensor) -> Result<Tensor> {
        let k = self.code_width();
        if z.cols() != k {
            return Err(Error::Shape {
                what: "codes to decode".into(),
                expected: vec![k],
                got: vec![z.cols()],
            });
        }
        let (n, f) = (z.rows(), self.net.features);
        let mut out = vec![0f32; n * f];
        self.batches(n, |t, start, end| {
            let rows = end - start;
            let g = t.gpu;
            let dst = match t.net.latent {
                Some(_) => &mut t.z,
                None => &mut t.acts[t.net.code],
            };
            g.stream
                .memcpy_htod(&z.data()[start * k..end * k], dst)
                .map_err(|e| g.err(e))?;
            t.forward_ops(rows, false, true, t.net.code + 1..t.net.ops.len())?;
            t.activate_output(rows)?;
            t.read_rows(&t.out, &mut out[start * f..end * f])
        })?;
        Ok(Tensor::from_vec(&[n, f], out))
    }

    /// Runs `f(self, start, end)` over `0..n` in batches of [`BATCH`] rows, buffers reserved.
    fn batches(
        &mut self,
        n: usize,
        mut f: impl FnMut(&mut Self, usize, usize) -> Result<()>,
    ) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        // Fewer rows at a time where the GPU's free memory does not hold a full batch's.
        let mut bs = n.min(BATCH);
        while let Err(e) = self.reserve(bs) {
            match e {
                Error::Device { .. } if bs > MIN_BATCH => bs = (bs / 4).max(MIN_BATCH),
                e => return Err(e),
            }
        }
        for start in (0..n).step_by(bs) {
            f(self, start, (start + bs).min(n))?;
        }
        Ok(())
    }

    /// Copies the first `dst.len()` values of `src` to `dst`, waiting for the GPU.
    fn read_rows(&self, src: &CudaSlice<f32>, dst: &mut [f32]) -> Result<()> {
        let g = self.gpu;
        g.stream
            .memcpy_dtoh(&src.slice(0..dst.len()), dst)
            .map_err(|e| g.err(e))?;
        g.stream.synchronize().map_err(|e| g.err(e))
    }
}
