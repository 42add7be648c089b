//! What a trained autoencoder looks like: image grids of reconstructions, filters, most-activating
//! inputs, activation maximization, samples and interpolations; charts of training curves and of
//! the latent space; and one self-contained HTML page of them all. Everything is drawn as PNG
//! bytes from values the library (`ae-core`) computes; the `ae` program writes them.
#![warn(missing_docs)]

pub mod chart;
pub mod figures;
pub mod page;
pub mod picture;
