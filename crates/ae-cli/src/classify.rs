//! `ae classify`: a softmax head on a run's encoder, trained with N labels per class, the encoder
//! frozen or fine-tuned, or the same network from random weights for comparison; `--sweep` prints
//! the whole table. `ae predict` applies a saved classifier.
use std::io::Write;
use std::path::Path;

use ae_core::analysis::classifier::{balanced_subset, Classifier};
use ae_core::analysis::few_labels::{FewLabels, Mode, Unlabelled};
use ae_core::analysis::semi_supervised::{default_shift, Augment, SemiSupervised, Vat};
use ae_core::model::Autoencoder;
use ae_core::objective::Objective;
use ae_core::run::classifier_run::{ClassifierDir, ClassifierMeta};
use ae_core::run::FORMAT_VERSION;
use ae_core::Tensor;
use ae_data::datasets::Split;
use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::args::{ClassifyArgs, PredictArgs, SplitArg};
use crate::data;
use crate::labeled::{load_splits, open_run, Labeled, Splits};

/// The result of training one classifier.
#[derive(Debug, Serialize)]
struct Trained {
    mode: Mode,
    labels_per_class: Option<usize>,
    examples: usize,
    epochs: usize,
    seed: u64,
    test_accuracy: f64,
}

/// Runs `ae classify`.
pub fn classify(args: ClassifyArgs) -> Result<()> {
    let scale = args.encoder_lr_scale;
    if !(scale.is_finite() && scale >= 0.0) {
        bail!("--encoder-lr-scale must be a finite number ≥ 0 (a multiple of --lr), got {scale}");
    }
    let (dir, settings, meta) = open_run(&args.run)?;
    ae_core::training::configure_threads(args.threads.unwrap_or(settings.threads));
    let load_ae = || -> Result<Autoencoder> {
        let (_, _, task) = dir
            .load()
            .with_context(|| format!("cannot load the model in {}", args.run.display()))?;
        Ok(task.model)
    };
    let data = args.data.clone().unwrap_or(settings.data.clone());
    let mut settings = settings;
    if let Some(c) = &args.classes {
        settings.classes = c.clone();
    }
    let splits = load_splits(
        (&settings, &meta),
        &data,
        args.data_dir.clone(),
        0.2,
        args.seed,
    )?;
    let objective = settings.objective();
    let job = Job {
        args: &args,
        splits: &splits,
        load_ae: &load_ae,
        objective: &objective,
    };
    if let Some(sweep) = &args.sweep {
        return run_sweep(&job, sweep);
    }
    let mode = if args.semi_supervised {
        Mode::SemiSupervised
    } else if args.scratch {
        Mode::Scratch
    } else if args.freeze {
        Mode::Frozen
    } else {
        Mode::FineTuned
    };
    let (model, t) = train_one(&job, mode, args.labels_per_class, args.seed)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run.join("classifier"));
    let saved = ClassifierDir::save(
        &out,
        args.force,
        &model,
        &ClassifierMeta {
            format_version: FORMAT_VERSION,
            config: model.config.clone(),
            scaler: meta.scaler.clone(),
            source_run: args.run.clone(),
            data: data.clone(),
            mode: mode.to_string(),
            labels_per_class: t.labels_per_class,
            examples: t.examples,
            epochs: t.epochs,
            seed: t.seed,
            test_accuracy: Some(t.test_accuracy),
            settings: Some(settings.clone()),
        },
    )
    .with_context(|| {
        format!(
            "cannot save the classifier in {} (--force replaces one)",
            out.display()
        )
    })?;
    drop(saved);
    if args.json {
        say!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        say!(
            "{mode} encoder, {} ({} examples, {} epochs): test accuracy {:.4}",
            per_class_text(t.labels_per_class),
            t.examples,
            t.epochs,
            t.test_accuracy
        );
    }
    note!(
        "saved the classifier in {} (apply it with `ae predict {} --data SPEC --out labels.csv`)",
        out.display(),
        out.display()
    );
    Ok(())
}

fn per_class_text(n: Option<usize>) -> String {
    match n {
        Some(n) => format!("{n} labels per class"),
        None => "all labels".into(),
    }
}

