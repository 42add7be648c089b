//! The IDX format of MNIST-like data sets (raw or gzipped), checked before anything is allocated.
//!
//! Layout: two zero bytes, a type code, the number of dimensions, then one big-endian u32 per
//! dimension and the values, big-endian, row-major.
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;

use crate::error::{Error, Result};
use crate::samples::{Samples, SourceType};

/// The element types IDX defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    U8,
    I8,
    I16,
    I32,
    F32,
    F64,
}

impl Elem {
    fn from_code(c: u8) -> Option<Elem> {
        Some(match c {
            0x08 => Elem::U8,
            0x09 => Elem::I8,
            0x0B => Elem::I16,
            0x0C => Elem::I32,
            0x0D => Elem::F32,
            0x0E => Elem::F64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Elem::U8 | Elem::I8 => 1,
            Elem::I16 => 2,
            Elem::I32 | Elem::F32 => 4,
            Elem::F64 => 8,
        }
    }
}

/// A decoded IDX file: dimensions and values as f32.
struct Idx {
    dims: Vec<usize>,
    elem: Elem,
    values: Vec<f32>,
}

fn read_exact_at(
    r: &mut impl Read,
    buf: &mut [u8],
    path: &Path,
    offset: u64,
    what: &str,
) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            Error::format(path, Some(offset), format!("file ends inside the {what}"))
        }
        _ => Error::format(path, Some(offset), format!("cannot read the {what}: {e}")),
    })
}

fn read_idx(path: &Path) -> Result<Idx> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut raw = BufReader::new(file);
    let mut head = [0u8; 4];
    read_exact_at(&mut raw, &mut head, path, 0, "IDX header")?;
    let gz = head[0] == 0x1f && head[1] == 0x8b;
    let mut reader: Box<dyn Read> = if gz {
        // Put the two gzip bytes back in front of the stream.
        let chained = std::io::Cursor::new(head.to_vec()).chain(raw);
        let mut d = GzDecoder::new(chained);
        read_exact_at(&mut d, &mut head, path, 0, "IDX header (after gunzip)")?;
        Box::new(d)
    } else {
        Box::new(raw)
    };
    if head[0] != 0 || head[1] != 0 {
        return Err(Error::format(
            path,
            Some(0),
            format!(
                "not an IDX file: magic starts with {:02x} {:02x}, expected 00 00",
                head[0], head[1]
            ),
        ));
    }
    let elem = Elem::from_code(head[2]).ok_or_else(|| {
        Error::format(
            path,
            Some(2),
            format!("unknown IDX type code 0x{:02x}", head[2]),
        )
    })?;
    let ndims = head[3] as usize;
    if ndims == 0 {
        return Err(Error::format(
            path,
            Some(3),
            "IDX file declares zero dimensions",
        ));
    }
    let mut dims = Vec::with_capacity(ndims);
    let mut count: usize = 1;
    for i in 0..ndims {
        let mut b = [0u8; 4];
        read_exact_at(
            &mut reader,
            &mut b,
            path,
            4 + 4 * i as u64,
            "IDX dimensions",
        )?;
        let d = u32::from_be_bytes(b) as usize;
        count = count.checked_mul(d).ok_or_else(|| {
            Error::format(
                path,
                Some(4 + 4 * i as u64),
                "dimensions multiply past the address space",
            )
        })?;
        dims.push(d);
    }
    let header_len = 4 + 4 * ndims as u64;
    let payload = count.checked_mul(elem.size()).ok_or_else(|| {
        Error::format(
            path,
            Some(header_len),
            "dimensions multiply past the address space",
        )
    })?;
    let bytes = if gz {
        // The decompressed size is unknown until read: read at most one byte more than claimed and
        // let the buffer grow with what really arrives, so a lying header allocates nothing.
        let mut buf = Vec::new();
        reader
            .take(payload as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::format(path, None, format!("corrupt gzip stream: {e}")))?;
        buf
    } else {
        let available = file_len.saturating_sub(header_len);
        if available != payload as u64 {
            return Err(Error::format(
                path,
                Some(header_len),
                format!(
                    "header {dims:?} claims {payload} bytes of data but the file has {available}"
                ),
            ));
        }
        let mut buf = vec![0u8; payload];
        read_exact_at(&mut reader, &mut buf, path, header_len, "IDX data")?;
        buf
    };
    if bytes.len() != payload {
        let what = if bytes.len() > payload {
            "more"
        } else {
            "fewer"
        };
        return Err(Error::format(
            path,
            Some(header_len),
            format!("header {dims:?} claims {payload} bytes of data but the decompressed file has {what}"),
        ));
    }
    let values: Vec<f32> = match elem {
        Elem::U8 => bytes.iter().map(|&b| b as f32).collect(),
        Elem::I8 => bytes.iter().map(|&b| b as i8 as f32).collect(),
        Elem::I16 => bytes
            .chunks_exact(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]) as f32)
            .collect(),
        Elem::I32 => bytes
            .chunks_exact(4)
            .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        Elem::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Elem::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            path: path.into(),
            index: i,
            value: values[i] as f64,
        });
    }
    Ok(Idx { dims, elem, values })
}

