//! The GPU backend: a [`crate::training::trainer::Trainer`] whose steps run on an NVIDIA GPU.
//!
//! Matrix products go to cuBLAS; the element-wise passes, losses, reductions and optimizer
//! updates are our own kernels ([`gpu::KERNELS`]), compiled at run time by NVRTC. The CUDA
//! libraries are loaded when a GPU is opened, not when the program starts, so the same binary runs
//! on machines without them; there [`Gpu::open`] says what is missing.
//!
//! So far the backend trains dense autoencoders (any depth, tied or not, every activation) with
//! mean squared error or binary cross-entropy and Adam or SGD, with the learning-rate schedule,
//! per-parameter rates and frozen parameters of the CPU engine; with input noise (drawn on the
//! GPU by a counter-based generator keyed by seed, epoch and step), L1 or KL sparsity on the code,
//! and L1 or L2 weight decay. [`CudaTrainer::new`] refuses any other run by name, before
//! allocating anything.
mod gpu;
mod net;
mod ops;
mod trainer;

pub use gpu::{compile_kernels, gpu_present, nvrtc_available, Gpu, Image, KERNELS};
pub use trainer::{corrupted_on, CudaTrainer, Output};

use crate::engine::optim::{Optimizer, OptimizerKind};
use crate::engine::tensor::Tensor;
use crate::model::vae::KlTerm;
use crate::model::Autoencoder;
use crate::objective::{AutoencoderTask, Objective};
use crate::training::device::Device;
use crate::Result;

/// Checks that the GPU backend computes `task`, without touching a GPU.
pub fn check_supported(task: &AutoencoderTask) -> Result<()> {
    net::GpuNet::of(task).map(|_| ())
}

/// The GPU a run on `device` computes on: `None` for the CPU. `auto` takes the first GPU when
/// one opens and the backend computes `task`, and otherwise says why it stays on the CPU.
pub fn choose(device: Device, task: &AutoencoderTask) -> Result<(Option<Gpu>, Option<String>)> {
    match device {
        Device::Cpu => Ok((None, None)),
        Device::Cuda(n) => {
            check_supported(task)?;
            Ok((Some(Gpu::open(n)?), None))
        }
        Device::Auto => {
            if let Err(e) = check_supported(task) {
                let why = match e {
                    crate::Error::Config { reason, .. } => reason,
                    other => other.to_string(),
                };
                return Ok((None, Some(format!("device auto: on the CPU: {why}"))));
            }
            match Gpu::open(0) {
                Ok(gpu) => Ok((Some(gpu), None)),
                Err(e) => Ok((None, Some(format!("device auto: on the CPU ({e})")))),
            }
        }
    }
}

/// A trained model's forward passes on a GPU ([`CudaTrainer::infer`]): codes, reconstructions,
/// decodings. The weights are copied to the GPU at each call, the model's objective plays no
/// part, and nothing is written back.
pub struct GpuModel {
    gpu: Gpu,
    task: AutoencoderTask,
    optimizer: Optimizer,
}

impl GpuModel {
    /// The forward passes of `model` on the GPU `device` names, and for `auto` a note when they
    /// stay on the CPU, as [`choose`] decides for training (a model whose layers the backend does
    /// not compute, missing-cell indicators, is refused before a GPU is touched).
    pub fn open(device: Device, model: &Autoencoder) -> Result<(Option<Self>, Option<String>)> {
        let task = Self::task(model)?;
        let (gpu, note) = choose(device, &task)?;
        Ok((gpu.map(|gpu| Self::new(gpu, task)), note))
    }

    /// The passes of `task`'s model on `gpu`.
    fn new(gpu: Gpu, task: AutoencoderTask) -> Self {
        let mut optimizer = Optimizer::new(
            OptimizerKind::Sgd { momentum: 0.0 },
            0.0,
            &task.model.params,
        );
        // No optimizer state: nothing to copy to the GPU.
        optimizer.m = vec![Tensor::default(); optimizer.m.len()];
        GpuModel {
            gpu,
            task,
            optimizer,
        }
    }

    /// A copy of `model` with a plain objective (the trainer's buffers follow the objective, and
    /// forward passes use none of it; a VAE must have its KL term).
    fn task(model: &Autoencoder) -> Result<AutoencoderTask> {
        let copy = model.duplicate()?;
        let kl = model.config.variational.then_some(KlTerm {
            beta: 1.0,
            warmup: 0,
            free_bits: None,
        });
        AutoencoderTask::new(
            copy,
            Objective {
                kl,
                ..Objective::default()
            },
        )
    }

    /// The GPU, for messages.
    pub fn describe(&self) -> String {
        self.gpu.describe()
    }

    /// A trainer over the model's weights, copied to the GPU, for one call's passes.
    fn trainer(&mut self) -> Result<CudaTrainer<'_>> {
        CudaTrainer::new(&self.gpu, &mut self.task, &mut self.optimizer, &[])
    }

    /// The codes or reconstructions of the rows of `x`.
    pub fn infer(&mut self, x: &Tensor, output: Output) -> Result<Tensor> {
        self.trainer()?.infer(x, output)
    }

    /// Several outputs of one forward pass over the rows of `x`.
    pub fn infer_all(&mut self, x: &Tensor, outputs: &[Output]) -> Result<Vec<Tensor>> {
        self.trainer()?.infer_all(x, outputs)
    }

    /// The decodings of codes `z`.
    pub fn decode(&mut self, z: &Tensor) -> Result<Tensor> {
        self.trainer()?.decode(z)
    }
}
