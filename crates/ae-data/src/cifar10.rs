//! `cifar10:DIR`: the binary version of CIFAR-10 (<https://www.cs.toronto.edu/~kriz/cifar.html>).
//! `data_batch_1.bin` … `data_batch_5.bin` are the training split, `test_batch.bin` the test split;
//! each record is a label byte and 3,072 pixel bytes (1,024 red, then green, then blue, row-major
//! 32×32), which is already PyTorch's channels-first order.
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::datasets::Split;
use crate::error::{Error, Result};
use crate::samples::{Samples, SourceType};

const PIXELS: usize = 3 * 32 * 32;
const RECORD: usize = 1 + PIXELS;
/// The official files hold 10,000 records each; anything beyond a few times that is not CIFAR-10.
const MAX_RECORDS: u64 = 100_000;

/// The folder holding the batch files: DIR itself, or its `cifar-10-batches-bin` (the archive's
/// folder).
fn batches_dir(dir: &Path) -> PathBuf {
    let inner = dir.join("cifar-10-batches-bin");
    if !dir.join("test_batch.bin").exists() && inner.is_dir() {
        inner
    } else {
        dir.to_path_buf()
    }
}

fn read_file(path: &Path, data: &mut Vec<f32>, labels: &mut Vec<u32>) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let format = |offset: Option<u64>, reason: String| Error::Format {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if !path.exists() {
        return Err(format(
            None,
            "missing: cifar10:DIR needs the binary CIFAR-10 files data_batch_1.bin … \
             data_batch_5.bin and test_batch.bin (from cifar-10-binary.tar.gz)"
                .into(),
        ));
    }
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len == 0 || len % RECORD as u64 != 0 || len / RECORD as u64 > MAX_RECORDS {
        return Err(format(
            None,
            format!("is {len} bytes, not a whole number of 3,073-byte CIFAR-10 records (up to {MAX_RECORDS})"),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    std::fs::File::open(path)
        .map_err(io)?
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 != len {
        return Err(format(None, "changed size while being read".into()));
    }
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(format(
                Some((i * RECORD) as u64),
                format!(
                    "record {i} has label {}; CIFAR-10 labels are 0 to 9",
                    rec[0]
                ),
            ));
        }
        labels.push(rec[0] as u32);
        data.extend(rec[1..].iter().map(|&v| v as f32));
    }
    Ok(())
}

/// Reads a split of CIFAR-10 from `dir`.
pub fn read(dir: &Path, split: Split) -> Result<Samples> {
    let dir = batches_dir(dir);
    let files: Vec<PathBuf> = match split {
        Split::Train => (1..=5)
            .map(|i| dir.join(format!("data_batch_{i}.bin")))
            .collect(),
        Split::Test => vec![dir.join("test_batch.bin")],
    };
    let (mut data, mut labels) = (Vec::new(), Vec::new());
    for f in &files {
        read_file(f, &mut data, &mut labels)?;
    }
    Ok(Samples {
        n: labels.len(),
        data,
        shape: vec![3, 32, 32],
        labels: Some(labels),
        source: SourceType::U8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(path: &Path, labels: &[u8]) {
        let mut b = Vec::new();
        for (i, &l) in labels.iter().enumerate() {
            b.push(l);
            b.extend((0..PIXELS).map(|p| ((p / 1024) * 50 + i) as u8));
        }
        std::fs::write(path, b).unwrap();
    }

    #[test]
    fn splits_labels_and_channel_planes() {
        let d = tempfile::tempdir().unwrap();
        let inner = d.path().join("cifar-10-batches-bin");
        std::fs::create_dir(&inner).unwrap();
        for i in 1..=5 {
            batch(&inner.join(format!("data_batch_{i}.bin")), &[i as u8, 0]);
        }
        batch(&inner.join("test_batch.bin"), &[9, 8, 7]);
        let train = read(d.path(), Split::Train).unwrap();
        assert_eq!((train.n, train.shape.clone()), (10, vec![3, 32, 32]));
        assert_eq!(train.labels.as_ref().unwrap()[..4], [1, 0, 2, 0]);
        let r = train.row(1);
        assert_eq!((r[0], r[1024], r[2048], r[3071]), (1.0, 51.0, 101.0, 101.0));
        let test = read(&inner, Split::Test).unwrap();
        assert_eq!((test.n, test.labels.clone()), (3, Some(vec![9, 8, 7])));
    }

    #[test]
    fn bad_files_are_named() {
        let d = tempfile::tempdir().unwrap();
        let e = read(d.path(), Split::Test).unwrap_err().to_string();
        assert!(e.contains("test_batch.bin") && e.contains("missing"), "{e}");
        std::fs::write(d.path().join("test_batch.bin"), vec![0u8; RECORD + 5]).unwrap();
        let e = read(d.path(), Split::Test).unwrap_err().to_string();
        assert!(e.contains("3078 bytes") && e.contains("3,073-byte"), "{e}");
        batch(&d.path().join("test_batch.bin"), &[3, 12]);
        let e = read(d.path(), Split::Test).unwrap_err().to_string();
        assert!(
            e.contains("record 1 has label 12") && e.contains("byte 3073"),
            "{e}"
        );
    }
}
