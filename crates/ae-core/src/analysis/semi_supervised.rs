//! Semi-supervised fine-tuning: one objective over a few labelled and many unlabelled examples,
//! through one encoder shared by a classifier head and the autoencoder's decoder.
//!
//! Each step draws a batch of labelled examples and takes the loop's batch of (all, unlabelled)
//! examples, and minimizes
//!
//! ```text
//!   CE(labelled)  +  λ · reconstruction(unlabelled)  +  μ(t) · CE(pseudo-labels on unlabelled)
//! ```
//!
//! The reconstruction term keeps the encoder an autoencoder's (the joint objective of Ranzato &
//! Szummer, 2008, and of ladder networks' top layer). The pseudo-label term is a consistency term:
//! the classifier's own prediction on a clean unlabelled example, kept where its probability is
//! at least τ, is the target for a corrupted (shifted, flipped, noised) copy of that example, so
//! the classifier learns to be stable under corruption (Lee, 2013; Sohn et al., 2020). μ ramps up
//! linearly over the first epochs, while the classifier's guesses are still poor.
use rand::Rng as _;
use rand_distr::StandardNormal;

use crate::analysis::classifier::{
    copy_head, encoder_layers, top_class, Classifier, ClassifierConfig,
};
use crate::engine::layers::Mode;
use crate::engine::loss::softmax_cross_entropy;
use crate::engine::params::Params;
use crate::engine::rng::{stream, Purpose, Rng};
use crate::engine::sequential::Sequential;
use crate::engine::tensor::Tensor;
use crate::model::Autoencoder;
use crate::objective::noise::Noise;
use crate::objective::{AutoencoderTask, Examples, Objective, Task, Terms};
use crate::training::trainer::gather;
use crate::{Error, Result};

/// Random corruption of inputs: shifts and mirror images of images, then noise.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Augment {
    /// Images move by up to this many pixels along each axis (the gap is filled with zeros).
    pub shift: usize,
    /// Images are mirrored left to right with probability one half.
    pub flip: bool,
    /// Noise added after shifting and flipping.
    pub noise: Option<Noise>,
}

/// The shift when none is given: a fourteenth of an image's smaller side (2 pixels on 28×28), so
/// small images, whose classes a shift of a quarter of their size might change, get none.
pub fn default_shift(input_shape: &[usize]) -> usize {
    match input_shape {
        [_, h, w] => (*h).min(*w) / 14,
        _ => 0,
    }
}

impl Augment {
    /// Whether it leaves inputs unchanged.
    pub fn is_identity(&self) -> bool {
        self.shift == 0 && !self.flip && self.noise.is_none()
    }

    /// Writes a corrupted copy of the batch `x` into `out`. Shifts and flips apply to image
    /// batches, `[N, C, H, W]`; other shapes get only the noise.
    pub fn apply(&self, x: &Tensor, out: &mut Tensor, rng: &mut Rng) {
        out.resize(x.shape());
        let geometric = self.shift > 0 || self.flip;
        match x.shape() {
            &[n, c, h, w] if geometric => {
                let s = self.shift as i64;
                let per = c * h * w;
                for i in 0..n {
                    let dy = rng.random_range(-s..=s) as isize;
                    let dx = rng.random_range(-s..=s) as isize;
                    let flip = self.flip && rng.random::<bool>();
                    let src = &x.data()[i * per..(i + 1) * per];
                    let dst = &mut out.data_mut()[i * per..(i + 1) * per];
                    move_image(src, dst, (c, h, w), (dy, dx), flip);
                }
            }
            _ => out.data_mut().copy_from_slice(x.data()),
        }
        if let Some(noise) = self.noise {
            let clean = out.data().to_vec();
            noise.corrupt(&clean, out.data_mut(), rng);
        }
    }
}

