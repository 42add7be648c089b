//! `ae export`: a run's model for another runtime.
use anyhow::{Context, Result};

use crate::args::{ExportArgs, ExportFormat};

/// Runs `ae export`.
pub fn export(args: ExportArgs) -> Result<()> {
    crate::output::check_out(&args.out, Some(&args.run), None, args.force)?;
    let dir = ae_core::run::RunDir::open(&args.run)?;
    let (_, meta, task) = dir
        .load()
        .with_context(|| format!("cannot load the model in {}", args.run.display()))?;
    let bytes = match args.format {
        ExportFormat::Onnx => ae_core::export::onnx::export(
            &task.model,
            args.with_scaling.then_some(&meta.scaler),
            args.part,
        )?,
    };
    ae_core::run::io::write_atomic(&args.out, &bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    say!(
        "wrote the {} of {} as ONNX (opset {}, {} bytes) to {}",
        args.part,
        args.run.display(),
        ae_core::export::onnx::OPSET,
        bytes.len(),
        args.out.display()
    );
    Ok(())
}
