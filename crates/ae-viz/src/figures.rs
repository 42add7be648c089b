//! Every picture of a run as PNG bytes: `ae visualize` writes one to a file, `ae report` embeds
//! them all in one page.
use ae_core::analysis::inference::Inference;
use ae_core::analysis::pca::Pca;
use ae_core::model::Autoencoder;
use ae_core::objective::noise::Noise;
use ae_core::run::{RunDir, RunMeta};
use anyhow::{bail, Context, Result};

use crate::chart::{self, Panel, Series};
use crate::picture;
use ae_core::analysis::metrics::{corrupt, reconstructed};
use ae_core::run::Loaded;

/// A picture and one line saying what it shows.
pub struct Figure {
    /// The picture, PNG-encoded.
    pub png: Vec<u8>,
    /// What it shows.
    pub caption: String,
}

/// Fails unless examples are images of 1 or 3 channels.
pub fn image_shape(shape: &[usize]) -> Result<()> {
    match shape {
        [1 | 3, _, _] => Ok(()),
        s => {
            bail!("pictures are drawn for image data of shape [1 or 3, H, W]; this run reads {s:?}")
        }
    }
}

/// The first `n` examples above their reconstructions.
pub fn reconstructions(l: &mut Loaded, n: usize) -> Result<Figure> {
    image_shape(&l.raw.shape)?;
    let n = n.clamp(1, l.x.rows());
    let d = l.x.cols();
    let rec = reconstructed(
        &Inference::cpu(&l.task.model),
        &l.meta.scaler,
        &l.x.first_rows(n),
    )?;
    let png = picture::grid_png(
        &l.raw.shape,
        &[&l.raw.data[..n * d], &rec],
        picture::pixel_max(l.raw.source),
        picture::PER_ROW,
    )?;
    Ok(Figure {
        png,
        caption: format!("{n} examples (upper rows) above their reconstructions (lower rows)"),
    })
}

/// Clean examples, the same corrupted by `noise`, and the model's reconstruction of the corrupted.
pub fn denoising(l: &mut Loaded, noise: Noise, n: usize, seed: u64) -> Result<Figure> {
    image_shape(&l.raw.shape)?;
    let n = n.clamp(1, l.x.rows());
    let d = l.x.cols();
    let noisy = corrupt(&l.x.first_rows(n), noise, seed);
    let denoised = reconstructed(&Inference::cpu(&l.task.model), &l.meta.scaler, &noisy)?;
    let mut noisy_units = noisy.data().to_vec();
    l.meta.scaler.inverse(&mut noisy_units);
    let png = picture::grid_png(
        &l.raw.shape,
        &[&l.raw.data[..n * d], &noisy_units, &denoised],
        picture::pixel_max(l.raw.source),
        picture::PER_ROW,
    )?;
    Ok(Figure {
        png,
        caption: format!("{n} examples: clean, corrupted ({noise}), denoised (rows of three)"),
    })
}