/// What every classifier of one `ae classify` call trains from.
struct Job<'a> {
    args: &'a ClassifyArgs,
    splits: &'a Splits,
    load_ae: &'a dyn Fn() -> Result<Autoencoder>,
    /// The autoencoder's objective (semi-supervised training keeps reconstructing with it).
    objective: &'a Objective,
}

/// The joint objective's settings from the command line.
fn semi_supervised(args: &ClassifyArgs, input_shape: &[usize]) -> SemiSupervised {
    SemiSupervised {
        reconstruction: args.reconstruction_weight,
        pseudo_label: args.pseudo_label_weight,
        threshold: args.threshold,
        ramp_epochs: args.ramp_epochs,
        labelled_batch: args.batch_size,
        augment: Augment {
            shift: args.shift.unwrap_or_else(|| default_shift(input_shape)),
            flip: args.flip,
            noise: args.augment_noise,
        },
        vat: (args.vat_weight != 0.0).then_some(Vat {
            weight: args.vat_weight,
            eps: args.vat_eps,
            xi: args.vat_xi,
        }),
        teacher: args.teacher_decay,
    }
}

/// Trains one classifier in `mode` on `per_class` labelled examples of each class.
fn train_one(
    job: &Job<'_>,
    mode: Mode,
    per_class: Option<usize>,
    seed: u64,
) -> Result<(Classifier, Trained)> {
    let (args, s) = (job.args, job.splits);
    let idx = balanced_subset(&s.train.labels, per_class, seed);
    let train = rows(&s.train, &idx);
    let protocol = FewLabels {
        head_hidden: args.head_hidden,
        epochs: args.epochs,
        finetune_epochs: args.finetune_epochs,
        encoder_lr_scale: args.encoder_lr_scale,
        batch_size: args.batch_size,
        lr: args.lr,
        weight_decay: args.weight_decay,
        semi: semi_supervised(args, &s.train.x.shape()[1..]),
    };
    let unlabelled = Unlabelled {
        x: &s.train.x,
        objective: job.objective,
        batch_size: args.unlabelled_batch,
        epochs: args.unlabelled_epochs,
        schedule: args.unlabelled_lr_schedule,
    };
    let (mut model, epochs) = protocol.train(
        (job.load_ae)()?,
        &train.x,
        &train.labels,
        s.classes,
        mode,
        seed,
        Some(unlabelled),
    )?;
    let accuracy = model.accuracy(&s.test.x, &s.test.labels);
    if !args.quiet {
        note!(
            "{mode:>10}  {:<22} seed {seed}: test accuracy {accuracy:.4}",
            per_class_text(per_class)
        );
    }
    Ok((
        model,
        Trained {
            mode,
            labels_per_class: per_class,
            examples: idx.len(),
            epochs,
            seed,
            test_accuracy: accuracy,
        },
    ))
}

/// The examples at `idx`.
fn rows(l: &Labeled, idx: &[usize]) -> Labeled {
    let c = l.x.cols();
    let mut data = Vec::with_capacity(idx.len() * c);
    for &i in idx {
        data.extend_from_slice(l.x.row(i));
    }
    let mut shape = l.x.shape().to_vec();
    shape[0] = idx.len();
    Labeled {
        x: Tensor::from_vec(&shape, data),
        labels: idx.iter().map(|&i| l.labels[i]).collect(),
    }
}

/// One cell of the sweep table.
#[derive(Debug, Serialize)]
struct Cell {
    labels_per_class: Option<usize>,
    examples: usize,
    mode: Mode,
    accuracies: Vec<f64>,
    mean: f64,
    std: f64,
}