/// `dst[ch, y, x] = src[ch, y - dy, x' - dx]` with `x'` mirrored when `flip`; zero outside.
fn move_image(
    src: &[f32],
    dst: &mut [f32],
    (c, h, w): (usize, usize, usize),
    (dy, dx): (isize, isize),
    flip: bool,
) {
    for ch in 0..c {
        for y in 0..h {
            let sy = y as isize - dy;
            let row = &mut dst[(ch * h + y) * w..(ch * h + y + 1) * w];
            if sy < 0 || sy >= h as isize {
                row.fill(0.0);
                continue;
            }
            let from = &src[(ch * h + sy as usize) * w..(ch * h + sy as usize + 1) * w];
            for (x, v) in row.iter_mut().enumerate() {
                let sx = x as isize - dx;
                *v = if sx < 0 || sx >= w as isize {
                    0.0
                } else if flip {
                    from[w - 1 - sx as usize]
                } else {
                    from[sx as usize]
                };
            }
        }
    }
}

/// The settings of the joint objective.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SemiSupervised {
    /// λ, the weight of the unlabelled examples' reconstruction error (the autoencoder's loss, a
    /// mean over values: for 784 pixels, λ = 30 weighs it about 1/26 of a summed error).
    pub reconstruction: f32,
    /// μ, the weight of the pseudo-label term once ramped up.
    pub pseudo_label: f32,
    /// τ: an unlabelled example gets a pseudo-label when its predicted class has at least this
    /// probability.
    pub threshold: f32,
    /// Epochs over which μ rises linearly from 0.
    pub ramp_epochs: usize,
    /// Labelled examples per step, drawn with replacement.
    pub labelled_batch: usize,
    /// Corruption of the examples the classifier trains on (labelled, and pseudo-labelled).
    pub augment: Augment,
    /// Virtual adversarial training on the unlabelled examples; none: no such term.
    pub vat: Option<Vat>,
    /// Pseudo-labels come from a teacher whose weights are this exponential moving average of
    /// the classifier's, updated every step (mean teacher, Tarvainen & Valpola, 2017); none:
    /// from the classifier itself.
    pub teacher: Option<f32>,
}

/// Virtual adversarial training (Miyato et al., 2018): the classifier's prediction on an example
/// is the target for the same example moved, within a small ball, in the direction that changes
/// the prediction most. That direction is found by one step of power iteration: the gradient of
/// the divergence at a random nudge of length ξ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Vat {
    /// The weight of the term (the divergence, KL(clean ‖ moved), averaged over examples).
    pub weight: f32,
    /// ε, the length (L2, in the scaled data's units) of the adversarial move.
    pub eps: f32,
    /// ξ, the length of the random nudge the direction is estimated from.
    pub xi: f32,
}

impl Default for SemiSupervised {
    fn default() -> Self {
        SemiSupervised {
            reconstruction: 30.0,
            pseudo_label: 1.0,
            threshold: 0.95,
            ramp_epochs: 1,
            labelled_batch: 32,
            augment: Augment::default(),
            vat: None,
            teacher: None,
        }
    }
}

impl SemiSupervised {
    /// Checks the settings; errors name the setting and the value.
    pub fn validate(&self) -> Result<()> {
        let weight = |name: &'static str, v: f32| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::config(
                    name,
                    format!("must be a finite number ≥ 0, got {v}"),
                ))
            }
        };
        weight("reconstruction weight", self.reconstruction)?;
        weight("pseudo-label weight", self.pseudo_label)?;
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(Error::config(
                "threshold",
                format!("must be in (0, 1], got {}", self.threshold),
            ));
        }
        if let Some(v) = self.vat {
            weight("VAT weight", v.weight)?;
            if !(v.eps.is_finite() && v.eps > 0.0 && v.xi.is_finite() && v.xi > 0.0) {
                return Err(Error::config(
                    "VAT",
                    format!("ε and ξ must be finite and > 0, got {} and {}", v.eps, v.xi),
                ));
            }
        }
        if let Some(d) = self.teacher.filter(|d| !(0.0..1.0).contains(d)) {
            return Err(Error::config(
                "teacher",
                format!("the moving average's decay must be in [0, 1), got {d}"),
            ));
        }
        if self.labelled_batch == 0 {
            return Err(Error::config("labelled batch", "must be at least 1"));
        }
        Ok(())
    }

    /// μ in `epoch` (0-based).
    fn mu(&self, epoch: usize) -> f32 {
        if self.ramp_epochs == 0 {
            self.pseudo_label
        } else {
            self.pseudo_label * (epoch as f32 / self.ramp_epochs as f32).min(1.0)
        }
    }
}