/// Reads an images file: (N, H, W) becomes examples of shape `[1, H, W]`, (N, C, H, W) stays.
pub fn read_images(path: &Path) -> Result<Samples> {
    let idx = read_idx(path)?;
    let shape = match idx.dims.as_slice() {
        [_, h, w] => vec![1, *h, *w],
        [_, c, h, w] => vec![*c, *h, *w],
        [_, d] => vec![*d],
        other => {
            return Err(Error::format(
                path,
                Some(3),
                format!(
                    "an images file has 2 to 4 dimensions, this one {}",
                    other.len()
                ),
            ))
        }
    };
    let source = match idx.elem {
        Elem::U8 => SourceType::U8,
        Elem::F32 => SourceType::F32,
        Elem::F64 => SourceType::F64,
        _ => SourceType::Int,
    };
    Ok(Samples {
        data: idx.values,
        n: idx.dims[0],
        shape,
        labels: None,
        source,
    })
}

/// Reads a labels file: one dimension of non-negative integers.
pub fn read_labels(path: &Path) -> Result<Vec<u32>> {
    let idx = read_idx(path)?;
    if idx.dims.len() != 1 {
        return Err(Error::format(
            path,
            Some(3),
            format!("a labels file has 1 dimension, this one {}", idx.dims.len()),
        ));
    }
    if matches!(idx.elem, Elem::F32 | Elem::F64) {
        return Err(Error::format(
            path,
            Some(2),
            "labels must be integers, this file holds floats",
        ));
    }
    if let Some(i) = idx.values.iter().position(|&v| v < 0.0) {
        return Err(Error::format(
            path,
            None,
            format!("label {i} is negative ({})", idx.values[i]),
        ));
    }
    Ok(idx.values.iter().map(|&v| v as u32).collect())
}

