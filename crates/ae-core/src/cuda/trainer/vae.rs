//! A VAE's part of a GPU step: the sample between encoder and decoder, its gradient, and the KL
//! term, with the CPU engine's formulas (`model::vae`, `objective::elbo`). The GPU draws its own ε
//! (from the step's key, apart from input noise's stream), so a GPU run matches a CPU run in
//! distribution, not draw by draw.
use cudarc::driver::PushKernelArg;

use super::{one_block, per_column, CudaTrainer};
use crate::cuda::gpu::grid;
use crate::engine::loss::LossKind;
use crate::Result;

impl CudaTrainer<'_> {
    /// The latent units, for a VAE.
    pub(super) fn latent(&self) -> Option<usize> {
        self.net.latent
    }

    /// z = μ + e^(log σ² / 2)·ε for the `n` rows of the code: ε from the step buffer's key when
    /// training, from the evaluation key otherwise; z = μ for a model's inference passes
    /// (as the CPU engine's evaluation mode).
    pub(super) fn sample(&mut self, n: usize, eval: bool) -> Result<()> {
        let Some(k) = self.latent() else {
            return Ok(());
        };
        let g = self.gpu;
        let (rows, cols, sample) = (n as i32, k as i32, self.draw as i32);
        let keybuf = if eval { &self.eval_key } else { &self.stepbuf };
        let mut b = g.stream.launch_builder(&g.k.reparam);
        b.arg(&mut self.z)
            .arg(&mut self.eps)
            .arg(&self.acts[self.net.code])
            .arg(&rows)
            .arg(&cols)
            .arg(&sample)
            .arg(keybuf);
        // SAFETY: z and ε hold n·k values, the code n rows of 2k.
        unsafe { b.launch(grid(n * k)) }.map_err(|e| g.err(e))?;
        Ok(())
    }

    /// The gradient at the sample (`dz`) brought back to the code, plus the KL term's, weighted by
    /// the step buffer's KL weight, for units at or above the free-bits floor.
    pub(super) fn sample_backward(&mut self, n: usize) -> Result<()> {
        let Some(k) = self.latent() else {
            return Ok(());
        };
        let g = self.gpu;
        let c = self.net.code;
        let (rows, cols) = (n as i32, k as i32);
        let mut b = g.stream.launch_builder(&g.k.reparam_backward);
        b.arg(&mut self.deltas[c])
            .arg(&self.dz)
            .arg(&self.eps)
            .arg(&self.acts[c])
            .arg(&rows)
            .arg(&cols);
        // SAFETY: as in `sample`.
        unsafe { b.launch(grid(n * k)) }.map_err(|e| g.err(e))?;
        let kl = self.task.objective.kl.expect("a VAE has a KL term");
        let (has_floor, floor) = (kl.free_bits.is_some() as i32, kl.free_bits.unwrap_or(0.0));
        let mut b = g.stream.launch_builder(&g.k.kl_gauss_grad);
        b.arg(&mut self.deltas[c])
            .arg(&self.acts[c])
            .arg(&self.kl_units)
            .arg(&rows)
            .arg(&cols)
            .arg(&has_floor)
            .arg(&floor)
            .arg(&self.stepbuf);
        // SAFETY: as above; kl_units holds k means of the same forward pass.
        unsafe { b.launch(grid(n * k)) }.map_err(|e| g.err(e))?;
        Ok(())
    }

    /// The KL term of the last forward pass on `n` rows: each unit's mean into `kl_units`, and
    /// weight · their sum into `result[slot]` (added to it when `accumulate`).
    pub(super) fn kl(&mut self, n: usize, slot: i32, accumulate: bool, weight: f64) -> Result<()> {
        let Some(k) = self.latent() else {
            return Ok(());
        };
        let g = self.gpu;
        let (rows, cols, acc) = (n as i32, k as i32, accumulate as i32);
        let mut b = g.stream.launch_builder(&g.k.kl_gauss_units);
        b.arg(&self.acts[self.net.code])
            .arg(&mut self.kl_units)
            .arg(&rows)
            .arg(&cols);
        // SAFETY: the code holds n rows of 2k; kl_units has k.
        unsafe { b.launch(per_column(k)) }.map_err(|e| g.err(e))?;
        let mut b = g.stream.launch_builder(&g.k.kl_gauss_total);
        b.arg(&self.kl_units)
            .arg(&cols)
            .arg(&mut self.result)
            .arg(&slot)
            .arg(&acc)
            .arg(&weight);
        // SAFETY: k means; result has every slot.
        unsafe { b.launch(one_block()) }.map_err(|e| g.err(e))?;
        Ok(())
    }

    /// The reconstruction's negative log-likelihood per example is scale · (mean loss) + constant:
    /// Bernoulli (BCE) or a Gaussian of unit variance (MSE), as `vae_terms` on the CPU.
    pub(super) fn nll_scale(&self) -> (f64, f64) {
        let d = self.net.features as f64;
        match self.task.objective.loss {
            LossKind::Bce => (d, 0.0),
            LossKind::Mse => (d / 2.0, d / 2.0 * (2.0 * std::f64::consts::PI).ln()),
        }
    }

    /// What the loss kernel divides by so that its gradient is that of the per-example NLL:
    /// the element count scaled down by the NLL's scale.
    pub(super) fn loss_divisor(&self, n: usize) -> f32 {
        match (self.latent(), self.task.objective.loss) {
            (None, _) => (n * self.net.features) as f32,
            (Some(_), LossKind::Bce) => n as f32,
            (Some(_), LossKind::Mse) => (2 * n) as f32,
        }
    }

    /// The step's KL weight (β, warmed up over epochs), for the step buffer.
    pub(super) fn kl_weight(&self, epoch: usize) -> f32 {
        self.task.objective.kl.map_or(0.0, |kl| kl.weight(epoch))
    }
}
