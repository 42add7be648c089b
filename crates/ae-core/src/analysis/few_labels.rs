//! Few labels: a softmax head on a pretrained encoder, trained on a handful of labelled
//! examples with the encoder frozen or fine-tuned, against the same network from scratch: the
//! protocol that measures what pretraining is worth (Erhan et al., 2010).
use std::fmt;

use serde::Serialize;

use crate::analysis::classifier::{Classifier, ClassifierConfig, ClassifierTask};
use crate::analysis::semi_supervised::{SemiSupervised, SemiSupervisedTask};
use crate::engine::optim::{Optimizer, OptimizerKind};
use crate::engine::tensor::Tensor;
use crate::model::Autoencoder;
use crate::objective::{Examples, Objective, Task, WeightDecay};
use crate::training::fit::{fit_quietly, LoopConfig};
use crate::training::settings::LrSchedule;
use crate::Result;

/// How the encoder is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The same network from random weights.
    Scratch,
    /// The pretrained encoder, unchanged; only the head learns.
    Frozen,
    /// The pretrained encoder, trained further with the head.
    FineTuned,
    /// Fine-tuned with the joint objective of [`crate::analysis::semi_supervised`]: the
    /// labelled examples' cross-entropy, the reconstruction of every training example, and
    /// pseudo-labels on corrupted copies of them.
    SemiSupervised,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Scratch => "scratch",
            Mode::Frozen => "frozen",
            Mode::FineTuned => "fine-tuned",
            Mode::SemiSupervised => "semi-supervised",
        })
    }
}

/// Epochs when none are given: about 200,000 example presentations, between 10 and 200 epochs,
/// so that 10 labels per class get enough steps and the full set does not take an hour.
pub fn default_epochs(examples: usize) -> usize {
    (200_000 / examples.max(1)).clamp(10, 200)
}

/// How the classifiers train (Adam, softmax cross-entropy).
#[derive(Clone, Debug)]
pub struct FewLabels {
    /// Units of a hidden ReLU layer in the head; none: a linear softmax head.
    pub head_hidden: Option<usize>,
    /// Epochs; none: [`default_epochs`].
    pub epochs: Option<usize>,
    /// Epochs of fine-tuning after the head has trained on the frozen codes; none: `epochs`.
    pub finetune_epochs: Option<usize>,
    /// The encoder's learning rate while fine-tuning, as a multiple of `lr`.
    pub encoder_lr_scale: f32,
    /// Examples per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Weight penalty.
    pub weight_decay: WeightDecay,
    /// The joint objective of [`Mode::SemiSupervised`].
    pub semi: SemiSupervised,
}

/// What [`Mode::SemiSupervised`] learns from besides the labelled examples.
#[derive(Clone, Copy, Debug)]
pub struct Unlabelled<'a> {
    /// Every training example (the labelled ones among them), `[N, ..input_shape]`.
    pub x: &'a Tensor,
    /// The autoencoder's objective, for their reconstruction.
    pub objective: &'a Objective,
    /// Unlabelled examples per step.
    pub batch_size: usize,
    /// Epochs over them; none: [`default_semi_supervised_epochs`].
    pub epochs: Option<usize>,
    /// How the learning rate moves over those epochs.
    pub schedule: LrSchedule,
}

/// Epochs over the unlabelled examples when none are given: about 1,500 steps of 256, between 3
/// and 100 epochs. (On Fashion-MNIST with 100 labels, 12 epochs scored no better than 6.)
pub fn default_semi_supervised_epochs(examples: usize) -> usize {
    (384_000 / examples.max(1)).clamp(3, 100)
}

impl FewLabels {
    /// A classifier of `classes` classes on `ae`'s encoder (or the same network from scratch)
    /// trained on `x` with `labels` in `mode`; returns it with the epochs it trained.
    ///
    /// Frozen and fine-tuned heads first train alone on the codes, computed once (a frozen
    /// encoder gives the same codes every epoch); fine-tuning then starts from that head, not a
    /// random one (linear probing then fine-tuning, Kumar et al. 2022): a random head's first
    /// gradients would reach into the pretrained encoder and undo what it learned. So does
    /// semi-supervised training, which needs `unlabelled`.
    #[allow(clippy::too_many_arguments)] // the protocol's inputs, each distinct
    pub fn train(
        &self,
        ae: Autoencoder,
        x: &Tensor,
        labels: &[u32],
        classes: usize,
        mode: Mode,
        seed: u64,
        unlabelled: Option<Unlabelled<'_>>,
    ) -> Result<(Classifier, usize)> {
        let epochs = self.epochs.unwrap_or_else(|| default_epochs(x.rows()));
        let model = match mode {
            Mode::Scratch => {
                let model = ClassifierConfig {
                    input_shape: ae.config.input_shape.clone(),
                    encoder: Some(ae.config.clone()),
                    head_hidden: self.head_hidden,
                    classes,
                }
                .build(seed)?;
                self.fit(model, x, labels, epochs, seed, 1.0)?
            }
            Mode::Frozen | Mode::FineTuned | Mode::SemiSupervised => {
                let mut ae = ae;
                let codes = ae.encode_rows(x, usize::MAX);
                let head = ClassifierConfig {
                    encoder: None,
                    input_shape: vec![codes.cols()],
                    head_hidden: self.head_hidden,
                    classes,
                }
                .build(seed)?;
                let head = self.fit(head, &codes, labels, epochs, seed, 1.0)?;
                if mode == Mode::SemiSupervised {
                    let Some(u) = unlabelled else {
                        return Err(crate::Error::config(
                            "unlabelled",
                            "semi-supervised training needs the unlabelled examples",
                        ));
                    };
                    let model = self.fit_semi_supervised(ae, &head, x, labels, u, seed)?;
                    return Ok((model, epochs));
                }
                let mut model = Classifier::on_encoder(ae, self.head_hidden, classes, seed)?;
                model.copy_head_from(&head)?;
                if mode == Mode::FineTuned {
                    let epochs = self.finetune_epochs.unwrap_or(epochs);
                    model = self.fit(model, x, labels, epochs, seed, self.encoder_lr_scale)?;
                }
                model
            }
        };
        Ok((model, epochs))
    }

