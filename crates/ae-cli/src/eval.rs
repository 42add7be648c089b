//! `ae eval`, `ae encode`, `ae reconstruct`: commands that read a run and some data.
use std::path::Path;

use ae_core::analysis::inference::Inference;
use ae_core::model::CodeHealth;
use ae_core::objective::AutoencoderTask;
use ae_core::run::RunDir;
use ae_core::training::settings::Settings;
use ae_core::Tensor;
use ae_data::datasets::Split;
use anyhow::{bail, Context, Result};

use crate::args::{DenoiseArgs, EncodeArgs, EvalArgs, ReconstructArgs, RunData, SplitArg};
use crate::data;
pub use ae_core::analysis::metrics::{
    corrupt, metrics, metrics_on, reconstructed, vae_figures, Metrics,
};
pub use ae_core::run::Loaded;

/// Opens the run and loads and scales the data.
pub fn load(input: &RunData) -> Result<Loaded> {
    Ok(load_rows(input, Rows::All)?.0)
}

/// As [`load`], but a run whose model reads missing-cell indicators (trained with `--missing
/// allow`) also takes rows with missing cells, as it did in training (for codes and
/// reconstructions; scores need complete rows).
pub fn load_incomplete(input: &RunData) -> Result<Loaded> {
    Ok(load_rows_as(input, Rows::All, true)?.0)
}

/// Says so when the run in `path` stopped before its last epoch.
pub fn note_unfinished(path: &Path, meta: &ae_core::run::RunMeta, settings: &Settings) {
    if !meta.finished {
        note!(
            "note: {} is unfinished: {} of {} epochs trained (continue it with `ae train --out {} --resume`)",
            path.display(),
            meta.epoch,
            settings.epochs,
            path.display()
        );
    }
}

/// Which rows of a run's own data (one without a test split) a command scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    /// Every row.
    All,
    /// The rows the run held out for validation, when it is scoring its own training data.
    HeldOut,
}

/// Opens the run and loads and scales the data: with [`Rows::HeldOut`] and the run's own data
/// without a test split, only the rows the run held out. Also returns which rows these are, in
/// words.
pub fn load_rows(input: &RunData, rows: Rows) -> Result<(Loaded, String)> {
    load_rows_as(input, rows, false)
}

fn load_rows_as(input: &RunData, rows: Rows, incomplete: bool) -> Result<(Loaded, String)> {
    let run = RunDir::open(&input.run)?;
    let (settings, meta, task) = run
        .load()
        .with_context(|| format!("cannot load the model in {}", input.run.display()))?;
    note_unfinished(&input.run, &meta, &settings);
    ae_core::training::configure_threads(input.threads.unwrap_or(settings.threads));
    let name = input.data.as_deref().unwrap_or(&settings.data);
    let spec = data::parse_spec(name)?;
    let split = match input.split {
        SplitArg::Train => Split::Train,
        SplitArg::Test => Split::Test,
    };
    let mut raw = data::load_with(
        &spec,
        input.data_dir.clone(),
        split,
        false,
        &settings.csv_options()?,
    )?;
    let classes = input
        .classes
        .clone()
        .unwrap_or_else(|| settings.classes.clone());
    let raw_all = raw.n;
    raw = raw.only_classes(&classes)?;
    if raw.shape.iter().product::<usize>() != meta.input_shape.iter().product::<usize>() {
        bail!(
            "the data has examples of shape {:?} but the model in {} takes {:?}",
            raw.shape,
            input.run.display(),
            meta.input_shape
        );
    }
    let which = if spec.has_test_split() {
        let part = match split {
            Split::Train => "training",
            Split::Test => "test",
        };
        format!("the {} examples of the {part} split of {name}", raw.n)
    } else if rows == Rows::HeldOut && input.data.is_none() && settings.val_fraction > 0.0 {
        let total = raw.n;
        let val = if settings.stream {
            // A streamed run held out rows by a hash of their index.
            let held: Vec<usize> = (0..total)
                .filter(|&i| {
                    ae_core::training::stream::held_out(settings.seed, settings.val_fraction, i)
                })
                .collect();
            (!held.is_empty()).then(|| raw.subset(&held))
        } else {
            ae_core::run::split_validation(&mut raw, settings.val_fraction, settings.seed).1
        };
        let Some(val) = val else {
            bail!("{name} has too few rows ({total}) to hold any out");
        };
        raw = val;
        format!(
            "the {} validation rows of {name} the run held out (the other {} trained it; --all-rows scores all {total})",
            raw.n,
            total - raw.n
        )
    } else if name == settings.data {
        format!(
            "all {} rows of {name}, the rows the model trained on included{}",
            raw.n,
            if settings.val_fraction > 0.0 {
                ""
            } else {
                " (the run held none out: pass --data with new rows for a fair score)"
            }
        )
    } else {
        format!("all {} rows of {name}", raw.n)
    };
    let d = raw.features().max(1);
    let complete = ae_core::objective::missing::complete_rows(&raw.data, d);
    let which = if complete.len() == raw.n {
        which
    } else if rows == Rows::HeldOut && !complete.is_empty() {
        let n = raw.n;
        raw = raw.subset(&complete);
        format!(
            "the {} complete rows of {which} ({} have missing cells)",
            raw.n,
            n - raw.n
        )
    } else if incomplete && settings.uses_missing_indicator() {
        format!(
            "{which}; {} of them with missing cells, which the model reads as missing",
            raw.n - complete.len()
        )
    } else {
        bail!(
            "{name}: {} of {} rows have missing cells; fill them first (`ae impute {} --data {name} --out FILLED.csv`)",
            raw.n - complete.len(),
            raw.n,
            input.run.display()
        );
    };
    let which = if classes.is_empty() {
        which
    } else {
        format!(
            "{which}, classes {classes:?} only ({} of {raw_all} examples before holding out)",
            raw.n
        )
    };
    Ok((Loaded::new(meta, task, raw)?, which))
}

