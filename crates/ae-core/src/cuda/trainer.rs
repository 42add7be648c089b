//! [`CudaTrainer`]: the loop's [`Trainer`] on a GPU. Parameters, gradients, optimizer state, the
//! activations and (when they fit) the examples live on the GPU; a step is a batch gathered there,
//! a cuBLAS product and one fused bias-and-activation kernel per layer each way, one loss kernel
//! and one optimizer kernel per parameter, and one read of the loss. Parameters and
//! optimizer state come back to the host only when the loop asks (checkpoints, diagnostics).
//!
//! A step's work is recorded once as a CUDA graph for each batch size and replayed: one launch
//! instead of some thirty, which is what small networks wait on. What changes from step to step
//! (the rows, the noise key, the optimizer's rates) is read by the kernels from the step buffer,
//! copied before each replay; everything else a step touches stays where it was recorded, and
//! growing a buffer drops the recorded graphs. Where a capture fails the trainer launches the
//! same kernels one by one and says so ([`Trainer::notes`]); `AE_CUDA_GRAPHS=0` asks for that.
use cudarc::driver::{sys, CudaGraph, CudaSlice, LaunchConfig, PushKernelArg};

mod infer;
mod vae;

pub use infer::Output;

use super::gpu::{act_code, grid, Gpu, MAX_BLOCKS, THREADS};
use super::net::{GpuNet, Op};
use super::ops::{self, ConvBufs, Shared, Weights};
use crate::engine::loss::LossKind;
use crate::engine::optim::{Optimizer, StepRule};
use crate::engine::params::{ParamKind, Params};
use crate::engine::tensor::Tensor;
use crate::objective::noise::Noise;
use crate::objective::sparsity::Sparsity;
use crate::objective::WeightDecay;
use crate::objective::{AutoencoderTask, Examples, Task, Terms};
use crate::training::trainer::Trainer;
use crate::Result;

/// Slots of the sums read back: a step's reconstruction loss, an evaluation's, a step's sparsity
/// penalty, an evaluation's, the weight decay's value, a step's KL term, an evaluation's, a step's
/// contractive sum, an evaluation's. The optimizer kernels skip the update when a step's slot is
/// not finite.
const SLOT_LOSS: i32 = 0;
const SLOT_EVAL_LOSS: i32 = 1;
const SLOT_SPARSITY: i32 = 2;
const SLOT_EVAL_SPARSITY: i32 = 3;
const SLOT_DECAY: i32 = 4;
const SLOT_KL: i32 = 5;
const SLOT_EVAL_KL: i32 = 6;
const SLOT_CONTRACTIVE: i32 = 7;
const SLOT_EVAL_CONTRACTIVE: i32 = 8;
const SLOTS: usize = 9;

/// Words of the step buffer (kernels.cu): the noise key at 0–1, the optimizer's rates at 2–3, a
/// VAE's KL weight at 4, the batch's row indices from 5.
const STEP_RATES: usize = 2;
const STEP_KL_WEIGHT: usize = 4;
const STEP_ROWS: usize = 5;

/// Whether steps are recorded as CUDA graphs.
#[derive(Clone, Debug, PartialEq)]
enum Graphs {
    On,
    Off,
    /// A capture failed, for this reason; steps launch kernel by kernel.
    Failed(String),
}

/// What a recorded step is fixed to: its rows, and the resident examples it gathers them from
/// (`None`: rows copied from the host before the step).
#[derive(Clone, Copy, Debug, PartialEq)]
struct StepShape {
    rows: usize,
    resident: Option<usize>,
}

/// Examples copied to the GPU once, with their host copy, which the borrow keeps unchanged.
struct Resident<'a> {
    host: &'a Tensor,
    data: CudaSlice<f32>,
}

/// A dense autoencoder's training on a GPU (see the module's documentation).
pub struct CudaTrainer<'a> {
    gpu: &'a Gpu,
    task: &'a mut AutoencoderTask,
    optimizer: &'a mut Optimizer,
    net: GpuNet,
    /// Each convolution's buffers (None for other operations).
    convs: Vec<Option<ConvBufs>>,
    shared: Shared,
    values: Vec<CudaSlice<f32>>,
    grads: Vec<CudaSlice<f32>>,
    m: Vec<CudaSlice<f32>>,
    v: Vec<CudaSlice<f32>>,
    /// Each node's output; the last node's are the logits.
    acts: Vec<CudaSlice<f32>>,
    /// ∂loss/∂(each node's pre-activation).
    deltas: Vec<CudaSlice<f32>>,
    /// The reconstruction: the output activation of the logits.
    out: CudaSlice<f32>,
    batch: CudaSlice<f32>,
    /// The corrupted batch of a denoising step.
    noisy: CudaSlice<f32>,
    /// The step buffer: what changes between replays of a recorded step (see `STEP_ROWS`).
    stepbuf: CudaSlice<u32>,
    stepbuf_host: Vec<u32>,
    /// Steps recorded as CUDA graphs, by shape.
    graphs: Vec<(StepShape, CudaGraph)>,
    graph_mode: Graphs,
    /// A VAE's sample, its ε, the gradient at it, each latent unit's KL term, and the key of an
    /// evaluation's draws.
    z: CudaSlice<f32>,
    eps: CudaSlice<f32>,
    dz: CudaSlice<f32>,
    kl_units: CudaSlice<f64>,
    eval_key: CudaSlice<u32>,
    /// A VAE's decoder reads a draw (training, evaluation of the ELBO) or the mean (inference).
    draw: bool,
    /// Code units' batch means and the KL penalty's gradient per unit.
    means: CudaSlice<f64>,
    per_unit: CudaSlice<f32>,
    partial: CudaSlice<f64>,
    /// The contractive penalty's Σ_n s'(a_nj)² and ‖W_j‖²·that, per code unit.
    contractive_s2: CudaSlice<f64>,
    contractive_val: CudaSlice<f64>,
    /// Sums read back: see the `SLOT_` constants.
    result: CudaSlice<f64>,
    resident: Vec<Resident<'a>>,
    /// Rows the buffers hold.
    capacity: usize,
    /// The GPU's parameters are newer than the host's.
    host_stale: bool,
    rows_host: Tensor,
}

