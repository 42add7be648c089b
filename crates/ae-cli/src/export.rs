//! `ae export`: a run's model, or a classifier, for another runtime.
use ae_core::export::onnx::{self, Part};
use ae_core::run::classifier_run::ClassifierDir;
use anyhow::{bail, Context, Result};

use crate::args::{ExportArgs, ExportFormat};

/// Runs `ae export`.
pub fn export(args: ExportArgs) -> Result<()> {
    crate::output::check_out(&args.out, Some(&args.run), None, args.force)?;
    let ExportFormat::Onnx = args.format;
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
