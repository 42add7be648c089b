//! `ae eval`, `ae encode`, `ae reconstruct`: commands that read a run and some data.
use std::path::Path;

use ae_core::engine::layers::Mode;
use ae_core::engine::loss::bce_logit;
use ae_core::engine::rng::{stream, Purpose};
use ae_core::model::Autoencoder;
use ae_core::objective::noise::Noise;
use ae_core::objective::AutoencoderTask;
use ae_core::run::{RunDir, RunMeta};
use ae_core::Tensor;
use ae_data::datasets::Split;
use ae_data::samples::Samples;
use ae_data::scaling::{Scaler, ScalingKind};
use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::args::{DenoiseArgs, EncodeArgs, EvalArgs, ReconstructArgs, RunData, SplitArg};
use crate::data;

/// A loaded run with the data to apply it to, scaled the way the run was trained.
pub struct Loaded {
    /// Metadata of the run.
    pub meta: RunMeta,
    /// The model and objective.
    pub task: AutoencoderTask,
    /// The data as given (unscaled).
    pub raw: Samples,
    /// The data scaled, `[N, ..input_shape]`.
    pub x: Tensor,
}

/// Opens the run and loads and scales the data.
pub fn load(input: &RunData) -> Result<Loaded> {
    let run = RunDir::open(&input.run)?;
    let (settings, meta, task) = run
        .load()
        .with_context(|| format!("cannot load the model in {}", input.run.display()))?;
    ae_core::training::configure_threads(input.threads.unwrap_or(settings.threads));
    let spec = data::parse_spec(input.data.as_deref().unwrap_or(&settings.data))?;
    let split = match input.split {
        SplitArg::Train => Split::Train,
        SplitArg::Test => Split::Test,
    };
    let raw = data::load(&spec, input.data_dir.clone(), split, false)?;
    if raw.shape.iter().product::<usize>() != meta.input_shape.iter().product::<usize>() {
        bail!(
            "the data has examples of shape {:?} but the model in {} takes {:?}",
            raw.shape,
            input.run.display(),
            meta.input_shape
        );
    }
    let mut scaled = raw.clone();
    meta.scaler.transform(&mut scaled)?;
    let mut shape = vec![scaled.n];
    shape.extend(&meta.input_shape);
    let x = Tensor::from_vec(&shape, scaled.data);
    Ok(Loaded { meta, task, raw, x })
}

/// Runs `f(batch, model)` over `x` in batches, each after a forward pass.
fn for_batches(
    model: &mut Autoencoder,
    x: &Tensor,
    mut f: impl FnMut(std::ops::Range<usize>, &Autoencoder),
) {
    let c = x.cols();
    x.for_batches(256, |rows, batch| {
        model.forward(batch, Mode::Eval);
        f(rows.start * c..rows.end * c, model);
    });
}

/// The first `n` rows of `x` (at most all of them).
pub fn head(x: &Tensor, n: usize) -> Tensor {
    let n = n.min(x.rows());
    let mut shape = x.shape().to_vec();
    shape[0] = n;
    Tensor::from_vec(&shape, x.data()[..n * x.cols()].to_vec())
}

/// The model's reconstruction of every row of `x` (scaled input), in the data's own units.
pub fn reconstructed(model: &mut Autoencoder, scaler: &Scaler, x: &Tensor) -> Vec<f32> {
    let mut rec = Vec::with_capacity(x.len());
    for_batches(model, x, |_, m| {
        rec.extend_from_slice(m.reconstruction().data())
    });
    scaler.inverse(&mut rec);
    rec
}

/// Reconstruction metrics of a model on some data.
#[derive(Debug, Serialize)]
pub struct Metrics {
    /// Mean squared error per element (in the model's scaled space).
    pub mse: f64,
    /// Mean over examples of the sum of squared errors of an example.
    pub sse_per_example: f64,
    /// Mean binary cross-entropy per element (from the logits with a sigmoid output, else from the
    /// output clamped into (0, 1)), with targets clamped into [0, 1].
    pub bce: f64,
    /// Peak signal-to-noise ratio in dB, peak = the data's range (1 for unit or min-max scaling).
    pub psnr_db: f64,
    /// Mean over (the first 1,000) examples of ‖J_f(x)‖_F, the Frobenius norm of the encoder's
    /// Jacobian: exact (one backward pass per code unit) for codes of up to 256 units, else
    /// estimated from 64 random sign vectors v (E‖Jᵀv‖² = ‖J‖²_F) on the first 200 examples, e.g.
    /// for a conv feature map.
    pub mean_jacobian_norm: f64,
    /// Number of examples.
    pub n: usize,
}

