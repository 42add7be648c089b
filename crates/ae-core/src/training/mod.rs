//! Training: the one loop every flavor shares ([`fit`]), the settings of a run as one type,
//! and greedy layer-wise pretraining (which trains each stage through that same loop). Uses
//! objectives, models and the engine.
pub mod device;
pub mod fit;
pub mod presets;
pub mod pretrain;
pub mod settings;
pub mod stream;
pub mod trainer;

use crate::engine::optim::Optimizer;
use crate::objective::AutoencoderTask;
use crate::Result;
use settings::Settings;

/// Sets the threads that products and element-wise passes use (the rayon pool is built once per
/// process, on the first call), and flushes denormals in every computing thread.
pub fn configure_threads(n: usize) {
    crate::engine::gemm::set_threads(n);
    // Every thread that computes flushes denormals (see `simd::flush_denormals`).
    crate::engine::simd::flush_denormals();
    // Fails only if the pool was already built, which happens once per process.
    let _ = rayon::ThreadPoolBuilder::new()
        .start_handler(|_| crate::engine::simd::flush_denormals())
        .num_threads(n)
        .build_global();
}

/// A fresh model for `settings` on inputs of `input_shape`, paired with its objective, and its
/// optimizer: what every training of an autoencoder starts from.
pub fn prepare(settings: &Settings, input_shape: &[usize]) -> Result<(AutoencoderTask, Optimizer)> {
    let config = settings.model_config(input_shape);
    let mut task = AutoencoderTask::new(config.build(settings.seed)?, settings.objective())?;
    task.seed = settings.seed;
    let optimizer = Optimizer::new(settings.optimizer_kind(), settings.lr, &task.model.params);
    Ok((task, optimizer))
}
