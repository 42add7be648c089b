//! Training on incomplete rows: a missing cell (NaN in the scaled data) is left out of the loss, so
//! every row teaches the model what it has. A dense, untied model sees it as missing through
//! indicators ([`crate::engine::layers::indicator`]); others get it filled with its column's mean.
//! A share of the observed cells is also hidden the same way at each step and must be rebuilt
//! from the rest (a denoising autoencoder whose corruption is "missing", as in Gondara & Wang's
//! MIDA, 2018): what `ae impute` then asks of the model.
use rand::Rng as _;

use crate::engine::loss::LossKind;
use crate::engine::rng::Rng;

/// Per-column means of the observed (non-NaN) cells of rows `[N, D]`; 0 for a column with none.
pub fn column_means(data: &[f32], d: usize) -> Vec<f32> {
    let mut sum = vec![0.0f64; d];
    let mut count = vec![0usize; d];
    for row in data.chunks_exact(d.max(1)) {
        for (j, &v) in row.iter().enumerate().filter(|(_, v)| !v.is_nan()) {
            sum[j] += v as f64;
            count[j] += 1;
        }
    }
    sum.iter()
        .zip(&count)
        .map(|(&s, &c)| if c > 0 { (s / c as f64) as f32 } else { 0.0 })
        .collect()
}

/// The model's input for rows `x`: missing cells and, with probability `hide`, observed ones set to
/// their column's `fill`, or to NaN without one (a model with indicators fills them itself).
pub fn fill_input(x: &[f32], fill: Option<&[f32]>, hide: f32, rng: &mut Rng, out: &mut [f32]) {
    let d = fill.map_or(1, |f| f.len().max(1));
    for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
        let hidden = v.is_nan() || (hide > 0.0 && rng.random::<f32>() < hide);
        *o = match (hidden, fill) {
            (false, _) => v,
            (true, Some(f)) => f[i % d],
            (true, None) => f32::NAN,
        };
    }
}

/// The indices of the rows of `data` (`[N, d]`) with no missing (NaN) cell.
pub fn complete_rows(data: &[f32], d: usize) -> Vec<usize> {
    data.chunks_exact(d.max(1))
        .enumerate()
        .filter(|(_, r)| !r.iter().any(|v| v.is_nan()))
        .map(|(i, _)| i)
        .collect()
}

/// Missing cells replaced by their column's `fill`, in place (for inference on incomplete rows).
pub fn fill_in_place(x: &mut [f32], fill: &[f32]) {
    let d = fill.len().max(1);
    for (i, v) in x.iter_mut().enumerate() {
        if v.is_nan() {
            *v = fill[i % d];
        }
    }
}

/// The training target: `x`, with each missing cell set to the reconstruction's own value there,
/// so that the loss's gradient at that cell is zero (for MSE, r − t; for BCE after a sigmoid,
/// also r − t).
pub fn target(x: &[f32], recon: &[f32], out: &mut [f32]) {
    for ((o, &v), &r) in out.iter_mut().zip(x).zip(recon) {
        *o = if v.is_nan() { r } else { v };
    }
}

/// The mean loss over the observed cells only.
pub fn observed_loss(loss: LossKind, recon: &[f32], x: &[f32]) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (&r, &v) in recon.iter().zip(x) {
        if v.is_nan() {
            continue;
        }
        let (r, v) = (r as f64, v as f64);
        sum += match loss {
            LossKind::Mse => (r - v).powi(2),
            LossKind::Bce => {
                let r = r.clamp(1e-7, 1.0 - 1e-7);
                -(v * r.ln() + (1.0 - v) * (1.0 - r).ln())
            }
        };
        n += 1;
    }
    sum / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::{stream, Purpose};

    #[test]
    fn means_fill_and_targets_leave_observed_cells_alone() {
        let nan = f32::NAN;
        let x = [1.0, nan, 3.0, 4.0, nan, nan];
        assert_eq!(column_means(&x, 2), vec![2.0, 4.0]);
        let mut out = [0.0; 6];
        let mut rng = stream(0, Purpose::Step, 0, 0);
        fill_input(&x, Some(&[2.0, 4.0]), 0.0, &mut rng, &mut out);
        assert_eq!(out, [1.0, 4.0, 3.0, 4.0, 2.0, 4.0]);
        assert_eq!(complete_rows(&x, 2), vec![1]);
        let recon = [0.5; 6];
        target(&x, &recon, &mut out);
        assert_eq!(out, [1.0, 0.5, 3.0, 4.0, 0.5, 0.5]);
        // Only the three observed cells count: (0.25 + 6.25 + 12.25) / 3.
        assert!((observed_loss(LossKind::Mse, &recon, &x) - 18.75 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn the_step_on_incomplete_rows_follows_the_observed_loss_by_finite_differences() {
        for indicator in [false, true] {
            step_follows_observed_loss(indicator);
        }
    }

    fn step_follows_observed_loss(indicator: bool) {
        use crate::engine::tensor::Tensor;
        use crate::model::ModelConfig;
        use crate::objective::{AutoencoderTask, Examples, Objective, Task};
        let nan = f32::NAN;
        let x = Tensor::from_vec(
            &[4, 3],
            vec![0.1, nan, 0.7, 0.4, 0.5, nan, nan, 0.9, 0.2, 0.3, 0.6, 0.8],
        );
        let objective = Objective {
            missing: Some(0.0),
            ..Objective::default()
        };
        let model = ModelConfig {
            missing_indicator: indicator,
            ..ModelConfig::dense(&[3], &[4, 2])
        }
        .build(5)
        .unwrap();
        // With indicators the first layer reads 3 values and 3 flags.
        assert_eq!(
            model.params.values[0].shape(),
            &[4, 3 + 3 * indicator as usize]
        );
        let mut task = AutoencoderTask::new(model, objective).unwrap();
        task.fill = column_means(x.data(), 3);
        task.params_mut().zero_grads();
        let at = task.train_step(Examples::new(&x), 0, 0).get("mse").unwrap();
        let observed = x.data().iter().filter(|v| !v.is_nan()).count() as f64;
        // The step's gradient is of the loss summed over observed cells over all N·D cells.
        let scale = observed / x.len() as f64;
        let eps = 1e-3f32;
        let mut checked = 0;
        for p in 0..task.params().values.len() {
            for i in 0..task.params().values[p].len() {
                let g = task.params().grads[p].data()[i] as f64;
                let base = task.params().values[p].data()[i];
                let mut loss_at = |v: f32| {
                    task.params_mut().values[p].data_mut()[i] = v;
                    task.eval_batch(Examples::new(&x)).get("mse").unwrap()
                };
                let fd = (loss_at(base + eps) - loss_at(base - eps)) / (2.0 * eps as f64);
                task.params_mut().values[p].data_mut()[i] = base;
                assert!(
                    (g - fd * scale).abs() <= 2e-3 * (fd.abs() * scale + 1e-2),
                    "indicator {indicator}, param {p}[{i}]: step {g}, finite differences {}",
                    fd * scale
                );
                checked += 1;
            }
        }
        assert!(checked > 20 && at.is_finite());
    }

    #[test]
    fn hiding_replaces_about_the_asked_share_of_observed_cells() {
        let x = vec![1.0f32; 10_000];
        let mut out = vec![0.0; 10_000];
        let mut rng = stream(3, Purpose::Step, 0, 0);
        fill_input(&x, Some(&[0.0]), 0.25, &mut rng, &mut out);
        let hidden = out.iter().filter(|&&v| v == 0.0).count();
        assert!((2300..2700).contains(&hidden), "{hidden}");
    }
}