/// Loads the model saved in `run` and prints its metrics on `x`, the test split of `data` (already
/// scaled): how `ae train` and `ae pca` end.
pub fn report_test(run: &RunDir, data: &str, x: &Tensor) -> Result<()> {
    let (_, meta, mut saved) = run.load()?;
    let bin;
    let x = if saved.objective.binarize {
        bin = binarized(x)?;
        &bin
    } else {
        x
    };
    let m = metrics(&mut saved.model, meta.scaler.kind, x, x);
    say!(
        "test split of {data}{}:",
        if saved.objective.binarize {
            " (binarized, fixed seed)"
        } else {
            ""
        }
    );
    print_metrics(&m);
    if saved.objective.kl.is_some() {
        let f = vae_figures(&mut saved, x, 0);
        say!("elbo              {:.3} nats per example (reconstruction {:.3}, KL {:.3}; `ae eval` adds the importance-weighted likelihood)", f.elbo, f.reconstruction, f.kl);
    }
    Ok(())
}

/// The fixed binarized copy of `x` (see [`ae_core::model::vae::binarized`]).
pub fn binarized(x: &Tensor) -> Result<Tensor> {
    Ok(ae_core::model::vae::binarized(x)?)
}

/// Runs `ae eval`.
pub fn eval(args: EvalArgs) -> Result<()> {
    let rows = if args.all_rows {
        Rows::All
    } else {
        Rows::HeldOut
    };
    let (mut l, mut which) = load_rows(&args.input, rows)?;
    if let Some(n) = args.limit.filter(|&n| n < l.x.rows()) {
        l.x = l.x.first_rows(n);
        which = format!("the first {n} of {which}");
    }
    // The forward passes where --device says; the Jacobian norm's backward passes and a VAE's
    // ELBO are the CPU's.
    let on = crate::device::inference(&args.on, &l.task.model)?;
    let health = CodeHealth::of(&on.codes(&l.x)?);
    let trained_binary = l.task.objective.binarize;
    if args.binarize || trained_binary {
        l.x = binarized(&l.x)?;
    }
    let Some(noise) = args.noise else {
        let m = metrics_on(&on, l.meta.scaler.kind, &l.x, &l.x)?;
        drop(on);
        let vae = l
            .task
            .objective
            .kl
            .is_some()
            .then(|| vae_figures(&mut l.task, &l.x, args.iw_samples));
        if args.json {
            let mut v = serde_json::to_value(&m)?;
            if let Some(f) = &vae {
                v["elbo"] = f.elbo.into();
                v["reconstruction_nats"] = f.reconstruction.into();
                v["kl_nats"] = f.kl.into();
                if let Some(nll) = f.iw_nll {
                    v["iw_nll"] = nll.into();
                    v["iw_samples"] = args.iw_samples.into();
                }
            }
            v["binarized"] = (args.binarize || trained_binary).into();
            v["rows"] = which.into();
            v["code_units"] = health.units.into();
            v["dead_code_units"] = serde_json::to_value(&health.dead)?;
            v["constant_code_units"] = serde_json::to_value(&health.constant)?;
            say!("{v}");
        } else {
            say!("rows              {which}");
            print_metrics(&m);
            print_health(&health);
            if let Some(f) = &vae {
                say!(
                    "elbo              {:.3} nats per example (reconstruction {:.3}, KL {:.3})",
                    f.elbo,
                    f.reconstruction,
                    f.kl
                );
                if let Some(nll) = f.iw_nll {
                    say!("-log p(x) ≈        {nll:.3} nats per example (importance-weighted, {} samples)", args.iw_samples);
                }
            }
            if args.binarize || trained_binary {
                say!("data              binarized (fixed seed)");
            }
        }
        return Ok(());
    };
    // Denoising: reconstruct corrupted inputs, score against the clean ones, and say how far the
    // corrupted inputs themselves were.
    let noisy = corrupt(&l.x, noise, args.seed);
    let m = metrics_on(&on, l.meta.scaler.kind, &noisy, &l.x)?;
    let noisy_mse = noisy
        .data()
        .iter()
        .zip(l.x.data())
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        / l.x.len().max(1) as f64;
    let noisy_psnr = m.psnr_db + 10.0 * (m.mse / noisy_mse).log10();
    if args.json {
        let mut v = serde_json::to_value(&m)?;
        v["noise"] = noise.to_string().into();
        v["noisy_mse"] = noisy_mse.into();
        v["noisy_psnr_db"] = noisy_psnr.into();
        v["rows"] = which.into();
        say!("{v}");
    } else {
        say!("rows              {which}");
        print_metrics(&m);
        say!("noise             {noise}");
        say!("noisy input mse   {noisy_mse:.6}");
        say!(
            "noisy input psnr  {noisy_psnr:.2} dB  (reconstruction gains {:.2} dB)",
            m.psnr_db - noisy_psnr
        );
    }
    Ok(())
}

