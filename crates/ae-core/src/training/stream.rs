//! Training on data larger than memory: a [`Feed`] that reads its rows from files as the loop
//! goes ([`StreamFeed`]), scaling fitted in streaming passes ([`fit_scaling`]), and a validation
//! split chosen by a seeded hash of each row's index ([`held_out`]), so it is stable without
//! anything loaded.
//!
//! How the order differs from a full shuffle. Memory holds at most three windows of rows: one
//! being trained on, one read ahead, one being filled by the reader thread. Each epoch the files'
//! rows are cut into blocks of consecutive rows (about a sixteenth of a window each), the blocks
//! are put in a seeded random order, and the reader fills each window from the next blocks; the
//! rows of a window are then fully shuffled. So a batch draws from the blocks of one window, not
//! from the whole data set: rows that sit next to each other in a file (a class written in one
//! run, say) meet in the same window more often than a full shuffle would bring them together.
//! A larger `shuffle_buffer` (rows per window) weakens this; when one window holds every
//! training row the blocks stay in file order and the order is exactly the in-memory loop's, so
//! the same seed gives the same weights.
use std::ops::Range;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use ae_data::scaling::{Scaler, ScalerFit, ScalingKind};
use ae_data::stream::RowSource;
use rand::seq::SliceRandom;

use crate::engine::rng::{stream, Purpose, Rng};
use crate::engine::tensor::Tensor;
use crate::objective::{Examples, Terms};
use crate::training::fit::Feed;
use crate::training::trainer::Trainer;
use crate::{Error, Result};

/// Bytes of f32 rows in one window when the settings leave its size open: three windows (about
/// 300 MB) stay well under a gigabyte with the model beside them.
pub const DEFAULT_WINDOW_BYTES: usize = 96 << 20;

/// Rows kept in memory for the collapse check, the code-health check and the validation scores.
pub const SAMPLE_ROWS: usize = 10_000;

/// Rows per window when the settings leave it open: [`DEFAULT_WINDOW_BYTES`] of rows of
/// `features` values.
pub fn default_window_rows(features: usize) -> usize {
    (DEFAULT_WINDOW_BYTES / (4 * features.max(1))).max(1)
}