/// The labelled examples a [`SemiSupervisedTask`] draws from.
#[derive(Debug)]
struct Labelled {
    x: Tensor,
    labels: Vec<u32>,
}

/// An autoencoder and a classifier head on its encoder, trained with the joint objective by the
/// training loop: the loop's batches are the unlabelled examples; the task draws labelled ones.
#[derive(Debug)]
pub struct SemiSupervisedTask {
    /// The autoencoder and its reconstruction objective; its parameters are followed by the head's.
    ae: AutoencoderTask,
    /// Encoder layers (the autoencoder's parameter ids) and the head.
    net: Sequential,
    /// How many parameters belong to the autoencoder; the head's follow.
    body_params: usize,
    config: ClassifierConfig,
    labelled: Labelled,
    settings: SemiSupervised,
    seed: u64,
    /// The mean teacher's weights, when the settings ask for one.
    teacher: Option<Params>,
    /// Rows gathered for a step (labelled, or confidently predicted), before corruption.
    clean: Tensor,
    batch: Tensor,
    batch_labels: Vec<u32>,
    corrupted: Tensor,
    dlogits: Tensor,
}

impl SemiSupervisedTask {
    /// Joins `ae` (trained, or fresh for a from-scratch baseline) with the head of `head` (a
    /// classifier on `ae`'s codes, or on its encoder), to train on `x` with `labels` and on the
    /// unlabelled examples the loop passes. `objective` is the reconstruction's.
    pub fn new(
        ae: Autoencoder,
        objective: Objective,
        head: &Classifier,
        (x, labels): (Tensor, Vec<u32>),
        settings: SemiSupervised,
        seed: u64,
    ) -> Result<Self> {
        settings.validate()?;
        Examples::labeled(&x, &labels)?;
        if x.rows() == 0 {
            return Err(Error::config("labels", "no labelled example to train on"));
        }
        let config = ClassifierConfig {
            input_shape: ae.config.input_shape.clone(),
            encoder: Some(ae.config.clone()),
            head_hidden: head.config.head_hidden,
            classes: head.config.classes,
        };
        config.validate()?;
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= config.classes) {
            return Err(Error::config(
                "labels",
                format!("label {bad} is not below {} classes", config.classes),
            ));
        }
        let mut ae = ae;
        let mut net = encoder_layers(&ae)?;
        let body_params = ae.params.len();
        config.push_head(&mut ae.params, &mut net, seed);
        copy_head(&mut ae.params, &head.params)?;
        let out = net.output_shape(&config.input_shape)?;
        if out != [config.classes] {
            return Err(Error::Shape {
                what: "classifier output".into(),
                expected: vec![config.classes],
                got: out,
            });
        }
        let teacher = settings.teacher.map(|_| ae.params.clone());
        let mut task = AutoencoderTask::new(ae, objective)?;
        task.seed = seed;
        Ok(SemiSupervisedTask {
            ae: task,
            net,
            body_params,
            config,
            labelled: Labelled { x, labels },
            settings,
            seed,
            teacher,
            clean: Tensor::default(),
            batch: Tensor::default(),
            batch_labels: Vec::new(),
            corrupted: Tensor::default(),
            dlogits: Tensor::default(),
        })
    }

    /// The trained classifier (encoder and head), without the decoder.
    pub fn into_classifier(self) -> Result<Classifier> {
        let mut ae = self.ae.model;
        let head = Params {
            values: ae.params.values.split_off(self.body_params),
            grads: ae.params.grads.split_off(self.body_params),
            names: ae.params.names.split_off(self.body_params),
            kinds: ae.params.kinds.split_off(self.body_params),
            frozen: ae.params.frozen.split_off(self.body_params),
        };
        let mut model =
            Classifier::on_encoder(ae, self.config.head_hidden, self.config.classes, self.seed)?;
        copy_head(&mut model.params, &head)?;
        Ok(model)
    }

    /// Cross-entropy of the network on `x` against `labels`, its gradient scaled by `weight`
    /// and backpropagated into the parameters when `weight` is not zero.
    fn classify_step(&mut self, x: &Tensor, labels: &[u32], weight: f32) -> f64 {
        let params = &mut self.ae.model.params;
        self.net.forward(params, x, Mode::Train);
        let loss = softmax_cross_entropy(self.net.output(), labels, &mut self.dlogits);
        if weight != 0.0 {
            for g in self.dlogits.data_mut() {
                *g *= weight;
            }
            std::mem::swap(self.net.output_grad_mut(), &mut self.dlogits);
            self.net.backward(params, x, None, &mut |_, _, _| {});
            std::mem::swap(self.net.output_grad_mut(), &mut self.dlogits);
        }
        loss
    }

    /// Draws the step's labelled batch (with replacement) into `self.batch`, corrupted.
    fn draw_labelled(&mut self, rng: &mut Rng) {
        let n = self.labelled.x.rows();
        let idx: Vec<usize> = (0..self.settings.labelled_batch)
            .map(|_| rng.random_range(0..n))
            .collect();
        let labelled = Examples {
            x: &self.labelled.x,
            labels: &self.labelled.labels,
        };
        gather(labelled, &idx, &mut self.clean, &mut self.batch_labels);
        self.settings
            .augment
            .apply(&self.clean, &mut self.batch, rng);
    }

    /// The rows of `x` whose predicted class has a probability of at least τ, and those classes.
    fn pseudo_labels(&mut self, x: &Tensor) -> (Vec<usize>, Vec<u32>) {
        let params = self.teacher.as_ref().unwrap_or(&self.ae.model.params);
        self.net.forward(params, x, Mode::Eval);
        let classes = self.config.classes;
        let tau = self.settings.threshold;
        let mut keep = Vec::new();
        let mut targets = Vec::new();
        for (r, z) in self.net.output().data().chunks_exact(classes).enumerate() {
            let (best, p) = top_class(z);
            if p >= tau {
                keep.push(r);
                targets.push(best);
            }
        }
        (keep, targets)
    }

    /// The pseudo-label term on the unlabelled batch `x`: predictions on `x` as it is, kept where
    /// confident, are the targets for a corrupted copy. Returns the term (the mean over all of
    /// `x`, unconfident examples counting zero) with its gradient added at weight `mu`.
    fn pseudo_label_step(&mut self, x: &Tensor, mu: f32, rng: &mut Rng) -> f64 {
        let (keep, targets) = self.pseudo_labels(x);
        if keep.is_empty() {
            return 0.0;
        }
        let mut no_labels = Vec::new();
        gather(Examples::new(x), &keep, &mut self.clean, &mut no_labels);
        let mut corrupted = std::mem::take(&mut self.corrupted);
        self.settings
            .augment
            .apply(&self.clean, &mut corrupted, rng);
        let share = keep.len() as f32 / x.rows() as f32;
        let loss = self.classify_step(&corrupted, &targets, mu * share);
        self.corrupted = corrupted;
        loss * share as f64
    }

    /// The VAT term on the unlabelled batch `x`, its gradient added at weight `v.weight`.
    fn vat_step(&mut self, x: &Tensor, v: Vat, rng: &mut Rng) -> f64 {
        let params = &mut self.ae.model.params;
        self.net.forward(params, x, Mode::Eval);
        let target = softmax_rows(self.net.output());
        // The direction that moves the prediction most, from a random nudge of length ξ.
        let mut nudged = Tensor::zeros(x.shape());
        for (o, &xv) in nudged.data_mut().iter_mut().zip(x.data()) {
            *o = xv + rng.sample::<f32, _>(StandardNormal);
        }
        move_along(x, &mut nudged, v.xi);
        self.net.forward(params, &nudged, Mode::Train);
        soft_cross_entropy(self.net.output(), &target, 1.0, &mut self.dlogits);
        let mut direction = Tensor::default();
        // Only the input gradient is wanted here: every parameter is frozen for this pass.
        let all = vec![true; params.len()];
        let frozen = std::mem::replace(&mut params.frozen, all);
        std::mem::swap(self.net.output_grad_mut(), &mut self.dlogits);
        self.net
            .backward(params, &nudged, Some(&mut direction), &mut |_, _, _| {});
        std::mem::swap(self.net.output_grad_mut(), &mut self.dlogits);
        params.frozen = frozen;
        // The adversarial example: x moved by ε along that gradient.
        let mut moved = direction;
        for (o, &xv) in moved.data_mut().iter_mut().zip(x.data()) {
            *o += xv;
        }
        move_along(x, &mut moved, v.eps);
        self.net.forward(params, &moved, Mode::Train);
        let loss = soft_cross_entropy(self.net.output(), &target, v.weight, &mut self.dlogits);
        std::mem::swap(self.net.output_grad_mut(), &mut self.dlogits);
        self.net.backward(params, &moved, None, &mut |_, _, _| {});
        std::mem::swap(self.net.output_grad_mut(), &mut self.dlogits);
        loss
    }
}

