//! `ae train`: resolve settings, load and scale data, build or resume the model, run the loop.
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ae_core::engine::optim::Optimizer;
use ae_core::engine::rng::{stream, Purpose};
use ae_core::objective::AutoencoderTask;
use ae_core::run::{RunDir, RunMeta, FORMAT_VERSION};
use ae_core::training::fit::{fit, Examples, Outcome, TrainState};
use ae_core::training::settings::Settings;
use ae_data::datasets::Split;
use ae_data::samples::Samples;
use ae_data::scaling::{Scaler, ScalingKind};
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;

use crate::args::TrainArgs;
use crate::data;
use crate::observer::CliObserver;

/// Runs `ae train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/default"));
    let args = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            let file: TrainArgs = toml::from_str(&text)
                .with_context(|| format!("{}: invalid config", path.display()))?;
            args.or(file)
        }
        None => args,
    };
    let args = match args.preset {
        Some(p) => args.or(p.args()),
        None => args,
    };
    let (run, settings, resuming) = if args.resume {
        let run = RunDir::open(&out).with_context(|| format!("cannot resume {}", out.display()))?;
        run.remove_stale_temporaries()?;
        if !run.has_checkpoint() {
            bail!("{}: no checkpoint to resume from", out.display());
        }
        let saved = run.read_settings()?;
        let s = args.apply(saved.clone());
        if s.model_config(&[1]) != saved.model_config(&[1])
            || s.data != saved.data
            || s.seed != saved.seed
        {
            bail!("--resume continues a run as it was configured: only --epochs, --lr, --momentum, --threads, --early-stopping and --weight-decay may change");
        }
        (run, s, true)
    } else {
        let s = args.apply(Settings::default());
        s.validate()?;
        // Refuse an occupied folder now, but touch nothing until the data has loaded: a run that
        // cannot start must not cost the previous one, even with --force.
        RunDir::check_free(&out, args.force)?;
        (RunDir::lazy(&out), s, false)
    };
    settings.validate()?;
    configure_threads(settings.threads);

    let spec = data::parse_spec(&settings.data)?;
    let mut samples = data::load(&spec, args.data_dir.clone(), Split::Train, args.quiet)?;
    let (mut train, mut val) = split_validation(&mut samples, settings.val_fraction, settings.seed);
    let kind = settings
        .scaling
        .unwrap_or_else(|| ScalingKind::default_for(train.source));
    let scaler = Scaler::fit(kind, &train)
        .with_context(|| format!("cannot fit {kind:?} scaling on {}", settings.data))?;
    scaler.transform(&mut train)?;
    if let Some(v) = val.as_mut() {
        scaler.transform(v)?;
    }
    check_targets(&settings, &train)?;
    let input_shape = train.shape.clone();
    let train = data::to_tensor(train);
    let mut val = val.map(data::to_tensor);
    if settings.binarize {
        // Validation scores a fixed binarized copy, as the test split is scored.
        val = val.map(|v| crate::eval::binarized(&v)).transpose()?;
    }

    let config = settings.model_config(&input_shape);
    let run = if resuming {
        run
    } else {
        RunDir::create(&out, args.force)?
    };
    if resuming {
        run.check_checkpoint(&config)?;
    }
    let model = config.build(settings.seed)?;
    let mut task = AutoencoderTask::new(model, settings.objective())?;
    task.seed = settings.seed;
    let mut optimizer = Optimizer::new(settings.optimizer_kind(), settings.lr, &task.model.params);
    let mut meta = RunMeta {
        format_version: FORMAT_VERSION,
        flavor: match settings.arch {
            ae_core::training::settings::ArchName::Dense => "dense",
            ae_core::training::settings::ArchName::Conv => "conv",
        }
        .into(),
        input_shape: input_shape.clone(),
        scaler,
        epoch: 0,
        best_loss: None,
        best_epoch: 0,
        finished: false,
        parameters: task.model.params.count(),
        written_by: format!("ae {}", env!("CARGO_PKG_VERSION")),
    };
    let mut state = TrainState::default();
    if resuming {
        let saved = run.read_meta()?;
        if saved.input_shape != meta.input_shape || saved.scaler != meta.scaler {
            bail!(
                "{}: the data no longer matches the run (input shape or fitted scaling changed)",
                out.display()
            );
        }
        state = run.load_checkpoint(&mut task.model.params, &mut optimizer)?;
        optimizer.lr = settings.lr;
        state.finished = false;
        run.trim_metrics(state.epoch)?;
        meta = RunMeta {
            epoch: state.epoch,
            best_loss: state.best_loss,
            best_epoch: state.best_epoch,
            ..saved
        };
        if state.step == 0 {
            // A kill may have come between the checkpoint and the model or metadata of its epoch:
            // the checkpoint is the truth, so bring them in line with it.
            run.save_model(&task.model.params)?;
            run.write_meta(&meta)?;
        }
        run.write_settings(&settings)?;
        eprintln!(
            "resuming {} at epoch {}, step {}",
            out.display(),
            state.epoch + 1,
            state.step
        );
    } else {
        run.write_settings(&settings)?;
        run.write_meta(&meta)?;
    }

    let test = if args.eval_test && spec.has_test_split() {
        Some(data::load_test(&spec, args.data_dir.clone(), &meta.scaler)?)
    } else {
        None
    };
    let mut test_task = match &test {
        Some(_) => Some(AutoencoderTask::new(
            config.build(settings.seed)?,
            settings.objective(),
        )?),
        None => None,
    };

    if let (Some(p), false) = (settings.pretrain, resuming) {
        pretrain(&run, &mut task, &settings, p, &train, args.quiet)?;
    }
    if !args.quiet {
        eprintln!(
            "training {} on {} ({} train, {} validation examples), {} parameters, {} threads → {}",
            describe(&settings, &input_shape),
            settings.data,
            train.rows(),
            val.as_ref().map_or(0, |v| v.rows()),
            task.model.params.count(),
            settings.threads,
            out.display()
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    install_ctrlc(stop.clone());
    let mut observer = CliObserver {
        run: &run,
        meta,
        stop,
        bar: CliObserver::bar(args.quiet),
        test: test.as_ref().zip(test_task.as_mut()),
        quiet: args.quiet,
    };
    let outcome = fit(
        &mut task,
        &mut optimizer,
        &mut state,
        &settings.loop_config(),
        Examples::new(&train),
        val.as_ref().map(Examples::new),
        &mut observer,
    );
    observer.bar.finish_and_clear();
    match outcome? {
        Outcome::Interrupted => std::process::exit(130),
        Outcome::EarlyStopped { epoch } => {
            run.promote_best()?;
            eprintln!(
                "early stopping after epoch {epoch}; kept the weights of epoch {}",
                state.best_epoch
            );
        }
        Outcome::Completed => {
            if settings.early_stopping.is_some() {
                run.promote_best()?;
            }
        }
    }
    if let Some(v) = val.as_ref() {
        save_val_scores(&run, v)?;
    }
    if spec.has_test_split() {
        let x = match test {
            Some(t) => t,
            None => data::load_test(&spec, args.data_dir.clone(), &run.read_meta()?.scaler)?,
        };
        crate::eval::report_test(&run, &settings.data, &x)?;
    }
    eprintln!(
        "done: {} (evaluate again with `ae eval {}`)",
        out.display(),
        out.display()
    );
    Ok(())
}

/// Keeps the final model's anomaly score of every validation example, so that `ae anomaly --fpr`
/// can set a threshold on clean data later.
fn save_val_scores(run: &RunDir, val: &ae_core::Tensor) -> Result<()> {
    let (_, _, task) = run.load()?;
    let mut model = task.model;
    let (mut scores, _) = ae_core::analysis::anomaly::reconstruction_scores(&mut model, val, false);
    scores.sort_by(f32::total_cmp);
    run.write_val_scores(&ae_core::run::ValScores {
        score: "mse".into(),
        scores,
    })?;
    Ok(())
}

/// A one-line description of the architecture.
fn describe(s: &Settings, input_shape: &[usize]) -> String {
    let arch = describe_arch(s, input_shape);
    match s.model {
        ae_core::training::settings::ModelName::Vae => format!(
            "VAE {arch} (latent {}, β {}{})",
            s.model_config(input_shape).code_size(),
            s.beta,
            if s.kl_warmup > 0 {
                format!(", KL warm-up {} epochs", s.kl_warmup)
            } else {
                String::new()
            }
        ),
        ae_core::training::settings::ModelName::Ae => arch,
    }
}

fn describe_arch(s: &Settings, input_shape: &[usize]) -> String {
    if s.arch == ae_core::training::settings::ArchName::Conv {
        let stages: Vec<String> = s.channels.iter().map(|c| c.to_string()).collect();
        let dims: Vec<String> = input_shape.iter().map(|c| c.to_string()).collect();
        return format!(
            "conv {} → channels {} (kernel {}, {} decoder){}",
            dims.join("×"),
            stages.join(","),
            s.kernel,
            match s.decoder {
                ae_core::model::ConvDecoder::Upsample => "upsampling",
                ae_core::model::ConvDecoder::Transpose => "transposed-conv",
            },
            s.code.map(|c| format!(" → code {c}")).unwrap_or_default()
        );
    }
    let d: usize = input_shape.iter().product();
    let mut sizes = vec![d.to_string()];
    sizes.extend(s.hidden.iter().map(|h| h.to_string()));
    let mirror: Vec<String> = sizes.iter().rev().skip(1).cloned().collect();
    format!(
        "{}-{}{}",
        sizes.join("-"),
        mirror.join("-"),
        if s.tied { " (tied)" } else { "" }
    )
}

/// Sets the thread count of products and of the rayon pool.
pub fn configure_threads(n: usize) {
    ae_core::engine::gemm::set_threads(n);
    // Every thread that computes flushes denormals (see `simd::flush_denormals`).
    ae_core::engine::simd::flush_denormals();
    // Fails only if the pool was already built, which happens once per process.
    let _ = rayon::ThreadPoolBuilder::new()
        .start_handler(|_| ae_core::engine::simd::flush_denormals())
        .num_threads(n)
        .build_global();
}

fn install_ctrlc(stop: Arc<AtomicBool>) {
    let _ = ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::Relaxed) {
            eprintln!("\nsecond Ctrl-C: exiting without saving");
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: saving a checkpoint after this step (press again to exit at once)");
    });
}

