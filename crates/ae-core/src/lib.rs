//! Autoencoders in Rust: every classic flavor (vanilla, deep, stacked with greedy pretraining,
//! convolutional, sparse, denoising, contractive, tied, linear, variational) trained by one loop on
//! our own layer engine. This crate computes; it never prints.
//!
//! # Rooms
//! Each room uses only the rooms listed before it.
//!
//! | room | holds |
//! |---|---|
//! | [`engine`] | tensors, parameters, layers with explicit backward passes, products, losses, optimizers |
//! | [`model`] | architectures as data, the plan that builds them, the built autoencoder, the VAE bottleneck |
//! | [`objective`] | the step contract of the loop and what each step minimizes, one file per term |
//! | [`training`] | the loop, the settings of a run, greedy pretraining |
//! | [`analysis`] | PCA, k-NN, ranking, anomaly scores, classifiers, what drives a code unit |
//! | [`run`] | the run folder on disk, weights as safetensors |
pub mod analysis;
pub mod engine;
pub mod error;
pub mod model;
pub mod objective;
pub mod run;
pub mod training;

pub use engine::tensor::Tensor;
pub use error::{Error, Result};
