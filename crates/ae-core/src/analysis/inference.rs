//! Where a trained model's forward passes run (`--device` on the commands that use a model):
//! the CPU engine, or a GPU through [`GpuModel`]. Everything that encodes, reconstructs or
//! decodes for a user (anomaly scores, imputation, generation, `ae encode` and `reconstruct`)
//! goes through an [`Inference`], so one flag moves all of it.
use std::sync::Mutex;

use crate::cuda::{GpuModel, Output};
use crate::engine::tensor::Tensor;
use crate::model::Autoencoder;
use crate::training::device::Device;
use crate::{Error, Result};

/// A model's forward passes on the CPU or a GPU. The GPU's buffers sit behind a lock, so one
/// `Inference` serves several threads (one pass at a time on the GPU).
pub struct Inference<'m> {
    model: &'m Autoencoder,
    gpu: Option<OnGpu<'m>>,
}

/// A GPU's copy of the model: made for one `Inference`, or kept by the caller between them.
enum OnGpu<'m> {
    Own(Mutex<GpuModel>),
    Kept(&'m Mutex<GpuModel>),
}

/// The GPU a model's passes on `device` run on: `None` for the CPU, and for `auto` when no GPU
/// opens or the backend does not compute the model, with a note saying why. `cuda[:N]` is an
/// error in those cases.
pub fn open_gpu(device: Device, model: &Autoencoder) -> Result<(Option<GpuModel>, Option<String>)> {
    match device {
        Device::Cpu => Ok((None, None)),
        _ => GpuModel::open(device, model),
    }
}

impl<'m> Inference<'m> {
    /// `model`'s passes in the CPU engine.
    pub fn cpu(model: &'m Autoencoder) -> Self {
        Inference { model, gpu: None }
    }

    /// `model`'s passes on `device`, and for `auto` a note when they stay on the CPU (no GPU or
    /// driver, or a model the GPU backend does not compute) saying why. `cuda[:N]` is an error
    /// in those cases.
    pub fn on(device: Device, model: &'m Autoencoder) -> Result<(Self, Option<String>)> {
        let (gpu, note) = open_gpu(device, model)?;
        let gpu = gpu.map(|g| OnGpu::Own(Mutex::new(g)));
        Ok((Inference { model, gpu }, note))
    }

    /// `model`'s passes on a GPU copy of it that the caller keeps between calls (made by
    /// [`open_gpu`] from this same model).
    pub fn kept(model: &'m Autoencoder, gpu: &'m Mutex<GpuModel>) -> Self {
        Inference {
            model,
            gpu: Some(OnGpu::Kept(gpu)),
        }
    }

    fn gpu(&self) -> Option<&Mutex<GpuModel>> {
        match self.gpu.as_ref()? {
            OnGpu::Own(g) => Some(g),
            OnGpu::Kept(g) => Some(g),
        }
    }

    /// The model.
    pub fn model(&self) -> &'m Autoencoder {
        self.model
    }

    /// Where the passes run, for messages: `cpu` or the GPU's name.
    pub fn device(&self) -> String {
        match self.gpu() {
            None => "cpu".into(),
            Some(g) => g
                .lock()
                .map(|g| g.describe())
                .unwrap_or_else(|_| "gpu".into()),
        }
    }

    /// The codes of `x` (`[N, ..input_shape]` → `[N, code]`; a VAE's mean).
    pub fn codes(&self, x: &Tensor) -> Result<Tensor> {
        match self.gpu() {
            None => Ok(self.model.codes(x)),
            Some(g) => lock(g)?.infer(x, Output::Codes),
        }
    }

    /// The encoder's outputs for `x`: a VAE's `[μ | log σ²]` (`[N, 2·code]`), else the codes.
    pub fn encoder_outputs(&self, x: &Tensor) -> Result<Tensor> {
        match self.gpu() {
            None => Ok(self.model.encoder_outputs(x)),
            Some(g) => lock(g)?.infer(x, Output::Encoder),
        }
    }

    /// The logits (before the output activation) and reconstructions of `x`, `[N, features]`.
    pub fn logits_and_reconstructions(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        match self.gpu() {
            None => Ok(self.model.logits_and_reconstructions(x)),
            Some(g) => {
                let mut both = lock(g)?.infer_all(x, &[Output::Logits, Output::Reconstructions])?;
                let out = both.pop().expect("two outputs");
                Ok((both.pop().expect("two outputs"), out))
            }
        }
    }

    /// The reconstructions of `x`, `[N, features]`.
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        match self.gpu() {
            None => Ok(self.model.reconstruct(x)),
            Some(g) => lock(g)?.infer(x, Output::Reconstructions),
        }
    }

    /// The decoder's outputs for codes `z` (`[N, code]`), `[N, features]`.
    pub fn decode_codes(&self, z: &Tensor) -> Result<Tensor> {
        match self.gpu() {
            None => Ok(self.model.decode_codes(z)),
            Some(g) => lock(g)?.decode(z),
        }
    }
}

fn lock(g: &Mutex<GpuModel>) -> Result<std::sync::MutexGuard<'_, GpuModel>> {
    g.lock().map_err(|_| {
        Error::device(
            "gpu".to_string(),
            "an earlier pass on this GPU failed part-way".to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    #[test]
    fn the_cpu_passes_are_the_models_own() {
        let model = ModelConfig::dense(&[6], &[4, 2]).build(3).unwrap();
        let x = Tensor::from_vec(&[5, 6], (0..30).map(|v| v as f32 / 30.0).collect());
        let (inf, note) = Inference::on(Device::Cpu, &model).unwrap();
        assert!(note.is_none());
        assert_eq!(inf.device(), "cpu");
        let codes = inf.codes(&x).unwrap();
        assert_eq!(codes, model.codes(&x));
        assert_eq!(inf.reconstruct(&x).unwrap(), model.reconstruct(&x));
        assert_eq!(
            inf.decode_codes(&codes).unwrap(),
            model.decode_codes(&codes)
        );
    }

    #[test]
    fn auto_stays_on_the_cpu_and_says_why_when_no_gpu_computes_the_model() {
        let model = ModelConfig::dense(&[6], &[4, 2]).build(3).unwrap();
        if crate::cuda::gpu_present() {
            eprintln!(
                "skipped: a GPU is present, so auto takes it (tests/gpu.rs checks that case)"
            );
            return;
        }
        let (inf, note) = Inference::on(Device::Auto, &model).unwrap();
        assert_eq!(inf.device(), "cpu");
        assert!(note.unwrap().starts_with("device auto: on the CPU"));
        let e = Inference::on(Device::Cuda(0), &model)
            .err()
            .unwrap()
            .to_string();
        assert!(!e.is_empty());
    }
}