/// The first layer's weights, one tile per unit (dense: a weight row drawn in the input's shape;
/// conv: each kernel over its input channels), each scaled to its own range, as Hinton's and
/// Ng's filter pictures are.
pub fn filters(model: &Autoencoder, input_shape: &[usize], n: usize) -> Result<Figure> {
    let params = &model.params;
    let id = params
        .find("encoder.0.weight")
        .context("the run's first layer has no weight to draw")?;
    let w = &params.values[id.0];
    let (units, shape) = match w.shape() {
        // Dense (units, features): a row is one image of the input's shape.
        [u, _] => (*u, input_shape.to_vec()),
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
    let n = units.min(n.max(1));
    let tiles = picture::normalize_tiles(&w.data()[..n * d], d);
    // Kernels (3×3, 5×5) are drawn about 40 pixels wide, not at an image's zoom.
    let zoom = (40 / shape[1].max(shape[2]).max(1)).clamp(1, 16) as u32;
    let png = if shape[1].max(shape[2]) < 8 {
        picture::grid_png_zoomed(&shape, &[&tiles], 1.0, picture::PER_ROW, zoom)?
    } else {
        picture::grid_png(&shape, &[&tiles], 1.0, picture::PER_ROW)?
    };
    Ok(Figure {
        png,
        caption: format!(
            "first-layer filters of {n} of {units} units, each scaled to its own range"
        ),
    })
}

/// The first `n` code units (at most the code's size).
fn units(n: usize, code: usize) -> Vec<usize> {
    (0..code.min(n.max(1))).collect()
}

/// One row per code unit: the `k` examples of the data that drive it highest, highest first.
pub fn top_activations(l: &mut Loaded, n: usize, k: usize) -> Result<Figure> {
    image_shape(&l.meta.input_shape)?;
    let codes = l.task.model.encode_rows(&l.x, usize::MAX);
    let units = units(n, codes.cols());
    let k = k.max(1).min(codes.rows());
    let top = ae_core::analysis::inspect::top_activations(&codes, &units, k);
    let d = l.raw.features();
    let mut tiles = Vec::with_capacity(units.len() * k * d);
    for i in top.iter().flatten() {
        tiles.extend_from_slice(l.raw.row(*i));
    }
    let max = picture::pixel_max(l.raw.source);
    let png = picture::grid_png(&l.meta.input_shape, &[&tiles], max, k)?;
    Ok(Figure {
        png,
        caption: format!(
            "the {k} most activating of {} examples for each of {} code units (one row each)",
            codes.rows(),
            units.len()
        ),
    })
}

/// For each code unit, the input of bounded norm (the data's mean norm) that maximizes it, found
/// by gradient ascent from noise; each tile scaled to its own range.
pub fn activation_max(l: &mut Loaded, n: usize, steps: usize, seed: u64) -> Result<Figure> {
    image_shape(&l.meta.input_shape)?;
    let d = l.x.cols();
    let count = l.x.rows().max(1);
    let radius =
        l.x.data()
            .chunks_exact(d)
            .map(|r| r.iter().map(|v| (v * v) as f64).sum::<f64>().sqrt())
            .sum::<f64>() as f32
            / count as f32;
    let units = units(n, l.task.model.config.code_size());
    let x =
        ae_core::analysis::inspect::maximize_units(&mut l.task.model, &units, radius, steps, seed);
    let tiles = picture::normalize_tiles(x.data(), d);
    let png = picture::grid_png(&l.meta.input_shape, &[&tiles], 1.0, picture::PER_ROW)?;
    Ok(Figure {
        png,
        caption: format!(
            "inputs of norm ≤ {radius:.2} that maximize each of {} code units ({steps} steps of \
             gradient ascent from noise)",
            units.len()
        ),
    })
}

/// Names of the classes of the known data sets, by label.
pub fn class_names(data: &str) -> Vec<String> {
    let names: &[&str] = match data.split(':').next().unwrap_or("") {
        "fashion-mnist" => &[
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],
        "cifar10" => &[
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ],
        _ => &[],
    };
    names.iter().map(|s| s.to_string()).collect()
}

/// The codes of the first `points` examples in 2-D: the code itself when it has two units, else
/// its first two principal components; coloured by label when the data has labels.
pub fn latent(l: &mut Loaded, points: usize, data: &str) -> Result<Figure> {
    let n = points.clamp(1, l.x.rows());
    let codes = l.task.model.codes(&l.x.first_rows(n));
    let k = codes.cols();
    let what = if l.task.model.config.variational {
        "means of the code"
    } else {
        "codes"
    };
    let (xy, axes, how): (Vec<(f64, f64)>, (&str, &str), String) = match k {
        1 => (
            codes.data().iter().map(|&v| (v as f64, 0.0)).collect(),
            ("unit 1", ""),
            "the code's one unit".into(),
        ),
        2 => (
            codes
                .data()
                .chunks_exact(2)
                .map(|c| (c[0] as f64, c[1] as f64))
                .collect(),
            ("unit 1", "unit 2"),
            "the code's two units".into(),
        ),
        _ => {
            let pca = Pca::fit(&codes, 2).context("cannot find the codes' principal components")?;
            let project = |row: &[f32], c: usize| {
                row.iter()
                    .zip(&pca.mean)
                    .zip(&pca.components[c])
                    .map(|((&v, m), w)| (v as f64 - m) * w)
                    .sum::<f64>()
            };
            let ratio = pca.explained_variance_ratio();
            (
                codes
                    .data()
                    .chunks_exact(k)
                    .map(|r| (project(r, 0), project(r, 1)))
                    .collect(),
                ("principal component 1", "principal component 2"),
                format!(
                    "the first two principal components of the {k}-unit code ({:.0}% of its \
                     variance)",
                    100.0 * (ratio[0] + ratio[1])
                ),
            )
        }
    };
    let labels = l.raw.labels.as_ref().map(|v| &v[..n]);
    let png = chart::scatter(
        &format!("{what} of {n} examples"),
        axes,
        &xy,
        labels,
        &class_names(data),
    )?;
    let coloured = if labels.is_some() {
        ", coloured by label"
    } else {
        ""
    };
    Ok(Figure {
        png,
        caption: format!("{what} of {n} examples: {how}{coloured}"),
    })
}

/// Metric keys that are not loss terms.
const NOT_TERMS: [&str; 4] = ["epoch", "seconds", "examples_per_second", "stage"];

/// Training curves from `metrics.jsonl`: one panel per logged term, with its training,
/// validation (`val_…`) and test (`test_…`) values per epoch.
pub fn losses(run: &RunDir) -> Result<Figure> {
    let records = run
        .read_metrics()
        .with_context(|| format!("{} has no training curves", run.path().display()))?;
    if records.is_empty() {
        bail!(
            "{}: metrics.jsonl has no epoch",
            run.metrics_path().display()
        );
    }
    let mut panels: Vec<Panel> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let epoch = r["epoch"].as_f64().unwrap_or((i + 1) as f64);
        let Some(obj) = r.as_object() else { continue };
        for (key, v) in obj {
            let Some(v) = v.as_f64() else { continue };
            if NOT_TERMS.contains(&key.as_str()) {
                continue;
            }
            let (term, split, colour) = if let Some(t) = key.strip_prefix("val_") {
                (t, "validation", 1)
            } else if let Some(t) = key.strip_prefix("test_") {
                (t, "test", 2)
            } else {
                (key.as_str(), "training", 0)
            };
            let p = match panels.iter().position(|p| p.title == term) {
                Some(p) => p,
                None => {
                    panels.push(Panel {
                        title: term.to_string(),
                        x_label: "epoch".into(),
                        series: Vec::new(),
                    });
                    panels.len() - 1
                }
            };
            let series = &mut panels[p].series;
            let s = match series.iter().position(|s| s.name == split) {
                Some(s) => s,
                None => {
                    series.push(Series {
                        name: split.into(),
                        points: Vec::new(),
                        marked: split != "training" || records.len() == 1,
                        colour,
                    });
                    series.len() - 1
                }
            };
            series[s].points.push((epoch, v));
        }
    }
    // The total loss first, then terms in the order they were logged.
    panels.sort_by_key(|p| p.title != "loss");
    let names: Vec<&str> = panels.iter().map(|p| p.title.as_str()).collect();
    let mut caption = format!(
        "per-epoch curves of {} over {} epochs (training; validation and test where logged)",
        names.join(", "),
        records.len()
    );
    // Greedy layer-wise pretraining: one more panel, a curve per stage.
    let stages = run.read_pretrain_metrics()?;
    if !stages.is_empty() {
        let mut panel = Panel {
            title: "greedy pretraining: loss of each stage".into(),
            x_label: "epoch of the stage".into(),
            series: Vec::new(),
        };
        for (i, r) in stages.iter().enumerate() {
            let (Some(stage), Some(loss)) = (r["stage"].as_u64(), r["loss"].as_f64()) else {
                continue;
            };
            let epoch = r["epoch"].as_f64().unwrap_or((i + 1) as f64);
            let name = format!("stage {}", stage + 1);
            match panel.series.iter_mut().find(|s| s.name == name) {
                Some(s) => s.points.push((epoch, loss)),
                None => panel.series.push(Series {
                    name,
                    points: vec![(epoch, loss)],
                    marked: true,
                    colour: stage as usize,
                }),
            }
        }
        caption.push_str(&format!(
            "; greedy pretraining, {} stages",
            panel.series.len()
        ));
        panels.push(panel);
    }
    Ok(Figure {
        png: chart::curves(&panels)?,
        caption,
    })
}

