//! Objectives: what a training step minimizes. The [`Task`] contract the loop drives, the
//! autoencoder's objective (a reconstruction loss plus named terms, each logged on its own), and
//! one file per term: weight decay, sparsity, contraction, input corruption. A VAE's KL term
//! lives with the variational bottleneck in `model::vae`. Uses models and the engine.
//!
//! Adding a penalty: write its file here (its value and gradient), then register it in
//! [`Objective`] and in the step of [`AutoencoderTask`].
mod autoencoder;
pub mod contractive;
mod elbo;
pub mod missing;
pub mod noise;
pub mod sparsity;
pub mod task;
mod weight_decay;

pub use autoencoder::{AutoencoderTask, Objective, LOGVAR};
pub use task::{Examples, Task, Terms};
pub use weight_decay::WeightDecay;
