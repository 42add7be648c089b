//! Classifiers that reuse what an autoencoder learned: the encoder's layers followed by a small head
//! (an optional hidden ReLU layer, then one logit per class), trained with softmax cross-entropy
//! through the same loop as every autoencoder. Without an encoder the head alone is softmax
//! (multinomial logistic) regression on the inputs, which `ae probe` fits on codes.
//!
//! Parameter names follow a PyTorch module with two `nn.Sequential` children, `encoder` (the
//! autoencoder's names, unchanged) and `head` (`head.0` linear, `head.1` ReLU, `head.2` linear).
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::engine::init::Init;
use crate::engine::layers::activation::{Activation, ActivationLayer};
use crate::engine::layers::columns::FirstColumns;
use crate::engine::layers::dense::{Dense, WeightLayout};
use crate::engine::layers::Mode;
use crate::engine::loss::softmax_cross_entropy;
use crate::engine::params::{ParamKind, Params};
use crate::engine::rng::{stream, Purpose};
use crate::engine::sequential::Sequential;
use crate::engine::tensor::Tensor;
use crate::model::{Autoencoder, ModelConfig};
use crate::objective::WeightDecay;
use crate::training::fit::{Examples, Task, Terms};
use crate::{Error, Result};

/// The architecture of a classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// The autoencoder whose encoder is the body; none: the head reads the inputs directly.
    pub encoder: Option<ModelConfig>,
    /// Per-example input shape.
    pub input_shape: Vec<usize>,
    /// Units of the head's hidden ReLU layer; none: the head is one linear layer.
    pub head_hidden: Option<usize>,
    /// Number of classes (logits).
    pub classes: usize,
}

impl ClassifierConfig {
    /// Checks the config; errors name the field and the value.
    pub fn validate(&self) -> Result<()> {
        if self.classes < 2 {
            return Err(Error::config(
                "classes",
                format!(
                    "a classifier needs at least 2 classes, got {}",
                    self.classes
                ),
            ));
        }
        if self.head_hidden == Some(0) {
            return Err(Error::config(
                "head_hidden",
                "must be at least 1 unit, got 0",
            ));
        }
        if let Some(e) = &self.encoder {
            e.validate()?;
            if e.input_shape != self.input_shape {
                return Err(Error::Shape {
                    what: "classifier input".into(),
                    expected: e.input_shape.clone(),
                    got: self.input_shape.clone(),
                });
            }
        }
        Ok(())
    }

    /// Features the head reads: the encoder's code, or the inputs.
    pub fn head_inputs(&self) -> usize {
        match &self.encoder {
            Some(e) => e.code_size(),
            None => self.input_shape.iter().product(),
        }
    }

    /// Names and shapes of the parameters, computed without allocating them.
    pub fn param_shapes(&self) -> Result<Vec<(String, Vec<usize>)>> {
        self.validate()?;
        let mut shapes = match &self.encoder {
            Some(e) => e
                .param_shapes()?
                .into_iter()
                .filter(|(n, _)| n.starts_with("encoder."))
                .collect(),
            None => Vec::new(),
        };
        for (name, inputs, outputs) in self.head_layers() {
            shapes.push((format!("{name}.weight"), vec![outputs, inputs]));
            shapes.push((format!("{name}.bias"), vec![outputs]));
        }
        Ok(shapes)
    }

    /// `(name, inputs, outputs)` of each linear layer of the head.
    fn head_layers(&self) -> Vec<(&'static str, usize, usize)> {
        let d = self.head_inputs();
        match self.head_hidden {
            Some(h) => vec![("head.0", d, h), ("head.2", h, self.classes)],
            None => vec![("head.0", d, self.classes)],
        }
    }

    /// Builds the classifier with fresh weights from `seed`: the encoder initialized exactly as
    /// [`ModelConfig::build`] would for an autoencoder trained with that seed (a from-scratch
    /// baseline), the head from a stream of its own.
    pub fn build(&self, seed: u64) -> Result<Classifier> {
        self.validate()?;
        let body = match &self.encoder {
            Some(e) => Some(e.build(seed)?),
            None => None,
        };
        self.assemble(body, seed)
    }

