//! A trained run together with data to apply it to, in the data's units and in the model's.
use ae_data::samples::Samples;

use crate::engine::tensor::Tensor;
use crate::objective::AutoencoderTask;
use crate::run::RunMeta;
use crate::{Error, Result};

/// A loaded run with the data to apply it to, scaled the way the run was trained.
#[derive(Debug)]
pub struct Loaded {
    /// Metadata of the run (input shape, scaling).
    pub meta: RunMeta,
    /// The model and its objective.
    pub task: AutoencoderTask,
    /// The data as given (unscaled).
    pub raw: Samples,
    /// The data scaled, `[N, ..input_shape]`.
    pub x: Tensor,
}

impl Loaded {
    /// Pairs a run's model with `raw` data, checked to have as many features per example as the
    /// model takes and scaled with the run's scaling.
    pub fn new(meta: RunMeta, task: AutoencoderTask, raw: Samples) -> Result<Loaded> {
        let x = meta.prepare(raw.clone())?;
        Ok(Loaded { meta, task, raw, x })
    }
}

impl RunMeta {
    /// `raw` examples in the model's units: checked to have as many features per example as the
    /// model takes, scaled with the run's scaling, shaped `[N, ..input_shape]`.
    pub fn prepare(&self, raw: Samples) -> Result<Tensor> {
        let d: usize = self.input_shape.iter().product();
        if raw.features() != d {
            return Err(Error::Shape {
                what: "examples for this model".into(),
                expected: self.input_shape.clone(),
                got: raw.shape.clone(),
            });
        }
        let mut scaled = raw;
        self.scaler
            .transform(&mut scaled)
            .map_err(|e| Error::Data {
                context: "cannot scale the data with the run's scaling".into(),
                source: e,
            })?;
        let mut shape = vec![scaled.n];
        shape.extend(&self.input_shape);
        Ok(Tensor::from_vec(&shape, scaled.data))
    }
}
