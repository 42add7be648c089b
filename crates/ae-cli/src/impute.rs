//! `ae impute`: fills the missing cells (empty or NaN) of a user's table by iterated reconstruction:
//! start from column means, reconstruct, put the reconstruction into the missing cells only, repeat.
use ae_core::engine::layers::Mode;
use ae_core::run::RunDir;
use ae_core::Tensor;
use ae_data::csv_table::{self, CsvOptions};
use anyhow::{bail, Context, Result};

use crate::args::ImputeArgs;

/// Runs `ae impute`.
pub fn impute(args: ImputeArgs) -> Result<()> {
    let run = RunDir::open(&args.run)?;
    let (settings, meta, mut task) = run
        .load()
        .with_context(|| format!("cannot load the model in {}", args.run.display()))?;
    ae_core::training::configure_threads(args.threads.unwrap_or(settings.threads));
    let Some(path) = args.data.strip_prefix("csv:") else {
        bail!(
            "ae impute reads tables: give --data csv:PATH, got `{}`",
            args.data
        );
    };
    let opts = CsvOptions {
        allow_missing: true,
        ..CsvOptions::default()
    };
    let table = csv_table::read(path.as_ref(), &opts)?;
    let mut s = table.samples;
    let d: usize = meta.input_shape.iter().product();
    if s.features() != d {
        bail!(
            "{path}: the table has {} columns but the model in {} takes {d}",
            s.features(),
            args.run.display()
        );
    }
    let missing: Vec<bool> = s.data.iter().map(|v| v.is_nan()).collect();
    let holes = missing.iter().filter(|&&m| m).count();
    meta.scaler.transform(&mut s)?;
    // Start each hole at its column's mean over the observed cells (0 when a column has none).
    let mut mean = vec![0.0f64; d];
    let mut seen = vec![0usize; d];
    for row in s.data.chunks_exact(d) {
        for (j, &v) in row.iter().enumerate() {
            if !v.is_nan() {
                mean[j] += v as f64;
                seen[j] += 1;
            }
        }
    }
    for (j, m) in mean.iter_mut().enumerate() {
        *m /= seen[j].max(1) as f64;
    }
    for (i, v) in s.data.iter_mut().enumerate() {
        if v.is_nan() {
            *v = mean[i % d] as f32;
        }
    }
    let mut x = Tensor::from_vec(&[s.n, d], std::mem::take(&mut s.data));
    for _ in 0..args.iterations {
        task.model.forward(&x, Mode::Eval);
        let rec = task.model.reconstruction().data().to_vec();
        for ((v, r), &m) in x.data_mut().iter_mut().zip(rec).zip(&missing) {
            if m {
                *v = r;
            }
        }
    }
    let mut out = x.into_vec();
    meta.scaler.inverse(&mut out);
    let header: Vec<String> = table
        .columns
        .unwrap_or_else(|| (0..d).map(|j| format!("x_{j}")).collect());
    csv_table::write(&args.out, Some(&header), s.n, d, &out)?;
    eprintln!(
        "filled {holes} missing cells of {} rows in {} iterations → {}",
        s.n,
        args.iterations,
        args.out.display()
    );
    Ok(())
}
