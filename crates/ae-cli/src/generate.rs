//! `ae sample` (new examples from a VAE's prior) and `ae interpolate` (decoded steps on the line
//! between two examples' codes).
use ae_core::run::RunDir;
use ae_core::Tensor;
use anyhow::{bail, Context, Result};

use crate::args::{InterpolateArgs, SampleArgs};
use crate::eval::{extension, write_table};
use crate::picture;

/// The value drawn white for decoded data in the data's units: 255 when the data was 8-bit (its
/// values run past 1), else 1.
fn white(values: &[f32]) -> f32 {
    if values.iter().any(|&v| v > 1.5) {
        255.0
    } else {
        1.0
    }
}

/// Runs `ae sample`.
pub fn sample(args: SampleArgs) -> Result<()> {
    let run = RunDir::open(&args.run)?;
    let (settings, meta, task) = run
        .load()
        .with_context(|| format!("cannot load the model in {}", args.run.display()))?;
    crate::train::configure_threads(args.threads.unwrap_or(settings.threads));
    let mut model = task.model;
    if !model.config.variational {
        bail!(
            "{} is not a VAE: only a variational autoencoder has a prior to sample from (train one with --model vae)",
            args.run.display()
        );
    }
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    let k = model.config.code_size();
    let z = ae_core::vae::prior_samples(args.n, k, args.seed);
    let mut out = Vec::with_capacity(args.n * model.config.input_features());
    z.for_batches(256, |_, batch| {
        model.decode(batch);
        out.extend_from_slice(model.reconstruction().data());
    });
    meta.scaler.inverse(&mut out);
    write_examples(&args.out, &meta.input_shape, &out, args.n, 8)?;
    eprintln!(
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
        return picture::grid(path, shape, &[data], white(data), per_row);
    }
    let d = data.len() / n.max(1);
    let header: Vec<String> = (0..d).map(|j| format!("x_{j}")).collect();
    write_table(path, &header, n, d, data)
}

/// Runs `ae interpolate`.
pub fn interpolate(args: InterpolateArgs) -> Result<()> {
    let mut l = crate::eval::load(&args.input)?;
    let n = l.x.rows();
    for (flag, i) in [("--from", args.from), ("--to", args.to)] {
        if i >= n {
            bail!(
                "{flag} {i}: the data has examples 0 to {}",
                n.saturating_sub(1)
            );
        }
    }
    if args.steps < 2 {
        bail!("--steps must be at least 2 (the two ends)");
    }
    let d = l.x.cols();
    let mut shape = l.x.shape().to_vec();
    shape[0] = 2;
    let mut pair = l.x.row(args.from).to_vec();
    pair.extend_from_slice(l.x.row(args.to));
    let model = &mut l.task.model;
    model.encode(&Tensor::from_vec(&shape, pair));
    let codes = model.code().clone();
    let k = codes.cols();
    let (a, b) = (codes.row(0), codes.row(1));
    let mut z = Vec::with_capacity(args.steps * k);
    for s in 0..args.steps {
        let t = s as f32 / (args.steps - 1) as f32;
        z.extend(a.iter().zip(b).map(|(a, b)| (1.0 - t) * a + t * b));
    }
    let mut code_shape = codes.shape().to_vec();
    code_shape[0] = args.steps;
    model.decode(&Tensor::from_vec(&code_shape, z));
    let mut decoded = model.reconstruction().data().to_vec();
    l.meta.scaler.inverse(&mut decoded);
    let mut strip = l.raw.row(args.from).to_vec();
    strip.extend_from_slice(&decoded);
    strip.extend_from_slice(l.raw.row(args.to));
    let steps = args.steps + 2;
    if extension(&args.out) != "png" || !matches!(l.meta.input_shape.as_slice(), [1 | 3, _, _]) {
        bail!(
            "{}: interpolation is drawn as a PNG of image data",
            args.out.display()
        );
    }
    let white = picture::pixel_max(l.raw.source);
    picture::grid(&args.out, &l.meta.input_shape, &[&strip], white, steps)?;
    eprintln!(
        "wrote example {}, {} decoded steps and example {} in one row to {} ({} values per example)",
        args.from,
        args.steps,
        args.to,
        args.out.display(),
        d
    );
    Ok(())
}
