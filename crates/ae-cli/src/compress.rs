//! `ae compress`: the run's autoencoder as an image codec beside JPEG (the library measures; this
//! loads, calls, prints and writes).
use ae_core::analysis::compress::{rate_distortion, RatePoint};
use ae_core::model::Autoencoder;
use ae_core::run::{Loaded, RunMeta};
use ae_core::Tensor;
use ae_data::datasets::Split;
use ae_data::samples::Samples;
use anyhow::{Context, Result};
use serde_json::json;

use crate::args::CompressArgs;
use crate::data;
use crate::eval::{load_rows, Rows};

/// One set of images, measured with both codecs.
struct Measured {
    name: String,
    examples: usize,
    points: Vec<RatePoint>,
}

/// Runs `ae compress`.
pub fn run(args: CompressArgs) -> Result<()> {
    let run = Some(args.input.run.as_path());
    crate::output::check_out(&args.out, run, args.input.data.as_deref(), args.force)?;
    if let Some(png) = &args.png {
        crate::output::check_out(png, run, args.input.data.as_deref(), args.force)?;
    }
    let (mut l, which) = load_rows(&args.input, Rows::All)?;
    let settings = ae_core::run::RunDir::open(&args.input.run)?.read_settings()?;
    let spec = data::parse_spec(&settings.data)?;
    let mut train = data::load_with(
        &spec,
        args.input.data_dir.clone(),
        Split::Train,
        true,
        &settings.csv_options()?,
    )?;
    train = train.subset(&(0..train.n.min(args.train_limit)).collect::<Vec<_>>());
    let train = l.meta.prepare(train)?;
    note!(
        "fitting the quantizer and the coder's model on {} training codes…",
        train.rows()
    );
    let train_codes = l.task.model.codes(&train);

    let which = if l.x.rows() > args.limit {
        format!("the first {} of {which}", args.limit)
    } else {
        which
    };
    keep_first(&mut l, args.limit);
    let model = &l.task.model;
    let mut sets = vec![measure(
        model,
        &l.meta,
        &l.raw,
        &l.x,
        &which,
        &train_codes,
        &args,
    )?];
    if let Some(other) = &args.other {
        let raw = data::load(&data::parse_spec(other)?, None, Split::Test, true)
            .with_context(|| format!("cannot read --other {other}"))?;
        let raw = raw.subset(&(0..raw.n.min(args.limit)).collect::<Vec<_>>());
        let x = l.meta.prepare(raw.clone()).with_context(|| {
            format!(
                "{other}: its images must have as many pixels as the run takes ({:?})",
                l.meta.input_shape
            )
        })?;
        let name = format!("{other} (out of domain)");
        sets.push(measure(
            model,
            &l.meta,
            &raw,
            &x,
            &name,
            &train_codes,
            &args,
        )?);
    }

    for s in &sets {
        say!("{} ({} images):", s.name, s.examples);
        say!("codec  setting   bpp (payload)  bpp (all)   PSNR dB    SSIM");
        for p in &s.points {
            say!(
                "{:<6} {:>7}   {:>13.4}  {:>9.4}  {:>8.2}  {:>6.4}",
                p.codec,
                p.setting,
                p.bpp,
                p.bpp_total,
                p.psnr_db,
                p.ssim
            );
        }
    }
    let doc = json!({
        "run": args.input.run.display().to_string(),
        "note": "ae: bits per code value; bpp = coded codes, bpp_total adds the coder's model and the quantizer's ranges amortized over the images (the decoder network is not counted). jpeg: quality; bpp = entropy-coded scan, bpp_total = whole files with headers.",
        "sets": sets.iter().map(|s| json!({"data": s.name, "examples": s.examples, "points": s.points})).collect::<Vec<_>>(),
    });
    ae_core::run::io::write_atomic(&args.out, serde_json::to_string_pretty(&doc)?.as_bytes())?;
    note!("wrote {}", args.out.display());
    if let Some(png) = &args.png {
        let named: Vec<_> = sets
            .iter()
            .map(|s| (s.name.clone(), s.points.clone()))
            .collect();
        ae_core::run::io::write_atomic(png, &ae_viz::figures::rate_distortion(&named)?.png)?;
        note!("wrote the rate-distortion chart to {}", png.display());
    }
    Ok(())
}

fn keep_first(l: &mut Loaded, n: usize) {
    if l.x.rows() > n {
        l.x = l.x.first_rows(n);
        l.raw = l.raw.subset(&(0..n).collect::<Vec<_>>());
    }
}

fn measure(
    model: &Autoencoder,
    meta: &RunMeta,
    raw: &Samples,
    x: &Tensor,
    name: &str,
    train_codes: &Tensor,
    args: &CompressArgs,
) -> Result<Measured> {
    note!("measuring {name}…");
    let points = rate_distortion(
        model,
        &meta.scaler,
        train_codes,
        x,
        &raw.data,
        &meta.input_shape,
        &args.bits,
        &args.qualities,
    )?;
    Ok(Measured {
        name: name.into(),
        examples: raw.n,
        points,
    })
}