/// Code sizes up to which the Jacobian norm is computed exactly.
const EXACT_JACOBIAN_UNITS: usize = 256;
/// Random probes of the estimate for larger codes.
const JACOBIAN_PROBES: usize = 64;
/// Examples the estimate averages over.
const ESTIMATE_EXAMPLES: usize = 200;

/// Mean ‖J_f(x)‖_F over the first `max` rows of `x` (scaled input).
pub fn mean_jacobian_norm(model: &mut Autoencoder, x: &Tensor, max: usize) -> f64 {
    let exact = model.config.code_size() <= EXACT_JACOBIAN_UNITS;
    jacobian_norm(model, x, max, exact)
}

fn jacobian_norm(model: &mut Autoencoder, x: &Tensor, max: usize, exact: bool) -> f64 {
    // The estimate makes 64 backward passes whatever the code size; fewer examples keep a conv
    // run's evaluation to seconds.
    let n = x.rows().min(if exact {
        max
    } else {
        max.min(ESTIMATE_EXAMPLES)
    });
    if n == 0 {
        return 0.0;
    }
    let c = x.cols();
    let mut shape = x.shape().to_vec();
    shape[0] = n;
    let batch = Tensor::from_vec(&shape, x.data()[..n * c].to_vec());
    let k = model.config.code_size();
    let mut sq = vec![0.0f64; n];
    let mut dx = Tensor::default();
    model.encode(&batch);
    let passes = if exact { k } else { JACOBIAN_PROBES };
    let mut rng = ae_core::engine::rng::stream(0, ae_core::engine::rng::Purpose::Misc, 7, 0);
    for pass in 0..passes {
        // Exact: row `pass` of every example's Jacobian is the input gradient of code unit `pass`.
        // Estimated: the input gradient of v·code for a random sign vector v is Jᵀv.
        model.backward_from_code(&batch, Some(&mut dx), &mut |_, dcode| {
            if exact {
                dcode.fill(0.0);
                for row in dcode.data_mut().chunks_exact_mut(k) {
                    row[pass] = 1.0;
                }
            } else {
                use rand::Rng as _;
                for v in dcode.data_mut() {
                    *v = if rng.random::<bool>() { 1.0 } else { -1.0 };
                }
            }
        });
        for (s, row) in sq.iter_mut().zip(dx.data().chunks_exact(c)) {
            *s += row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
        }
    }
    let scale = if exact { 1.0 } else { 1.0 / passes as f64 };
    sq.iter().map(|s| (s * scale).sqrt()).sum::<f64>() / n as f64
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
    println!(
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
        println!("elbo              {:.3} nats per example (reconstruction {:.3}, KL {:.3}; `ae eval` adds the importance-weighted likelihood)", f.elbo, f.reconstruction, f.kl);
    }
    Ok(())
}

/// The fixed binarized copy of `x` (see [`ae_core::model::vae::binarized`]).
pub fn binarized(x: &Tensor) -> Result<Tensor> {
    Ok(ae_core::model::vae::binarized(x)?)
}

/// Computes [`Metrics`] of `model` given `input` and scored against `target` (both already
/// scaled with a scaler of kind `scaling`; they differ when the input is corrupted).
pub fn metrics(
    model: &mut Autoencoder,
    scaling: ScalingKind,
    input: &Tensor,
    target: &Tensor,
) -> Metrics {
    let sigmoid_out =
        model.config.output_activation == ae_core::engine::layers::activation::Activation::Sigmoid;
    let (mut sse, mut bce) = (0.0f64, 0.0f64);
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for_batches(model, input, |rows, m| {
        let (pre, out) = (m.logits().data(), m.reconstruction().data());
        for ((&t, &p), &o) in target.data()[rows].iter().zip(pre).zip(out) {
            sse += ((o - t) as f64).powi(2);
            lo = lo.min(t);
            hi = hi.max(t);
            // Data scaled by a scaler fitted elsewhere may leave [0, 1] a little.
            let t = t.clamp(0.0, 1.0);
            bce += if sigmoid_out {
                bce_logit(p, t) as f64
            } else {
                let o = o.clamp(1e-7, 1.0 - 1e-7) as f64;
                -(t as f64 * o.ln() + (1.0 - t as f64) * (1.0 - o).ln())
            };
        }
    });
    let n = target.rows();
    let elems = (n * target.cols()).max(1) as f64;
    let mse = sse / elems;
    let peak = match scaling {
        ScalingKind::Unit | ScalingKind::MinMax => 1.0,
        _ => (hi - lo).max(f32::MIN_POSITIVE) as f64,
    };
    Metrics {
        mean_jacobian_norm: mean_jacobian_norm(model, input, 1000),
        mse,
        sse_per_example: sse / n.max(1) as f64,
        bce: bce / elems,
        psnr_db: 10.0 * (peak * peak / mse).log10(),
        n,
    }
}

