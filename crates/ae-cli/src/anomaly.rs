//! `ae anomaly`: reconstruction error as an anomaly score. Scores every example, flags those over
//! a threshold set by a contamination share or by a false-positive rate on the clean validation
//! data kept at training time; with labels, runs the one-class protocol (train on one class, score
//! the test split of all of them) and reports AUROC and average precision.
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use ae_core::analysis::anomaly::{one_class_scores, reconstruction_scores};
use ae_core::analysis::ranking::{auroc, average_precision, quantile};
use ae_core::run::RunDir;
use ae_core::Tensor;
use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::args::AnomalyArgs;
use crate::labeled::{load_splits, open_run, Splits};

/// Runs `ae anomaly`.
pub fn anomaly(args: AnomalyArgs) -> Result<()> {
    if args.normal_class.is_some() || args.all_classes {
        return one_class(&args);
    }
    let Some(out) = &args.out else {
        bail!("--out FILE.csv is needed for the scores (or use --normal-class / --all-classes)");
    };
    crate::output::check_out(
        out,
        Some(&args.input.run),
        args.input.data.as_deref(),
        args.force,
    )?;
    if args.stream {
        return crate::streamed::anomaly(&args, out);
    }
    let loaded = crate::eval::load(&args.input)?;
    let on = crate::device::inference(&args.on, &loaded.task.model)?;
    let (scores, features) = reconstruction_scores(&on, &loaded.x, args.per_feature)?;
    let (threshold, how) = threshold(&args, &scores)?;
    let flags: Vec<bool> = scores.iter().map(|&s| s > threshold).collect();
    let labels = loaded.raw.labels.as_deref();
    write_scores(out, &scores, Some(&flags), labels, features.as_deref())?;
    let k = flags.iter().filter(|&&f| f).count();
    say!(
        "{} examples scored → {}; threshold {threshold:.6} ({how}); {k} flagged ({:.2}%)",
        scores.len(),
        out.display(),
        100.0 * k as f64 / scores.len().max(1) as f64
    );
    Ok(())
}

/// The score above which an example is flagged, and how it was set.
pub fn threshold(args: &AnomalyArgs, scores: &[f32]) -> Result<(f32, String)> {
    if let Some(p) = args.contamination {
        let p = share(p, "--contamination")?;
        let t = quantile(scores, 1.0 - p).context("no examples to score")?;
        return Ok((t, format!("contamination {p}: the top {p} of these scores")));
    }
    match validation_threshold(args)? {
        Some(t) => Ok(t),
        None => {
            let t = quantile(scores, 0.9).context("no examples to score")?;
            Ok((
                t,
                "contamination 0.1, the default when the run kept no validation scores".into(),
            ))
        }
    }
}

/// The threshold set by `--fpr` (default 0.05) on the run's clean validation scores, when it has
/// them: known before any example is scored. None when the run kept none and `--fpr` was not
/// asked for.
pub fn validation_threshold(args: &AnomalyArgs) -> Result<Option<(f32, String)>> {
    let run = RunDir::open(&args.input.run)?;
    let val = run.read_val_scores()?;
    match (args.fpr, val) {
        (fpr, Some(v)) if !v.scores.is_empty() => {
            let p = share(fpr.unwrap_or(0.05), "--fpr")?;
            let t = quantile(&v.scores, 1.0 - p).expect("not empty");
            Ok(Some((
                t,
                format!(
                    "false-positive rate {p} on the run's {} clean validation examples",
                    v.scores.len()
                ),
            )))
        }
        (Some(_), _) => bail!(
            "{} kept no validation scores (it was trained without a validation split, or by an \
             older ae); retrain with --val-fraction, or use --contamination P",
            args.input.run.display()
        ),
        (None, _) => Ok(None),
    }
}

fn share(p: f64, flag: &str) -> Result<f64> {
    if !(p > 0.0 && p < 1.0) {
        bail!("{flag} is a share between 0 and 1 (exclusive), got {p}");
    }
    Ok(p)
}

/// Writes `index,score[,anomaly][,label][,error_0,…]`, atomically: CSV, or Parquet for a
/// `.parquet` file (every column f32 but the index).
pub fn write_scores(
    path: &Path,
    scores: &[f32],
    flags: Option<&[bool]>,
    labels: Option<&[u32]>,
    features: Option<&[f32]>,
) -> Result<()> {
    if crate::eval::extension(path) != "parquet" {
        return write_scores_csv(path, scores, flags, labels, features);
    }
    let d = features.map_or(0, |f| f.len() / scores.len().max(1));
    let mut header = vec!["score".to_string()];
    header.extend(flags.map(|_| "anomaly".to_string()));
    header.extend(labels.map(|_| "label".to_string()));
    header.extend((0..d).map(|j| format!("error_{j}")));
    let mut rows = Vec::with_capacity(scores.len() * header.len());
    for (i, &s) in scores.iter().enumerate() {
        rows.push(s);
        rows.extend(flags.map(|f| f32::from(u8::from(f[i]))));
        rows.extend(labels.map(|l| l[i] as f32));
        rows.extend(features.iter().flat_map(|f| &f[i * d..(i + 1) * d]));
    }
    let mut w = ae_data::rows_out::RowWriter::create(path, &header, scores.len())?;
    w.write(&rows)?;
    w.finish()?;
    Ok(())
}

