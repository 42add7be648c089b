//! `ae encode|reconstruct|anomaly --stream`: rows are read from their files (npy:FILE,
//! npy:FOLDER of shards, idx:IMAGES) a window at a time and the results written as they are
//! computed, so memory stays constant in the data's size; the output file appears only once
//! complete.
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use ae_core::analysis::anomaly::reconstruction_scores;
use ae_core::analysis::metrics::reconstructed;
use ae_core::objective::AutoencoderTask;
use ae_core::run::{RunDir, RunMeta};
use ae_core::training::stream::scaled_windows;
use ae_core::Tensor;
use ae_data::rows_out::{PartialFile, RowWriter};
use ae_data::stream::RowSource;
use anyhow::{bail, Context, Result};

use crate::args::{AnomalyArgs, EncodeArgs, ReconstructArgs, RunData};

/// Bytes of input rows in one window: the model's activations for them come on top.
const WINDOW_BYTES: usize = 16 << 20;

/// A run and the rows it is given, opened for streaming.
struct Opened {
    meta: RunMeta,
    task: AutoencoderTask,
    source: Arc<RowSource>,
}

impl Opened {
    /// The rows, scaled as the run was, a window at a time.
    fn windows(&self) -> impl Iterator<Item = ae_core::Result<Tensor>> {
        let rows = WINDOW_BYTES / (4 * self.source.features().max(1));
        scaled_windows(
            self.source.clone(),
            Arc::new(self.meta.scaler.clone()),
            rows.max(1),
        )
    }
}

fn open(input: &RunData) -> Result<Opened> {
    let run = RunDir::open(&input.run)?;
    let (settings, meta, task) = run
        .load()
        .with_context(|| format!("cannot load the model in {}", input.run.display()))?;
    crate::eval::note_unfinished(&input.run, &meta, &settings);
    ae_core::training::configure_threads(input.threads.unwrap_or(settings.threads));
    let name = input.data.as_deref().unwrap_or(&settings.data);
    let spec = crate::data::parse_spec(name)?;
    if input.classes.as_ref().is_some_and(|c| !c.is_empty()) {
        bail!("--classes needs labels, which streamed data does not carry; leave out --stream");
    }
    let source = crate::data::open_stream(&spec, &settings.csv_options()?)?;
    if source.features() != meta.input_shape.iter().product::<usize>() {
        bail!(
            "{name} has examples of shape {:?} but the model in {} takes {:?}",
            source.shape(),
            input.run.display(),
            meta.input_shape
        );
    }
    Ok(Opened {
        meta,
        task,
        source: Arc::new(source),
    })
}

/// `ae encode --stream`.
pub fn encode(args: &EncodeArgs) -> Result<()> {
    let o = open(&args.input)?;
    let (header, _) = crate::eval::code_columns(&o.task, args.with_variance, &args.input)?;
    let on = crate::device::inference(&args.on, &o.task.model)?;
    let mut w = RowWriter::create(&args.out, &header, o.source.rows())?;
    for x in o.windows() {
        w.write(&crate::eval::codes_of(&on, &x?, args.with_variance)?)?;
    }
    w.finish()?;
    note!(
        "wrote {} codes of size {} to {}",
        o.source.rows(),
        o.task.model.config.code_size(),
        args.out.display()
    );
    Ok(())
}

/// `ae reconstruct --stream` (to .npy or .csv).
pub fn reconstruct(args: &ReconstructArgs) -> Result<()> {
    let o = open(&args.input)?;
    let d = o.source.features();
    let header: Vec<String> = (0..d).map(|j| format!("x_{j}")).collect();
    let on = crate::device::inference(&args.on, &o.task.model)?;
    let mut w = RowWriter::create(&args.out, &header, o.source.rows())?;
    for x in o.windows() {
        w.write(&reconstructed(&on, &o.meta.scaler, &x?)?)?;
    }
    w.finish()?;
    note!(
        "wrote {} reconstructions to {}",
        o.source.rows(),
        args.out.display()
    );
    Ok(())
}