/// Row-wise softmax of `logits` (`[N, C]`).
fn softmax_rows(logits: &Tensor) -> Vec<f32> {
    let c = logits.cols();
    let mut out = logits.data().to_vec();
    for row in out.chunks_exact_mut(c) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
    out
}

/// Mean KL(p ‖ softmax(logits)) over rows, with ∂/∂logits times `weight` written to `dlogits`.
fn soft_cross_entropy(logits: &Tensor, p: &[f32], weight: f32, dlogits: &mut Tensor) -> f64 {
    let (n, c) = (logits.rows(), logits.cols());
    dlogits.resize(logits.shape());
    let q = softmax_rows(logits);
    let mut total = 0.0f64;
    for (((z, d), q), p) in logits
        .data()
        .chunks_exact(c)
        .zip(dlogits.data_mut().chunks_exact_mut(c))
        .zip(q.chunks_exact(c))
        .zip(p.chunks_exact(c))
    {
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = max as f64
            + z.iter()
                .map(|&v| ((v - max) as f64).exp())
                .sum::<f64>()
                .ln();
        for j in 0..c {
            if p[j] > 0.0 {
                total += p[j] as f64 * ((p[j] as f64).ln() - (z[j] as f64 - lse));
            }
            d[j] = weight * (q[j] - p[j]) / n as f32;
        }
    }
    total / n.max(1) as f64
}

