//! `ae sample` (new examples from a VAE's prior) and `ae interpolate` (decoded steps on the line
//! between two examples' codes).
use ae_core::run::RunDir;
use anyhow::{bail, Context, Result};

use crate::args::{InterpolateArgs, SampleArgs};
use crate::eval::{extension, write_table};
use ae_viz::figures;
use ae_viz::picture;

/// Runs `ae sample`.
pub fn sample(args: SampleArgs) -> Result<()> {
    crate::output::check_out(&args.out, Some(&args.run), None, args.force)?;
    let run = RunDir::open(&args.run)?;
    let (settings, meta, task) = run
        .load()
        .with_context(|| format!("cannot load the model in {}", args.run.display()))?;
    ae_core::training::configure_threads(args.threads.unwrap_or(settings.threads));
    let on = crate::device::inference(&args.on, &task.model)?;
    let out = figures::sample_values(&on, &meta.scaler, args.n, args.seed)
        .with_context(|| format!("cannot sample from {}", args.run.display()))?;
    write_examples(&args.out, &meta.input_shape, &out, args.n, 8)?;
    note!(
        "wrote {} samples from the prior to {}",
        args.n,
        args.out.display()
    );
    Ok(())
}

/// Writes examples as a PNG grid of `per_row` (image data) or as a table.
fn write_examples(
    path: &std::path::Path,
    shape: &[usize],
    data: &[f32],
    n: usize,
    per_row: usize,
) -> Result<()> {
    if extension(path) == "png" {
        if !matches!(shape, [1 | 3, _, _]) {
            bail!(
                "{}: a PNG needs image data, but examples have shape {shape:?}; write .npy or .csv",
                path.display()
            );
        }
        return picture::grid(path, shape, &[data], figures::white(data), per_row);
    }
    let d = data.len() / n.max(1);
    let header: Vec<String> = (0..d).map(|j| format!("x_{j}")).collect();
    write_table(path, &header, n, d, data)
}

/// Runs `ae interpolate`.
pub fn interpolate(args: InterpolateArgs) -> Result<()> {
    crate::output::check_out(
        &args.out,
        Some(&args.input.run),
        args.input.data.as_deref(),
        args.force,
    )?;
    let mut l = crate::eval::load(&args.input)?;
    if extension(&args.out) != "png" || !matches!(l.meta.input_shape.as_slice(), [1 | 3, _, _]) {
        bail!(
            "{}: interpolation is drawn as a PNG of image data",
            args.out.display()
        );
    }
    let fig = figures::interpolation(&mut l, args.from, args.to, args.steps)?;
    ae_core::run::io::write_atomic(&args.out, &fig.png)?;
    note!("wrote {} to {}", fig.caption, args.out.display());
    Ok(())
}
