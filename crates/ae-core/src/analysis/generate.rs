//! New data from a trained model: draws from a VAE's prior, decoded, and decoded points on the
//! line between the codes of two examples. Values are in the model's (scaled) units.
use crate::analysis::inference::Inference;
use crate::engine::tensor::Tensor;
use crate::model::vae::prior_samples;
use crate::{Error, Result};

/// `n` draws from a VAE's prior N(0, I) (seeded), decoded: `[n, features]`.
pub fn prior_draws(inference: &Inference<'_>, n: usize, seed: u64) -> Result<Tensor> {
    let model = inference.model();
    if !model.config.variational {
        return Err(Error::config(
            "model",
            "only a variational autoencoder has a prior to sample from (train one with model = vae)",
        ));
    }
    if n == 0 {
        return Err(Error::config("n", "must be at least 1"));
    }
    let z = prior_samples(n, model.config.code_size(), seed);
    inference.decode_codes(&z)
}

/// The decodings of `steps` evenly spaced points on the line from the code of example `a` to that
/// of example `b` (both `[..input_shape]` values, scaled), ends included: `[steps, features]`.
pub fn interpolate(
    inference: &Inference<'_>,
    a: &[f32],
    b: &[f32],
    steps: usize,
) -> Result<Tensor> {
    let model = inference.model();
    if steps < 2 {
        return Err(Error::config("steps", "must be at least 2 (the two ends)"));
    }
    let d = model.config.input_features();
    if a.len() != d || b.len() != d {
        return Err(Error::Shape {
            what: "examples to interpolate between".into(),
            expected: vec![d],
            got: vec![a.len(), b.len()],
        });
    }
    let mut shape = vec![2];
    shape.extend(&model.config.input_shape);
    let mut pair = a.to_vec();
    pair.extend_from_slice(b);
    let codes = inference.codes(&Tensor::from_vec(&shape, pair))?;
    let k = codes.cols();
    let (a, b) = (codes.row(0), codes.row(1));
    let mut z = Vec::with_capacity(steps * k);
    for s in 0..steps {
        let t = s as f32 / (steps - 1) as f32;
        z.extend(a.iter().zip(b).map(|(a, b)| (1.0 - t) * a + t * b));
    }
    inference.decode_codes(&Tensor::from_vec(&[steps, k], z))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    #[test]
    fn interpolation_ends_are_the_two_reconstructions_and_draws_need_a_vae() {
        let model = ModelConfig::dense(&[6], &[4, 2]).build(1).unwrap();
        let a: Vec<f32> = (0..6).map(|i| i as f32 / 6.0).collect();
        let b: Vec<f32> = (0..6).map(|i| 1.0 - i as f32 / 7.0).collect();
        let line = interpolate(&Inference::cpu(&model), &a, &b, 5).unwrap();
        assert_eq!(line.shape(), [5, 6]);
        let mut both = a.clone();
        both.extend(&b);
        let ends = model.reconstruct(&Tensor::from_vec(&[2, 6], both));
        assert_eq!(line.row(0), ends.row(0));
        assert_eq!(line.row(4), ends.row(1));
        assert!(interpolate(&Inference::cpu(&model), &a, &b, 1).is_err());
        assert!(prior_draws(&Inference::cpu(&model), 3, 0).is_err());
        let mut cfg = ModelConfig::dense(&[6], &[4, 2]);
        cfg.variational = true;
        let vae = cfg.build(1).unwrap();
        let draws = prior_draws(&Inference::cpu(&vae), 3, 0).unwrap();
        assert_eq!(draws.shape(), [3, 6]);
        assert_eq!(draws, prior_draws(&Inference::cpu(&vae), 3, 0).unwrap());
        assert_ne!(draws, prior_draws(&Inference::cpu(&vae), 3, 1).unwrap());
    }
}