/// Reads images and their labels, checking that the counts agree.
pub fn read_pair(images: &Path, labels: &Path) -> Result<Samples> {
    let mut s = read_images(images)?;
    let l = read_labels(labels)?;
    if l.len() != s.n {
        return Err(Error::Shape {
            what: format!("{} for {}", labels.display(), images.display()),
            expected: format!("{} labels", s.n),
            got: format!("{}", l.len()),
        });
    }
    s.labels = Some(l);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx_bytes(code: u8, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, code, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(payload);
        b
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_raw_and_gzip_images_with_labels() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 3 * 2).collect();
        let raw = idx_bytes(0x08, &[2, 3, 2], &pixels);
        for (name, bytes) in [("i", raw.clone()), ("i.gz", gz(&raw))] {
            let p = write(&dir, name, &bytes);
            let s = read_images(&p).unwrap();
            assert_eq!(
                (s.n, s.shape.clone(), s.source),
                (2, vec![1, 3, 2], SourceType::U8)
            );
            assert_eq!(s.row(1)[0], 6.0);
        }
        let labels = write(&dir, "l", &idx_bytes(0x08, &[2], &[7, 3]));
        let s = read_pair(&dir.path().join("i"), &labels).unwrap();
        assert_eq!(s.labels, Some(vec![7, 3]));
        let three = write(&dir, "l3", &idx_bytes(0x08, &[3], &[7, 3, 1]));
        let e = read_pair(&dir.path().join("i"), &three)
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected 2 labels, got 3"), "{e}");
    }

    #[test]
    fn hostile_headers() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_images(&write(&dir, "magic", &[1, 2, 8, 3, 0, 0, 0, 1]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("magic") && e.contains("magic"), "{e}");
        let e = read_images(&write(&dir, "type", &idx_bytes(0x07, &[1], &[0])))
            .unwrap_err()
            .to_string();
        assert!(e.contains("type code 0x07"), "{e}");
        let e = read_images(&write(&dir, "short", &[0, 0, 8]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("short") && e.contains("ends inside"), "{e}");
        // Truncated data.
        let e = read_images(&write(
            &dir,
            "trunc",
            &idx_bytes(0x08, &[2, 2, 2], &[1, 2, 3]),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("claims 8 bytes") && e.contains("has 3"), "{e}");
        // 4 GB claimed in a tiny file, raw and gzipped: refused without allocating it.
        let huge = idx_bytes(0x08, &[1 << 16, 1 << 8, 1 << 8], &[0; 88]);
        let e = read_images(&write(&dir, "huge", &huge))
            .unwrap_err()
            .to_string();
        assert!(e.contains("claims 4294967296 bytes"), "{e}");
        let e = read_images(&write(&dir, "huge.gz", &gz(&huge)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("fewer"), "{e}");
        // Dimensions whose product overflows.
        let e = read_images(&write(
            &dir,
            "overflow",
            &idx_bytes(0x08, &[u32::MAX, u32::MAX, u32::MAX], &[]),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("address space"), "{e}");
        // Not gzip after all.
        let e = read_images(&write(&dir, "badgz", &[0x1f, 0x8b, 0, 0, 1, 2, 3]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("badgz"), "{e}");
    }

    #[test]
    fn floats_and_non_finite_values() {
        let dir = tempfile::tempdir().unwrap();
        let vals: Vec<u8> = [1.5f32, f32::NAN]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let e = read_images(&write(&dir, "nan", &idx_bytes(0x0D, &[1, 2], &vals)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("value 1 is NaN"), "{e}");
        let vals: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let s = read_images(&write(&dir, "f", &idx_bytes(0x0D, &[1, 2], &vals))).unwrap();
        assert_eq!(s.data, vec![1.5, -2.0]);
        assert_eq!(s.shape, vec![2]);
    }

    /// Needs Fashion-MNIST (Debian's dataset-fashion-mnist).
    #[test]
    fn real_fashion_mnist() {
        let dir = Path::new("/usr/share/datasets/fashion-mnist");
        if !dir.exists() {
            assert!(
                std::env::var("CI").is_err(),
                "CI must install dataset-fashion-mnist"
            );
            return;
        }
        let s = read_pair(
            &dir.join("train-images-idx3-ubyte.gz"),
            &dir.join("train-labels-idx1-ubyte.gz"),
        )
        .unwrap();
        assert_eq!((s.n, s.shape.clone()), (60000, vec![1, 28, 28]));
        let labels = s.labels.unwrap();
        assert_eq!(labels[0], 9);
        assert!(labels.iter().all(|&l| l < 10));
        let t = read_images(&dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
        assert_eq!(t.n, 10000);
    }
}