fn run_sweep(job: &Job<'_>, sweep: &str) -> Result<()> {
    let args = job.args;
    let sizes = parse_sweep(sweep)?;
    let mut modes = vec![Mode::Scratch, Mode::Frozen, Mode::FineTuned];
    if args.semi_supervised {
        modes.push(Mode::SemiSupervised);
    }
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let mut cells = Vec::new();
    for &size in &sizes {
        for &mode in &modes {
            let mut acc = Vec::new();
            let mut examples = 0;
            for i in 0..args.seeds {
                let seed = args.seed + i as u64;
                let (_, t) = train_one(job, mode, size, seed)?;
                acc.push(t.test_accuracy);
                examples = t.examples;
            }
            let mean = acc.iter().sum::<f64>() / acc.len() as f64;
            let var =
                acc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (acc.len().max(2) - 1) as f64;
            cells.push(Cell {
                labels_per_class: size,
                examples,
                mode,
                accuracies: acc,
                mean,
                std: if args.seeds > 1 { var.sqrt() } else { 0.0 },
            });
        }
    }
    if args.json {
        say!("{}", serde_json::to_string_pretty(&cells)?);
        return Ok(());
    }
    let mut header = format!("{:<14} {:>8}", "labels/class", "examples");
    for mode in &modes {
        header += &format!("  {:>16}", mode.to_string());
    }
    say!(
        "test accuracy, mean ± std over {} seed(s)\n{header}",
        args.seeds
    );
    for row in cells.chunks(modes.len()) {
        let mut line = format!(
            "{:<14} {:>8}",
            row[0]
                .labels_per_class
                .map_or("all".to_string(), |n| n.to_string()),
            row[0].examples
        );
        for c in row {
            line += &format!("  {:>16}", format!("{:.4} ± {:.4}", c.mean, c.std));
        }
        say!("{line}");
    }
    Ok(())
}

/// `10,100,all` → [Some(10), Some(100), None].
fn parse_sweep(s: &str) -> Result<Vec<Option<usize>>> {
    s.split(',')
        .map(|p| match p.trim() {
            "all" => Ok(None),
            n => match n.parse::<usize>() {
                Ok(v) if v > 0 => Ok(Some(v)),
                _ => bail!(
                    "--sweep takes label counts per class and `all`, like 10,100,all; got `{n}`"
                ),
            },
        })
        .collect()
}

/// Runs `ae predict`.
pub fn predict(args: PredictArgs) -> Result<()> {
    crate::output::check_out(&args.out, Some(&args.run), args.data.as_deref(), args.force)?;
    let dir = ClassifierDir::open(&args.run)?;
    let (meta, mut model) = dir
        .load()
        .with_context(|| format!("cannot load the classifier in {}", args.run.display()))?;
    if let Some(t) = args.threads {
        ae_core::training::configure_threads(t);
    }
    let data = args.data.clone().unwrap_or(meta.data.clone());
    let spec = data::parse_spec(&data)?;
    let split = match args.split {
        SplitArg::Train => Split::Train,
        SplitArg::Test => Split::Test,
    };
    let csv = match &meta.settings {
        Some(settings) => settings.csv_options()?,
        None => Default::default(),
    };
    let mut s = data::load_with(&spec, args.data_dir.clone(), split, false, &csv)?;
    if s.features() != meta.config.input_shape.iter().product::<usize>() {
        bail!(
            "{data} has examples of shape {:?} but the classifier in {} takes {:?}",
            s.shape,
            args.run.display(),
            meta.config.input_shape
        );
    }
    meta.scaler.transform(&mut s)?;
    let labels = s.labels.take();
    let mut x = data::to_tensor(s);
    let mut shape = vec![x.rows()];
    shape.extend(&meta.config.input_shape);
    x = Tensor::from_vec(&shape, x.into_vec());
    let pred = model.predict(&x);
    write_predictions(&args.out, &pred)?;
    let accuracy = labels.map(|l| {
        pred.iter().zip(&l).filter(|((p, _), y)| p == *y).count() as f64 / l.len().max(1) as f64
    });
    match accuracy {
        Some(a) => say!(
            "{} predictions → {}; accuracy {a:.4}",
            pred.len(),
            args.out.display()
        ),
        None => say!("{} predictions → {}", pred.len(), args.out.display()),
    }
    Ok(())
}

/// `index,label,probability` per example, written atomically.
fn write_predictions(path: &Path, pred: &[(u32, f32)]) -> Result<()> {
    let mut buf = Vec::with_capacity(pred.len() * 16);
    writeln!(buf, "index,label,probability")?;
    for (i, (l, p)) in pred.iter().enumerate() {
        writeln!(buf, "{i},{l},{p:.6}")?;
    }
    ae_core::run::io::write_atomic(path, &buf)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