    /// Trains the head `head` on `ae`'s encoder, and the encoder, with the joint objective.
    fn fit_semi_supervised(
        &self,
        ae: Autoencoder,
        head: &Classifier,
        x: &Tensor,
        labels: &[u32],
        u: Unlabelled<'_>,
        seed: u64,
    ) -> Result<Classifier> {
        let semi = SemiSupervised {
            labelled_batch: self.batch_size,
            ..self.semi
        };
        let mut task = SemiSupervisedTask::new(
            ae,
            u.objective.clone(),
            head,
            (x.clone(), labels.to_vec()),
            semi,
            seed,
        )?;
        let epochs = u
            .epochs
            .unwrap_or_else(|| default_semi_supervised_epochs(u.x.rows()));
        let mut opt = Optimizer::new(OptimizerKind::ADAM, self.lr, task.params());
        opt.schedule = u
            .schedule
            .steps(epochs, u.x.rows().div_ceil(u.batch_size.max(1)));
        let lc = LoopConfig {
            epochs,
            batch_size: u.batch_size,
            seed,
            early_stopping: None,
        };
        fit_quietly(&mut task, &mut opt, &lc, Examples::new(u.x))?;
        task.into_classifier()
    }

    /// Trains `model` with softmax cross-entropy through the training loop; the encoder's
    /// parameters learn at `encoder_scale` times the head's rate.
    fn fit(
        &self,
        model: Classifier,
        x: &Tensor,
        labels: &[u32],
        epochs: usize,
        seed: u64,
        encoder_scale: f32,
    ) -> Result<Classifier> {
        let mut task = ClassifierTask {
            model,
            weight_decay: self.weight_decay,
        };
        let mut opt = Optimizer::new(OptimizerKind::ADAM, self.lr, &task.model.params);
        for (scale, name) in opt.lr_scale.iter_mut().zip(&task.model.params.names) {
            if name.starts_with("encoder.") {
                *scale = encoder_scale;
            }
        }
        let lc = LoopConfig {
            epochs,
            batch_size: self.batch_size,
            seed,
            early_stopping: None,
        };
        fit_quietly(&mut task, &mut opt, &lc, Examples::labeled(x, labels)?)?;
        Ok(task.model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    #[test]
    fn frozen_keeps_the_encoder_and_fine_tuning_moves_it_only_when_allowed() {
        let x = Tensor::from_vec(
            &[60, 6],
            (0..360).map(|i| ((i * 7 % 13) as f32) / 13.0).collect(),
        );
        let labels: Vec<u32> = (0..60).map(|i| (i % 3) as u32).collect();
        let ae = || ModelConfig::dense(&[6], &[4]).build(5).unwrap();
        let before = ae().params.values[0].clone();
        let protocol = FewLabels {
            head_hidden: None,
            epochs: Some(3),
            finetune_epochs: None,
            encoder_lr_scale: 1.0,
            batch_size: 16,
            lr: 0.01,
            weight_decay: WeightDecay::None,
            semi: SemiSupervised::default(),
        };
        let encoder_weight = |c: &Classifier| {
            let id = c.params.find("encoder.0.weight").unwrap();
            c.params.values[id.0].clone()
        };
        let (frozen, epochs) = protocol
            .train(ae(), &x, &labels, 3, Mode::Frozen, 0, None)
            .unwrap();
        assert_eq!(epochs, 3);
        assert_eq!(encoder_weight(&frozen), before);
        let (tuned, _) = protocol
            .train(ae(), &x, &labels, 3, Mode::FineTuned, 0, None)
            .unwrap();
        assert_ne!(encoder_weight(&tuned), before);
        let still = FewLabels {
            encoder_lr_scale: 0.0,
            ..protocol.clone()
        };
        let (held, _) = still
            .train(ae(), &x, &labels, 3, Mode::FineTuned, 0, None)
            .unwrap();
        assert_eq!(encoder_weight(&held), before);
        let u = Unlabelled {
            x: &x,
            objective: &Objective::default(),
            batch_size: 16,
            epochs: Some(2),
            schedule: LrSchedule::Cosine { warmup: 0 },
        };
        let (semi, _) = protocol
            .train(ae(), &x, &labels, 3, Mode::SemiSupervised, 0, Some(u))
            .unwrap();
        assert_ne!(encoder_weight(&semi), before);
        assert!(semi.params.names.iter().all(|n| !n.starts_with("decoder.")));
        assert!(protocol
            .train(ae(), &x, &labels, 3, Mode::SemiSupervised, 0, None)
            .is_err());
        assert_eq!(default_semi_supervised_epochs(60_000), 6);
        assert_eq!(default_epochs(100), 200);
        assert_eq!(default_epochs(60_000), 10);
    }
}
