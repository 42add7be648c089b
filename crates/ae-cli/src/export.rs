//! `ae export`: a run's model, or a classifier, for another runtime.
use std::collections::HashMap;
use std::path::PathBuf;

use ae_core::export::onnx::{self, Part};
use ae_core::export::pytorch;
use ae_core::run::classifier_run::ClassifierDir;
use anyhow::{bail, Context, Result};

use crate::args::{ExportArgs, ExportFormat};

/// Runs `ae export`.
pub fn export(args: ExportArgs) -> Result<()> {
    crate::output::check_out(&args.out, Some(&args.run), None, args.force)?;
    if let ExportFormat::Pytorch = args.format {
        return pytorch(&args);
    }
    let (bytes, what) = if args.run.join("classifier.json").is_file() {
        if let Some(part) = args.part {
            bail!(
                "{} is a classifier, exported whole (input → logits and probabilities); --part {part} is for autoencoder runs",
                args.run.display()
            );
        }
        let (meta, model) = ClassifierDir::open(&args.run)?
            .load()
            .with_context(|| format!("cannot load the classifier in {}", args.run.display()))?;
        let scaler = args.with_scaling.then_some(&meta.scaler);
        (
            onnx::export_classifier(&model, scaler)?,
            "classifier".to_string(),
        )
    } else {
        let part = args.part.unwrap_or(Part::Autoencoder);
        let dir = ae_core::run::RunDir::open(&args.run)?;
        let (_, meta, task) = dir
            .load()
            .with_context(|| format!("cannot load the model in {}", args.run.display()))?;
        let scaler = args.with_scaling.then_some(&meta.scaler);
        (onnx::export(&task.model, scaler, part)?, part.to_string())
    };
    ae_core::run::io::write_atomic(&args.out, &bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    say!(
        "wrote the {what} of {} as ONNX (opset {}, {} bytes) to {}",
        args.run.display(),
        onnx::OPSET,
        bytes.len(),
        args.out.display()
    );
    Ok(())
}

/// `--format pytorch`: OUT (a `.py` module) and its weights beside it (same stem, `.safetensors`).
fn pytorch(args: &ExportArgs) -> Result<()> {
    if args.out.extension().is_none_or(|e| e != "py") {
        bail!(
            "--format pytorch writes a Python module: --out must end in .py (got {})",
            args.out.display()
        );
    }
    if args.run.join("classifier.json").is_file() {
        bail!(
            "{} is a classifier: it exports as ONNX (--format onnx); --format pytorch is for autoencoder runs",
            args.run.display()
        );
    }
    if args.part.is_some_and(|p| p != Part::Autoencoder) {
        bail!("--part is for ONNX: the PyTorch module holds the whole model, with encode, decode and forward");
    }
    let weights: PathBuf = args.out.with_extension("safetensors");
    crate::output::check_out(&weights, Some(&args.run), None, args.force)?;
    let dir = ae_core::run::RunDir::open(&args.run)?;
    let (_, meta, task) = dir
        .load()
        .with_context(|| format!("cannot load the model in {}", args.run.display()))?;
    let scaler = args.with_scaling.then_some(&meta.scaler);
    let what = format!("run `{}`", args.run.display());
    let stem = args
        .out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let export = pytorch::export(&task.model, scaler, &what, &stem)?;
    let source = export.source;
    let named: Vec<_> = export.tensors.iter().map(|(n, t)| (n.clone(), t)).collect();
    let bytes = ae_core::run::io::to_safetensors(&named, HashMap::new())?;
    // The weights first: a module that appears is one whose weights are there.
    ae_core::run::io::write_atomic(&weights, &bytes)
        .with_context(|| format!("cannot write {}", weights.display()))?;
    ae_core::run::io::write_atomic(&args.out, source.as_bytes())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    say!(
        "wrote the model of {} as a PyTorch module to {} and its weights ({} tensors) to {}",
        args.run.display(),
        args.out.display(),
        named.len(),
        weights.display()
    );
    Ok(())
}
