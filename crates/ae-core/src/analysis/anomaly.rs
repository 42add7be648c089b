//! Reconstruction error as an anomaly score: what the model rebuilds badly is what it has not
//! seen the like of.
use crate::analysis::inference::Inference;
use crate::engine::tensor::Tensor;
use crate::objective::Examples;
use crate::training::fit::fit_quietly;
use crate::training::prepare;
use crate::training::settings::Settings;
use crate::Result;

/// The one-class protocol's model for one class: a fresh model with `settings` on inputs of
/// `input_shape`, trained on `normal` alone (already in the model's units; no validation, no
/// early stopping, no greedy pretraining, nothing written), then the reconstruction scores of
/// `test`: higher is more anomalous.
pub fn one_class_scores(
    settings: &Settings,
    input_shape: &[usize],
    normal: &Tensor,
    test: &Tensor,
) -> Result<Vec<f32>> {
    let (mut task, mut optimizer) = prepare(settings, input_shape)?;
    let mut cfg = settings.loop_config();
    cfg.early_stopping = None;
    fit_quietly(&mut task, &mut optimizer, &cfg, Examples::new(normal))?;
    Ok(reconstruction_scores(&Inference::cpu(&task.model), test, false)?.0)
}

/// Per-example anomaly scores: the mean squared error of each example's reconstruction (in the
/// model's scaled space), whatever loss the model was trained with: a binary cross-entropy score
/// would add each image's own entropy, which has nothing to do with how well it was rebuilt.
/// With `per_feature`, also every feature's squared error, `[N × features]` row-major.
///
/// The model is only read: each call computes on its own copy of the layers' buffers.
pub fn reconstruction_scores(
    model: &Inference<'_>,
    x: &Tensor,
    per_feature: bool,
) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
    let (n, c) = (x.rows(), x.cols());
    let mut scores = Vec::with_capacity(n);
    let mut features = per_feature.then(|| Vec::with_capacity(n * c));
    // Reconstructions a chunk at a time, not all at once (a multiple of the CPU's batch of 256,
    // so the same batches as one pass over `x`).
    x.try_for_batches(SCORE_CHUNK, |_, batch| {
        let rec = model.reconstruct(batch)?;
        for (out, inp) in rec.data().chunks_exact(c).zip(batch.data().chunks_exact(c)) {
            let mut sum = 0.0f64;
            for (&o, &t) in out.iter().zip(inp) {
                let e = (o - t) * (o - t);
                sum += e as f64;
                if let Some(f) = features.as_mut() {
                    f.push(e);
                }
            }
            scores.push((sum / c.max(1) as f64) as f32);
        }
        Ok(())
    })?;
    Ok((scores, features))
}

/// Rows reconstructed at a time for scores.
const SCORE_CHUNK: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::init::Init;
    use crate::engine::layers::activation::Activation;
    use crate::model::ModelConfig;

    #[test]
    fn scores_are_per_example_mean_squared_errors() {
        let cfg = ModelConfig {
            input_shape: vec![4],
            hidden: vec![2],
            activation: Activation::Tanh,
            code_activation: None,
            output_activation: Activation::Sigmoid,
            tied: false,
            init: Init::GlorotUniform,
            conv: None,
            variational: false,
            missing_indicator: false,
        };
        let mut m = cfg.build(0).unwrap();
        // More rows than one batch, so batching is exercised.
        let x = Tensor::from_vec(
            &[300, 4],
            (0..1200).map(|i| (i % 13) as f32 / 13.0).collect(),
        );
        let (s, f) = reconstruction_scores(&Inference::cpu(&m), &x, true).unwrap();
        let f = f.unwrap();
        m.forward(&x, crate::engine::layers::Mode::Eval);
        for i in [0, 255, 256, 299] {
            let want: f32 = (0..4)
                .map(|j| (m.reconstruction().row(i)[j] - x.row(i)[j]).powi(2))
                .sum::<f32>()
                / 4.0;
            assert!((s[i] - want).abs() < 1e-6, "{i}: {} vs {want}", s[i]);
            assert!((f[i * 4..i * 4 + 4].iter().sum::<f32>() / 4.0 - s[i]).abs() < 1e-6);
        }
    }
}
