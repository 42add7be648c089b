//! `ae pca`: fits PCA and saves it as a run (a dense linear autoencoder), so that `ae eval`,
//! `encode` and `reconstruct` read it like any trained model.
use ae_core::analysis::pca::Pca;
use ae_core::engine::layers::activation::Activation;
use ae_core::run::{RunDir, RunMeta, FORMAT_VERSION};
use ae_core::training::settings::Settings;
use ae_data::datasets::Split;
use ae_data::scaling::{Scaler, ScalingKind};
use anyhow::{Context, Result};
use serde::Serialize;

use crate::args::PcaArgs;
use crate::data;

/// What `pca.json` in the run folder holds.
#[derive(Serialize)]
struct Report {
    components: usize,
    solver: &'static str,
    explained_variance: Vec<f64>,
    explained_variance_ratio: Vec<f64>,
    cumulative_ratio: Vec<f64>,
    total_variance: f64,
    n: usize,
}

/// Runs `ae pca`.
pub fn pca(args: PcaArgs) -> Result<()> {
    RunDir::check_free(&args.out, args.force).map_err(crate::train::flag_error)?;
    if let Some(t) = args.threads {
        ae_core::training::configure_threads(t);
    }
    let settings = Settings {
        data: args.data.clone(),
        scaling: args.scaling,
        hidden: vec![args.components],
        activation: Activation::Linear,
        code_activation: Some(Activation::Linear),
        output_activation: Activation::Linear,
        epochs: 1,
        val_fraction: 0.0,
        ..Settings::default()
    };
    let spec = data::parse_spec(&args.data)?;
    let mut samples = data::load(&spec, args.data_dir.clone(), Split::Train, false)?;
    let kind = args
        .scaling
        .unwrap_or_else(|| ScalingKind::default_for(samples.source));
    let scaler = Scaler::fit(kind, &samples)
        .with_context(|| format!("cannot fit {kind:?} scaling on {}", args.data))?;
    scaler.transform(&mut samples)?;
    let input_shape = samples.shape.clone();
    let x = data::to_tensor(samples);
    let solver = args.solver.resolve(x.rows(), x.cols(), args.components);
    let started = std::time::Instant::now();
    let fit = Pca::fit_with(&x, args.components, solver, args.seed)?;
    note!(
        "fitted {} components of {} examples × {} features ({} solver) in {:.1} s",
        args.components,
        x.rows(),
        x.cols(),
        solver.name(),
        started.elapsed().as_secs_f64()
    );
    let model = fit.to_model(&input_shape)?;

    let run = RunDir::create(&args.out, args.force)?;
    run.write_settings(&settings)?;
    run.save_model(&model.params)?;
    run.write_meta(&RunMeta {
        format_version: FORMAT_VERSION,
        flavor: ae_core::run::Flavor::Pca,
        input_shape,
        scaler: scaler.clone(),
        epoch: 0,
        best_loss: None,
        best_epoch: 0,
        finished: true,
        parameters: model.params.count(),
        written_by: format!("ae {}", env!("CARGO_PKG_VERSION")),
    })?;
    let ratio = fit.explained_variance_ratio();
    let cumulative: Vec<f64> = ratio
        .iter()
        .scan(0.0, |s, r| {
            *s += r;
            Some(*s)
        })
        .collect();
    let report = Report {
        components: args.components,
        solver: solver.name(),
        explained_variance: fit.variance.clone(),
        explained_variance_ratio: ratio.clone(),
        cumulative_ratio: cumulative.clone(),
        total_variance: fit.total_variance,
        n: x.rows(),
    };
    let json = serde_json::to_string_pretty(&report).expect("report serializes");
    ae_core::run::io::write_atomic(&run.path().join("pca.json"), json.as_bytes())?;
    say!("component  explained variance ratio  cumulative");
    for (i, (r, c)) in ratio.iter().zip(&cumulative).enumerate() {
        if i < 10 || i + 1 == ratio.len() {
            say!("{:>9}  {:>24.5}  {:>10.5}", i + 1, r, c);
        } else if i == 10 {
            say!("      ...");
        }
    }
    if spec.has_test_split() {
        let test = data::load_test(&spec, args.data_dir.clone(), &scaler)?;
        crate::eval::report_test(&run, &args.data, &test)?;
    }
    note!(
        "done: {} (a linear autoencoder: `ae eval`, `ae encode`, `ae reconstruct` read it)",
        args.out.display()
    );
    Ok(())
}
