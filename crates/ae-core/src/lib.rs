//! Autoencoders in Rust: every classic flavor (vanilla, deep, stacked with greedy pretraining,
//! convolutional, sparse, denoising, contractive, tied, linear, variational) trained by one loop on
//! our own layer engine. This crate computes; it never prints.
//!
//! # Train, encode, reconstruct, save, load, score
//! One call, [`train`], takes checked [`Settings`] and the data, and returns the trained model;
//! with a run folder it also writes what `ae` reads (settings, weights, checkpoints, metrics).
//!
//! ```
//! use ae_core::analysis::anomaly::reconstruction_scores;
//! use ae_core::analysis::inference::Inference;
//! use ae_core::run::{to_tensor, RunDir};
//! use ae_core::{train, Destination, Samples, Settings, TrainOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 300 rows of 8 features that live near a 2-dimensional plane.
//! let rows: Vec<f32> = (0..300 * 8)
//!     .map(|i| {
//!         let (r, j) = ((i / 8) as f32, (i % 8) as f32);
//!         (r * 0.37).sin() * (1.0 + 0.1 * j) + (r * 0.11).cos() * (0.5 - 0.05 * j)
//!     })
//!     .collect();
//! let data = Samples::from_rows(rows, &[8])?;
//!
//! // A 8-16-2-16-8 autoencoder (a linear code of 2); everything not named keeps its default (Adam,
//! // MSE, ...). Layers of a few ReLUs can all be 0 for every input from the start: training would
//! // stop with `Error::Collapsed`.
//! let settings = Settings {
//!     hidden: vec![16, 2],
//!     epochs: 30,
//!     batch_size: 32,
//!     threads: 1,
//!     ..Settings::default()
//! }
//! .check()?;
//! let dir = tempfile::tempdir()?;
//! let folder = dir.path().join("run");
//! let options = TrainOptions {
//!     destination: Destination::Folder { path: folder.clone(), force: false },
//!     ..TrainOptions::default()
//! };
//! let trained = train(&settings, data.clone(), options)?;
//! let first = trained.history.first().unwrap().train.total();
//! let last = trained.history.last().unwrap().train.total();
//! assert!(last < first, "training lowers the loss: {first} -> {last}");
//!
//! // New data goes through the scaling fitted on the training data.
//! let mut x = data;
//! trained.meta.scaler.transform(&mut x)?;
//! let x = to_tensor(x);
//! let model = trained.task.model; // inference reads the model: it can be shared by threads
//! let codes = model.codes(&x);
//! assert_eq!(codes.shape(), [300, 2]);
//! assert_eq!(model.reconstruct(&x).shape(), [300, 8]);
//! assert_eq!(model.decode_codes(&codes).shape(), [300, 8]);
//!
//! // The run folder holds the same model; reconstruction error is an anomaly score. The passes
//! // run where an `Inference` says (`Inference::on(Device::Cuda(0), &model)` for a GPU).
//! let (_settings, _meta, loaded) = RunDir::open(&folder)?.load()?;
//! assert_eq!(loaded.model.params.values, model.params.values);
//! let (scores, _) = reconstruction_scores(&Inference::cpu(&loaded.model), &x, false)?;
//! assert_eq!(scores.len(), 300);
//!
//! // A thread count for one call (by default, every core).
//! let again = ae_core::engine::gemm::with_threads(1, || model.codes(&x));
//! assert_eq!(again.shape(), codes.shape());
//! # Ok(())
//! # }
//! ```
//!
//! `examples/` holds three whole programs: anomaly scores on a table, image denoising, and
//! sampling from a VAE.
//!
//! # Rooms
//! Each room uses only the rooms listed before it.
//!
//! | room | holds |
//! |---|---|
//! | [`engine`] | tensors, parameters, layers with explicit backward passes, products, losses, optimizers |
//! | [`model`] | architectures as data, the plan that builds them, the built autoencoder, the VAE bottleneck |
//! | [`objective`] | the step contract of the loop and what each step minimizes, one file per term |
//! | [`training`] | the loop and its device seam (`Trainer`), the settings of a run, presets, greedy pretraining |
//! | [`cuda`] | the GPU backend: a `Trainer` whose steps run on an NVIDIA GPU (cuBLAS and kernels of our own) |
//! | [`analysis`] | PCA, k-NN, ranking, anomaly scores, classifiers, what drives a code unit |
//! | [`run`] | the run folder on disk, weights as safetensors, and [`train`], the one call that trains a run |
#![warn(missing_docs)]

pub mod analysis;
pub mod cuda;
pub mod engine;
pub mod error;
pub mod export;
pub mod model;
pub mod objective;
pub mod run;
pub mod training;

pub use ae_data;
pub use ae_data::samples::Samples;
pub use engine::tensor::Tensor;
pub use error::{Error, Result};
pub use model::{Autoencoder, ModelConfig};
pub use objective::Objective;
pub use run::{train, Destination, Progress, TrainOptions, Trained};
pub use training::settings::{Checked, Settings};
