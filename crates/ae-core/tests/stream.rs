//! Streamed training against in-memory training: the same weights where the two see the same
//! rows in the same order, resumption mid-epoch, and files that go bad while training runs.
use std::cell::Cell;
use std::path::Path;

use ae_core::run::{train_streamed, RunDir};
use ae_core::training::fit::{EpochRecord, Outcome, StepInfo};
use ae_core::training::stream::held_out;
use ae_core::{train, Destination, Progress, Samples, Settings, TrainOptions};
use ae_data::samples::SourceType;
use ae_data::stream::RowSource;

const D: usize = 12;

/// `n` rows of 8-bit values with some structure, written as `parts` `.npy` shards in `dir`.
fn shards(dir: &Path, n: usize, parts: usize) -> Vec<u8> {
    let rows: Vec<u8> = (0..n * D)
        .map(|i| {
            let (r, j) = ((i / D) as f32, (i % D) as f32);
            (127.0 + 100.0 * ((r * 0.37).sin() * (1.0 + 0.1 * j)).tanh()) as u8
        })
        .collect();
    let per = n.div_ceil(parts);
    for (k, chunk) in rows.chunks(per * D).enumerate() {
        let m = chunk.len() / D;
        let h = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({m}, {D}), }}\n");
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
        bytes.extend_from_slice(h.as_bytes());
        bytes.extend_from_slice(chunk);
        std::fs::write(dir.join(format!("part-{k:03}.npy")), bytes).unwrap();
    }
    rows
}

fn samples(rows: &[u8], keep: impl Fn(usize) -> bool) -> Samples {
    let data: Vec<f32> = rows
        .chunks_exact(D)
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .flat_map(|(_, r)| r.iter().map(|&v| f32::from(v)))
        .collect();
    let mut s = Samples::from_rows(data, &[D]).unwrap();
    s.source = SourceType::U8;
    s
}

fn settings(val_fraction: f32, buffer: Option<usize>) -> Settings {
    Settings {
        hidden: vec![8, 3],
        epochs: 3,
        batch_size: 16,
        threads: 1,
        val_fraction,
        noise: Some("gaussian:0.1".parse().unwrap()),
        stream: true,
        shuffle_buffer: buffer,
        ..Settings::default()
    }
}

#[test]
fn a_window_as_large_as_the_data_gives_the_in_memory_weights() {
    let dir = tempfile::tempdir().unwrap();
    let rows = shards(dir.path(), 300, 4);
    let s = settings(0.0, Some(1_000)).check().unwrap();
    let memory = train(&s, samples(&rows, |_| true), TrainOptions::default()).unwrap();
    let source = RowSource::open(dir.path()).unwrap();
    let streamed = train_streamed(&s, source, TrainOptions::default()).unwrap();
    assert_eq!(
        memory.task.model.params.values,
        streamed.task.model.params.values
    );
    assert_eq!(memory.meta.scaler, streamed.meta.scaler);

    // With validation, the streamed run holds out rows by hash: in memory, the same weights come
    // from training on exactly the rows it kept.
    let s = settings(0.2, Some(1_000));
    let streamed = train_streamed(
        &s.clone().check().unwrap(),
        RowSource::open(dir.path()).unwrap(),
        TrainOptions::default(),
    )
    .unwrap();
    let kept = samples(&rows, |i| !held_out(s.seed, 0.2, i));
    let n_kept = kept.n;
    assert!((220..280).contains(&n_kept), "{n_kept}");
    let memory = train(
        &Settings {
            val_fraction: 0.0,
            ..s
        }
        .check()
        .unwrap(),
        kept,
        TrainOptions::default(),
    )
    .unwrap();
    assert_eq!(
        memory.task.model.params.values,
        streamed.task.model.params.values
    );
    let val = streamed.val_scores.unwrap();
    assert_eq!(val.len(), 300 - n_kept);
}