    fn assemble(&self, body: Option<Autoencoder>, seed: u64) -> Result<Classifier> {
        let (mut params, mut net) = match body {
            Some(ae) => encoder_of(ae)?,
            None => (Params::default(), Sequential::new()),
        };
        let (body_layers, body_params) = (net.len(), params.len());
        self.push_head(&mut params, &mut net, seed);
        let out = net.output_shape(&self.input_shape)?;
        if out != [self.classes] {
            return Err(Error::Shape {
                what: "classifier output".into(),
                expected: vec![self.classes],
                got: out,
            });
        }
        Ok(Classifier {
            config: self.clone(),
            params,
            net,
            body_layers,
            body_params,
            dlogits: Tensor::default(),
        })
    }

    /// Appends the head's layers to `net` and their fresh parameters (drawn from `seed`) to
    /// `params`: the head reads the output of whatever `net` already holds.
    pub(crate) fn push_head(&self, params: &mut Params, net: &mut Sequential, seed: u64) {
        let init = self.encoder.as_ref().map_or(Init::Auto, |e| e.init);
        let mut rng = stream(seed, Purpose::Init, 1, 0);
        let layers = self.head_layers();
        for (i, &(name, inputs, outputs)) in layers.iter().enumerate() {
            let last = i + 1 == layers.len();
            let next = if last {
                Activation::Linear
            } else {
                Activation::Relu
            };
            let mut w = Tensor::zeros(&[outputs, inputs]);
            let mut b = Tensor::zeros(&[outputs]);
            init.fill(
                w.data_mut(),
                Some(b.data_mut()),
                inputs,
                outputs,
                next,
                &mut rng,
            );
            let weight = params.add(format!("{name}.weight"), ParamKind::Weight, w);
            let bias = params.add(format!("{name}.bias"), ParamKind::Bias, b);
            net.push(Dense {
                inputs,
                outputs,
                weight,
                bias: Some(bias),
                layout: WeightLayout::OutIn,
            });
            if !last {
                net.push(ActivationLayer {
                    activation: Activation::Relu,
                });
            }
        }
    }
}

/// The encoder layers and their parameters (which [`ModelConfig::build`] creates first) of `ae`.
fn encoder_of(ae: Autoencoder) -> Result<(Params, Sequential)> {
    let seq = encoder_layers(&ae)?;
    let Autoencoder { mut params, .. } = ae;
    let k = encoder_params(&params);
    params.values.truncate(k);
    params.grads.truncate(k);
    params.names.truncate(k);
    params.kinds.truncate(k);
    params.frozen.truncate(k);
    Ok((params, seq))
}

/// How many of `params` (the encoder's come first) belong to the encoder.
fn encoder_params(params: &Params) -> usize {
    params
        .names
        .iter()
        .position(|n| !n.starts_with("encoder."))
        .unwrap_or(params.len())
}

/// Copies of `ae`'s encoder layers (reading the same parameter ids) that compute its code: a
/// variational encoder's mean alone.
pub(crate) fn encoder_layers(ae: &Autoencoder) -> Result<Sequential> {
    let k = encoder_params(&ae.params);
    let mut seq = Sequential::new();
    for layer in ae.net.encoder.layers() {
        if layer.params().iter().any(|p| p.0 >= k) {
            return Err(Error::config(
                "encoder",
                "an encoder layer reads a parameter outside the encoder",
            ));
        }
        seq.push_boxed(layer.clone_box());
    }
    if ae.config.variational {
        seq.push(FirstColumns {
            keep: ae.config.code_size(),
        });
    }
    Ok(seq)
}

/// A built classifier: parameters and the buffers of a pass.
#[derive(Debug)]
pub struct Classifier {
    /// The config it was built from.
    pub config: ClassifierConfig,
    /// Encoder parameters first, then the head's.
    pub params: Params,
    net: Sequential,
    body_layers: usize,
    body_params: usize,
    dlogits: Tensor,
}

impl Classifier {
    /// A classifier whose body is the trained encoder of `ae` (its weights as they are) and whose
    /// head is fresh, drawn from `seed`.
    pub fn on_encoder(
        ae: Autoencoder,
        head_hidden: Option<usize>,
        classes: usize,
        seed: u64,
    ) -> Result<Classifier> {
        let config = ClassifierConfig {
            input_shape: ae.config.input_shape.clone(),
            encoder: Some(ae.config.clone()),
            head_hidden,
            classes,
        };
        config.validate()?;
        config.assemble(Some(ae), seed)
    }