/// Replaces each row of `to` by its row of `from` plus `length` along the unit direction of
/// (`to` − `from`).
fn move_along(from: &Tensor, to: &mut Tensor, length: f32) {
    let c = from.cols();
    for (t, f) in to
        .data_mut()
        .chunks_exact_mut(c)
        .zip(from.data().chunks_exact(c))
    {
        let norm = t
            .iter()
            .zip(f)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt()
            .max(1e-12);
        for (a, &b) in t.iter_mut().zip(f) {
            *a = b + length * (*a - b) / norm;
        }
    }
}

impl Task for SemiSupervisedTask {
    fn params(&self) -> &Params {
        &self.ae.model.params
    }

    fn params_mut(&mut self) -> &mut Params {
        &mut self.ae.model.params
    }

    fn train_step(&mut self, batch: Examples<'_>, epoch: usize, step: usize) -> Terms {
        if let (Some(teacher), Some(decay)) = (&mut self.teacher, self.settings.teacher) {
            // The parameters as the last step left them join the average.
            for (t, p) in teacher.values.iter_mut().zip(&self.ae.model.params.values) {
                crate::engine::layers::update(t.data_mut(), p.data(), |t, p| {
                    decay * t + (1.0 - decay) * p
                });
            }
        }
        let mut terms = Terms::default();
        let lambda = self.settings.reconstruction;
        if lambda > 0.0 {
            // The reconstruction step writes the autoencoder's gradients first (a data-parallel
            // step overwrites them), then they are scaled by λ before the classifier adds its own.
            let recon = self.ae.train_step(Examples::new(batch.x), epoch, step);
            for g in &mut self.ae.model.params.grads[..self.body_params] {
                for v in g.data_mut() {
                    *v *= lambda;
                }
            }
            terms.push("reconstruction", lambda as f64 * recon.total());
        }
        let mut rng = stream(
            self.seed,
            Purpose::Step,
            epoch as u64,
            (step as u64) | (3 << 40),
        );
        self.draw_labelled(&mut rng);
        let (x, labels) = (
            std::mem::take(&mut self.batch),
            std::mem::take(&mut self.batch_labels),
        );
        terms.push("cross_entropy", self.classify_step(&x, &labels, 1.0));
        (self.batch, self.batch_labels) = (x, labels);
        let mu = self.settings.mu(epoch);
        if mu > 0.0 {
            let value = self.pseudo_label_step(batch.x, mu, &mut rng);
            terms.push("pseudo_label", mu as f64 * value);
        }
        if let Some(v) = self.settings.vat.filter(|v| v.weight > 0.0) {
            let value = self.vat_step(batch.x, v, &mut rng);
            terms.push("vat", v.weight as f64 * value);
        }
        terms
    }

