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
        What::TopActivations => top_activations(&args),
        What::ActivationMax => activation_max(&args),
    }
}

/// The first `--n` code units (at most the code's size).
fn units(args: &VisualizeArgs, code: usize) -> Vec<usize> {
    (0..code.min(args.n.max(1))).collect()
}

/// Fails unless examples are images of 1 or 3 channels.
fn image_shape(shape: &[usize]) -> Result<()> {
    match shape {
        [1 | 3, _, _] => Ok(()),
        s => {
            bail!("pictures are drawn for image data of shape [1 or 3, H, W]; this run reads {s:?}")
        }
    }
}

/// One row per code unit: the `--k` examples of the data that drive it highest, highest first.
fn top_activations(args: &VisualizeArgs) -> Result<()> {
    let mut l = crate::eval::load(&args.input)?;
    image_shape(&l.meta.input_shape)?;
    let codes = l.task.model.encode_rows(&l.x, usize::MAX);
    let units = units(args, codes.cols());
    let k = args.k.max(1).min(codes.rows());
    let top = ae_core::inspect::top_activations(&codes, &units, k);
    let d = l.raw.features();
    let mut tiles = Vec::with_capacity(units.len() * k * d);
    for i in top.iter().flatten() {
        tiles.extend_from_slice(l.raw.row(*i));
    }
    let max = picture::pixel_max(l.raw.source);
    picture::grid(&args.out, &l.meta.input_shape, &[&tiles], max, k)?;
    eprintln!(
        "wrote the {k} most activating of {} examples for each of {} code units (one row each) to {}",
        codes.rows(),
        units.len(),
        args.out.display()
    );
    Ok(())
}

/// For each code unit, the input of bounded norm (the data's mean norm) that maximizes it, found
/// by gradient ascent from noise; each tile scaled to its own range.
fn activation_max(args: &VisualizeArgs) -> Result<()> {
    let mut l = crate::eval::load(&args.input)?;
    image_shape(&l.meta.input_shape)?;
    let d = l.x.cols();
    let rows = l.x.rows().max(1);
    let radius =
        l.x.data()
            .chunks_exact(d)
            .map(|r| r.iter().map(|v| (v * v) as f64).sum::<f64>().sqrt())
            .sum::<f64>() as f32
            / rows as f32;
    let units = units(args, l.task.model.config.code_size());
    let x =
        ae_core::inspect::maximize_units(&mut l.task.model, &units, radius, args.steps, args.seed);
    let tiles = picture::normalize_tiles(x.data(), d);
    picture::stacked_grid(&args.out, &l.meta.input_shape, &[&tiles], 1.0)?;
    eprintln!(
        "wrote the maximizing inputs (norm ≤ {radius:.2}, {} steps) of {} code units to {}",
        args.steps,
        units.len(),
        args.out.display()
    );
    Ok(())
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
    let tiles = picture::normalize_tiles(&w.data()[..n * d], d);
    picture::stacked_grid(&args.out, &shape, &[&tiles], 1.0)?;
    eprintln!(
        "wrote the first-layer filters of {n} of {units} units to {}",
        args.out.display()
    );
    Ok(())
}