    /// Runs the network; the logits are then [`Classifier::logits`].
    pub fn forward(&mut self, x: &Tensor, mode: Mode) {
        self.net.forward(&self.params, x, mode);
    }

    /// The logits of the last forward pass, `[N, classes]`.
    pub fn logits(&self) -> &Tensor {
        self.net.output()
    }

    /// Freezes (or unfreezes) the encoder's parameters: they get no gradient and no update.
    pub fn freeze_encoder(&mut self, frozen: bool) {
        self.params.frozen[..self.body_params].fill(frozen);
    }

    /// Number of layers that belong to the encoder.
    pub fn encoder_layers(&self) -> usize {
        self.body_layers
    }

    /// Copies the head's weights from `other` (same head shape), e.g. a head trained on
    /// precomputed codes into the classifier with the encoder that computes them.
    pub fn copy_head_from(&mut self, other: &Classifier) -> Result<()> {
        copy_head(&mut self.params, &other.params)
    }

    /// The predicted class of every row of `x` and its softmax probability, in batches.
    pub fn predict(&mut self, x: &Tensor) -> Vec<(u32, f32)> {
        let mut out = Vec::with_capacity(x.rows());
        let classes = self.config.classes;
        x.for_batches(256, |_, batch| {
            self.forward(batch, Mode::Eval);
            out.extend(self.logits().data().chunks_exact(classes).map(top_class));
        });
        out
    }

    /// The share of rows of `x` whose predicted class is their label.
    pub fn accuracy(&mut self, x: &Tensor, labels: &[u32]) -> f64 {
        let right = self
            .predict(x)
            .iter()
            .zip(labels)
            .filter(|((p, _), y)| p == *y)
            .count();
        right as f64 / labels.len().max(1) as f64
    }
}

/// The most probable class of one row of logits and its softmax probability.
pub(crate) fn top_class(logits: &[f32]) -> (u32, f32) {
    let (best, &top) = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("at least two classes");
    let sum: f32 = logits.iter().map(|&v| (v - top).exp()).sum();
    (best as u32, 1.0 / sum)
}

/// Copies every `head.*` parameter of `from` into the parameter of the same name in `to`.
pub(crate) fn copy_head(to: &mut Params, from: &Params) -> Result<()> {
    for (i, name) in from.names.iter().enumerate() {
        if !name.starts_with("head.") {
            continue;
        }
        let id = to
            .find(name)
            .ok_or_else(|| Error::config("head", format!("no parameter `{name}`")))?;
        if to.values[id.0].shape() != from.values[i].shape() {
            return Err(Error::config("head", format!("`{name}` differs in shape")));
        }
        to.values[id.0] = from.values[i].clone();
    }
    Ok(())
}

/// A classifier with its objective (softmax cross-entropy plus an optional weight penalty): the
/// unit the training loop drives.
#[derive(Debug)]
pub struct ClassifierTask {
    /// The model.
    pub model: Classifier,
    /// Penalty on the weights.
    pub weight_decay: WeightDecay,
}

impl ClassifierTask {
    fn check_labels(&self, labels: &[u32], rows: usize) {
        // The loop gathers labels with their rows; a task without them is a programmer's mistake.
        assert_eq!(
            labels.len(),
            rows,
            "a classifier trains on labeled examples"
        );
    }
}

impl Task for ClassifierTask {
    fn params(&self) -> &Params {
        &self.model.params
    }

    fn params_mut(&mut self) -> &mut Params {
        &mut self.model.params
    }

    fn train_step(&mut self, batch: Examples<'_>, _epoch: usize, _step: usize) -> Terms {
        self.check_labels(batch.labels, batch.x.rows());
        let m = &mut self.model;
        m.forward(batch.x, Mode::Train);
        let loss = softmax_cross_entropy(m.net.output(), batch.labels, &mut m.dlogits);
        std::mem::swap(m.net.output_grad_mut(), &mut m.dlogits);
        m.net
            .backward(&mut m.params, batch.x, None, &mut |_, _, _| {});
        std::mem::swap(m.net.output_grad_mut(), &mut m.dlogits);
        let mut terms = Terms::default();
        terms.push("cross_entropy", loss);
        if self.weight_decay != WeightDecay::None {
            terms.push("weight_decay", self.weight_decay.apply(&mut m.params));
        }
        terms
    }

