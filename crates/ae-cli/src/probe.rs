//! `ae probe`: how much of the labels a run's codes carry. A softmax (multinomial logistic)
//! regression and a k-nearest-neighbour classifier are fitted on the codes of the training split
//! and scored on the test split, beside the same two on the raw inputs and on PCA codes of the same
//! size.
use ae_core::analysis::knn::knn_predict;
use ae_core::analysis::pca::Pca;
use ae_core::analysis::probe::{accuracy, SoftmaxProbe};
use ae_core::Tensor;
use anyhow::{Context, Result};
use serde::Serialize;

use crate::args::ProbeArgs;
use crate::labeled::{load_splits, open_run, Splits};

/// One feature set's row of the table.
#[derive(Debug, Serialize)]
struct Row {
    features: String,
    dim: usize,
    softmax_accuracy: f64,
    softmax_converged: bool,
    knn_accuracy: f64,
}

/// Runs `ae probe`.
pub fn probe(args: ProbeArgs) -> Result<()> {
    let (dir, settings, meta) = open_run(&args.run)?;
    ae_core::training::configure_threads(args.threads.unwrap_or(settings.threads));
    let (_, _, task) = dir
        .load()
        .with_context(|| format!("cannot load the model in {}", args.run.display()))?;
    let model = task.model;
    let data = args.data.clone().unwrap_or(settings.data.clone());
    let mut settings = settings;
    if let Some(c) = &args.classes {
        settings.classes = c.clone();
    }
    let mut s = load_splits(
        (&settings, &meta),
        &data,
        args.data_dir.clone(),
        0.2,
        args.seed,
    )?;
    if let Some(m) = args.max_train {
        keep_first(&mut s, m);
    }
    let k = model.config.code_size();
    let (n, d) = (s.train.x.rows(), s.train.x.cols());
    if !args.quiet {
        note!(
            "probing {} on {data}: {n} training, {} test examples, {} classes",
            args.run.display(),
            s.test.x.rows(),
            s.classes
        );
    }
    let mut rows = Vec::new();
    let flat = |t: &Tensor| Tensor::from_vec(&[t.rows(), t.cols()], t.data().to_vec());
    rows.push(score(
        "raw inputs",
        flat(&s.train.x),
        flat(&s.test.x),
        &s,
        &args,
    )?);
    if k < d && k < n {
        let pca = Pca::fit(&flat(&s.train.x), k)?;
        let mut p = pca.to_model(&[d])?;
        let (tr, te) = (
            p.encode_rows(&flat(&s.train.x), usize::MAX),
            p.encode_rows(&flat(&s.test.x), usize::MAX),
        );
        rows.push(score(&format!("PCA-{k}"), tr, te, &s, &args)?);
    }
    // The codes where --device says; the softmax and k-NN fits are the CPU's.
    let on = crate::device::inference(&args.on, &model)?;
    let (tr, te) = (on.codes(&s.train.x)?, on.codes(&s.test.x)?);
    rows.push(score("autoencoder codes", tr, te, &s, &args)?);
    if args.json {
        say!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        say!(
            "{:<20} {:>6} {:>9} {:>9}",
            "features",
            "dim",
            "softmax",
            format!("{}-NN", args.k)
        );
        for r in &rows {
            say!(
                "{:<20} {:>6} {:>9.4} {:>9.4}{}",
                r.features,
                r.dim,
                r.softmax_accuracy,
                r.knn_accuracy,
                if r.softmax_converged {
                    ""
                } else {
                    "  (softmax did not converge: raise --max-iter)"
                }
            );
        }
    }
    Ok(())
}

/// Keeps the first `m` training examples.
fn keep_first(s: &mut Splits, m: usize) {
    let m = m.min(s.train.x.rows());
    let mut shape = s.train.x.shape().to_vec();
    shape[0] = m;
    let c = s.train.x.cols();
    s.train.x = Tensor::from_vec(&shape, s.train.x.data()[..m * c].to_vec());
    s.train.labels.truncate(m);
}

/// Test accuracy of softmax regression and k-NN on one feature set.
fn score(name: &str, train: Tensor, test: Tensor, s: &Splits, args: &ProbeArgs) -> Result<Row> {
    let knn = knn_predict(&train, &s.train.labels, &test, args.k);
    let knn_accuracy = accuracy(&knn, &s.test.labels);
    let softmax = SoftmaxProbe {
        l2: args.l2,
        max_iters: args.max_iter,
    }
    .fit_score(
        train.clone(),
        &s.train.labels,
        test,
        &s.test.labels,
        s.classes,
    )?;
    Ok(Row {
        features: name.to_string(),
        dim: train.cols(),
        softmax_accuracy: softmax.accuracy,
        softmax_converged: softmax.converged,
        knn_accuracy,
    })
}