/// Moves a seeded random `fraction` of the examples into a validation set, in place: the training
/// rows are compacted without a second copy of the data.
pub fn split_validation(s: &mut Samples, fraction: f32, seed: u64) -> (Samples, Option<Samples>) {
    let n = s.n;
    let k = ((n as f64) * fraction as f64).round() as usize;
    let taken = std::mem::replace(
        s,
        Samples {
            data: Vec::new(),
            n: 0,
            shape: s.shape.clone(),
            labels: None,
            source: s.source,
        },
    );
    if k == 0 || k >= n {
        return (taken, None);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut stream(seed, Purpose::Split, 0, 0));
    let mut is_val = vec![false; n];
    let mut val_idx: Vec<usize> = order[..k].to_vec();
    val_idx.sort_unstable();
    for &i in &val_idx {
        is_val[i] = true;
    }
    let val = taken.subset(&val_idx);
    let Samples {
        mut data,
        shape,
        labels,
        source,
        ..
    } = taken;
    let c: usize = shape.iter().product();
    let mut w = 0;
    for i in 0..n {
        if !is_val[i] {
            if w != i {
                data.copy_within(i * c..(i + 1) * c, w * c);
            }
            w += 1;
        }
    }
    // No shrink_to_fit: it would copy the data once more; the spare tenth is cheaper.
    data.truncate(w * c);
    let labels = labels.map(|l| {
        l.iter()
            .enumerate()
            .filter(|(i, _)| !is_val[*i])
            .map(|(_, &v)| v)
            .collect()
    });
    (
        Samples {
            data,
            n: w,
            shape,
            labels,
            source,
        },
        Some(val),
    )
}

