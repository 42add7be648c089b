//! `ae report RUN --out report.html`: one self-contained page about a run. Pictures are PNGs
//! embedded as data URLs, the style is inline, nothing is fetched; a short script only counts the
//! pictures that loaded (shown on the page, and read by the browser test).
use ae_core::analysis::pca::Pca;
use ae_core::analysis::subspace::principal_angles;
use ae_core::model::CodeHealth;
use ae_core::run::RunDir;
use ae_core::training::settings::Settings;
use ae_data::datasets::Split;
use anyhow::Result;

use crate::args::ReportArgs;
use ae_viz::figures;
use ae_viz::page::{Baseline, Page};

use crate::eval;
use ae_core::run::Loaded;

/// Examples in the image grids of the report.
const TILES: usize = 16;

/// Runs `ae report`.
pub fn report(args: ReportArgs) -> Result<()> {
    crate::output::check_out(
        &args.out,
        Some(&args.input.run),
        args.input.data.as_deref(),
        args.force,
    )?;
    let run = RunDir::open(&args.input.run)?;
    let settings = run.read_settings()?;
    let data = args
        .input
        .data
        .clone()
        .unwrap_or_else(|| settings.data.clone());
    let (mut l, which) = eval::load_rows(&args.input, eval::Rows::HeldOut)?;
    if l.task.objective.binarize {
        l.x = eval::binarized(&l.x)?;
    }
    let mut page = Page::default();
    page.notice(&format!("Measured on {which}."), false);
    let health = CodeHealth::of(&l.task.model.codes(&l.x));
    if let Some(what) = health.describe() {
        page.notice(&format!("Warning: {what}."), true);
    }
    note!("measuring the run on {data}…");
    let ours = eval::metrics(&mut l.task.model, l.meta.scaler.kind, &l.x, &l.x);
    let vae = l
        .task
        .objective
        .kl
        .is_some()
        .then(|| eval::vae_figures(&mut l.task, &l.x, 0));
    let baseline = if args.no_pca {
        Err("left out (--no-pca)".to_string())
    } else {
        pca_baseline(&args, &settings, &mut l)
    };
    page.metrics(&l.meta, &ours, vae.as_ref(), &baseline);

    note!("drawing…");
    let variational = l.task.model.config.variational;
    page.figure("Training curves", figures::losses(&run));
    page.figure("Reconstructions", figures::reconstructions(&mut l, TILES));
    if let Some(noise) = settings.noise {
        page.figure("Denoising", figures::denoising(&mut l, noise, TILES, 0));
    }
    if variational {
        page.figure(
            "Samples from the prior",
            figures::samples(&mut l.task.model, &l.meta, 64, 0),
        );
        let to = (1..l.x.rows()).find(|&i| l.raw.labels.as_ref().is_none_or(|y| y[i] != y[0]));
        page.figure(
            "Interpolation",
            figures::interpolation(&mut l, 0, to.unwrap_or(1), 10),
        );
    }
    page.figure("Latent space", figures::latent(&mut l, 5000, &data));
    page.figure(
        "First-layer filters",
        figures::filters(&l.task.model, &l.meta.input_shape, 64),
    );
    page.figure(
        "Most activating inputs",
        figures::top_activations(&mut l, TILES, 8),
    );
    page.figure(
        "Activation maximization",
        figures::activation_max(&mut l, TILES, args.steps, 0),
    );
    page.figure(
        "Compression: the autoencoder against JPEG",
        compression(&args, &settings, &l, &data),
    );
    let config = std::fs::read_to_string(run.path().join("config.toml")).unwrap_or_default();
    let html = page.finish(
        &args.input.run.display().to_string(),
        &data,
        &l.meta,
        &config,
    );
    ae_core::run::io::write_atomic(&args.out, html.as_bytes())?;
    note!(
        "wrote the report on {} ({} pictures{}) to {}",
        args.input.run.display(),
        page.figures,
        if page.skipped.is_empty() {
            String::new()
        } else {
            format!(", {} left out", page.skipped.len())
        },
        args.out.display()
    );
    Ok(())
}

fn pca_baseline(
    args: &ReportArgs,
    settings: &Settings,
    l: &mut Loaded,
) -> std::result::Result<Baseline, String> {
    let k = l.task.model.config.code_size();
    let d = l.x.cols();
    if l.meta.flavor == ae_core::run::Flavor::Pca {
        return Err("the run is PCA itself".into());
    }
    if k >= d {
        return Err(format!(
            "the code ({k} values) is not smaller than the input ({d}): PCA would keep everything"
        ));
    }
    let fit = || -> Result<Baseline> {
        let spec = crate::data::parse_spec(&settings.data)?;
        let mut train = crate::data::load_with(
            &spec,
            args.input.data_dir.clone(),
            Split::Train,
            false,
            &settings.csv_options()?,
        )?;
        l.meta.scaler.transform(&mut train)?;
        let x = crate::data::to_tensor(train);
        note!("fitting PCA with {k} components on {} examples…", x.rows());
        let pca = Pca::fit(&x, k)?;
        let mut model = pca.to_model(&l.meta.input_shape)?;
        let metrics = eval::metrics(&mut model, l.meta.scaler.kind, &l.x, &l.x);
        let angles = match ae_core::analysis::subspace::linear_map(&l.task.model) {
            Some((w, kw)) => {
                let p: Vec<f32> = pca.components.iter().flatten().map(|&v| v as f32).collect();
                Some(principal_angles(&w, kw, &p, k, d)?)
            }
            None => None,
        };
        Ok(Baseline { k, metrics, angles })
    };
    fit().map_err(|e| format!("{e:#}"))
}

/// In-domain rate and distortion of the run's codes against JPEG, on the first 500 examples
/// (`ae compress` measures more, and out of domain too).
fn compression(
    args: &ReportArgs,
    settings: &Settings,
    l: &Loaded,
    data: &str,
) -> Result<ae_viz::figures::Figure> {
    ae_viz::figures::image_shape(&l.meta.input_shape)?;
    let spec = crate::data::parse_spec(&settings.data)?;
    let train = crate::data::load_with(
        &spec,
        args.input.data_dir.clone(),
        Split::Train,
        true,
        &settings.csv_options()?,
    )?;
    let train = train.subset(&(0..train.n.min(5000)).collect::<Vec<_>>());
    let codes = l.task.model.codes(&l.meta.prepare(train)?);
    let n = l.x.rows().min(500);
    let raw = l.raw.subset(&(0..n).collect::<Vec<_>>());
    let points = ae_core::analysis::compress::rate_distortion(
        &l.task.model,
        &l.meta.scaler,
        &codes,
        &l.x.first_rows(n),
        &raw.data,
        &l.meta.input_shape,
        &[2, 3, 4, 6, 8],
        &[5, 10, 20, 30, 50, 70, 90],
    )?;
    ae_viz::figures::rate_distortion(&[(format!("the first {n} examples of {data}"), points)])
}
