//! Loading data for a command: named data sets (fetched on first use), files, scaling.
use std::path::PathBuf;

use ae_core::Tensor;
use ae_data::csv_table::CsvOptions;
use ae_data::datasets::{default_cache_dir, FetchEvent, Lookup, Named, Split};
use ae_data::samples::Samples;
use ae_data::scaling::Scaler;
use ae_data::spec::DataSpec;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

/// Parses a `--data` spec.
pub fn parse_spec(s: &str) -> Result<DataSpec> {
    s.parse::<DataSpec>().with_context(|| {
        // A bare file name: say which prefix it wants.
        let kind = ["csv", "npy"]
            .into_iter()
            .find(|k| s.to_ascii_lowercase().ends_with(&format!(".{k}")));
        match kind {
            Some(k) if !s.contains(':') => format!("bad --data `{s}` (did you mean {k}:{s}?)"),
            _ => format!("bad --data `{s}`"),
        }
    })
}

/// Loads `spec`'s `split`; a named data set that is nowhere on disk is downloaded first (with a
/// progress bar), and when that fails too the error says every way to get it.
pub fn load(
    spec: &DataSpec,
    data_dir: Option<PathBuf>,
    split: Split,
    quiet: bool,
) -> Result<Samples> {
    load_with(spec, data_dir, split, quiet, &CsvOptions::default())
}

/// [`load`], reading a CSV file as `csv` says (label column, delimiter, ignored columns).
pub fn load_with(
    spec: &DataSpec,
    data_dir: Option<PathBuf>,
    split: Split,
    quiet: bool,
    csv: &CsvOptions,
) -> Result<Samples> {
    let lookup = Lookup { data_dir };
    match spec.load(&lookup, split, csv) {
        Err(not_found @ ae_data::Error::DatasetNotFound { .. }) => {
            let DataSpec::Named(named) = spec else {
                return Err(not_found.into());
            };
            if !quiet {
                note!(
                    "{} is not on this machine; downloading it (checked by SHA-256)",
                    named.name()
                );
            }
            fetch(*named, None, None, quiet)
                .map_err(|e| anyhow::anyhow!("{not_found}\n\nThe download failed too: {e:#}"))?;
            Ok(spec.load(&lookup, split, csv)?)
        }
        other => Ok(other?),
    }
}

/// Opens the data behind `spec` for reading as it goes (`--stream`): an `.npy` file or a folder
/// of shards, a raw IDX images file, a Parquet table read with the table options of `csv`, or a
/// folder of images.
pub fn open_stream(spec: &DataSpec, csv: &CsvOptions) -> Result<ae_data::stream::RowSource> {
    Ok(spec.stream(csv)?)
}

/// Downloads a named data set into `dir` (default: the cache folder) with a progress bar.
pub fn fetch(
    named: Named,
    dir: Option<PathBuf>,
    mirror: Option<&str>,
    quiet: bool,
) -> Result<PathBuf> {
    let dest = dir.unwrap_or_else(|| default_cache_dir(named));
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut on_event = |e: FetchEvent| {
        bar.set_message(e.file.clone());
        bar.set_length(e.total.unwrap_or(0));
        bar.set_position(e.done);
    };
    let path = named.fetch(&dest, mirror, &mut on_event)?;
    bar.finish_and_clear();
    Ok(path)
}

/// Loads a named data set's test split, scaled with `scaler` (the run's), as a tensor.
pub fn load_test(spec: &DataSpec, data_dir: Option<PathBuf>, scaler: &Scaler) -> Result<Tensor> {
    let mut t = load(spec, data_dir, Split::Test, true)?;
    scaler.transform(&mut t)?;
    Ok(to_tensor(t))
}

/// Moves samples into a tensor of shape `[N, ..shape]` without copying.
pub fn to_tensor(s: Samples) -> Tensor {
    let mut shape = vec![s.n];
    shape.extend(&s.shape);
    Tensor::from_vec(&shape, s.data)
}