impl<'a> CudaTrainer<'a> {
    /// Moves `task` and `optimizer`'s state to `gpu`, and each of `resident` (the training and
    /// validation examples) when it fits in half the free memory; examples that do not fit are
    /// copied batch by batch. Refuses, before allocating, a model the GPU backend does not
    /// compute yet.
    pub fn new(
        gpu: &'a Gpu,
        task: &'a mut AutoencoderTask,
        optimizer: &'a mut Optimizer,
        resident: &[&'a Tensor],
    ) -> Result<Self> {
        let net = GpuNet::of(task)?;
        let params = &task.model.params;
        let upload_all = |ts: &[Tensor]| -> Result<Vec<CudaSlice<f32>>> {
            ts.iter().map(|t| gpu.upload(t.data())).collect()
        };
        let values = upload_all(&params.values)?;
        let grads = params
            .values
            .iter()
            .map(|t| gpu.zeros::<f32>(t.len()))
            .collect::<Result<_>>()?;
        let m = upload_all(&optimizer.m)?;
        let v = upload_all(&optimizer.v)?;
        let mut kept = Vec::new();
        for &x in resident {
            let bytes = x.len() * 4;
            if bytes < gpu.memory()?.0 / 2 {
                kept.push(Resident {
                    host: x,
                    data: gpu.upload(x.data())?,
                });
            }
        }
        let n = net.ops.len();
        let code_units = net.ops[net.code].outputs();
        let net_latent = net.latent;
        let mut convs = Vec::with_capacity(n);
        for op in &net.ops {
            convs.push(match op {
                Op::Conv(c) => Some(ConvBufs {
                    cols: gpu.zeros(1)?,
                    wmat: gpu.zeros(c.output.c * c.width())?,
                    dwmat: gpu.zeros(c.output.c * c.width())?,
                }),
                Op::ConvT(c) => Some(ConvBufs {
                    cols: gpu.zeros(1)?,
                    wmat: gpu.zeros(c.input.c * c.width())?,
                    dwmat: gpu.zeros(c.input.c * c.width())?,
                }),
                _ => None,
            });
        }
        let shared = Shared {
            dcols: gpu.zeros(1)?,
            ones: gpu.zeros(1)?,
        };
        Ok(CudaTrainer {
            gpu,
            task,
            optimizer,
            net,
            convs,
            shared,
            values,
            grads,
            m,
            v,
            acts: (0..n).map(|_| gpu.zeros(1)).collect::<Result<_>>()?,
            deltas: (0..n).map(|_| gpu.zeros(1)).collect::<Result<_>>()?,
            out: gpu.zeros(1)?,
            batch: gpu.zeros(1)?,
            noisy: gpu.zeros(1)?,
            z: gpu.zeros(1)?,
            eps: gpu.zeros(1)?,
            dz: gpu.zeros(1)?,
            kl_units: gpu.zeros(net_latent.unwrap_or(1))?,
            eval_key: gpu.zeros(2)?,
            draw: true,
            stepbuf: gpu.zeros(STEP_ROWS)?,
            stepbuf_host: Vec::new(),
            graphs: Vec::new(),
            graph_mode: match std::env::var("AE_CUDA_GRAPHS").as_deref() {
                Ok("0") => Graphs::Off,
                _ => Graphs::On,
            },
            means: gpu.zeros(code_units)?,
            per_unit: gpu.zeros(code_units)?,
            partial: gpu.zeros(MAX_BLOCKS as usize)?,
            contractive_s2: gpu.zeros(code_units)?,
            contractive_val: gpu.zeros(code_units)?,
            result: gpu.zeros(SLOTS)?,
            resident: kept,
            capacity: 0,
            host_stale: false,
            rows_host: Tensor::default(),
        })
    }

    /// How many of the examples given to [`CudaTrainer::new`] stay on the GPU.
    pub fn resident_sets(&self) -> usize {
        self.resident.len()
    }

    /// Records steps as CUDA graphs (the default) or launches their kernels one by one.
    pub fn use_graphs(&mut self, on: bool) {
        self.graphs.clear();
        self.graph_mode = if on { Graphs::On } else { Graphs::Off };
    }

    /// How many step shapes are recorded as CUDA graphs now.
    pub fn graphs_recorded(&self) -> usize {
        self.graphs.len()
    }

    /// Why steps stopped being recorded as graphs, if a capture failed.
    pub fn graph_failure(&self) -> Option<&str> {
        match &self.graph_mode {
            Graphs::Failed(why) => Some(why),
            _ => None,
        }
    }

    /// Grows the per-batch buffers to `rows` rows, dropping the recorded steps that used them.
    fn reserve(&mut self, rows: usize) -> Result<()> {
        if rows <= self.capacity {
            return Ok(());
        }
        self.graphs.clear();
        let g = self.gpu;
        // Said before allocating, with the batch size, rather than as the allocation that fails.
        let patches = |op: &Op| match op {
            Op::Conv(c) => c.pixels() * c.width(),
            Op::ConvT(c) => c.pixels() * c.width(),
            _ => 0,
        };
        let largest_patches = self.net.ops.iter().map(patches).max().unwrap_or(0);
        // Rows a convolution's bias gradient sums: its output pixels.
        let pixels = self
            .net
            .ops
            .iter()
            .map(|op| match op {
                Op::Conv(c) => c.pixels(),
                Op::ConvT(c) => c.output.h * c.output.w,
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        let per_row: usize = self
            .net
            .ops
            .iter()
            .map(|op| 2 * op.outputs() + patches(op))
            .sum::<usize>()
            + largest_patches
            + pixels
            + 3 * self.net.features
            + 3 * self.net.latent.unwrap_or(0)
            + 1;
        let needed = rows * per_row * 4;
        let free = g.memory()?.0;
        if needed > free {
            return Err(crate::Error::device(
                g.label.clone(),
                format!(
                    "a batch of {rows} rows needs {:.1} MB of GPU memory for its activations and \
                     {:.1} MB are free; use a smaller --batch-size",
                    needed as f64 / 1e6,
                    free as f64 / 1e6
                ),
            ));
        }
        for (i, op) in self.net.ops.iter().enumerate() {
            g.ensure(&mut self.acts[i], rows * op.outputs())?;
            g.ensure(&mut self.deltas[i], rows * op.outputs())?;
            if let Some(bufs) = &mut self.convs[i] {
                g.ensure(&mut bufs.cols, rows * patches(op))?;
            }
        }
        g.ensure(&mut self.shared.dcols, rows * largest_patches)?;
        if self.shared.ones.len() < rows * pixels {
            self.shared.ones = g.upload(&vec![1.0; rows * pixels])?;
        }
        g.ensure(&mut self.out, rows * self.net.features)?;
        g.ensure(&mut self.batch, rows * self.net.features)?;
        if self.task.objective.noise.is_some() {
            g.ensure(&mut self.noisy, rows * self.net.features)?;
        }
        g.ensure(&mut self.stepbuf, STEP_ROWS + rows)?;
        if let Some(k) = self.net.latent {
            for buf in [&mut self.z, &mut self.eps, &mut self.dz] {
                g.ensure(buf, rows * k)?;
            }
        }
        self.capacity = rows;
        Ok(())
    }

    fn resident_of(&self, x: &Tensor) -> Option<usize> {
        self.resident
            .iter()
            .position(|r| std::ptr::eq(r.host.data(), x.data()))
    }

    /// Readies rows `idx` of `x` for a step: for resident examples their indices go into the
    /// step buffer's host copy (the step gathers them on the GPU); other rows are gathered here
    /// and copied into the batch buffer now. Gives the resident set, if any.
    fn stage_rows(&mut self, x: &Tensor, idx: &[usize]) -> Result<Option<usize>> {
        let g = self.gpu;
        let f = self.net.features;
        let resident = self.resident_of(x);
        if resident.is_some() {
            debug_assert!(idx.iter().all(|&i| i < x.rows()));
            self.stepbuf_host.extend(idx.iter().map(|&i| i as u32));
        } else {
            let mut shape = x.shape().to_vec();
            shape[0] = idx.len();
            self.rows_host.resize(&shape);
            for (dst, &i) in self.rows_host.data_mut().chunks_exact_mut(f).zip(idx) {
                dst.copy_from_slice(x.row(i));
            }
            g.stream
                .memcpy_htod(self.rows_host.data(), &mut self.batch)
                .map_err(|e| g.err(e))?;
        }
        Ok(resident)
    }

    /// Gathers the step's `n` rows of resident set `r` into the batch buffer, the indices read
    /// from the step buffer.
    fn gather(&mut self, n: usize, r: usize) -> Result<()> {
        let g = self.gpu;
        let f = self.net.features;
        let (rows, cols) = (n as i32, f as i32);
        let mut b = g.stream.launch_builder(&g.k.gather_rows);
        b.arg(&mut self.batch)
            .arg(&self.resident[r].data)
            .arg(&self.stepbuf)
            .arg(&rows)
            .arg(&cols);
        // SAFETY: the step buffer holds `n` indices of rows of the resident examples.
        unsafe { b.launch(grid(n * f)) }.map_err(|e| g.err(e))?;
        Ok(())
    }

    /// Puts rows `start..end` of `x` into the batch buffer.
    fn load_range(&mut self, x: &Tensor, start: usize, end: usize) -> Result<()> {
        let g = self.gpu;
        let f = self.net.features;
        match self.resident_of(x) {
            Some(r) => g.stream.memcpy_dtod(
                &self.resident[r].data.slice(start * f..end * f),
                &mut self.batch,
            ),
            None => g
                .stream
                .memcpy_htod(&x.data()[start * f..end * f], &mut self.batch),
        }
        .map_err(|e| g.err(e))
    }

    /// Runs the chain on the first `n` rows of the batch buffer (its corrupted copy when `noisy`).
    fn forward(&mut self, n: usize, noisy: bool, eval: bool) -> Result<()> {
        self.forward_ops(n, noisy, eval, 0..self.net.ops.len())?;
        self.activate_output(n)
    }

    /// Runs operations `ops` of the chain on `n` rows, each reading the output of the one before
    /// (the first the batch buffer, a VAE's decoder the sample).
    fn forward_ops(
        &mut self,
        n: usize,
        noisy: bool,
        eval: bool,
        ops: std::ops::Range<usize>,
    ) -> Result<()> {
        let g = self.gpu;
        for i in ops {
            let (before, rest) = self.acts.split_at_mut(i);
            let x = match (i, noisy) {
                (0, false) => &self.batch,
                (0, true) => &self.noisy,
                // A VAE's decoder reads the sample.
                _ if self.net.latent.is_some() && i == self.net.code + 1 => &self.z,
                _ => &before[i - 1],
            };
            let conv = self.convs[i].as_mut();
            ops::forward(g, &self.net.ops[i], n, x, &mut rest[0], &self.values, conv)?;
            if i == self.net.code {
                self.sample(n, eval)?;
            }
        }
        Ok(())
    }

    /// The reconstruction of `n` rows: the output activation of the last operation's output.
    fn activate_output(&mut self, n: usize) -> Result<()> {
        let g = self.gpu;
        let last = self.net.ops.len() - 1;
        let (act, slope) = act_code(self.net.output_act);
        let len = (n * self.net.features) as i64;
        let mut b = g.stream.launch_builder(&g.k.act_out);
        b.arg(&mut self.out)
            .arg(&self.acts[last])
            .arg(&len)
            .arg(&act)
            .arg(&slope);
        // SAFETY: the logits and the reconstruction hold n rows of the features.
        unsafe { b.launch(grid(n * self.net.features)) }.map_err(|e| g.err(e))?;
        Ok(())
    }

    /// The loss of the last forward pass on `n` rows against the batch buffer: its sum into
    /// `result[slot]` (added to it when `accumulate`), its gradient into the last delta.
    fn loss(&mut self, n: usize, slot: i32, accumulate: bool) -> Result<()> {
        let g = self.gpu;
        let last = self.net.ops.len() - 1;
        let count = n * self.net.features;
        let cfg = grid(count);
        let (len, m) = (count as i64, self.loss_divisor(n));
        let mut b;
        match self.task.objective.loss {
            LossKind::Mse => {
                let (act, slope) = act_code(self.net.output_act);
                b = g.stream.launch_builder(&g.k.mse_loss);
                b.arg(&self.out)
                    .arg(&self.batch)
                    .arg(&mut self.deltas[last])
                    .arg(&mut self.partial)
                    .arg(&len)
                    .arg(&m)
                    .arg(&act)
                    .arg(&slope);
                // SAFETY: `count` elements in each buffer, at most MAX_BLOCKS partial sums.
                unsafe { b.launch(cfg) }.map_err(|e| g.err(e))?;
            }
            LossKind::Bce => {
                b = g.stream.launch_builder(&g.k.bce_loss);
                b.arg(&self.acts[last])
                    .arg(&self.out)
                    .arg(&self.batch)
                    .arg(&mut self.deltas[last])
                    .arg(&mut self.partial)
                    .arg(&len)
                    .arg(&m);
                // SAFETY: as above.
                unsafe { b.launch(cfg) }.map_err(|e| g.err(e))?;
            }
        }
        self.sum_partials(cfg.grid_dim.0, slot, accumulate)
    }

    /// Backpropagates the last delta through the chain into the parameters' gradients (the input
    /// was the corrupted batch when `noisy`), adding the sparsity penalty's gradient at the code.
    fn backward(&mut self, n: usize, noisy: bool) -> Result<()> {
        let g = self.gpu;
        let last = self.net.ops.len() - 1;
        for i in (0..=last).rev() {
            // deltas[i] holds the gradient at op i's output (the loss wrote the last one's
            // before the output activation). The code's penalty joins it there, and the op's
            // own activation is brought in before its pass.
            if i == self.net.code && self.task.objective.sparsity.is_some() {
                self.sparsity(n, true, SLOT_SPARSITY, false)?;
            }
            let op = &self.net.ops[i];
            if i != last && op.act() != crate::engine::layers::activation::Activation::Linear {
                let (act, slope) = act_code(op.act());
                let len = (n * op.outputs()) as i64;
                let mut b = g.stream.launch_builder(&g.k.act_backward);
                b.arg(&mut self.deltas[i])
                    .arg(&self.acts[i])
                    .arg(&len)
                    .arg(&act)
                    .arg(&slope);
                // SAFETY: both hold n rows of the op's width.
                unsafe { b.launch(grid(n * op.outputs())) }.map_err(|e| g.err(e))?;
            }
            // The contractive penalty's gradient joins at the one-layer encoder's pre-activation.
            if i == 0 && self.task.objective.contractive.is_some() {
                self.contractive(n, true, SLOT_CONTRACTIVE, false)?;
            }
            let op = &self.net.ops[i];
            let vae_decoder = self.net.latent.is_some() && i == self.net.code + 1;
            let (dbefore, drest) = self.deltas.split_at_mut(i);
            let (x, dx) = match (i, noisy) {
                (0, false) => (&self.batch, None),
                (0, true) => (&self.noisy, None),
                // A VAE's decoder read the sample; its gradient goes there first.
                _ if vae_decoder => (&self.z, Some(&mut self.dz)),
                _ => (&self.acts[i - 1], dbefore.last_mut()),
            };
            let mut weights = Weights {
                values: &self.values,
                grads: &mut self.grads,
                frozen: &self.task.model.params.frozen,
            };
            ops::backward(
                g,
                op,
                n,
                x,
                &self.acts[i],
                &drest[0],
                dx,
                &mut weights,
                self.convs[i].as_mut(),
                &mut self.shared,
            )?;
            if vae_decoder {
                self.sample_backward(n)?;
            }
        }
        self.contractive_weight_grad(n)
    }

    /// The contractive penalty of a one-layer encoder (node 0, the code) on the last forward
    /// pass's `n` rows: Σ_n ‖J(x_n)‖²_F into `result[slot]` (added to when `accumulate`), and when
    /// `grad` its gradient added at the encoder's pre-activation (`deltas[0]`, after the
    /// activation's derivative).
    fn contractive(&mut self, n: usize, grad: bool, slot: i32, accumulate: bool) -> Result<()> {
        let Some(lambda) = self.task.objective.contractive else {
            return Ok(());
        };
        let g = self.gpu;
        let op = &self.net.ops[0];
        let w = self.encoder_weight()?;
        let k = op.outputs() as i32;
        let d = (self.task.model.params.values[w].len() / op.outputs()) as i32;
        let (act, slope) = act_code(op.act());
        let (rows, has_grad, scale) = (n as i32, grad as i32, lambda / n.max(1) as f32);
        let mut b = g.stream.launch_builder(&g.k.contractive_units);
        b.arg(&self.acts[0])
            .arg(&mut self.deltas[0])
            .arg(&self.values[w])
            .arg(&rows)
            .arg(&k)
            .arg(&d)
            .arg(&act)
            .arg(&slope)
            .arg(&scale)
            .arg(&has_grad)
            .arg(&mut self.contractive_s2)
            .arg(&mut self.contractive_val);
        // SAFETY: the code and its gradient hold n rows of k units, W is k × d, s2 and val have k.
        unsafe { b.launch(per_column(k as usize)) }.map_err(|e| g.err(e))?;
        let k = k as usize;
        sum_into(
            g,
            &self.contractive_val,
            k,
            &mut self.result,
            slot,
            accumulate,
        )
    }

    /// The contractive penalty's direct gradient in the encoder's weight, 2λ/N · s2[j] · W_ji,
    /// after the backward pass wrote that weight's gradient (none when it is frozen).
    fn contractive_weight_grad(&mut self, n: usize) -> Result<()> {
        let Some(lambda) = self.task.objective.contractive else {
            return Ok(());
        };
        let w = self.encoder_weight()?;
        if self.task.model.params.frozen[w] {
            return Ok(());
        }
        let g = self.gpu;
        let len = self.values[w].len();
        let d = (len / self.net.ops[0].outputs()) as i32;
        let (elems, coef) = (len as i64, 2.0 * lambda / n.max(1) as f32);
        let mut b = g.stream.launch_builder(&g.k.contractive_weight_grad);
        b.arg(&mut self.grads[w])
            .arg(&self.values[w])
            .arg(&self.contractive_s2)
            .arg(&elems)
            .arg(&d)
            .arg(&coef);
        // SAFETY: the weight and its gradient have `len` elements; s2 has one per row of W.
        unsafe { b.launch(grid(len)) }.map_err(|e| g.err(e))?;
        Ok(())
    }

    /// The index of the one-layer encoder's weight (the contractive penalty's W).
    fn encoder_weight(&self) -> Result<usize> {
        self.task
            .model
            .params
            .find("encoder.0.weight")
            .map(|id| id.0)
            .ok_or_else(|| {
                crate::Error::config(
                    "contractive",
                    "the contractive penalty needs a one-layer dense encoder".to_string(),
                )
            })
    }

    /// The sparsity penalty on the code of the last forward pass on `n` rows: its sum into
    /// `result[slot]` (L1: Σ|h|; KL: the penalty, times `n` when evaluating), and when `grad` its
    /// gradient added to the gradient at the code.
    fn sparsity(&mut self, n: usize, grad: bool, slot: i32, accumulate: bool) -> Result<()> {
        let g = self.gpu;
        let c = self.net.code;
        let k = self.net.ops[c].outputs();
        let (has_grad, acc) = (grad as i32, accumulate as i32);
        match self.task.objective.sparsity {
            None => Ok(()),
            Some(Sparsity::L1 { lambda }) => {
                let (len, scale) = ((n * k) as i64, lambda / (n * k) as f32);
                let cfg = grid(n * k);
                let mut b = g.stream.launch_builder(&g.k.l1_code);
                b.arg(&self.acts[c])
                    .arg(&mut self.deltas[c])
                    .arg(&has_grad)
                    .arg(&len)
                    .arg(&scale)
                    .arg(&mut self.partial);
                // SAFETY: code and its gradient hold n rows of k units.
                unsafe { b.launch(cfg) }.map_err(|e| g.err(e))?;
                self.sum_partials(cfg.grid_dim.0, slot, accumulate)
            }
            Some(Sparsity::Kl { rho, beta }) => {
                let (rows, cols) = (n as i32, k as i32);
                let mut b = g.stream.launch_builder(&g.k.column_means);
                b.arg(&self.acts[c])
                    .arg(&mut self.means)
                    .arg(&rows)
                    .arg(&cols);
                // SAFETY: the code holds n rows of k units; means has k.
                unsafe { b.launch(per_column(k)) }.map_err(|e| g.err(e))?;
                let (rho, beta) = (rho as f64, beta as f64);
                let weight = if grad { 1.0f64 } else { n as f64 };
                let mut b = g.stream.launch_builder(&g.k.kl_units);
                b.arg(&self.means)
                    .arg(&cols)
                    .arg(&rho)
                    .arg(&beta)
                    .arg(&rows)
                    .arg(&mut self.per_unit)
                    .arg(&mut self.result)
                    .arg(&slot)
                    .arg(&acc)
                    .arg(&weight);
                // SAFETY: k means and k per-unit gradients; result has SLOTS.
                unsafe { b.launch(one_block()) }.map_err(|e| g.err(e))?;
                if grad {
                    let mut b = g.stream.launch_builder(&g.k.add_rows);
                    b.arg(&mut self.deltas[c])
                        .arg(&self.per_unit)
                        .arg(&rows)
                        .arg(&cols);
                    // SAFETY: the code's gradient holds n rows of k units.
                    unsafe { b.launch(grid(n * k)) }.map_err(|e| g.err(e))?;
                }
                Ok(())
            }
        }
    }

    /// The weights the decay applies to: unfrozen weight matrices.
    fn decayed(&self) -> Vec<usize> {
        let p = &self.task.model.params;
        (0..self.values.len())
            .filter(|&i| p.kinds[i] == ParamKind::Weight && !p.frozen[i])
            .collect()
    }

    /// The weight decay's sum (Σw² or Σ|w| over [`Self::decayed`]) into `result[SLOT_DECAY]`,
    /// and when `grad` its gradient added to theirs.
    fn weight_decay(&mut self, grad: bool) -> Result<()> {
        let (kind, lambda) = match self.task.objective.weight_decay {
            WeightDecay::None => return Ok(()),
            WeightDecay::L2(l) => (2i32, l),
            WeightDecay::L1(l) => (1i32, l),
        };
        let g = self.gpu;
        let has_grad = grad as i32;
        let mut any = false;
        for i in self.decayed() {
            let len = self.values[i].len() as i64;
            let cfg = grid(len as usize);
            let mut b = g.stream.launch_builder(&g.k.weight_decay);
            b.arg(&mut self.grads[i])
                .arg(&self.values[i])
                .arg(&has_grad)
                .arg(&len)
                .arg(&kind)
                .arg(&lambda)
                .arg(&mut self.partial);
            // SAFETY: value and gradient have `len` elements.
            unsafe { b.launch(cfg) }.map_err(|e| g.err(e))?;
            self.sum_partials(cfg.grid_dim.0, SLOT_DECAY, any)?;
            any = true;
        }
        Ok(())
    }

    /// A step's sparsity penalty from its slot: L1's λ·Σ|h| over `units` code values, or KL's
    /// penalty as the kernel summed it.
    fn sparsity_value(&self, sp: Sparsity, sum: f64, units: f64) -> f64 {
        match sp {
            Sparsity::L1 { lambda } => lambda as f64 * sum / units.max(1.0),
            Sparsity::Kl { .. } => sum,
        }
    }

    /// The weight decay's value from its sum.
    fn decay_value(&self, sum: f64) -> f64 {
        match self.task.objective.weight_decay {
            WeightDecay::None => 0.0,
            WeightDecay::L2(l) => 0.5 * l as f64 * sum,
            WeightDecay::L1(l) => l as f64 * sum,
        }
    }

    /// result[slot] (+)= Σ partial[..blocks].
    fn sum_partials(&mut self, blocks: u32, slot: i32, accumulate: bool) -> Result<()> {
        sum_into(
            self.gpu,
            &self.partial,
            blocks as usize,
            &mut self.result,
            slot,
            accumulate,
        )
    }

    /// Writes the corrupted copy of the batch's first `n` rows, drawn from the stream whose key
    /// the step buffer holds.
    fn corrupt(&mut self, n: usize, noise: Noise) -> Result<()> {
        let g = self.gpu;
        let (kind, param) = noise_code(noise);
        let len = (n * self.net.features) as i64;
        let mut b = g.stream.launch_builder(&g.k.corrupt);
        b.arg(&mut self.noisy)
            .arg(&self.batch)
            .arg(&len)
            .arg(&kind)
            .arg(&param)
            .arg(&self.stepbuf);
        // SAFETY: both buffers hold n rows.
        unsafe { b.launch(grid(len as usize)) }.map_err(|e| g.err(e))?;
        Ok(())
    }

    /// One optimizer update of every unfrozen parameter by `rule`, whose rates the kernels read
    /// from the step buffer; they skip it on the GPU when the step's loss is not finite.
    fn update(&mut self, rule: StepRule) -> Result<()> {
        let g = self.gpu;
        let frozen = &self.task.model.params.frozen;
        for (i, _) in frozen.iter().enumerate().filter(|(_, &f)| !f) {
            let len = self.values[i].len() as i64;
            let scale = self.optimizer.lr_scale[i];
            let mut b;
            match rule {
                StepRule::Adam {
                    beta1, beta2, eps, ..
                } => {
                    b = g.stream.launch_builder(&g.k.adam);
                    b.arg(&mut self.values[i])
                        .arg(&self.grads[i])
                        .arg(&mut self.m[i])
                        .arg(&mut self.v[i])
                        .arg(&len)
                        .arg(&beta1)
                        .arg(&beta2)
                        .arg(&eps)
                        .arg(&scale)
                        .arg(&self.stepbuf)
                        .arg(&self.result);
                    // SAFETY: value, gradient and moments have `len` elements.
                    unsafe { b.launch(grid(len as usize)) }.map_err(|e| g.err(e))?;
                }
                StepRule::Sgd { momentum, .. } => {
                    b = g.stream.launch_builder(&g.k.sgd);
                    b.arg(&mut self.values[i])
                        .arg(&self.grads[i])
                        .arg(&mut self.m[i])
                        .arg(&len)
                        .arg(&momentum)
                        .arg(&scale)
                        .arg(&self.stepbuf)
                        .arg(&self.result);
                    // SAFETY: as above.
                    unsafe { b.launch(grid(len as usize)) }.map_err(|e| g.err(e))?;
                }
            }
        }
        Ok(())
    }

    /// A step's work on the GPU, after its buffer is copied: replayed from its graph, recorded
    /// first when this shape has none, or launched kernel by kernel.
    fn run(&mut self, shape: StepShape, rule: StepRule) -> Result<()> {
        if self.graph_mode == Graphs::On {
            if let Some((_, graph)) = self.graphs.iter().find(|(s, _)| *s == shape) {
                return graph.launch().map_err(|e| self.gpu.err(e));
            }
            match self.capture(shape, rule) {
                Ok(graph) => {
                    graph.launch().map_err(|e| self.gpu.err(e))?;
                    self.graphs.push((shape, graph));
                    return Ok(());
                }
                Err(why) => self.graph_mode = Graphs::Failed(why),
            }
        }
        self.launch_step(shape, rule)
    }

    /// Records [`Self::launch_step`] as a CUDA graph (nothing runs while recording).
    fn capture(
        &mut self,
        shape: StepShape,
        rule: StepRule,
    ) -> std::result::Result<CudaGraph, String> {
        let stream = self.gpu.stream.clone();
        stream
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(|e| format!("beginning a capture: {e}"))?;
        let recorded = self.launch_step(shape, rule);
        // The capture always ends, so that the stream is usable whatever happened.
        let ended = stream.end_capture(sys::CUgraphInstantiate_flags_enum(0));
        recorded.map_err(|e| format!("recording a step: {e}"))?;
        match ended {
            Ok(Some(graph)) => Ok(graph),
            Ok(None) => Err("the capture recorded nothing".into()),
            Err(e) => Err(format!("ending a capture: {e}")),
        }
    }

    /// A step's kernels, in order: gather, zeroed gradients, binarization, noise, forward, loss,
    /// backward, weight decay, optimizer. Nothing here allocates, copies from the host or waits.
    fn launch_step(&mut self, shape: StepShape, rule: StepRule) -> Result<()> {
        let n = shape.rows;
        if let Some(r) = shape.resident {
            self.gather(n, r)?;
        }
        let g = self.gpu;
        let frozen = &self.task.model.params.frozen;
        for (grad, _) in self.grads.iter_mut().zip(frozen).filter(|(_, &f)| !f) {
            g.stream.memset_zeros(grad).map_err(|e| g.err(e))?;
        }
        // Dynamic binarization: the batch itself becomes a fresh Bernoulli draw of its values.
        if self.task.objective.binarize {
            let len = (n * self.net.features) as i64;
            let mut b = g.stream.launch_builder(&g.k.binarize);
            b.arg(&mut self.batch).arg(&len).arg(&self.stepbuf);
            // SAFETY: the batch holds n rows.
            unsafe { b.launch(grid(len as usize)) }.map_err(|e| g.err(e))?;
        }
        // Denoising: the model sees a corrupted batch and is scored against the clean one.
        let noise = self.task.objective.noise;
        if let Some(noise) = noise {
            self.corrupt(n, noise)?;
        }
        self.forward(n, noise.is_some(), false)?;
        self.loss(n, SLOT_LOSS, false)?;
        self.kl(n, SLOT_KL, false, 1.0)?;
        self.backward(n, noise.is_some())?;
        self.weight_decay(true)?;
        self.update(rule)
    }

    /// Reads every slot of `result`, waiting for the GPU.
    fn read(&self) -> Result<Vec<f64>> {
        let g = self.gpu;
        g.stream.clone_dtoh(&self.result).map_err(|e| g.err(e))
    }

    /// Brings parameters and optimizer state to the host when the GPU's are newer.
    fn sync_host(&mut self) -> Result<()> {
        if !self.host_stale {
            return Ok(());
        }
        let g = self.gpu;
        let copy = |d: &CudaSlice<f32>, h: &mut Tensor| {
            if h.is_empty() {
                return Ok(());
            }
            g.stream.memcpy_dtoh(d, h.data_mut()).map_err(|e| g.err(e))
        };
        let params = &mut self.task.model.params;
        for (d, h) in self.values.iter().zip(params.values.iter_mut()) {
            copy(d, h)?;
        }
        for (d, h) in self.m.iter().zip(self.optimizer.m.iter_mut()) {
            copy(d, h)?;
        }
        for (d, h) in self.v.iter().zip(self.optimizer.v.iter_mut()) {
            copy(d, h)?;
        }
        g.stream.synchronize().map_err(|e| g.err(e))?;
        self.host_stale = false;
        Ok(())
    }
}

impl Trainer for CudaTrainer<'_> {
    fn step(
        &mut self,
        data: Examples<'_>,
        idx: &[usize],
        epoch: usize,
        step: usize,
    ) -> Result<Terms> {
        let n = idx.len();
        self.reserve(n)?;
        let rule = self.optimizer.advance();
        // The step buffer: noise key, rates, then (resident examples) the rows.
        let key = noise_key(self.task.seed, epoch, step);
        let rates = match rule {
            StepRule::Adam {
                step_size,
                inv_sqrt_c2,
                ..
            } => [step_size.to_bits(), inv_sqrt_c2.to_bits()],
            StepRule::Sgd { lr, .. } => [lr.to_bits(), 0],
        };
        self.stepbuf_host.clear();
        self.stepbuf_host.extend([key as u32, (key >> 32) as u32]);
        debug_assert_eq!(self.stepbuf_host.len(), STEP_RATES);
        self.stepbuf_host.extend(rates);
        debug_assert_eq!(self.stepbuf_host.len(), STEP_KL_WEIGHT);
        self.stepbuf_host.push(self.kl_weight(epoch).to_bits());
        debug_assert_eq!(self.stepbuf_host.len(), STEP_ROWS);
        let resident = self.stage_rows(data.x, idx)?;
        let g = self.gpu;
        g.stream
            .memcpy_htod(&self.stepbuf_host[..], &mut self.stepbuf)
            .map_err(|e| g.err(e))?;
        self.run(StepShape { rows: n, resident }, rule)?;
        self.host_stale = true;
        let sums = self.read()?;
        let decay = !self.decayed().is_empty();
        let mean = sums[SLOT_LOSS as usize] / (n * self.net.features) as f64;
        let all = [
            SLOT_LOSS,
            SLOT_SPARSITY,
            SLOT_DECAY,
            SLOT_KL,
            SLOT_CONTRACTIVE,
        ];
        if !all
            .iter()
            .map(|&s| sums[s as usize])
            .sum::<f64>()
            .is_finite()
        {
            // The kernels left the parameters alone (`step_is_finite`): the step did not count.
            self.optimizer.step -= 1;
        }
        let mut terms = Terms::default();
        if self.net.latent.is_some() {
            let (scale, constant) = self.nll_scale();
            terms.push("reconstruction", scale * mean + constant);
            terms.push("kl", sums[SLOT_KL as usize]);
        } else {
            terms.push(self.task.recon_name(), mean);
        }
        if let Some(sp) = self.task.objective.sparsity {
            let units = (n * self.net.ops[self.net.code].outputs()) as f64;
            let sum = sums[SLOT_SPARSITY as usize];
            terms.push(sp.name(), self.sparsity_value(sp, sum, units));
        }
        if let Some(lambda) = self.task.objective.contractive {
            let sum = sums[SLOT_CONTRACTIVE as usize];
            terms.push("contractive", lambda as f64 * sum / n as f64);
        }
        if self.task.objective.weight_decay != WeightDecay::None {
            let sum = if decay {
                sums[SLOT_DECAY as usize]
            } else {
                0.0
            };
            terms.push("weight_decay", self.decay_value(sum));
        }
        Ok(terms)
    }

    fn evaluate(&mut self, data: Examples<'_>, batch_size: usize) -> Result<Terms> {
        let n = data.len();
        if n == 0 {
            return Ok(Terms::default());
        }
        let bs = batch_size.clamp(1, n);
        self.reserve(bs)?;
        for start in (0..n).step_by(bs) {
            let end = (start + bs).min(n);
            self.load_range(data.x, start, end)?;
            if self.net.latent.is_some() {
                // Each batch's draws from a fixed stream: the same estimate at every evaluation.
                let key = noise_key(self.task.seed, usize::MAX, start);
                let g = self.gpu;
                g.stream
                    .memcpy_htod(&[key as u32, (key >> 32) as u32], &mut self.eval_key)
                    .map_err(|e| g.err(e))?;
            }
            self.forward(end - start, false, true)?;
            self.loss(end - start, SLOT_EVAL_LOSS, start > 0)?;
            self.sparsity(end - start, false, SLOT_EVAL_SPARSITY, start > 0)?;
            self.kl(end - start, SLOT_EVAL_KL, start > 0, (end - start) as f64)?;
            self.contractive(end - start, false, SLOT_EVAL_CONTRACTIVE, start > 0)?;
        }
        self.weight_decay(false)?;
        let decay = !self.decayed().is_empty();
        let sums = self.read()?;
        let mut terms = Terms::default();
        let mean = sums[SLOT_EVAL_LOSS as usize] / (n * self.net.features) as f64;
        if self.net.latent.is_some() {
            let (scale, constant) = self.nll_scale();
            terms.push("reconstruction", scale * mean + constant);
            terms.push("kl", sums[SLOT_EVAL_KL as usize] / n as f64);
        } else {
            terms.push(self.task.recon_name(), mean);
        }
        if let Some(sp) = self.task.objective.sparsity {
            let units = (n * self.net.ops[self.net.code].outputs()) as f64;
            let value = match sp {
                // Σ over batches of rows · penalty, over all rows.
                Sparsity::Kl { .. } => sums[SLOT_EVAL_SPARSITY as usize] / n as f64,
                Sparsity::L1 { .. } => {
                    self.sparsity_value(sp, sums[SLOT_EVAL_SPARSITY as usize], units)
                }
            };
            terms.push(sp.name(), value);
        }
        if let Some(lambda) = self.task.objective.contractive {
            let sum = sums[SLOT_EVAL_CONTRACTIVE as usize];
            terms.push("contractive", lambda as f64 * sum / n as f64);
        }
        if self.task.objective.weight_decay != WeightDecay::None {
            let sum = if decay {
                sums[SLOT_DECAY as usize]
            } else {
                0.0
            };
            terms.push("weight_decay", self.decay_value(sum));
        }
        Ok(terms)
    }

    fn diagnostics(&mut self, data: Examples<'_>) -> Result<Terms> {
        self.sync_host()?;
        Ok(self.task.diagnostics(data))
    }

    fn collapse(&mut self, data: Examples<'_>) -> Result<Option<String>> {
        self.sync_host()?;
        Ok(self.task.collapse(data))
    }

    fn host(&mut self) -> Result<(&Params, &Optimizer)> {
        self.sync_host()?;
        Ok((&self.task.model.params, self.optimizer))
    }

    fn notes(&self) -> Vec<String> {
        match self.graph_failure() {
            Some(why) => vec![format!(
                "{}: steps were launched kernel by kernel, slower than as one CUDA graph ({why})",
                self.gpu.describe()
            )],
            None => Vec::new(),
        }
    }
}

/// The corrupt kernel's code for a noise and its parameter.
fn noise_code(noise: Noise) -> (i32, f32) {
    match noise {
        Noise::Gaussian { std } => (0, std),
        Noise::Mask { p } => (1, p),
        Noise::SaltPepper { p } => (2, p),
    }
}

/// The key of a denoising step's random stream: the run's seed, the epoch and the step, mixed.
fn noise_key(seed: u64, epoch: usize, step: usize) -> u64 {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    mix(seed ^ mix(((epoch as u64) << 32) ^ step as u64))
}

/// One thread per column of a `cols`-wide matrix.
pub(crate) fn per_column(cols: usize) -> LaunchConfig {
    LaunchConfig {
        // At least one block: a launch of none is an error.
        grid_dim: ((cols as u32).div_ceil(THREADS).max(1), 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// result[slot] (+)= Σ values[..count], in a fixed order (one block: `sum_partials`).
fn sum_into(
    g: &Gpu,
    values: &CudaSlice<f64>,
    count: usize,
    result: &mut CudaSlice<f64>,
    slot: i32,
    accumulate: bool,
) -> Result<()> {
    let (count, acc) = (count as i32, accumulate as i32);
    let mut b = g.stream.launch_builder(&g.k.sum_partials);
    b.arg(values).arg(&count).arg(result).arg(&slot).arg(&acc);
    // SAFETY: `values` holds `count` sums (written before, on this stream); result has SLOTS.
    unsafe { b.launch(one_block()) }.map_err(|e| g.err(e))?;
    Ok(())
}

/// One block of [`THREADS`] (the single-block reductions).
fn one_block() -> LaunchConfig {
    LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The corruption the GPU draws for a denoising step on `x` (seed, epoch, step as in training),
/// for tests of its distribution.
#[doc(hidden)]
pub fn corrupted_on(
    gpu: &Gpu,
    noise: Noise,
    x: &[f32],
    seed: u64,
    epoch: usize,
    step: usize,
) -> Result<Vec<f32>> {
    let (kind, param) = noise_code(noise);
    let src = gpu.upload(x)?;
    let mut out = gpu.zeros::<f32>(x.len())?;
    let (len, key) = (x.len() as i64, noise_key(seed, epoch, step));
    let mut stepbuf = gpu.zeros::<u32>(STEP_ROWS)?;
    gpu.stream
        .memcpy_htod(&[key as u32, (key >> 32) as u32, 0, 0], &mut stepbuf)
        .map_err(|e| gpu.err(e))?;
    let mut b = gpu.stream.launch_builder(&gpu.k.corrupt);
    b.arg(&mut out)
        .arg(&src)
        .arg(&len)
        .arg(&kind)
        .arg(&param)
        .arg(&stepbuf);
    // SAFETY: both buffers hold x.len() values.
    unsafe { b.launch(grid(x.len())) }.map_err(|e| gpu.err(e))?;
    gpu.stream.clone_dtoh(&out).map_err(|e| gpu.err(e))
}
