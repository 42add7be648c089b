//! Principal component analysis, the baseline every autoencoder answers to, written as the linear
//! autoencoder it is: encoder W(x − μ), decoder Wᵀh + μ, with W the top principal directions. A
//! fitted PCA becomes an ordinary dense linear model, so every command that reads a run reads it.
//!
//! The covariance is accumulated in f64 a chunk of rows at a time (never a centred copy of the
//! data) and diagonalized exactly with faer's self-adjoint eigendecomposition.
use faer::{Mat, Side};

use crate::init::Init;
use crate::layers::activation::Activation;
use crate::model::{Autoencoder, ModelConfig};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// A fitted PCA.
#[derive(Clone, Debug)]
pub struct Pca {
    /// Per-feature mean of the data.
    pub mean: Vec<f64>,
    /// `k` unit-length principal directions, each `d` values, by decreasing variance.
    pub components: Vec<Vec<f64>>,
    /// Variance along each component (eigenvalues of the covariance, divisor n − 1).
    pub variance: Vec<f64>,
    /// Total variance of the data (trace of the covariance).
    pub total_variance: f64,
}

/// Rows per chunk of the covariance accumulation.
const CHUNK: usize = 2048;

impl Pca {
    /// Fits `k` components to the rows of `x`.
    pub fn fit(x: &Tensor, k: usize) -> Result<Pca> {
        let (n, d) = (x.rows(), x.cols());
        if n < 2 {
            return Err(Error::config(
                "data",
                format!("PCA needs at least 2 examples, got {n}"),
            ));
        }
        if k == 0 || k > d {
            return Err(Error::config(
                "components",
                format!("must be between 1 and the {d} features, got {k}"),
            ));
        }
        let mut mean = vec![0.0f64; d];
        for row in x.data().chunks_exact(d) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = Mat::<f64>::zeros(d, d);
        for start in (0..n).step_by(CHUNK) {
            let rows = CHUNK.min(n - start);
            let chunk = Mat::<f64>::from_fn(rows, d, |i, j| {
                x.data()[(start + i) * d + j] as f64 - mean[j]
            });
            faer::linalg::matmul::matmul(
                cov.as_mut(),
                faer::Accum::Add,
                chunk.transpose(),
                chunk.as_ref(),
                1.0 / (n - 1) as f64,
                faer::Par::rayon(crate::gemm::threads()),
            );
        }
        let total_variance = (0..d).map(|i| cov[(i, i)]).sum();
        let eig = cov
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| Error::config("data", format!("the eigendecomposition failed: {e:?}")))?;
        let (u, s) = (eig.U(), eig.S());
        // Eigenvalues come in increasing order: the last k, reversed.
        let mut components = Vec::with_capacity(k);
        let mut variance = Vec::with_capacity(k);
        for c in (d - k..d).rev() {
            let mut v: Vec<f64> = (0..d).map(|i| u[(i, c)]).collect();
            // A fixed sign (largest entry positive), so refits give the same directions.
            let big = v
                .iter()
                .fold(0.0f64, |m, &a| if a.abs() > m.abs() { a } else { m });
            if big < 0.0 {
                v.iter_mut().for_each(|a| *a = -*a);
            }
            components.push(v);
            variance.push(s[c].max(0.0));
        }
        Ok(Pca {
            mean,
            components,
            variance,
            total_variance,
        })
    }

    /// Share of the total variance along each component.
    pub fn explained_variance_ratio(&self) -> Vec<f64> {
        self.variance
            .iter()
            .map(|v| v / self.total_variance.max(f64::MIN_POSITIVE))
            .collect()
    }

    /// The linear autoencoder that computes this PCA, for inputs of `input_shape`: code =
    /// W(x − μ), reconstruction = Wᵀ code + μ. Parameter names are those of any dense run.
    pub fn to_model(&self, input_shape: &[usize]) -> Result<Autoencoder> {
        let (k, d) = (self.components.len(), self.mean.len());
        let config = ModelConfig {
            input_shape: input_shape.to_vec(),
            hidden: vec![k],
            activation: Activation::Linear,
            code_activation: Some(Activation::Linear),
            output_activation: Activation::Linear,
            tied: false,
            init: Init::Auto,
            conv: None,
            variational: false,
        };
        let mut model = config.build(0)?;
        let set = |model: &mut Autoencoder, name: &str, f: &dyn Fn(usize) -> f64| {
            let id = model
                .params
                .find(name)
                .expect("a linear model has this parameter");
            for (i, v) in model.params.values[id.0].data_mut().iter_mut().enumerate() {
                *v = f(i) as f32;
            }
        };
        let w = &self.components;
        let m = &self.mean;
        set(&mut model, "encoder.0.weight", &|i| w[i / d][i % d]);
        set(&mut model, "encoder.0.bias", &|j| {
            -w[j].iter().zip(m).map(|(a, b)| a * b).sum::<f64>()
        });
        set(&mut model, "decoder.0.weight", &|i| w[i % k][i / k]);
        set(&mut model, "decoder.0.bias", &|i| m[i]);
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Mode;

    /// Points along two orthogonal directions with standard deviations 3 and 1, plus a little
    /// noise: PCA finds those directions, their variances, and the model reconstructs from them.
    #[test]
    fn finds_known_directions_and_reconstructs_through_the_model() {
        let (n, d) = (400, 5);
        let a = [0.6, 0.8, 0.0, 0.0, 0.0];
        let b = [0.0, 0.0, 0.0, 0.6, -0.8];
        let mut data = Vec::with_capacity(n * d);
        for i in 0..n {
            let s = 3.0 * ((i as f64) * 0.731).sin() * 2f64.sqrt();
            let t = ((i as f64) * 1.917).cos() * 2f64.sqrt();
            let eps = 0.01 * ((i as f64) * 3.3).sin();
            for j in 0..d {
                data.push((1.0 + s * a[j] + t * b[j] + eps * (j as f64 - 2.0)) as f32);
            }
        }
        let x = Tensor::from_vec(&[n, d], data);
        let pca = Pca::fit(&x, 2).unwrap();
        let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(p, q)| p * q).sum::<f64>();
        assert!(
            dot(&pca.components[0], &a).abs() > 0.999,
            "{:?}",
            pca.components[0]
        );
        assert!(
            dot(&pca.components[1], &b).abs() > 0.999,
            "{:?}",
            pca.components[1]
        );
        assert!(
            (pca.variance[0] / 9.0 - 1.0).abs() < 0.05,
            "{:?}",
            pca.variance
        );
        assert!((pca.variance[1] - 1.0).abs() < 0.05, "{:?}", pca.variance);
        let r = pca.explained_variance_ratio();
        assert!(r[0] > 0.85 && r[0] + r[1] > 0.999, "{r:?}");
        let mut model = pca.to_model(&[d]).unwrap();
        model.forward(&x, Mode::Eval);
        let err: f64 = model
            .reconstruction()
            .data()
            .iter()
            .zip(x.data())
            .map(|(p, q)| ((p - q) as f64).powi(2))
            .sum::<f64>()
            / x.len() as f64;
        // What is left is the tiny noise off the plane.
        assert!(err < 1e-3, "{err}");
        assert!(Pca::fit(&x, 6).is_err() && Pca::fit(&x, 0).is_err());
    }
}