/// Runs `ae eval`.
pub fn eval(args: EvalArgs) -> Result<()> {
    let mut l = load(&args.input)?;
    if let Some(n) = args.limit {
        l.x = head(&l.x, n);
    }
    let trained_binary = l.task.objective.binarize;
    if args.binarize || trained_binary {
        l.x = binarized(&l.x)?;
    }
    let Some(noise) = args.noise else {
        let m = metrics(&mut l.task.model, l.meta.scaler.kind, &l.x, &l.x);
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
            println!("{v}");
        } else {
            print_metrics(&m);
            if let Some(f) = &vae {
                println!(
                    "elbo              {:.3} nats per example (reconstruction {:.3}, KL {:.3})",
                    f.elbo, f.reconstruction, f.kl
                );
                if let Some(nll) = f.iw_nll {
                    println!("-log p(x) ≈        {nll:.3} nats per example (importance-weighted, {} samples)", args.iw_samples);
                }
            }
            if args.binarize || trained_binary {
                println!("data              binarized (fixed seed)");
            }
        }
        return Ok(());
    };
    // Denoising: reconstruct corrupted inputs, score against the clean ones, and say how far the
    // corrupted inputs themselves were.
    let noisy = corrupt(&l.x, noise, args.seed);
    let m = metrics(&mut l.task.model, l.meta.scaler.kind, &noisy, &l.x);
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
        println!("{v}");
    } else {
        print_metrics(&m);
        println!("noise             {noise}");
        println!("noisy input mse   {noisy_mse:.6}");
        println!(
            "noisy input psnr  {noisy_psnr:.2} dB  (reconstruction gains {:.2} dB)",
            m.psnr_db - noisy_psnr
        );
    }
    Ok(())
}

/// A VAE's likelihood figures on some data, in nats per example.
pub struct VaeFigures {
    pub elbo: f64,
    pub reconstruction: f64,
    pub kl: f64,
    pub iw_nll: Option<f64>,
}

/// The ELBO (one sample per example, in training-sized batches) and, with `samples` > 0, the
/// importance-weighted estimate of −log p(x).
pub fn vae_figures(task: &mut AutoencoderTask, x: &Tensor, samples: usize) -> VaeFigures {
    let terms =
        ae_core::training::fit::evaluate(task, ae_core::training::fit::Examples::new(x), 256);
    let reconstruction = terms.get("reconstruction").unwrap_or(f64::NAN);
    let kl = terms.get("kl").unwrap_or(f64::NAN);
    let iw_nll = (samples > 0).then(|| {
        let (loss, logvar) = (task.objective.loss, task.log_variance());
        let nll = ae_core::model::vae::importance_weighted_nll(
            &mut task.model,
            loss,
            logvar,
            x,
            samples,
            0,
        );
        nll.iter().sum::<f64>() / nll.len().max(1) as f64
    });
    VaeFigures {
        elbo: -(reconstruction + kl),
        reconstruction,
        kl,
        iw_nll,
    }
}

/// Prints metrics as an aligned table.
pub fn print_metrics(m: &Metrics) {
    {
        println!("examples          {}", m.n);
        println!("mse               {:.6}", m.mse);
        println!("sse per example   {:.4}", m.sse_per_example);
        println!("bce               {:.6}", m.bce);
        println!("psnr              {:.2} dB", m.psnr_db);
        println!("mean ||J||_F      {:.4}", m.mean_jacobian_norm);
    }
}

