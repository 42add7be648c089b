//! `ae train`: lay the config file and the flags over the defaults (or a preset, or the run being
//! resumed), load the data, call the library's [`ae_core::run::train`], print.
use std::path::{Path, PathBuf};

use ae_core::run::{Destination, RunDir, TrainOptions};
use ae_core::training::fit::Outcome;
use ae_core::training::settings::{Checked, MissingCells, Settings};
use ae_data::datasets::Split;
use ae_data::spec::DataSpec;
use anyhow::{bail, Context, Result};

use crate::args::TrainArgs;
use crate::data;
use crate::progress::CliProgress;

/// Runs `ae train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/default"));
    let (settings, epochs_given) = resolve(&args, &out)?;
    let mut settings = settings.check().map_err(flag_error)?;
    let spec = data::parse_spec(&settings.data)?;
    if settings.stream {
        return streamed(&args, &settings, &spec, &out);
    }
    let csv = settings.csv_options().map_err(flag_error)?;
    let samples = match &spec {
        // A table's text columns become categories; their levels are recorded with the run.
        DataSpec::Csv(path) => {
            let table = ae_data::csv_table::read(path, &csv)?;
            if table.categories != settings.categories {
                let mut s = settings.into_inner();
                s.categories = table.categories;
                settings = s.check().map_err(flag_error)?;
            }
            table.samples
        }
        _ => data::load_with(&spec, args.data_dir.clone(), Split::Train, args.quiet, &csv)?,
    };
    let samples = samples.only_classes(&settings.classes)?;
    if settings.missing == MissingCells::Allow && !epochs_given {
        let mut s = settings.into_inner();
        s.epochs = s.epochs_for_incomplete(samples.n);
        settings = s.check().map_err(flag_error)?;
    }
    // The test split is read once: scored after every epoch with --eval-test, and at the end.
    let test = match spec.has_test_split() {
        true => Some(
            data::load_with(&spec, args.data_dir.clone(), Split::Test, true, &csv)?
                .only_classes(&settings.classes)?,
        ),
        false => None,
    };
    let destination = destination(&args, &out);
    let mut progress = CliProgress::new(args.quiet);
    progress.unit = unit(&samples.shape);
    progress.stop_on_ctrl_c();
    let options = TrainOptions {
        destination,
        test: args.eval_test.then(|| test.clone()).flatten(),
        progress: Some(&mut progress),
        device: args.device,
        precision: args.precision,
    };
    let trained = ae_core::run::train(&settings, samples, options).map_err(flag_error);
    progress.bar.finish_and_clear();
    let trained = trained?;
    finish(&trained, &out)?;
    if let Some(mut raw) = test {
        trained.meta.scaler.transform(&mut raw)?;
        let x = data::to_tensor(raw);
        crate::eval::report_test(&RunDir::open(&out)?, &settings.data, &x)?;
    }
    note!(
        "done: {} (evaluate again with `ae eval {}`)",
        out.display(),
        out.display()
    );
    Ok(())
}

/// `ae train --stream`: the rows are read from their files as training goes.
fn streamed(args: &TrainArgs, settings: &Checked, spec: &DataSpec, out: &Path) -> Result<()> {
    let source = data::open_stream(spec, &settings.csv_options().map_err(flag_error)?)?;
    let mut progress = CliProgress::new(args.quiet);
    progress.unit = unit(source.shape());
    progress.stop_on_ctrl_c();
    let options = TrainOptions {
        destination: destination(args, out),
        test: None,
        progress: Some(&mut progress),
        device: args.device,
        precision: args.precision,
    };
    let trained = ae_core::run::train_streamed(settings, source, options).map_err(flag_error);
    progress.bar.finish_and_clear();
    let trained = trained?;
    finish(&trained, out)?;
    note!("done: {}", out.display());
    Ok(())
}

fn destination(args: &TrainArgs, out: &Path) -> Destination {
    match args.resume {
        true => Destination::Resume(out.to_path_buf()),
        false => Destination::Folder {
            path: out.to_path_buf(),
            force: args.force,
        },
    }
}

fn unit(shape: &[usize]) -> &'static str {
    match shape.len() {
        1 => "rows/s",
        _ => "img/s",
    }
}

/// What every finished training says: an interruption (exits 130) or a code-health warning.
fn finish(trained: &ae_core::run::Trained, out: &Path) -> Result<()> {
    if trained.outcome == Outcome::Interrupted {
        note!(
            "interrupted at epoch {}, step {}: checkpoint saved; continue with `ae train --out {} --resume`",
            trained.state.epoch + 1,
            trained.state.step,
            out.display()
        );
        std::process::exit(130);
    }
    if let Some(what) = trained.code_health.as_ref().and_then(|h| h.describe()) {
        note!("warning: {what}; a linear code (--code-activation linear), a smaller --lr or another --seed usually avoids this");
    }
    Ok(())
}

/// The run's settings: the defaults, a preset or the resumed run's own, with the config file
/// and then the flags laid over them.
/// Also says whether the epochs were asked for (a flag, the config file, a resumed run's own).
fn resolve(args: &TrainArgs, out: &Path) -> Result<(Settings, bool)> {
    let flags = args.overlay();
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            toml::from_str::<toml::Table>(&text)
                .with_context(|| format!("{}: invalid config", path.display()))?
        }
        None => toml::Table::new(),
    };
    let base = if args.resume {
        if args.preset.is_some() {
            bail!("--preset starts a new run; --resume continues one as it was configured");
        }
        RunDir::open(out)
            .and_then(|run| run.read_settings())
            .with_context(|| format!("cannot resume {}", out.display()))?
    } else {
        // Refuse an occupied folder now, before the data loads; nothing is touched until then.
        RunDir::check_free(out, args.force).map_err(flag_error)?;
        args.preset.map(|p| p.settings()).unwrap_or_default()
    };
    let with_file = match &args.config {
        Some(path) => base
            .overlay(&file)
            .with_context(|| format!("{}: invalid config", path.display()))?,
        None => base,
    };
    let epochs_given = args.resume || flags.contains_key("epochs") || file.contains_key("epochs");
    Ok((with_file.overlay(&flags).map_err(flag_error)?, epochs_given))
}

/// A library error that names a setting, said with the flag of that name.
pub fn flag_error(e: ae_core::Error) -> anyhow::Error {
    match e {
        ae_core::Error::Config {
            field: "resume", ..
        } => anyhow::anyhow!(
            "--resume continues a run as it was configured: only --epochs, --lr, --momentum, \
             --threads, --early-stopping and --weight-decay may change"
        ),
        ae_core::Error::Config { field, reason } => {
            anyhow::anyhow!("invalid --{}: {reason}", field.replace('_', "-"))
        }
        ae_core::Error::RunExists { path } => anyhow::anyhow!(
            "{} already holds a run; pass --resume to continue it or --force to overwrite it",
            path.display()
        ),
        ae_core::Error::Collapsed { epoch, what } => anyhow::anyhow!(
            "training collapsed at epoch {epoch}: {what}. The last good checkpoint was kept. \
             Try a smaller --lr (a third), a larger --batch-size, another --seed or --init, \
             or --code-activation linear"
        ),
        e @ ae_core::Error::NonFinite { .. } => {
            anyhow::anyhow!("{e}: `ae train --out RUN --resume --lr SMALLER`")
        }
        other => other.into(),
    }
}