    /// Cross-entropy on labelled examples, without corruption.
    fn eval_batch(&mut self, batch: Examples<'_>) -> Terms {
        let mut terms = Terms::default();
        if batch.labels.len() == batch.x.rows() {
            self.net.forward(&self.ae.model.params, batch.x, Mode::Eval);
            let loss = softmax_cross_entropy(self.net.output(), batch.labels, &mut self.dlogits);
            terms.push("cross_entropy", loss);
        }
        terms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::layers::activation::Activation;
    use crate::engine::optim::{Optimizer, OptimizerKind};
    use crate::model::ModelConfig;
    use crate::training::fit::{fit_quietly, LoopConfig};

    fn data(n: usize, d: usize) -> (Tensor, Vec<u32>) {
        let x = Tensor::from_vec(
            &[n, d],
            (0..n * d)
                .map(|i| (((i * 7919) % 101) as f32) / 101.0)
                .collect(),
        );
        let labels = (0..n)
            .map(|r| u32::from(x.row(r)[0] + x.row(r)[1] > 1.0))
            .collect();
        (x, labels)
    }

    fn task(settings: SemiSupervised, variational: bool) -> SemiSupervisedTask {
        let mut cfg = ModelConfig::dense(&[6], &[5, 3]);
        cfg.activation = Activation::Tanh;
        cfg.variational = variational;
        let ae = cfg.build(2).unwrap();
        let objective = Objective {
            kl: variational.then_some(crate::model::vae::KlTerm {
                beta: 1.0,
                warmup: 0,
                free_bits: None,
            }),
            ..Objective::default()
        };
        let head = ClassifierConfig {
            encoder: None,
            input_shape: vec![3],
            head_hidden: Some(4),
            classes: 2,
        }
        .build(1)
        .unwrap();
        let (x, labels) = data(8, 6);
        SemiSupervisedTask::new(ae, objective, &head, (x, labels), settings, 5).unwrap()
    }

    /// The joint objective's gradient against central differences of the same step's loss (the
    /// step's draws are keyed by epoch and step, so repeating it repeats them). τ is low so that
    /// pseudo-labels exist, and the shift is zero on these flat rows; noise makes the corrupted
    /// copies differ from the clean ones.
    #[test]
    fn gradients_of_the_joint_objective_match_finite_differences() {
        let settings = SemiSupervised {
            reconstruction: 0.7,
            pseudo_label: 0.5,
            threshold: 0.3,
            ramp_epochs: 0,
            labelled_batch: 5,
            augment: Augment {
                noise: Some(Noise::Gaussian { std: 0.1 }),
                ..Augment::default()
            },
            vat: None,
            teacher: None,
        };
        let mut t = task(settings, false);
        let (u, _) = data(12, 6);
        let ex = Examples::new(&u);
        t.params_mut().zero_grads();
        let terms = t.train_step(ex, 2, 3);
        assert!(terms.get("pseudo_label").unwrap() > 0.0, "{terms:?}");
        assert!(terms.get("reconstruction").unwrap() > 0.0);
        let analytic = t.params().grads.clone();
        let h = 1e-2f32;
        let (mut checked, mut skipped) = (0, 0);
        #[allow(clippy::needless_range_loop)] // finite differences write into what they index
        for p in 0..t.params().len() {
            for i in (0..t.params().values[p].len()).step_by(2) {
                let at = |delta: f32, t: &mut SemiSupervisedTask| {
                    t.params_mut().values[p].data_mut()[i] += delta;
                    t.params_mut().zero_grads();
                    let v = t.train_step(ex, 2, 3).total();
                    t.params_mut().values[p].data_mut()[i] -= delta;
                    v
                };
                let fd = (at(h, &mut t) - at(-h, &mut t)) / (2.0 * h as f64);
                let a = analytic[p].data()[i] as f64;
                // Pseudo-labels are a step function of the weights: where a nudge changes them,
                // the loss jumps and a difference quotient means nothing.
                let labels_at = |delta: f32, t: &mut SemiSupervisedTask| {
                    t.params_mut().values[p].data_mut()[i] += delta;
                    let l = t.pseudo_labels(&u);
                    t.params_mut().values[p].data_mut()[i] -= delta;
                    l
                };
                if labels_at(h, &mut t) != labels_at(-h, &mut t) {
                    skipped += 1;
                    continue;
                }
                assert!(
                    (fd - a).abs() < 2e-3 + 2e-2 * a.abs(),
                    "{} [{i}]: fd {fd} vs {a}",
                    t.params().names[p]
                );
                checked += 1;
            }
        }
        assert!(
            checked > 40 && skipped < 3,
            "{checked} checked, {skipped} skipped"
        );
    }

    #[test]
    fn weights_switch_terms_off_and_the_classifier_comes_back_whole() {
        let settings = SemiSupervised {
            reconstruction: 0.0,
            pseudo_label: 0.0,
            ..SemiSupervised::default()
        };
        let mut t = task(settings, false);
        let (u, _) = data(12, 6);
        t.params_mut().zero_grads();
        let terms = t.train_step(Examples::new(&u), 0, 0);
        assert_eq!(terms.0.len(), 1, "{terms:?}");
        // Only the labelled cross-entropy trained: the decoder got no gradient.
        for (name, g) in t.params().names.iter().zip(&t.params().grads) {
            let moved = g.data().iter().any(|&v| v != 0.0);
            assert_eq!(moved, !name.starts_with("decoder."), "{name}");
        }
        let mut t = task(SemiSupervised::default(), true);
        let mut opt = Optimizer::new(OptimizerKind::ADAM, 0.01, t.params());
        let lc = LoopConfig {
            epochs: 2,
            batch_size: 4,
            seed: 0,
            early_stopping: None,
        };
        fit_quietly(&mut t, &mut opt, &lc, Examples::new(&u)).unwrap();
        let trained = t.params().clone();
        let (x, _) = data(8, 6);
        let mut expected = Tensor::default();
        {
            t.net.forward(&t.ae.model.params, &x, Mode::Eval);
            expected.clone_from(t.net.output());
        }
        let mut c = t.into_classifier().unwrap();
        assert!(c.params.names.iter().all(|n| !n.starts_with("decoder.")));
        for (name, v) in c.params.names.iter().zip(&c.params.values) {
            let id = trained.find(name).unwrap();
            assert_eq!(v, &trained.values[id.0], "{name}");
        }
        c.forward(&x, Mode::Eval);
        assert_eq!(c.logits(), &expected);
    }

    #[test]
    fn the_soft_cross_entropy_gradient_matches_finite_differences() {
        let z = Tensor::from_vec(&[2, 3], vec![0.3, -1.0, 2.0, 0.0, 0.5, -0.2]);
        let p = [0.2f32, 0.3, 0.5, 0.6, 0.0, 0.4];
        let mut d = Tensor::default();
        let v = soft_cross_entropy(&z, &p, 2.0, &mut d);
        assert!(v > 0.0);
        let mut scratch = Tensor::default();
        for i in 0..6 {
            let mut up = z.clone();
            up.data_mut()[i] += 1e-2;
            let mut down = z.clone();
            down.data_mut()[i] -= 1e-2;
            let fd = (soft_cross_entropy(&up, &p, 1.0, &mut scratch)
                - soft_cross_entropy(&down, &p, 1.0, &mut scratch))
                / 2e-2;
            assert!((2.0 * fd - d.data()[i] as f64).abs() < 1e-4, "{i}");
        }
        // A prediction equal to its target diverges by nothing.
        let q = softmax_rows(&z);
        assert!(soft_cross_entropy(&z, &q, 1.0, &mut d).abs() < 1e-6);
    }

    /// The adversarial move changes the prediction more than random moves of the same length.
    #[test]
    fn the_virtual_adversarial_direction_beats_random_ones() {
        let mut t = task(SemiSupervised::default(), false);
        let (u, _) = data(12, 6);
        let v = Vat {
            weight: 1.0,
            eps: 0.3,
            xi: 0.01,
        };
        let mut rng = stream(0, Purpose::Misc, 0, 0);
        let adversarial = t.vat_step(&u, v, &mut rng);
        let divergence = |t: &mut SemiSupervisedTask, moved: &Tensor| {
            t.net.forward(&t.ae.model.params, &u, Mode::Eval);
            let p = softmax_rows(t.net.output());
            t.net.forward(&t.ae.model.params, moved, Mode::Eval);
            soft_cross_entropy(t.net.output(), &p, 1.0, &mut Tensor::default())
        };
        for seed in 0..10 {
            let mut rng = stream(seed, Purpose::Misc, 1, 0);
            let mut moved = u.clone();
            for m in moved.data_mut() {
                *m += rng.sample::<f32, _>(StandardNormal);
            }
            move_along(&u, &mut moved, v.eps);
            let random = divergence(&mut t, &moved);
            assert!(adversarial > random, "{adversarial} vs {random}");
        }
    }

    /// The mean teacher averages the weights each step left behind.
    #[test]
    fn the_teacher_is_a_moving_average_of_the_weights() {
        let settings = SemiSupervised {
            teacher: Some(0.75),
            ..SemiSupervised::default()
        };
        let mut t = task(settings, false);
        let (u, _) = data(12, 6);
        let start = t.params().values.clone();
        let mut opt = Optimizer::new(OptimizerKind::ADAM, 0.1, t.params());
        for step in 0..2 {
            t.params_mut().zero_grads();
            t.train_step(Examples::new(&u), 0, step);
            opt.apply(t.params_mut());
        }
        // Each step began by averaging in the weights as they were: `start`, then `after1`.
        let teacher = t.teacher.as_ref().unwrap();
        let id = t.params().find("head.0.weight").unwrap().0;
        let now = &t.params().values[id];
        assert_ne!(&teacher.values[id], now);
        assert_ne!(teacher.values[id], start[id]);
        let mut again = task(
            SemiSupervised {
                teacher: Some(0.75),
                ..SemiSupervised::default()
            },
            false,
        );
        let mut opt = Optimizer::new(OptimizerKind::ADAM, 0.1, again.params());
        again.params_mut().zero_grads();
        again.train_step(Examples::new(&u), 0, 0);
        opt.apply(again.params_mut());
        let after1 = again.params().values[id].clone();
        for i in 0..now.len() {
            let want = 0.75 * (0.75 * start[id].data()[i] + 0.25 * start[id].data()[i])
                + 0.25 * after1.data()[i];
            assert!((teacher.values[id].data()[i] - want).abs() < 1e-6, "{i}");
        }
        assert!(SemiSupervised {
            teacher: Some(1.0),
            ..SemiSupervised::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn shifts_and_flips_move_pixels_and_leave_flat_rows_alone() {
        let src: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut dst = vec![0.0; 9];
        move_image(&src, &mut dst, (1, 3, 3), (1, 0), false);
        assert_eq!(dst, [0., 0., 0., 1., 2., 3., 4., 5., 6.]);
        move_image(&src, &mut dst, (1, 3, 3), (0, -1), true);
        assert_eq!(dst, [2., 1., 0., 5., 4., 0., 8., 7., 0.]);
        let flat = Tensor::from_vec(&[1, 9], src.clone());
        let mut out = Tensor::default();
        let shift = Augment {
            shift: 2,
            flip: true,
            noise: None,
        };
        shift.apply(&flat, &mut out, &mut stream(0, Purpose::Misc, 0, 0));
        assert_eq!(out.data(), &src[..]);
        assert_eq!(default_shift(&[1, 28, 28]), 2);
        assert_eq!(default_shift(&[3, 8, 8]), 0);
        assert_eq!(default_shift(&[784]), 0);
        assert!(SemiSupervised {
            threshold: 0.0,
            ..SemiSupervised::default()
        }
        .validate()
        .is_err());
    }
}