fn write_scores_csv(
    path: &Path,
    scores: &[f32],
    flags: Option<&[bool]>,
    labels: Option<&[u32]>,
    features: Option<&[f32]>,
) -> Result<()> {
    let mut buf = Vec::with_capacity(scores.len() * 24);
    let d = features.map_or(0, |f| f.len() / scores.len().max(1));
    write!(buf, "index,score")?;
    if flags.is_some() {
        write!(buf, ",anomaly")?;
    }
    if labels.is_some() {
        write!(buf, ",label")?;
    }
    for j in 0..d {
        write!(buf, ",error_{j}")?;
    }
    writeln!(buf)?;
    for (i, s) in scores.iter().enumerate() {
        write!(buf, "{i},{s:.7}")?;
        if let Some(f) = flags {
            write!(buf, ",{}", u8::from(f[i]))?;
        }
        if let Some(l) = labels {
            write!(buf, ",{}", l[i])?;
        }
        if let Some(f) = features {
            for e in &f[i * d..(i + 1) * d] {
                write!(buf, ",{e:.6}")?;
            }
        }
        writeln!(buf)?;
    }
    ae_core::run::io::write_atomic(path, &buf)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// One class's result under the one-class protocol.
#[derive(Debug, Serialize)]
struct ClassResult {
    normal_class: u32,
    train_examples: usize,
    auroc: f64,
    average_precision: f64,
    seconds: f64,
}

/// Trains the run's architecture and objective on one class of the training split and scores the
/// whole test split, anomalies (every other class) being the positives.
fn one_class(args: &AnomalyArgs) -> Result<()> {
    let (_, settings, meta) = open_run(&args.input.run)?;
    ae_core::training::configure_threads(args.input.threads.unwrap_or(settings.threads));
    let data = args.input.data.clone().unwrap_or(settings.data.clone());
    let s = load_splits(
        (&settings, &meta),
        &data,
        args.input.data_dir.clone(),
        0.2,
        settings.seed,
    )?;
    let classes: Vec<u32> = match args.normal_class {
        Some(k) if (k as usize) < s.classes => vec![k],
        Some(k) => bail!(
            "--normal-class {k}: {data} has classes 0 to {}",
            s.classes - 1
        ),
        None => (0..s.classes as u32).collect(),
    };
    if settings.pretrain.is_some() && !args.quiet {
        note!("note: the one-class models skip the run's greedy pretraining");
    }
    let mut results = Vec::new();
    for &k in &classes {
        let started = Instant::now();
        let scores = train_and_score(args, &settings, &meta.input_shape, &s, k)?;
        let positives: Vec<bool> = s.test.labels.iter().map(|&l| l != k).collect();
        let r = ClassResult {
            normal_class: k,
            train_examples: s.train.labels.iter().filter(|&&l| l == k).count(),
            auroc: auroc(&scores, &positives)
                .context("the test split needs both normal and anomalous examples")?,
            average_precision: average_precision(&scores, &positives)
                .context("no anomalies in the test split")?,
            seconds: started.elapsed().as_secs_f64(),
        };
        if !args.quiet {
            note!(
                "normal class {k}: {} training examples, AUROC {:.4}, AP {:.4} ({:.0} s)",
                r.train_examples,
                r.auroc,
                r.average_precision,
                r.seconds
            );
        }
        if let (Some(out), true) = (&args.out, classes.len() == 1) {
            write_scores(out, &scores, None, Some(&s.test.labels), None)?;
        }
        results.push(r);
    }
    let mean =
        |f: fn(&ClassResult) -> f64| results.iter().map(f).sum::<f64>() / results.len() as f64;
    let (mean_auroc, mean_ap) = (mean(|r| r.auroc), mean(|r| r.average_precision));
    if args.json {
        let v = serde_json::json!({
            "data": data,
            "classes": results,
            "mean_auroc": mean_auroc,
            "mean_average_precision": mean_ap,
        });
        say!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    say!("one-class protocol on {data}: train on the normal class, score the whole test split");
    say!(
        "{:<13} {:>8} {:>8} {:>8}",
        "normal class",
        "train",
        "AUROC",
        "AP"
    );
    for r in &results {
        say!(
            "{:<13} {:>8} {:>8.4} {:>8.4}",
            r.normal_class,
            r.train_examples,
            r.auroc,
            r.average_precision
        );
    }
    if results.len() > 1 {
        say!(
            "{:<13} {:>8} {:>8.4} {:>8.4}",
            "mean",
            "",
            mean_auroc,
            mean_ap
        );
    }
    Ok(())
}

/// A fresh model with the run's settings, trained on the training examples of class `k`; returns
/// the test split's scores.
fn train_and_score(
    args: &AnomalyArgs,
    settings: &ae_core::training::settings::Settings,
    input_shape: &[usize],
    s: &Splits,
    k: u32,
) -> Result<Vec<f32>> {
    let idx: Vec<usize> = (0..s.train.labels.len())
        .filter(|&i| s.train.labels[i] == k)
        .collect();
    if idx.is_empty() {
        bail!("the training split has no example of class {k}");
    }
    let c = s.train.x.cols();
    let mut data = Vec::with_capacity(idx.len() * c);
    for &i in &idx {
        data.extend_from_slice(s.train.x.row(i));
    }
    let mut shape = s.train.x.shape().to_vec();
    shape[0] = idx.len();
    let x = Tensor::from_vec(&shape, data);
    let mut settings = settings.clone();
    if let Some(e) = args.epochs {
        settings.epochs = e;
    }
    one_class_scores(&settings, input_shape, &x, &s.test.x)
        .with_context(|| format!("training on class {k}"))
}