#[test]
fn small_windows_shuffle_differently_each_epoch_and_still_learn() {
    let dir = tempfile::tempdir().unwrap();
    let rows = shards(dir.path(), 400, 5);
    let s = settings(0.0, Some(40)).check().unwrap();
    let a = train_streamed(
        &s,
        RowSource::open(dir.path()).unwrap(),
        TrainOptions::default(),
    )
    .unwrap();
    let memory = train(&s, samples(&rows, |_| true), TrainOptions::default()).unwrap();
    assert_ne!(a.task.model.params.values, memory.task.model.params.values);
    let first = a.history[0].train.total();
    let last = a.history.last().unwrap().train.total();
    assert!(last < first, "{first} -> {last}");
    // Deterministic: the same seed streams the same order.
    let b = train_streamed(
        &s,
        RowSource::open(dir.path()).unwrap(),
        TrainOptions::default(),
    )
    .unwrap();
    assert_eq!(a.task.model.params.values, b.task.model.params.values);
}

/// Stops after `after` steps; or runs `on_epoch` after the first epoch.
struct Stopper<'a> {
    after: usize,
    steps: Cell<usize>,
    on_epoch: Option<Box<dyn FnMut() + 'a>>,
}

impl Progress for Stopper<'_> {
    fn step(&mut self, _: &StepInfo<'_>) {
        self.steps.set(self.steps.get() + 1);
    }
    fn epoch(&mut self, _: &EpochRecord, _: &ae_core::objective::Terms) {
        if let Some(f) = self.on_epoch.as_mut() {
            f();
        }
    }
    fn stop_requested(&self) -> bool {
        self.steps.get() >= self.after
    }
}

#[test]
fn a_streamed_run_interrupted_mid_epoch_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path(), 400, 5);
    let runs = tempfile::tempdir().unwrap();
    let s = settings(0.1, Some(64)).check().unwrap();
    let whole = train_streamed(
        &s,
        RowSource::open(dir.path()).unwrap(),
        TrainOptions::default(),
    )
    .unwrap();
    let path = runs.path().join("run");
    let mut stop = Stopper {
        after: 30, // in epoch 2: 23 steps an epoch
        steps: Cell::new(0),
        on_epoch: None,
    };
    let cut = train_streamed(
        &s,
        RowSource::open(dir.path()).unwrap(),
        TrainOptions {
            destination: Destination::Folder {
                path: path.clone(),
                force: false,
            },
            progress: Some(&mut stop),
            ..TrainOptions::default()
        },
    )
    .unwrap();
    assert_eq!(cut.outcome, Outcome::Interrupted);
    assert_eq!((cut.state.epoch, cut.state.step), (1, 7), "{:?}", cut.state);
    let resumed = train_streamed(
        &s,
        RowSource::open(dir.path()).unwrap(),
        TrainOptions {
            destination: Destination::Resume(path.clone()),
            ..TrainOptions::default()
        },
    )
    .unwrap();
    assert_eq!(resumed.outcome, Outcome::Completed);
    assert_eq!(
        whole.task.model.params.values,
        resumed.task.model.params.values
    );
}

#[test]
fn a_shard_that_vanishes_mid_run_is_named_and_the_last_checkpoint_kept() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path(), 400, 5);
    let runs = tempfile::tempdir().unwrap();
    let path = runs.path().join("run");
    let victim = dir.path().join("part-003.npy");
    let mut stop = Stopper {
        after: usize::MAX,
        steps: Cell::new(0),
        on_epoch: Some(Box::new(|| {
            let _ = std::fs::remove_file(&victim);
        })),
    };
    let err = train_streamed(
        &settings(0.1, Some(64)).check().unwrap(),
        RowSource::open(dir.path()).unwrap(),
        TrainOptions {
            destination: Destination::Folder {
                path: path.clone(),
                force: false,
            },
            progress: Some(&mut stop),
            ..TrainOptions::default()
        },
    )
    .unwrap_err();
    let text = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|e| e.to_string())
            .unwrap_or_default()
    );
    assert!(text.contains("part-003.npy"), "{text}");
    let run = RunDir::open(&path).unwrap();
    let meta = run.read_meta().unwrap();
    assert_eq!((meta.epoch, meta.finished), (1, false));
    assert!(run.has_checkpoint());
}

#[test]
fn what_needs_the_data_in_memory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path(), 50, 1);
    let s = Settings {
        binarize: true,
        ..settings(0.0, None)
    }
    .check()
    .unwrap();
    let err = train_streamed(
        &s,
        RowSource::open(dir.path()).unwrap(),
        TrainOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("binarize") && err.contains("without --stream"),
        "{err}"
    );
}
