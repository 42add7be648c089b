//! The one error type of the engine crate.
use std::path::PathBuf;

/// Everything that can go wrong while building, training, saving or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range; names the field and the value received.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The setting, as `config.toml` names it.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// Two tensors or a tensor and a layer disagree in shape.
    #[error("shape mismatch in {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// What was being checked.
        what: String,
        /// The shape wanted.
        expected: Vec<usize>,
        /// The shape found.
        got: Vec<usize>,
    },
    /// The loss became NaN or infinite; training stops and the last good checkpoint stays.
    #[error("training diverged at epoch {epoch}, step {step}: loss term `{term}` is {value}; the last good checkpoint was kept (resume it with a smaller lr)")]
    NonFinite {
        /// The epoch (1-based).
        epoch: usize,
        /// The step within it (1-based).
        step: usize,
        /// The loss term that went bad.
        term: String,
        /// Its value.
        value: f64,
    },
    /// The model gives the same output for every input and can learn nothing more; training
    /// stops and the last good checkpoint stays.
    #[error("training collapsed at epoch {epoch}: {what}. Try a smaller lr (a third), a larger batch-size, another seed or init, or code-activation linear")]
    Collapsed {
        /// The epoch (1-based) after which it was seen.
        epoch: usize,
        /// What was seen.
        what: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A file of ours (weights, checkpoint, metadata) is malformed or disagrees with the model.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        reason: String,
    },
    /// Data could not be read, scaled or checked.
    #[error("{context}")]
    Data {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: ae_data::Error,
    },
    /// The run folder already holds a run and neither resume nor force was given.
    #[error("{path} already holds a run; resume it, or replace it (force)")]
    RunExists {
        /// The folder.
        path: PathBuf,
    },
    /// A GPU could not be used, or failed while computing (out of memory, a driver error).
    #[error("{device}: {reason}")]
    Device {
        /// The device as the user named it (`cuda:0`).
        device: String,
        /// What went wrong, and what to try.
        reason: String,
    },
}

/// Result with the engine's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    /// A format error on `path`.
    pub fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
    /// A device error on `device`.
    pub fn device(device: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Device {
            device: device.into(),
            reason: reason.into(),
        }
    }
    /// A configuration error naming the field.
    pub fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Config {
            field,
            reason: reason.into(),
        }
    }
}