/// `n` draws from a VAE's prior, decoded, in the data's units.
pub fn samples(model: &mut Autoencoder, meta: &RunMeta, n: usize, seed: u64) -> Result<Figure> {
    let data = sample_values(&Inference::cpu(model), &meta.scaler, n, seed)?;
    image_shape(&meta.input_shape)?;
    let png = picture::grid_png(&meta.input_shape, &[&data], white(&data), picture::PER_ROW)?;
    Ok(Figure {
        png,
        caption: format!("{n} draws from the prior N(0, I), decoded (seed {seed})"),
    })
}

/// The value drawn white for decoded data in the data's units: 255 when the data was 8-bit (its
/// values run past 1), else 1.
pub fn white(values: &[f32]) -> f32 {
    if values.iter().any(|&v| v > 1.5) {
        255.0
    } else {
        1.0
    }
}

/// `n` draws from a VAE's prior, decoded, in the data's units (`n × features` values).
pub fn sample_values(
    inference: &Inference<'_>,
    scaler: &ae_data::scaling::Scaler,
    n: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    let model = inference.model();
    if !model.config.variational {
        bail!(
            "the run is not a VAE: only a variational autoencoder has a prior to sample from \
             (train one with --model vae)"
        );
    }
    if n == 0 {
        bail!("--n must be at least 1");
    }
    let mut out = ae_core::analysis::generate::prior_draws(inference, n, seed)?.into_vec();
    scaler.inverse(&mut out);
    Ok(out)
}