    fn eval_batch(&mut self, batch: Examples<'_>) -> Terms {
        self.check_labels(batch.labels, batch.x.rows());
        let m = &mut self.model;
        m.forward(batch.x, Mode::Eval);
        let loss = softmax_cross_entropy(m.net.output(), batch.labels, &mut m.dlogits);
        let mut terms = Terms::default();
        terms.push("cross_entropy", loss);
        if self.weight_decay != WeightDecay::None {
            terms.push("weight_decay", self.weight_decay.value(&m.params));
        }
        terms
    }

    fn diagnostics(&mut self, data: Examples<'_>) -> Terms {
        let mut t = Terms::default();
        if !data.labels.is_empty() {
            t.push("accuracy", self.model.accuracy(data.x, data.labels));
        }
        t
    }
}

/// Indices of `per_class` examples of each class, drawn with `seed` (every example of a class that
/// has fewer), in increasing order; `None` takes every example.
pub fn balanced_subset(labels: &[u32], per_class: Option<usize>, seed: u64) -> Vec<usize> {
    let Some(k) = per_class else {
        return (0..labels.len()).collect();
    };
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut by_class = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let mut rng = stream(seed, Purpose::Misc, 7, 0);
    let mut picked: Vec<usize> = by_class
        .into_iter()
        .flat_map(|mut idx| {
            idx.shuffle(&mut rng);
            idx.truncate(k);
            idx
        })
        .collect();
    picked.sort_unstable();
    picked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::optim::{Optimizer, OptimizerKind};
    use crate::training::fit::{fit, LoopConfig, Silent, TrainState};

    fn ae_config() -> ModelConfig {
        ModelConfig {
            input_shape: vec![6],
            hidden: vec![5, 3],
            activation: Activation::Tanh,
            code_activation: None,
            output_activation: Activation::Sigmoid,
            tied: false,
            init: Init::GlorotUniform,
            conv: None,
            variational: false,
            missing_indicator: false,
        }
    }

    #[test]
    fn shapes_and_names_match_what_build_creates() {
        for hidden in [None, Some(4)] {
            for encoder in [None, Some(ae_config())] {
                let cfg = ClassifierConfig {
                    encoder,
                    input_shape: vec![6],
                    head_hidden: hidden,
                    classes: 3,
                };
                let c = cfg.build(1).unwrap();
                let built: Vec<(String, Vec<usize>)> = c
                    .params
                    .names
                    .iter()
                    .cloned()
                    .zip(c.params.values.iter().map(|t| t.shape().to_vec()))
                    .collect();
                assert_eq!(cfg.param_shapes().unwrap(), built);
                assert!(built.iter().all(|(n, _)| !n.starts_with("decoder.")));
            }
        }
    }

    #[test]
    fn the_encoder_keeps_its_trained_weights_and_computes_the_code() {
        let ae = ae_config().build(3).unwrap();
        let x = Tensor::from_vec(&[2, 6], (0..12).map(|i| i as f32 / 12.0).collect());
        let mut reference = ae_config().build(3).unwrap();
        reference.encode(&x);
        let mut c = Classifier::on_encoder(ae, None, 2, 0).unwrap();
        c.forward(&x, Mode::Eval);
        // The code is the input of the head: logits = code·Wᵀ + b.
        let w = c.params.values[c.params.find("head.0.weight").unwrap().0].clone();
        let b = c.params.values[c.params.find("head.0.bias").unwrap().0].clone();
        for r in 0..2 {
            for k in 0..2 {
                let want: f32 = b.data()[k]
                    + (0..3)
                        .map(|j| reference.code().row(r)[j] * w.data()[k * 3 + j])
                        .sum::<f32>();
                assert!((c.logits().row(r)[k] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences_and_frozen_encoders_stay_put() {
        let cfg = ClassifierConfig {
            encoder: Some(ae_config()),
            input_shape: vec![6],
            head_hidden: Some(4),
            classes: 3,
        };
        let x = Tensor::from_vec(
            &[5, 6],
            (0..30).map(|i| ((i * 7 % 11) as f32) / 11.0).collect(),
        );
        let labels = [0u32, 2, 1, 1, 0];
        let ex = Examples::labeled(&x, &labels).unwrap();
        let mut task = ClassifierTask {
            model: cfg.build(4).unwrap(),
            weight_decay: WeightDecay::None,
        };
        task.params_mut().zero_grads();
        task.train_step(ex, 0, 0);
        let analytic = task.model.params.grads.clone();
        let h = 1e-2f32;
        #[allow(clippy::needless_range_loop)] // finite differences write into what they index
        for p in 0..task.model.params.len() {
            for i in (0..task.model.params.values[p].len()).step_by(3) {
                task.model.params.values[p].data_mut()[i] += h;
                let up = task.eval_batch(ex).total();
                task.model.params.values[p].data_mut()[i] -= 2.0 * h;
                let down = task.eval_batch(ex).total();
                task.model.params.values[p].data_mut()[i] += h;
                let fd = (up - down) / (2.0 * h as f64);
                let a = analytic[p].data()[i] as f64;
                assert!(
                    (fd - a).abs() < 2e-3 + 2e-2 * a.abs(),
                    "{} [{i}]: fd {fd} vs {a}",
                    task.model.params.names[p]
                );
            }
        }
        task.model.freeze_encoder(true);
        let before = task.model.params.values.clone();
        let mut opt = Optimizer::new(OptimizerKind::ADAM, 0.01, &task.model.params);
        let lc = LoopConfig {
            epochs: 3,
            batch_size: 2,
            seed: 0,
            early_stopping: None,
        };
        fit(
            &mut task,
            &mut opt,
            &mut TrainState::default(),
            &lc,
            ex,
            None,
            &mut Silent,
        )
        .unwrap();
        for (i, name) in task.model.params.names.iter().enumerate() {
            let moved = task.model.params.values[i] != before[i];
            assert_eq!(moved, name.starts_with("head."), "{name}");
        }
    }

    #[test]
    fn softmax_regression_learns_separable_classes() {
        // Three blobs in 2-D: a linear head must classify them almost perfectly.
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for i in 0..90 {
            let c = i % 3;
            let (cx, cy) = [(0.0, 0.0), (3.0, 0.0), (0.0, 3.0)][c];
            let t = i as f32 * 0.37;
            data.extend([cx + 0.5 * t.sin(), cy + 0.5 * t.cos()]);
            labels.push(c as u32);
        }
        let x = Tensor::from_vec(&[90, 2], data);
        let cfg = ClassifierConfig {
            encoder: None,
            input_shape: vec![2],
            head_hidden: None,
            classes: 3,
        };
        let mut task = ClassifierTask {
            model: cfg.build(0).unwrap(),
            weight_decay: WeightDecay::None,
        };
        let before = task.model.accuracy(&x, &labels);
        let mut opt = Optimizer::new(OptimizerKind::ADAM, 0.05, &task.model.params);
        let lc = LoopConfig {
            epochs: 40,
            batch_size: 16,
            seed: 0,
            early_stopping: None,
        };
        let ex = Examples::labeled(&x, &labels).unwrap();
        fit(
            &mut task,
            &mut opt,
            &mut TrainState::default(),
            &lc,
            ex,
            None,
            &mut Silent,
        )
        .unwrap();
        let after = task.model.accuracy(&x, &labels);
        assert!(after >= 0.97 && after > before, "{before} → {after}");
    }

    #[test]
    fn balanced_subsets_take_k_per_class() {
        let labels: Vec<u32> = (0..100).map(|i| (i % 4) as u32).collect();
        let idx = balanced_subset(&labels, Some(5), 1);
        assert_eq!(idx.len(), 20);
        for c in 0..4 {
            assert_eq!(idx.iter().filter(|&&i| labels[i] == c).count(), 5);
        }
        assert_ne!(idx, balanced_subset(&labels, Some(5), 2));
        assert_eq!(balanced_subset(&labels, None, 1).len(), 100);
        assert_eq!(balanced_subset(&labels, Some(1000), 1).len(), 100);
    }
}
