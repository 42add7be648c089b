//! The layer engine: tensors, parameters, layers with explicit backward passes, matrix products
//! and vector kernels, losses, optimizers and seeded random streams. Everything above computes
//! through it; it knows nothing of autoencoders.
//!
//! Why our own engine rather than a framework's: an autoencoder step is a dozen small products
//! and element-wise passes, and fusing them by hand (activation backward inlined, losses in one
//! vectorized pass, data-parallel replicas instead of per-product threading) is what makes it
//! faster than PyTorch on a CPU (see BENCHMARKS.md).
pub mod gemm;
pub mod init;
pub mod layers;
pub mod loss;
pub mod optim;
pub mod params;
pub mod rng;
pub mod sequential;
pub mod simd;
pub mod tensor;
