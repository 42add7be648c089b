//! `ae visualize RUN --what ... --out FILE.png`: one picture of what a run learned (the pictures
//! themselves are drawn in `figures`).
use ae_core::run::RunDir;
use anyhow::{bail, Context, Result};

use crate::args::{VisualizeArgs, What};
use ae_viz::figures::{self, Figure};

/// Runs `ae visualize`.
pub fn visualize(args: VisualizeArgs) -> Result<()> {
    crate::output::check_out(
        &args.out,
        Some(&args.input.run),
        args.input.data.as_deref(),
        args.force,
    )?;
    let fig = figure(&args)?;
    ae_core::run::io::write_atomic(&args.out, &fig.png)?;
    note!("wrote {} to {}", fig.caption, args.out.display());
    Ok(())
}

fn figure(args: &VisualizeArgs) -> Result<Figure> {
    let run = RunDir::open(&args.input.run)?;
    let settings = run.read_settings()?;
    let data = args.input.data.as_deref().unwrap_or(&settings.data);
    // Pictures of the weights, of the prior and of the logged curves need no data.
    let load = || crate::eval::load(&args.input);
    let load_model = || {
        run.load()
            .with_context(|| format!("cannot load the model in {}", args.input.run.display()))
    };
    match args.what {
        What::Losses => figures::losses(&run),
        What::Filters => {
            let (_, meta, task) = load_model()?;
            figures::filters(&task.model, &meta.input_shape, args.n)
        }
        What::Samples => {
            let (_, meta, mut task) = load_model()?;
            ae_core::training::configure_threads(args.input.threads.unwrap_or(settings.threads));
            figures::samples(&mut task.model, &meta, args.n, args.seed)
        }
        What::Reconstructions => figures::reconstructions(&mut load()?, args.n),
        What::TopActivations => figures::top_activations(&mut load()?, args.n, args.k),
        What::ActivationMax => {
            let steps = args.steps.unwrap_or(200);
            figures::activation_max(&mut load()?, args.n, steps, args.seed)
        }
        What::Latent => figures::latent(&mut load()?, args.points, data),
        What::Denoising => {
            let Some(noise) = args.noise.or(settings.noise) else {
                bail!(
                    "{} was not trained with noise; give the corruption to draw with --noise \
                     (gaussian:STD, mask:P, salt-pepper:P)",
                    args.input.run.display()
                );
            };
            figures::denoising(&mut load()?, noise, args.n, args.seed)
        }
        What::Interpolation => {
            let steps = args.steps.unwrap_or(10);
            figures::interpolation(&mut load()?, args.from, args.to, steps)
        }
    }
}
