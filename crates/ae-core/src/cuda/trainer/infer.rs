//! A trained model's forward passes on the GPU, for the commands that use one (`ae encode`,
//! `reconstruct`, `anomaly`, `sample`, …): the trainer's buffers and forward kernels, without a
//! step. A VAE's decoder reads its mean, as in the CPU engine's evaluation mode.
use cudarc::driver::CudaSlice;

use super::CudaTrainer;
use crate::cuda::net::Hwc;
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// Rows of one pass: enough to keep the GPU busy, little next to its memory for the models this
/// crate builds (a conv preset's activations take about 120 MB at this size).
const BATCH: usize = 4096;

/// What a forward pass brings back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The codes, `[N, code]` (a VAE's mean; a feature map channels-first, as the CPU's).
    Codes,
    /// The encoder's output: a VAE's `[μ | log σ²]`, `[N, 2·code]`; the codes for other models.
    Encoder,
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
        let f = self.net.features;
        if x.cols() != f {
            return Err(Error::Shape {
                what: "rows to run through the model".into(),
                expected: vec![f],
                got: vec![x.cols()],
            });
        }
        let width = match (output, self.net.latent) {
            (Output::Encoder, Some(k)) => 2 * k,
            (Output::Codes | Output::Encoder, _) => self.code_width(),
            (Output::Reconstructions, _) => f,
        };
        let n = x.rows();
        let mut out = vec![0f32; n * width];
        self.draw = false;
        let done = self.batches(n, |t, start, end| {
            let rows = end - start;
            t.load_range(x, start, end)?;
            let dst = &mut out[start * width..end * width];
            match output {
                Output::Codes | Output::Encoder => {
                    t.forward_ops(rows, false, true, 0..t.net.code + 1)?;
                    let src = match (output, t.net.latent) {
                        (Output::Codes, Some(_)) => &t.z,
                        _ => &t.acts[t.net.code],
                    };
                    t.read_rows(src, dst)?;
                    if let Some(image) = t.net.code_image {
                        for row in dst.chunks_exact_mut(width) {
                            channels_first(row, image);
                        }
                    }
                }
                Output::Reconstructions => {
                    t.forward_ops(rows, false, true, 0..t.net.ops.len())?;
                    t.activate_output(rows)?;
                    t.read_rows(&t.out, dst)?;
                }
            }
            Ok(())
        });
        self.draw = true;
        done?;
        Ok(Tensor::from_vec(&[n, width], out))
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
        let mut staged = Vec::new();
        self.batches(n, |t, start, end| {
            let rows = end - start;
            staged.clear();
            staged.extend_from_slice(&z.data()[start * k..end * k]);
            if let Some(image) = t.net.code_image {
                for row in staged.chunks_exact_mut(k) {
                    channels_last(row, image);
                }
            }
            let g = t.gpu;
            let dst = match t.net.latent {
                Some(_) => &mut t.z,
                None => &mut t.acts[t.net.code],
            };
            g.stream
                .memcpy_htod(&staged[..], dst)
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
        let bs = n.min(BATCH);
        self.reserve(bs)?;
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

/// A channels-last image, `row`, rewritten channels-first.
fn channels_first(row: &mut [f32], image: Hwc) {
    let last = row.to_vec();
    let plane = image.h * image.w;
    for p in 0..plane {
        for c in 0..image.c {
            row[c * plane + p] = last[p * image.c + c];
        }
    }
}

/// A channels-first image, `row`, rewritten channels-last.
fn channels_last(row: &mut [f32], image: Hwc) {
    let first = row.to_vec();
    let plane = image.h * image.w;
    for p in 0..plane {
        for c in 0..image.c {
            row[p * image.c + c] = first[c * plane + p];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_orders_round_trip_and_match_the_index_formulas() {
        let image = Hwc { h: 2, w: 3, c: 4 };
        let first: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let mut row = first.clone();
        channels_last(&mut row, image);
        // Channels-last position (y·w + x)·c + ch holds channels-first ch·h·w + y·w + x.
        for y in 0..2 {
            for x in 0..3 {
                for ch in 0..4 {
                    assert_eq!(row[(y * 3 + x) * 4 + ch], first[ch * 6 + y * 3 + x]);
                }
            }
        }
        channels_first(&mut row, image);
        assert_eq!(row, first);
    }
}
