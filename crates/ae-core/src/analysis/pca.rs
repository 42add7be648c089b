//! Principal component analysis, the baseline every autoencoder answers to, written as the linear
//! autoencoder it is: encoder W(x − μ), decoder Wᵀh + μ, with W the top principal directions. A
//! fitted PCA becomes an ordinary dense linear model, so every command that reads a run reads it.
//!
//! Two solvers, both reading the data a chunk of rows at a time in f64 (never a centred copy of
//! the data):
//! - exact: the d × d covariance, diagonalized with faer's self-adjoint eigendecomposition;
//! - randomized: the range finder with subspace iteration of Halko, Martinsson and Tropp (2011,
//!   algorithms 4.4 and 5.1), as scikit-learn's `randomized_svd`: k + 10 random directions, a QR
//!   after every product, then an exact SVD of the small (k + 10) × d projection. It never forms
//!   a d × d matrix, so it is the one for wide data.
use faer::{Mat, MatRef, Side};
use rand_distr::{Distribution, StandardNormal};

use crate::engine::init::Init;
use crate::engine::layers::activation::Activation;
use crate::engine::tensor::Tensor;
use crate::model::{Autoencoder, ModelConfig};
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

/// How the components are found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Solver {
    /// Exact up to [`EXACT_MAX_FEATURES`] features (or when k is over half the smaller side),
    /// randomized beyond.
    #[default]
    Auto,
    /// Eigendecomposition of the covariance.
    Exact,
    /// Randomized SVD with subspace iteration.
    Randomized,
}

/// Widest data [`Solver::Auto`] solves exactly (a 4096² covariance is 128 MiB of f64).
pub const EXACT_MAX_FEATURES: usize = 4096;
/// Extra random directions of the randomized solver (scikit-learn's `n_oversamples`).
const OVERSAMPLES: usize = 10;

impl Solver {
    /// The solver `Auto` stands for on `n` examples of `d` features with `k` components.
    pub fn resolve(self, n: usize, d: usize, k: usize) -> Solver {
        match self {
            Solver::Auto if d > EXACT_MAX_FEATURES && 2 * (k + OVERSAMPLES) <= n.min(d) => {
                Solver::Randomized
            }
            Solver::Auto => Solver::Exact,
            s => s,
        }
    }

    /// The solver's name as `ae pca --solver` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Solver::Auto => "auto",
            Solver::Exact => "exact",
            Solver::Randomized => "randomized",
        }
    }
}

impl std::str::FromStr for Solver {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Solver::Auto),
            "exact" => Ok(Solver::Exact),
            "randomized" => Ok(Solver::Randomized),
            _ => Err(format!("unknown solver `{s}` (auto, exact, randomized)")),
        }
    }
}

/// Per-feature means of the rows of `x`.
fn column_means(x: &Tensor) -> Vec<f64> {
    let d = x.cols();
    let mut mean = vec![0.0f64; d];
    for row in x.data().chunks_exact(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= x.rows().max(1) as f64);
    mean
}

/// Rows `start..start + rows` of `x`, centred, in f64.
fn centred_chunk(x: &Tensor, mean: &[f64], start: usize, rows: usize) -> Mat<f64> {
    let d = x.cols();
    Mat::<f64>::from_fn(rows, d, |i, j| {
        x.data()[(start + i) * d + j] as f64 - mean[j]
    })
}

fn par() -> faer::Par {
    faer::Par::rayon(crate::engine::gemm::threads())
}

/// (X − 1μᵀ) · m, for `m` of `d` rows.
fn centred_times(x: &Tensor, mean: &[f64], m: MatRef<'_, f64>) -> Mat<f64> {
    let n = x.rows();
    let mut out = Mat::<f64>::zeros(n, m.ncols());
    for start in (0..n).step_by(CHUNK) {
        let rows = CHUNK.min(n - start);
        let chunk = centred_chunk(x, mean, start, rows);
        faer::linalg::matmul::matmul(
            out.as_mut().subrows_mut(start, rows),
            faer::Accum::Replace,
            chunk.as_ref(),
            m,
            1.0,
            par(),
        );
    }
    out
}

/// (X − 1μᵀ)ᵀ · q, for `q` of `n` rows.
fn centred_transpose_times(x: &Tensor, mean: &[f64], q: MatRef<'_, f64>) -> Mat<f64> {
    let (n, d) = (x.rows(), x.cols());
    let mut out = Mat::<f64>::zeros(d, q.ncols());
    for start in (0..n).step_by(CHUNK) {
        let rows = CHUNK.min(n - start);
        let chunk = centred_chunk(x, mean, start, rows);
        faer::linalg::matmul::matmul(
            out.as_mut(),
            faer::Accum::Add,
            chunk.transpose(),
            q.subrows(start, rows),
            1.0,
            par(),
        );
    }
    out
}

/// Flips `v` so that its largest entry is positive (refits give the same directions).
fn fix_sign(v: &mut [f64]) {
    let big = v
        .iter()
        .fold(0.0f64, |m, &a| if a.abs() > m.abs() { a } else { m });
    if big < 0.0 {
        v.iter_mut().for_each(|a| *a = -*a);
    }
}

impl Pca {
    /// Fits `k` components to the rows of `x` with [`Solver::Auto`].
    pub fn fit(x: &Tensor, k: usize) -> Result<Pca> {
        Pca::fit_with(x, k, Solver::Auto, 0)
    }

    /// Fits `k` components to the rows of `x` with `solver` (`seed` draws the randomized
    /// solver's starting directions).
    pub fn fit_with(x: &Tensor, k: usize, solver: Solver, seed: u64) -> Result<Pca> {
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
        let mean = column_means(x);
        match solver.resolve(n, d, k) {
            Solver::Randomized => Pca::randomized(x, k, mean, seed),
            _ => Pca::exact(x, k, mean),
        }
    }

