//! `ae visualize RUN --what ... --out FILE.png`: pictures of what a run learned.
use ae_core::run::RunDir;
use anyhow::{bail, Context, Result};

use crate::args::{ReconstructArgs, VisualizeArgs, What};
use crate::picture;

/// Runs `ae visualize`.
pub fn visualize(args: VisualizeArgs) -> Result<()> {
    match args.what {
        What::Reconstructions => crate::eval::reconstruct(ReconstructArgs {
            input: args.input,
            out: args.out,
            n: args.n,
        }),
        What::Filters => filters(&args),
    }
}

/// The first layer's weights, one tile per unit (dense: a weight row drawn in the input's shape;
/// conv: each kernel over its input channels), each scaled to its own range, as Hinton's and
/// Ng's filter pictures are.
fn filters(args: &VisualizeArgs) -> Result<()> {
    let run = RunDir::open(&args.input.run)?;
    let (_, meta, task) = run
        .load()
        .with_context(|| format!("cannot load the model in {}", args.input.run.display()))?;
    let params = &task.model.params;
    let id = params
        .find("encoder.0.weight")
        .context("the run's first layer has no weight to draw")?;
    let w = &params.values[id.0];
    let (units, shape) = match w.shape() {
        // Dense (units, features): a row is one image of the input's shape.
        [u, _] => (*u, meta.input_shape.clone()),
        // Conv (out, in, kh, kw): a kernel is an in × kh × kw image.
        [u, c, kh, kw] => (*u, vec![*c, *kh, *kw]),
        s => bail!("cannot draw a first-layer weight of shape {s:?}"),
    };
    let (c, d) = (shape[0], shape.iter().product::<usize>());
    if shape.len() != 3 || (c != 1 && c != 3) {
        bail!(
            "filters are drawn for image data of 1 or 3 channels; this run's first layer reads \
             {shape:?}"
        );
    }
    let n = units.min(args.n.max(1));
    let mut tiles = Vec::with_capacity(n * d);
    for row in w.data().chunks_exact(d).take(n) {
        let (lo, hi) = row
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let span = (hi - lo).max(f32::MIN_POSITIVE);
        tiles.extend(row.iter().map(|&v| (v - lo) / span));
    }
    picture::stacked_grid(&args.out, &shape, &[&tiles], 1.0)?;
    eprintln!(
        "wrote the first-layer filters of {n} of {units} units to {}",
        args.out.display()
    );
    Ok(())
}
