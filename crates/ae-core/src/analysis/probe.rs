//! How much of the labels some features carry: softmax (multinomial logistic) regression on
//! standardized features, scored by test accuracy.
use crate::analysis::classifier::{ClassifierConfig, ClassifierTask};
use crate::engine::optim::{Optimizer, OptimizerKind};
use crate::engine::tensor::Tensor;
use crate::objective::{Examples, WeightDecay};
use crate::training::fit::{fit_quietly, LoopConfig};
use crate::Result;

/// The share of `pred` that equals `labels`.
pub fn accuracy(pred: &[u32], labels: &[u32]) -> f64 {
    let right = pred.iter().zip(labels).filter(|(p, y)| p == y).count();
    right as f64 / labels.len().max(1) as f64
}

/// Centres and scales every feature of `train` and `test` by the mean and deviation of `train`
/// (`[N, D]` each); a constant feature (a border pixel) is centred and left at zero.
pub fn standardize(train: &mut Tensor, test: &mut Tensor) {
    let d = train.cols();
    let n = train.rows().max(1) as f64;
    let mut mean = vec![0.0f64; d];
    let mut sq = vec![0.0f64; d];
    for r in train.data().chunks_exact(d) {
        for ((m, q), &v) in mean.iter_mut().zip(&mut sq).zip(r) {
            *m += v as f64;
            *q += (v as f64) * (v as f64);
        }
    }
    let (mean, inv): (Vec<f32>, Vec<f32>) = mean
        .iter()
        .zip(&sq)
        .map(|(&m, &q)| {
            let mu = m / n;
            let sd = (q / n - mu * mu).max(0.0).sqrt();
            (mu as f32, if sd > 1e-8 { (1.0 / sd) as f32 } else { 0.0 })
        })
        .unzip();
    for t in [train, test] {
        for r in t.data_mut().chunks_exact_mut(d) {
            for ((v, m), i) in r.iter_mut().zip(&mean).zip(&inv) {
                *v = (*v - m) * i;
            }
        }
    }
}

/// Softmax regression as a probe: Adam in batches of 256 with an L2 penalty, on standardized
/// features.
#[derive(Clone, Debug)]
pub struct SoftmaxProbe {
    /// Passes over the training features.
    pub epochs: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// λ of the L2 penalty on the weights.
    pub l2: f32,
    /// Seed of the initial weights and the batches.
    pub seed: u64,
}

impl SoftmaxProbe {
    /// Fits on `train` (`[N, D]`) with `train_labels` of `classes` classes and returns the test
    /// accuracy.
    pub fn accuracy(
        &self,
        mut train: Tensor,
        train_labels: &[u32],
        mut test: Tensor,
        test_labels: &[u32],
        classes: usize,
    ) -> Result<f64> {
        standardize(&mut train, &mut test);
        let cfg = ClassifierConfig {
            encoder: None,
            input_shape: vec![train.cols()],
            head_hidden: None,
            classes,
        };
        let mut task = ClassifierTask {
            model: cfg.build(self.seed)?,
            weight_decay: WeightDecay::L2(self.l2),
        };
        let mut opt = Optimizer::new(OptimizerKind::ADAM, self.lr, &task.model.params);
        let lc = LoopConfig {
            epochs: self.epochs,
            batch_size: 256,
            seed: self.seed,
            early_stopping: None,
        };
        fit_quietly(
            &mut task,
            &mut opt,
            &lc,
            Examples::labeled(&train, train_labels)?,
        )?;
        Ok(task.model.accuracy(&test, test_labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardized_features_have_zero_mean_and_unit_deviation_on_train() {
        let mut train = Tensor::from_vec(&[4, 2], vec![1.0, 5.0, 3.0, 5.0, 5.0, 5.0, 7.0, 5.0]);
        let mut test = Tensor::from_vec(&[1, 2], vec![6.0, 9.0]);
        standardize(&mut train, &mut test);
        let col: Vec<f32> = train.data().iter().step_by(2).copied().collect();
        let mean = col.iter().sum::<f32>() / 4.0;
        let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 4.0;
        assert!(
            mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
            "{mean} {var}"
        );
        // The constant column is centred and left at zero, in test too.
        assert!(train.data().iter().skip(1).step_by(2).all(|&v| v == 0.0));
        assert_eq!(test.data()[1], 0.0);
        assert!((test.data()[0] - 2.0 / 5f32.sqrt()).abs() < 1e-5);
    }

    #[test]
    fn separable_classes_are_learned() {
        let x: Vec<f32> = (0..200)
            .flat_map(|i| [(i % 2) as f32 + 0.1 * (i as f32 / 200.0), 0.3])
            .collect();
        let y: Vec<u32> = (0..100).map(|i| (i % 2) as u32).collect();
        let train = Tensor::from_vec(&[100, 2], x[..200].to_vec());
        let test = train.clone();
        let probe = SoftmaxProbe {
            epochs: 50,
            lr: 0.05,
            l2: 0.0,
            seed: 0,
        };
        let acc = probe.accuracy(train, &y, test, &y, 2).unwrap();
        assert!(acc > 0.99, "{acc}");
        assert_eq!(accuracy(&[0, 1, 1], &[0, 1, 0]), 2.0 / 3.0);
    }
}