/// `ae anomaly --stream`: `index,score,anomaly` rows. A threshold from the run's validation
/// scores (`--fpr`) is known before scoring, so rows are written as they are scored; a
/// `--contamination` share needs every score first, so those are kept (4 bytes a row).
pub fn anomaly(args: &AnomalyArgs, out: &Path) -> Result<()> {
    if args.per_feature {
        bail!("--per-feature writes every feature's error, which --stream does not keep; leave out one of them");
    }
    let o = open(&args.input)?;
    let known = match args.contamination {
        Some(_) => None,
        None => crate::anomaly::validation_threshold(args)?,
    };
    if crate::eval::extension(out) == "parquet" {
        return anomaly_parquet(&o, args, out, known);
    }
    let on = crate::device::inference(&args.on, &o.task.model)?;
    let mut file = PartialFile::create(out)?;
    let io = |e| anyhow::anyhow!("cannot write {}: {e}", out.display());
    writeln!(file, "index,score,anomaly").map_err(io)?;
    let (mut seen, mut flagged) = (0usize, 0usize);
    let mut kept = Vec::new();
    for x in o.windows() {
        let (scores, _) = reconstruction_scores(&on, &x?, false)?;
        match &known {
            Some((t, _)) => {
                for s in scores {
                    flagged += usize::from(s > *t);
                    writeln!(file, "{seen},{s:.7},{}", u8::from(s > *t)).map_err(io)?;
                    seen += 1;
                }
            }
            None => kept.extend(scores),
        }
    }
    let (threshold, how) = match known {
        Some(k) => k,
        None => {
            let (t, how) = crate::anomaly::threshold(args, &kept)?;
            for s in &kept {
                flagged += usize::from(*s > t);
                writeln!(file, "{seen},{s:.7},{}", u8::from(*s > t)).map_err(io)?;
                seen += 1;
            }
            (t, how)
        }
    };
    file.commit()?;
    say!(
        "{seen} examples scored → {}; threshold {threshold:.6} ({how}); {flagged} flagged ({:.2}%)",
        out.display(),
        100.0 * flagged as f64 / seen.max(1) as f64
    );
    Ok(())
}

/// `ae anomaly --stream --out FILE.parquet`: columns `index`, `score`, `anomaly` (0 or 1).
fn anomaly_parquet(
    o: &Opened,
    args: &AnomalyArgs,
    out: &Path,
    known: Option<(f32, String)>,
) -> Result<()> {
    let header = vec!["score".to_string(), "anomaly".to_string()];
    let n = o.source.rows();
    let on = crate::device::inference(&args.on, &o.task.model)?;
    let mut kept = Vec::new();
    let (mut flagged, mut w) = (0usize, None);
    if known.is_some() {
        w = Some(RowWriter::create(out, &header, n)?);
    }
    for x in o.windows() {
        let (scores, _) = reconstruction_scores(&on, &x?, false)?;
        match (&known, w.as_mut()) {
            (Some((t, _)), Some(w)) => {
                let rows: Vec<f32> = scores
                    .iter()
                    .flat_map(|&s| [s, f32::from(u8::from(s > *t))])
                    .collect();
                flagged += scores.iter().filter(|&&s| s > *t).count();
                w.write(&rows)?;
            }
            _ => kept.extend(scores),
        }
    }
    let (threshold, how) = match (known, w) {
        (Some(k), Some(w)) => {
            w.finish()?;
            k
        }
        _ => {
            let (t, how) = crate::anomaly::threshold(args, &kept)?;
            let flags: Vec<bool> = kept.iter().map(|&s| s > t).collect();
            flagged = flags.iter().filter(|&&f| f).count();
            crate::anomaly::write_scores(out, &kept, Some(&flags), None, None)?;
            (t, how)
        }
    };
    say!(
        "{n} examples scored → {}; threshold {threshold:.6} ({how}); {flagged} flagged ({:.2}%)",
        out.display(),
        100.0 * flagged as f64 / n.max(1) as f64
    );
    Ok(())
}
