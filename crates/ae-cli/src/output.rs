//! Output files: a command never writes over its own input (the data it read, a run's files) and
//! replaces an existing file only with `--force`. Checked before any work is done.
use std::path::{Path, PathBuf};

use ae_core::run::RunDir;
use ae_data::spec::DataSpec;
use anyhow::{bail, Result};

/// The files behind a `--data` spec.
fn spec_files(spec: &str) -> Vec<PathBuf> {
    match spec.parse::<DataSpec>() {
        Ok(DataSpec::Idx { images, labels }) => std::iter::once(images).chain(labels).collect(),
        Ok(DataSpec::Csv(p) | DataSpec::Npy(p) | DataSpec::Parquet(p)) => vec![p],
        Ok(DataSpec::Images { dir, .. } | DataSpec::Cifar10(dir)) => vec![dir],
        _ => Vec::new(),
    }
}

/// Refuses `out` when it is one of the inputs (the file behind `data`, else behind the run's own
/// data, or anything inside `run`), and when it exists and `force` is not set.
pub fn check_out(out: &Path, run: Option<&Path>, data: Option<&str>, force: bool) -> Result<()> {
    let Ok(target) = out.canonicalize() else {
        return Ok(()); // nothing there yet: it cannot be an input
    };
    let own_data = run
        .and_then(|r| RunDir::open(r).ok())
        .and_then(|r| r.read_settings().ok())
        .map(|s| s.data);
    let inputs = data
        .map(str::to_string)
        .or(own_data)
        .map(|d| spec_files(&d))
        .unwrap_or_default();
    for input in inputs {
        if let Ok(p) = input.canonicalize() {
            if p == target || (p.is_dir() && target.starts_with(&p)) {
                bail!(
                    "refusing to write {}: it is the input data this command reads; choose another --out",
                    out.display()
                );
            }
        }
    }
    if let Some(r) = run.and_then(|r| r.canonicalize().ok()) {
        if target.starts_with(&r) && target != r {
            bail!(
                "refusing to write {}: it is inside the run folder {}, whose files the run needs; choose another --out",
                out.display(),
                r.display()
            );
        }
    }
    if !force {
        bail!(
            "{} already exists; pass --force to replace it",
            out.display()
        );
    }
    if target.is_dir() {
        bail!("{} is a folder; --out names a file", out.display());
    }
    Ok(())
}
