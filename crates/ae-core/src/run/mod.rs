//! The files on disk: a run folder (settings, metadata, weights, checkpoints, metrics), weights as
//! safetensors, and the folder of a classifier built on a run. Uses everything below.
pub mod classifier_run;
mod folder;
pub mod io;
mod loaded;

pub use folder::*;
pub use loaded::Loaded;
mod observer;
mod train;

pub use train::{
    split_validation, to_tensor, train, train_streamed, Destination, Progress, Quiet, TrainOptions,
    Trained,
};
