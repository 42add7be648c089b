//! Models: an autoencoder's architecture as data ([`ModelConfig`]), the plan that turns it into
//! engine layers with PyTorch-style parameter names, the built [`Autoencoder`], the variational
//! bottleneck, and data-parallel replicas of a model's buffers. Uses the engine only.
mod autoencoder;
mod config;
pub mod health;
pub(crate) mod parallel;
pub mod plan;
pub mod vae;

pub use autoencoder::{Autoencoder, Net};
pub use config::{default_code_activation, ConvArch, ConvDecoder, ModelConfig};
pub use health::CodeHealth;
