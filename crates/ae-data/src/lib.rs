//! Data for autoencoders: IDX, CSV, NPY, image-folder and CIFAR-10 readers that check before they allocate, scaling that
//! is fitted once and saved, and the named data sets with their checked download.
#![warn(missing_docs)]
pub mod cifar10;
pub mod csv_table;
pub mod datasets;
pub mod download;
pub mod error;
pub mod idx;
pub mod image_folder;
pub mod npy;
pub mod parquet;
pub mod rows_out;
pub mod samples;
pub mod scaling;
pub mod spec;
pub mod stream;

pub use error::{Error, Result};