/// Prints how many code units vary, naming the dead and constant ones.
pub fn print_health(h: &CodeHealth) {
    match h.describe() {
        None => say!("code units        {} of {} vary", h.units, h.units),
        Some(what) => say!(
            "code units        {} of {} vary; warning: {what}",
            h.units - h.useless(),
            h.units
        ),
    }
}

/// Prints metrics as an aligned table.
pub fn print_metrics(m: &Metrics) {
    {
        say!("examples          {}", m.n);
        say!("mse               {:.6}", m.mse);
        say!("sse per example   {:.4}", m.sse_per_example);
        say!("bce               {:.6}", m.bce);
        say!("psnr              {:.2} dB", m.psnr_db);
        say!("mean ||J||_F      {:.4}", m.mean_jacobian_norm);
    }
}

/// Runs `ae denoise`: clean, corrupted and denoised examples, as a picture or as data.
pub fn denoise(args: DenoiseArgs) -> Result<()> {
    crate::output::check_out(
        &args.out,
        Some(&args.input.run),
        args.input.data.as_deref(),
        args.force,
    )?;
    let mut l = load(&args.input)?;
    if extension(&args.out) == "png" {
        note_cpu_picture(&args.on);
        let fig = ae_viz::figures::denoising(&mut l, args.noise, args.n, args.seed)?;
        ae_core::run::io::write_atomic(&args.out, &fig.png)?;
        note!("wrote {} to {}", fig.caption, args.out.display());
        return Ok(());
    }
    let noisy = corrupt(&l.x.first_rows(args.n), args.noise, args.seed);
    let on = crate::device::inference(&args.on, &l.task.model)?;
    let denoised = reconstructed(&on, &l.meta.scaler, &noisy)?;
    let (n, d) = (noisy.rows(), noisy.cols());
    let header: Vec<String> = (0..d).map(|j| format!("x_{j}")).collect();
    write_table(&args.out, &header, n, d, &denoised)?;
    note!("wrote {n} denoised examples to {}", args.out.display());
    Ok(())
}