/// Example `from`, `steps` decodings of evenly spaced points on the line between its code and
/// that of example `to`, and example `to`, in one row (values in the data's units).
pub fn interpolation_values(
    l: &mut Loaded,
    from: usize,
    to: usize,
    steps: usize,
) -> Result<Vec<f32>> {
    let n = l.x.rows();
    for (flag, i) in [("--from", from), ("--to", to)] {
        if i >= n {
            bail!(
                "{flag} {i}: the data has examples 0 to {}",
                n.saturating_sub(1)
            );
        }
    }
    if steps < 2 {
        bail!("--steps must be at least 2 (the two ends)");
    }
    let decoded = ae_core::analysis::generate::interpolate(
        &Inference::cpu(&l.task.model),
        l.x.row(from),
        l.x.row(to),
        steps,
    )?;
    let mut decoded = decoded.into_vec();
    l.meta.scaler.inverse(&mut decoded);
    let mut strip = l.raw.row(from).to_vec();
    strip.extend_from_slice(&decoded);
    strip.extend_from_slice(l.raw.row(to));
    Ok(strip)
}

/// [`interpolation_values`] drawn as one row.
pub fn interpolation(l: &mut Loaded, from: usize, to: usize, steps: usize) -> Result<Figure> {
    image_shape(&l.meta.input_shape)?;
    let strip = interpolation_values(l, from, to, steps)?;
    let white = picture::pixel_max(l.raw.source);
    let png = picture::grid_png(&l.meta.input_shape, &[&strip], white, steps + 2)?;
    Ok(Figure {
        png,
        caption: format!(
            "example {from}, {steps} decoded points on the line between the two codes, example {to}"
        ),
    })
}

/// PSNR against bits per pixel, one panel per set of images (`(name, points)` from
/// [`ae_core::analysis::compress::rate_distortion`]): the autoencoder with its coder's model, JPEG
/// whole files, and JPEG's scan alone.
pub fn rate_distortion(
    sets: &[(String, Vec<ae_core::analysis::compress::RatePoint>)],
) -> Result<Figure> {
    let panels: Vec<Panel> = sets
        .iter()
        .map(|(name, points)| {
            let of = |codec: &str, total: bool| {
                points
                    .iter()
                    .filter(|p| p.codec == codec)
                    .map(|p| (if total { p.bpp_total } else { p.bpp }, p.psnr_db))
                    .collect::<Vec<_>>()
            };
            let line = |label: &str, colour, points| Series {
                name: label.into(),
                points,
                marked: true,
                colour,
            };
            Panel {
                title: format!("PSNR (dB): {name}"),
                x_label: "bits per pixel".into(),
                series: vec![
                    line("autoencoder (codes + model)", 0, of("ae", true)),
                    line("JPEG (whole files)", 1, of("jpeg", true)),
                    line("JPEG (scan only)", 2, of("jpeg", false)),
                ],
            }
        })
        .collect();
    Ok(Figure {
        png: chart::curves(&panels)?,
        caption: "Rate and distortion: the autoencoder's codes quantized (2–8 bits per value) and \
                  range-coded, its coder's model counted; JPEG at qualities 5–95, with and without \
                  its headers. Up and to the left is better."
            .into(),
    })
}