/// BCE needs targets in [0, 1]; say so before training rather than train on nonsense.
fn check_targets(s: &Settings, train: &Samples) -> Result<()> {
    if s.binarize {
        if let Some(v) = train.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            bail!("--binarize draws each value as a probability and needs inputs scaled into [0, 1], but the scaled data holds {v}; use --scaling minmax or unit");
        }
    }
    if s.loss == ae_core::engine::loss::LossKind::Bce {
        if let Some(v) = train.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            bail!("--loss bce needs inputs scaled into [0, 1], but the scaled data holds {v}; use --scaling minmax or unit");
        }
    }
    Ok(())
}

/// Greedy layer-wise pretraining of `task`'s model on `train`, each stage logged to pretrain.jsonl.
fn pretrain(
    run: &RunDir,
    task: &mut AutoencoderTask,
    settings: &Settings,
    p: ae_core::training::pretrain::Pretrain,
    train: &ae_core::Tensor,
    quiet: bool,
) -> Result<()> {
    use ae_core::training::pretrain::{greedy, StageSettings};
    let stages = StageSettings {
        epochs: p.epochs.unwrap_or(settings.epochs),
        batch_size: settings.batch_size,
        seed: settings.seed,
        optimizer: settings.optimizer_kind(),
        lr: settings.lr,
        objective: settings.objective(),
    };
    if !quiet {
        eprintln!(
            "greedy pretraining: {} stages of {} epochs",
            settings.hidden.len(),
            stages.epochs
        );
    }
    greedy(&mut task.model, train, &stages, &mut |stage| {
        Box::new(StageLog { run, stage })
    })?;
    Ok(())
}

/// Writes a pretraining stage's epochs to pretrain.jsonl and a line to stderr.
struct StageLog<'a> {
    run: &'a RunDir,
    stage: usize,
}

impl ae_core::training::fit::Observer for StageLog<'_> {
    fn on_epoch(
        &mut self,
        r: &ae_core::training::fit::EpochRecord,
        _: &ae_core::engine::params::Params,
        _: &Optimizer,
        _: &TrainState,
    ) -> ae_core::Result<()> {
        eprintln!(
            "stage {} epoch {:>3}  loss {:.6}  {:.1}s",
            self.stage + 1,
            r.epoch,
            r.train.total(),
            r.seconds
        );
        self.run.append_stage_metrics(self.stage, r)
    }
    fn on_interrupt(
        &mut self,
        _: &ae_core::engine::params::Params,
        _: &Optimizer,
        _: &TrainState,
    ) -> ae_core::Result<()> {
        Ok(())
    }
}