/// Whether row `i` is held out for validation in a run seeded with `seed` that holds out
/// `fraction` of the rows: a hash of the index, so every row's side is known without reading the
/// others, and the share is `fraction` up to sampling noise (not exactly, as in memory).
pub fn held_out(seed: u64, fraction: f32, i: usize) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    let mut h = seed ^ 0x5851_F42D_4C95_7F2D;
    h = mix(h ^ mix(i as u64));
    ((h >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < fraction as f64
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Which rows of a source a feed reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The rows not held out.
    Train,
    /// The held-out rows.
    Validation,
}

/// The rows of one part of a split.
#[derive(Clone, Copy, Debug)]
struct Keep {
    part: Part,
    seed: u64,
    fraction: f32,
}

impl Keep {
    fn keeps(&self, i: usize) -> bool {
        held_out(self.seed, self.fraction, i) == (self.part == Part::Validation)
    }
}

fn data_error(e: ae_data::Error) -> Error {
    Error::Data {
        context: "cannot stream the data".into(),
        source: e,
    }
}

/// Fits `kind` on the training rows of `source` (those [`held_out`] leaves in) in one streaming
/// pass, two for standardization. Returns the fit, whose range tells what the scaled data spans.
pub fn fit_scaling(
    source: &RowSource,
    kind: ScalingKind,
    seed: u64,
    fraction: f32,
    block_rows: usize,
) -> Result<ScalerFit> {
    let d = source.features();
    let mut fit = ScalerFit::new(kind, source.source(), d).map_err(data_error)?;
    let keep = Keep {
        part: Part::Train,
        seed,
        fraction,
    };
    let mut rows = Vec::new();
    for pass in 0..fit.passes() {
        if pass > 0 {
            fit.next_pass();
        }
        for r in source.blocks(block_rows) {
            rows.clear();
            source
                .read_where(r, |i| keep.keeps(i), &mut rows, |_| {})
                .map_err(data_error)?;
            fit.add(&rows);
        }
    }
    Ok(fit)
}

/// The two ends of a reader thread: windows come on `windows`; a window's vector sent back on
/// `spent` is filled again rather than a new one allocated (a fresh 96 MB vector is fresh pages
/// that the kernel zeroes and faults in, a fifth of the reader's cost).
struct Reader {
    windows: Receiver<ae_data::Result<Vec<f32>>>,
    spent: SyncSender<Vec<f32>>,
}

impl Reader {
    /// Hands a used window back (dropped if the reader has enough).
    fn give_back(&self, window: Tensor) {
        let _ = self.spent.try_send(window.into_vec());
    }
}

/// Reads the rows `keep` takes from `blocks` in that order, scales them and sends them in
/// windows of `window_rows` rows (the last one shorter) on a thread of its own, one window ahead.
/// It stops at the first error, which it sends, or when the receiver is dropped.
fn spawn_reader(
    source: Arc<RowSource>,
    scaler: Arc<Scaler>,
    keep: Keep,
    blocks: Vec<Range<usize>>,
    window_rows: usize,
) -> Reader {
    let (tx, windows) = sync_channel(1);
    let (spent, back) = sync_channel::<Vec<f32>>(2);
    std::thread::spawn(move || {
        let d = source.features();
        let full = window_rows * d;
        // Room for a window and the block that overflows it, so the vector never doubles.
        let longest = blocks.iter().map(|b| b.len()).max().unwrap_or(0);
        let room = full + longest * d;
        let fresh = || {
            let mut v = back.try_recv().unwrap_or_default();
            v.clear();
            v.reserve(room);
            v
        };
        let mut window = fresh();
        for (i, r) in blocks.iter().cloned().enumerate() {
            if let Some(next) = blocks.get(i + 1) {
                source.will_need(next.clone());
            }
            let read =
                source.read_where(r, |i| keep.keeps(i), &mut window, |row| scaler.apply(row));
            if let Err(e) = read {
                let _ = tx.send(Err(e));
                return;
            }
            while window.len() >= full {
                let mut next = fresh();
                next.extend_from_slice(&window[full..]);
                window.truncate(full);
                if tx.send(Ok(std::mem::replace(&mut window, next))).is_err() {
                    return;
                }
            }
        }
        if !window.is_empty() {
            let _ = tx.send(Ok(window));
        }
    });
    Reader { windows, spent }
}

/// Every row of `source` in file order, scaled, as tensors of at most `window_rows` examples read
/// one window ahead on a thread of their own: for commands that encode, reconstruct or score data
/// larger than memory, writing as they go.
pub fn scaled_windows(
    source: Arc<RowSource>,
    scaler: Arc<Scaler>,
    window_rows: usize,
) -> impl Iterator<Item = Result<Tensor>> {
    let mut shape = vec![0];
    shape.extend(source.shape());
    let d = source.features().max(1);
    let window_rows = window_rows.max(1);
    let blocks = source.blocks((window_rows / 16).max(1));
    let every = Keep {
        part: Part::Train,
        seed: 0,
        fraction: 0.0,
    };
    spawn_reader(source, scaler, every, blocks, window_rows)
        .windows
        .into_iter()
        .map(move |w| {
            let w = w.map_err(data_error)?;
            shape[0] = w.len() / d;
            Ok(Tensor::from_vec(&shape, w))
        })
}

/// One part of a streamed data set as the loop's [`Feed`]: scaled as it is read, in windows
/// shuffled as the module's notes say.
pub struct StreamFeed {
    source: Arc<RowSource>,
    scaler: Arc<Scaler>,
    keep: Keep,
    rows: usize,
    window_rows: usize,
    block_rows: usize,
    sample: Tensor,
    // The epoch under way.
    reader: Option<Reader>,
    window: Tensor,
    perm: Vec<usize>,
    pos: usize,
    rng: Option<Rng>,
    consumed: usize,
    batch_size: usize,
}

impl StreamFeed {
    /// The `part` of `source` split by `seed` and `fraction` ([`held_out`]), scaled by `scaler`,
    /// shuffled in windows of `window_rows` rows. Counts the part's rows and reads its first
    /// [`SAMPLE_ROWS`] into memory.
    pub fn new(
        source: Arc<RowSource>,
        scaler: Arc<Scaler>,
        part: Part,
        seed: u64,
        fraction: f32,
        window_rows: usize,
    ) -> Result<StreamFeed> {
        let keep = Keep {
            part,
            seed,
            fraction,
        };
        let rows = (0..source.rows()).filter(|&i| keep.keeps(i)).count();
        let window_rows = window_rows.max(1);
        let block_rows = (window_rows / 16).max(1);
        let mut feed = StreamFeed {
            source,
            scaler,
            keep,
            rows,
            window_rows,
            block_rows,
            sample: Tensor::default(),
            reader: None,
            window: Tensor::default(),
            perm: Vec::new(),
            pos: 0,
            rng: None,
            consumed: 0,
            batch_size: 1,
        };
        feed.sample = feed.first_rows(SAMPLE_ROWS.min(rows))?;
        Ok(feed)
    }

    /// The shape of a tensor of `n` examples.
    fn shape_of(&self, n: usize) -> Vec<usize> {
        let mut shape = vec![n];
        shape.extend(self.source.shape());
        shape
    }

    /// The part's first `n` rows, scaled, in file order.
    pub fn first_rows(&self, n: usize) -> Result<Tensor> {
        let d = self.source.features();
        let mut data = Vec::with_capacity(n * d);
        for r in self.source.blocks(self.block_rows) {
            if data.len() >= n * d {
                break;
            }
            self.source
                .read_where(
                    r,
                    |i| self.keep.keeps(i),
                    &mut data,
                    |row| self.scaler.apply(row),
                )
                .map_err(data_error)?;
        }
        data.truncate(n * d);
        let got = data.len() / d.max(1);
        Ok(Tensor::from_vec(&self.shape_of(got), data))
    }

    /// Waits for the next window when the current one is used up.
    fn refill(&mut self) -> Result<()> {
        if self.pos < self.perm.len() {
            return Ok(());
        }
        let Some(reader) = self.reader.as_ref() else {
            return Err(Error::config("data", "no epoch of the stream was started"));
        };
        let got = reader.windows.recv().ok();
        let window = match got {
            Some(w) => w.map_err(data_error)?,
            None => {
                return Err(Error::Data {
                    context: "cannot stream the data".into(),
                    source: ae_data::Error::Shape {
                        what: "rows streamed in this epoch".into(),
                        expected: self.rows.to_string(),
                        got: format!("{} before the files ran out", self.consumed),
                    },
                })
            }
        };
        let m = window.len() / self.source.features().max(1);
        let shape = self.shape_of(m);
        let spent = std::mem::replace(&mut self.window, Tensor::from_vec(&shape, window));
        reader.give_back(spent);
        self.perm = (0..m).collect();
        self.perm
            .shuffle(self.rng.as_mut().expect("an epoch was started"));
        self.pos = 0;
        Ok(())
    }
}

impl Feed for StreamFeed {
    fn rows(&self) -> usize {
        self.rows
    }

    fn start_epoch(
        &mut self,
        seed: u64,
        epoch: usize,
        batch_size: usize,
        skip: usize,
    ) -> Result<()> {
        // The last epoch's reader stops when it finds its receiver gone.
        self.reader = None;
        self.window = Tensor::default();
        self.batch_size = batch_size.max(1);
        // Whole batches in a window: a batch never straddles two, so the trainer gathers it from
        // the window itself.
        let window_rows = (self.window_rows / self.batch_size).max(1) * self.batch_size;
        let mut blocks = self.source.blocks(self.block_rows);
        if self.rows > window_rows {
            blocks.shuffle(&mut stream(seed, Purpose::Blocks, epoch as u64, 0));
        }
        self.reader = Some(spawn_reader(
            self.source.clone(),
            self.scaler.clone(),
            self.keep,
            blocks,
            window_rows,
        ));
        self.rng = Some(stream(seed, Purpose::Shuffle, epoch as u64, 0));
        self.perm.clear();
        self.pos = 0;
        self.consumed = 0;
        // A resumed epoch: pass over the rows its first steps took, drawing the same windows.
        let mut left = (skip * self.batch_size).min(self.rows);
        while left > 0 {
            self.refill()?;
            let k = left.min(self.perm.len() - self.pos);
            self.pos += k;
            self.consumed += k;
            left -= k;
        }
        Ok(())
    }

    fn step(
        &mut self,
        trainer: &mut dyn Trainer,
        epoch: usize,
        step: usize,
    ) -> Result<(Terms, usize)> {
        let take = self.batch_size.min(self.rows - self.consumed);
        self.refill()?;
        if self.perm.len() - self.pos < take {
            // Windows hold whole batches: only files that changed under the reader get here.
            return Err(Error::Data {
                context: "cannot stream the data".into(),
                source: ae_data::Error::Shape {
                    what: "rows left in the window for a batch".into(),
                    expected: take.to_string(),
                    got: (self.perm.len() - self.pos).to_string(),
                },
            });
        }
        let idx = &self.perm[self.pos..self.pos + take];
        let terms = trainer.step(Examples::new(&self.window), idx, epoch, step)?;
        self.pos += take;
        self.consumed += take;
        if self.consumed == self.rows {
            // Validation and the next epoch's reader get the memory.
            self.window = Tensor::default();
            self.reader = None;
        }
        Ok((terms, take))
    }

    fn evaluate(&mut self, trainer: &mut dyn Trainer, batch_size: usize) -> Result<Terms> {
        let reader = spawn_reader(
            self.source.clone(),
            self.scaler.clone(),
            self.keep,
            self.source.blocks(self.block_rows),
            self.window_rows,
        );
        let d = self.source.features().max(1);
        let (mut sum, mut seen) = (Terms::default(), 0usize);
        while let Ok(window) = reader.windows.recv() {
            let window = window.map_err(data_error)?;
            let m = window.len() / d;
            let x = Tensor::from_vec(&self.shape_of(m), window);
            let t = trainer.evaluate(Examples::new(&x), batch_size)?;
            sum.add_weighted(&t, m as f64);
            seen += m;
            reader.give_back(x);
        }
        Ok(sum.scaled(1.0 / seen.max(1) as f64))
    }

    fn sample(&self) -> Examples<'_> {
        Examples::new(&self.sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_split_holds_out_about_the_fraction_and_depends_on_the_seed() {
        let n = 100_000;
        let a = (0..n).filter(|&i| held_out(7, 0.1, i)).count();
        assert!((9_500..10_500).contains(&a), "{a}");
        let same = (0..n)
            .filter(|&i| held_out(7, 0.1, i) == held_out(8, 0.1, i))
            .count();
        assert!(same < n - 1_000, "the seed must move the split: {same}");
        assert_eq!((0..n).filter(|&i| held_out(7, 0.0, i)).count(), 0);
    }
}
