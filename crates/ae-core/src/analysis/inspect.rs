//! What a code unit responds to: the inputs that excite it most, and the input of bounded norm
//! that excites it most (activation maximization, Erhan, Bengio, Courville & Vincent 2009).
use rand_distr::{Distribution, StandardNormal};

use crate::engine::rng::{stream, Purpose};
use crate::engine::tensor::Tensor;
use crate::model::Autoencoder;

/// For each unit in `units`, the indices of the `k` rows of `codes` (`[N, code]`) where that unit
/// is largest, largest first.
pub fn top_activations(codes: &Tensor, units: &[usize], k: usize) -> Vec<Vec<usize>> {
    let c = codes.cols();
    units
        .iter()
        .map(|&u| {
            let mut idx: Vec<usize> = (0..codes.rows()).collect();
            idx.sort_by(|&a, &b| codes.data()[b * c + u].total_cmp(&codes.data()[a * c + u]));
            idx.truncate(k);
            idx
        })
        .collect()
}

/// For each unit in `units`, an input `x` with ‖x‖₂ ≤ `radius` that (locally) maximizes the unit's
/// code value: gradient ascent from faint Gaussian noise (a tenth of the radius: noise that starts
/// at full norm survives in the directions the unit ignores and hides the pattern), `steps` normalized
/// steps of `radius / 20`, each followed by projection back onto the ball. All units climb
/// together as one batch, one row each. Returns `[units, ..input_shape]`.
pub fn maximize_units(
    model: &mut Autoencoder,
    units: &[usize],
    radius: f32,
    steps: usize,
    seed: u64,
) -> Tensor {
    let mut shape = vec![units.len()];
    shape.extend(&model.config.input_shape);
    let d = model.config.input_features();
    let mut rng = stream(seed, Purpose::Misc, 11, 0);
    let mut x = Tensor::from_vec(
        &shape,
        (0..units.len() * d)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect(),
    );
    project(&mut x, radius / 10.0, true);
    let mut dx = Tensor::zeros(&shape);
    let step = radius / 20.0;
    for _ in 0..steps {
        model.encode(&x);
        model.backward_from_code(&x, Some(&mut dx), &mut |code, dcode| {
            dcode.resize(code.shape());
            dcode.fill(0.0);
            let k = code.cols();
            for (row, &u) in units.iter().enumerate() {
                dcode.data_mut()[row * k + u] = 1.0;
            }
        });
        for (xr, gr) in x
            .data_mut()
            .chunks_exact_mut(d)
            .zip(dx.data().chunks_exact(d))
        {
            let norm = gr.iter().map(|g| g * g).sum::<f32>().sqrt();
            if norm > 0.0 {
                for (x, g) in xr.iter_mut().zip(gr) {
                    *x += step * g / norm;
                }
            }
        }
        project(&mut x, radius, false);
    }
    x
}

/// Scales each row onto the sphere of `radius` (`exact`) or back inside the ball.
fn project(x: &mut Tensor, radius: f32, exact: bool) {
    let d = x.cols();
    for r in x.data_mut().chunks_exact_mut(d) {
        let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 && (exact || norm > radius) {
            r.iter_mut().for_each(|v| *v *= radius / norm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::init::Init;
    use crate::engine::layers::activation::Activation;
    use crate::model::ModelConfig;

    #[test]
    fn a_linear_unit_is_maximized_by_its_weight_row_scaled_to_the_radius() {
        // code_j = w_j·x + b_j: over ‖x‖ ≤ r the maximum is at r·w_j/‖w_j‖. With a tanh code the
        // maximizer is the same direction (tanh is increasing).
        for act in [Activation::Linear, Activation::Tanh] {
            let cfg = ModelConfig {
                input_shape: vec![10],
                hidden: vec![3],
                activation: act,
                code_activation: None,
                output_activation: Activation::Linear,
                tied: false,
                init: Init::GlorotUniform,
                conv: None,
                variational: false,
                missing_indicator: false,
            };
            let mut m = cfg.build(5).unwrap();
            let x = maximize_units(&mut m, &[0, 2], 2.0, 300, 1);
            let w = m.params.values[m.params.find("encoder.0.weight").unwrap().0].clone();
            for (row, unit) in [(0, 0), (1, 2)] {
                let wr = &w.data()[unit * 10..unit * 10 + 10];
                let n = wr.iter().map(|v| v * v).sum::<f32>().sqrt();
                #[allow(clippy::needless_range_loop)]
                // finite differences write into what they index
                for j in 0..10 {
                    let want = 2.0 * wr[j] / n;
                    assert!(
                        (x.row(row)[j] - want).abs() < 0.02,
                        "{act}: {:?} vs {want}",
                        x.row(row)
                    );
                }
            }
        }
    }

    #[test]
    fn top_activations_are_sorted_by_the_unit() {
        let codes = Tensor::from_vec(&[4, 2], vec![0.1, 5.0, 0.9, 1.0, 0.5, 3.0, 0.2, 4.0]);
        assert_eq!(
            top_activations(&codes, &[0, 1], 2),
            vec![vec![1, 2], vec![0, 3]]
        );
    }
}
