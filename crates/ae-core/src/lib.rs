//! The autoencoder engine: tensors, layers with explicit backward passes, models, objectives,
//! optimizers and the one training loop every flavor shares. This crate computes; it never prints.
pub mod anomaly;
pub mod classifier;
pub mod classifier_run;
pub mod contractive;
pub mod error;
pub mod gemm;
pub mod init;
pub mod inspect;
pub mod io;
pub mod knn;
pub mod layers;
pub mod loss;
pub mod model;
pub mod noise;
pub mod objective;
pub mod optim;
pub mod parallel;
pub mod params;
pub mod pca;
pub mod plan;
pub mod pretrain;
pub mod ranking;
pub mod rng;
pub mod run;
pub mod sequential;
pub mod settings;
pub mod simd;
pub mod sparsity;
pub mod subspace;
pub mod tensor;
pub mod train;
pub mod vae;

pub use error::{Error, Result};
pub use tensor::Tensor;