    fn exact(x: &Tensor, k: usize, mean: Vec<f64>) -> Result<Pca> {
        let (n, d) = (x.rows(), x.cols());
        let mut cov = Mat::<f64>::zeros(d, d);
        for start in (0..n).step_by(CHUNK) {
            let rows = CHUNK.min(n - start);
            let chunk = centred_chunk(x, &mean, start, rows);
            faer::linalg::matmul::matmul(
                cov.as_mut(),
                faer::Accum::Add,
                chunk.transpose(),
                chunk.as_ref(),
                1.0 / (n - 1) as f64,
                par(),
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
            fix_sign(&mut v);
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

    /// The randomized solver: Q spans (XXᵀ)^q X Ω for a Gaussian Ω of k + 10 columns, with a QR
    /// after every product (without it the columns collapse onto the top direction in floating
    /// point); then the SVD of QᵀX. q is scikit-learn's choice: 7 when k is under a tenth of
    /// the smaller side, else 4.
    fn randomized(x: &Tensor, k: usize, mean: Vec<f64>, seed: u64) -> Result<Pca> {
        let (n, d) = (x.rows(), x.cols());
        let l = (k + OVERSAMPLES).min(n.min(d));
        let iterations = if 10 * k < n.min(d) { 7 } else { 4 };
        let mut rng = crate::engine::rng::stream(seed, crate::engine::rng::Purpose::Misc, 77, 0);
        let omega = Mat::<f64>::from_fn(d, l, |_, _| StandardNormal.sample(&mut rng));
        let mut q = centred_times(x, &mean, omega.as_ref())
            .qr()
            .compute_thin_Q();
        for _ in 0..iterations {
            let z = centred_transpose_times(x, &mean, q.as_ref())
                .qr()
                .compute_thin_Q();
            q = centred_times(x, &mean, z.as_ref()).qr().compute_thin_Q();
        }
        // B = QᵀX is l × d; its right singular vectors are the components.
        let b = centred_transpose_times(x, &mean, q.as_ref())
            .transpose()
            .to_owned();
        let mut total = 0.0f64;
        for row in x.data().chunks_exact(d) {
            total += row
                .iter()
                .zip(&mean)
                .map(|(&v, m)| (v as f64 - m).powi(2))
                .sum::<f64>();
        }
        let svd = b
            .thin_svd()
            .map_err(|e| Error::config("data", format!("the SVD failed: {e:?}")))?;
        let (s, v) = (svd.S(), svd.V());
        let mut order: Vec<usize> = (0..l).collect();
        order.sort_by(|&i, &j| s[j].total_cmp(&s[i]));
        let (components, variance) = order
            .into_iter()
            .take(k)
            .map(|c| {
                let mut dir: Vec<f64> = (0..d).map(|i| v[(i, c)]).collect();
                fix_sign(&mut dir);
                (dir, s[c] * s[c] / (n - 1) as f64)
            })
            .unzip();
        Ok(Pca {
            mean,
            components,
            variance,
            total_variance: total / (n - 1) as f64,
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
            missing_indicator: false,
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
    use crate::engine::layers::Mode;

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

    /// The randomized solver agrees with the exact one on wide low-rank data with noise: the
    /// same variances and the same subspace.
    #[test]
    fn randomized_solver_matches_the_exact_one() {
        let (n, d, k) = (600, 300, 8);
        let mut rng = crate::engine::rng::stream(3, crate::engine::rng::Purpose::Misc, 0, 0);
        let mut g = || -> f64 { StandardNormal.sample(&mut rng) };
        // Twelve directions with decaying scales, plus isotropic noise.
        let dirs: Vec<Vec<f64>> = (0..12).map(|_| (0..d).map(|_| g()).collect()).collect();
        let mut data = Vec::with_capacity(n * d);
        for _ in 0..n {
            let coef: Vec<f64> = (0..12).map(|c| g() * 4.0 / (1.0 + c as f64)).collect();
            for j in 0..d {
                let v: f64 = coef
                    .iter()
                    .zip(&dirs)
                    .map(|(a, dir)| a * dir[j])
                    .sum::<f64>()
                    + 0.3 * g()
                    + 2.0;
                data.push(v as f32);
            }
        }
        let x = Tensor::from_vec(&[n, d], data);
        let exact = Pca::fit_with(&x, k, Solver::Exact, 0).unwrap();
        let fast = Pca::fit_with(&x, k, Solver::Randomized, 5).unwrap();
        for (a, b) in exact.variance.iter().zip(&fast.variance) {
            assert!((a - b).abs() / a < 1e-6, "{a} vs {b}");
        }
        assert!((exact.total_variance - fast.total_variance).abs() / exact.total_variance < 1e-9);
        let flat =
            |p: &Pca| -> Vec<f32> { p.components.iter().flatten().map(|&v| v as f32).collect() };
        let angles =
            crate::analysis::subspace::principal_angles(&flat(&exact), k, &flat(&fast), k, d)
                .unwrap();
        let largest = angles.iter().cloned().fold(0.0f64, f64::max);
        assert!(largest < 0.1, "largest principal angle {largest}°");
        // Auto picks the exact solver for narrow data and the randomized one for wide data.
        assert_eq!(Solver::Auto.resolve(n, d, k), Solver::Exact);
        assert_eq!(
            Solver::Auto.resolve(100_000, 12_288, 32),
            Solver::Randomized
        );
        assert_eq!(Solver::Auto.resolve(100_000, 12_288, 8_000), Solver::Exact);
        assert_eq!("randomized".parse::<Solver>(), Ok(Solver::Randomized));
        assert!("fast".parse::<Solver>().is_err());
    }
}
