//! The contractive penalty (Rifai et al., 2011): λ · mean over examples of ‖J_f(x)‖²_F, the squared
//! Frobenius norm of the encoder's Jacobian, in closed form for a one-layer encoder h = s(Wx + b):
//! J = diag(s'(a)) W, so ‖J‖²_F = Σ_j s'(a_j)² ‖W_j‖². Deeper encoders are refused (stack one-layer
//! contractive autoencoders instead, as Rifai et al. do).
use crate::engine::layers::activation::Activation;
use crate::engine::params::{ParamId, Params};
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// s'(a) and its derivative d s'(a) / da, for an activation.
fn slope_and_curvature(act: Activation, a: f32) -> (f32, f32) {
    match act {
        Activation::Sigmoid => {
            let h = crate::engine::layers::activation::sigmoid(a);
            let s = h * (1.0 - h);
            (s, s * (1.0 - 2.0 * h))
        }
        Activation::Tanh => {
            let h = a.tanh();
            let s = 1.0 - h * h;
            (s, -2.0 * h * s)
        }
        Activation::Relu => (if a > 0.0 { 1.0 } else { 0.0 }, 0.0),
        Activation::LeakyRelu { slope } => (if a > 0.0 { 1.0 } else { slope }, 0.0),
        Activation::Linear => (1.0, 0.0),
    }
}

/// The penalty for a model's one-layer encoder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Contractive {
    /// λ.
    pub lambda: f32,
    /// The encoder's weight, `(K, D)`.
    pub weight: ParamId,
    /// The code activation.
    pub activation: Activation,
}

impl Contractive {
    /// Checks that the encoder has one layer.
    pub fn check(hidden_layers: usize) -> Result<()> {
        if hidden_layers != 1 {
            return Err(Error::config(
                "contractive",
                format!("the closed-form contractive penalty needs a one-layer encoder (hidden of one size), got {hidden_layers} layers"),
            ));
        }
        Ok(())
    }

    /// ‖W_j‖² for every code unit j.
    pub fn row_norms(&self, params: &Params) -> Vec<f32> {
        let w = &params.values[self.weight.0];
        w.data()
            .chunks_exact(w.cols())
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect()
    }

    /// Per-example ‖J‖²_F from the pre-activations `a` (`[N, K]`).
    pub fn squared_norms(&self, params: &Params, a: &Tensor) -> Vec<f64> {
        let norms = self.row_norms(params);
        a.data()
            .chunks_exact(norms.len())
            .map(|row| {
                row.iter()
                    .zip(&norms)
                    .map(|(&a, &w)| (slope_and_curvature(self.activation, a).0.powi(2) * w) as f64)
                    .sum()
            })
            .collect()
    }

    /// The penalty's value.
    pub fn value(&self, params: &Params, a: &Tensor) -> f64 {
        let sq = self.squared_norms(params, a);
        self.lambda as f64 * sq.iter().sum::<f64>() / sq.len().max(1) as f64
    }

    /// Adds ∂penalty/∂a into `da` (the gradient at the encoder's pre-activation), given the
    /// weight's [`Contractive::row_norms`].
    pub fn add_preactivation_grad(&self, norms: &[f32], a: &Tensor, da: &mut Tensor) {
        let scale = self.lambda / a.rows().max(1) as f32;
        for (arow, drow) in a
            .data()
            .chunks_exact(norms.len())
            .zip(da.data_mut().chunks_exact_mut(norms.len()))
        {
            for ((&a, d), &w) in arow.iter().zip(drow).zip(norms) {
                let (s, ds) = slope_and_curvature(self.activation, a);
                *d += scale * w * 2.0 * s * ds;
            }
        }
    }

    /// Adds the penalty's direct gradient with respect to the weight: 2λ · mean_n s'(a_nj)² · W_ji.
    pub fn add_weight_grad(&self, params: &mut Params, a: &Tensor) {
        if params.frozen[self.weight.0] {
            return;
        }
        let k = params.values[self.weight.0].rows();
        let n = a.rows().max(1) as f32;
        let mut mean_s2 = vec![0.0f32; k];
        for row in a.data().chunks_exact(k) {
            for (m, &a) in mean_s2.iter_mut().zip(row) {
                *m += slope_and_curvature(self.activation, a).0.powi(2) / n;
            }
        }
        let (values, grads, _) = params.split();
        let w = &values[self.weight.0];
        let d = w.cols();
        for ((grow, wrow), m) in grads[self.weight.0]
            .data_mut()
            .chunks_exact_mut(d)
            .zip(w.data().chunks_exact(d))
            .zip(&mean_s2)
        {
            for (g, &w) in grow.iter_mut().zip(wrow) {
                *g += 2.0 * self.lambda * m * w;
            }
        }
    }
}