/// A corrupted copy of `x` (scaled data), drawn from `seed`.
pub fn corrupt(x: &Tensor, noise: Noise, seed: u64) -> Tensor {
    let mut out = Tensor::zeros(x.shape());
    noise.corrupt(
        x.data(),
        out.data_mut(),
        &mut stream(seed, Purpose::Misc, 0, 0),
    );
    out
}

/// Runs `ae denoise`: clean, corrupted and denoised examples, as a picture or as data.
pub fn denoise(args: DenoiseArgs) -> Result<()> {
    let mut l = load(&args.input)?;
    if extension(&args.out) == "png" {
        let fig = crate::figures::denoising(&mut l, args.noise, args.n, args.seed)?;
        ae_core::run::io::write_atomic(&args.out, &fig.png)?;
        eprintln!("wrote {} to {}", fig.caption, args.out.display());
        return Ok(());
    }
    let noisy = corrupt(&head(&l.x, args.n), args.noise, args.seed);
    let denoised = reconstructed(&mut l.task.model, &l.meta.scaler, &noisy);
    let (n, d) = (noisy.rows(), noisy.cols());
    let header: Vec<String> = (0..d).map(|j| format!("x_{j}")).collect();
    write_table(&args.out, &header, n, d, &denoised)?;
    eprintln!("wrote {n} denoised examples to {}", args.out.display());
    Ok(())
}

/// Runs `ae encode`.
pub fn encode(args: EncodeArgs) -> Result<()> {
    let mut l = load(&args.input)?;
    let k = l.task.model.config.code_size();
    let variational = l.task.model.config.variational;
    if args.with_variance && !variational {
        bail!(
            "--with-variance needs a VAE (trained with --model vae); {} is a deterministic autoencoder",
            args.input.run.display()
        );
    }
    // A VAE's encoder output is [μ | log σ²]: all of it with --with-variance, else μ.
    let width = if args.with_variance { 2 * k } else { k };
    let mut codes = Vec::with_capacity(l.x.rows() * width);
    for_batches(&mut l.task.model, &l.x, |_, m| {
        let c = if args.with_variance {
            m.net.encoder.output()
        } else {
            m.code()
        };
        codes.extend_from_slice(c.data())
    });
    let mut header: Vec<String> = (0..k)
        .map(|j| format!("{}_{j}", if variational { "mu" } else { "code" }))
        .collect();
    if args.with_variance {
        header.extend((0..k).map(|j| format!("logvar_{j}")));
    }
    write_table(&args.out, &header, l.x.rows(), width, &codes)?;
    eprintln!(
        "wrote {} codes of size {k} to {}",
        l.x.rows(),
        args.out.display()
    );
    Ok(())
}

/// Runs `ae reconstruct`.
pub fn reconstruct(args: ReconstructArgs) -> Result<()> {
    let mut l = load(&args.input)?;
    if extension(&args.out) == "png" {
        let fig = crate::figures::reconstructions(&mut l, args.n)?;
        ae_core::run::io::write_atomic(&args.out, &fig.png)?;
        eprintln!("wrote {} to {}", fig.caption, args.out.display());
        return Ok(());
    }
    let d = l.x.cols();
    let rec = reconstructed(&mut l.task.model, &l.meta.scaler, &l.x);
    let header: Vec<String> = (0..d).map(|j| format!("x_{j}")).collect();
    write_table(&args.out, &header, l.x.rows(), d, &rec)?;
    eprintln!(
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
        other => bail!(
            "{}: unsupported output format `.{other}`; use .npy or .csv",
            path.display()
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The random-probe estimate used for large codes agrees with the exact norm.
    #[test]
    fn estimated_jacobian_norm_is_close_to_exact() {
        let cfg = ae_core::training::settings::Settings {
            hidden: vec![40],
            activation: ae_core::engine::layers::activation::Activation::Tanh,
            ..Default::default()
        };
        let mut model = cfg.model_config(&[30]).build(1).unwrap();
        let x = Tensor::from_vec(
            &[20, 30],
            (0..600).map(|i| ((i as f32) * 0.37).sin()).collect(),
        );
        let exact = jacobian_norm(&mut model, &x, 20, true);
        let estimate = jacobian_norm(&mut model, &x, 20, false);
        assert!(exact > 0.1, "{exact}");
        assert!(
            (estimate - exact).abs() < 0.1 * exact,
            "estimate {estimate} vs exact {exact}"
        );
    }
}