/// Runs `ae encode`.
pub fn encode(args: EncodeArgs) -> Result<()> {
    crate::output::check_out(
        &args.out,
        Some(&args.input.run),
        args.input.data.as_deref(),
        args.force,
    )?;
    if args.stream {
        return crate::streamed::encode(&args);
    }
    let l = load_incomplete(&args.input)?;
    let (header, width) = code_columns(&l.task, args.with_variance, &args.input)?;
    let on = crate::device::inference(&args.on, &l.task.model)?;
    let codes = codes_of(&on, &l.x, args.with_variance)?;
    write_table(&args.out, &header, l.x.rows(), width, &codes)?;
    note!(
        "wrote {} codes of size {} to {}",
        l.x.rows(),
        l.task.model.config.code_size(),
        args.out.display()
    );
    Ok(())
}

/// The columns `ae encode` writes (`code_*`, or a VAE's `mu_*` and with `with_variance` its
/// `logvar_*`) and how many.
pub fn code_columns(
    task: &AutoencoderTask,
    with_variance: bool,
    input: &RunData,
) -> Result<(Vec<String>, usize)> {
    let k = task.model.config.code_size();
    let variational = task.model.config.variational;
    if with_variance && !variational {
        bail!(
            "--with-variance needs a VAE (trained with --model vae); {} is a deterministic autoencoder",
            input.run.display()
        );
    }
    let mut header: Vec<String> = (0..k)
        .map(|j| format!("{}_{j}", if variational { "mu" } else { "code" }))
        .collect();
    if with_variance {
        header.extend((0..k).map(|j| format!("logvar_{j}")));
    }
    let width = header.len();
    Ok((header, width))
}

/// The codes of `x`: a VAE's encoder output is [μ | log σ²], all of it with `with_variance`,
/// else μ.
pub fn codes_of(on: &Inference<'_>, x: &Tensor, with_variance: bool) -> Result<Vec<f32>> {
    Ok(if with_variance {
        on.encoder_outputs(x)?
    } else {
        on.codes(x)?
    }
    .into_vec())
}

/// Says that a picture's few examples are computed on the CPU whatever `--device` says.
fn note_cpu_picture(on: &crate::args::OnDevice) {
    if on.device != ae_core::training::device::Device::Cpu {
        note!(
            "a picture's examples are computed on the CPU (--device is for .npy and .csv output)"
        );
    }
}

/// Runs `ae reconstruct`.
pub fn reconstruct(args: ReconstructArgs) -> Result<()> {
    crate::output::check_out(
        &args.out,
        Some(&args.input.run),
        args.input.data.as_deref(),
        args.force,
    )?;
    if args.stream {
        if extension(&args.out) == "png" {
            bail!("--stream writes every reconstruction to .npy or .csv; a PNG of the first --n examples needs no --stream");
        }
        return crate::streamed::reconstruct(&args);
    }
    let png = extension(&args.out) == "png";
    let mut l = if png {
        load(&args.input)?
    } else {
        load_incomplete(&args.input)?
    };
    if png {
        note_cpu_picture(&args.on);
        let fig = ae_viz::figures::reconstructions(&mut l, args.n)?;
        ae_core::run::io::write_atomic(&args.out, &fig.png)?;
        note!("wrote {} to {}", fig.caption, args.out.display());
        return Ok(());
    }
    let d = l.x.cols();
    let on = crate::device::inference(&args.on, &l.task.model)?;
    let rec = reconstructed(&on, &l.meta.scaler, &l.x)?;
    let header: Vec<String> = (0..d).map(|j| format!("x_{j}")).collect();
    write_table(&args.out, &header, l.x.rows(), d, &rec)?;
    note!(
        "wrote {} reconstructions to {}",
        l.x.rows(),
        args.out.display()
    );
    Ok(())
}

pub fn extension(p: &Path) -> String {
    p.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Writes rows × cols values as .npy or .csv, by extension.
pub fn write_table(
    path: &Path,
    header: &[String],
    rows: usize,
    cols: usize,
    data: &[f32],
) -> Result<()> {
    match extension(path).as_str() {
        "npy" => ae_data::npy::write_f32(path, &[rows, cols], data)?,
        "csv" => ae_data::csv_table::write(path, Some(header), rows, cols, data)?,
        "parquet" => {
            // With an `index` column: each row's place in the input.
            let mut w = ae_data::rows_out::RowWriter::create(path, header, rows)?;
            w.write(data)?;
            w.finish()?;
        }
        other => bail!(
            "{}: unsupported output format `.{other}`; use .npy, .csv or .parquet",
            path.display()
        ),
    }
    Ok(())
}
