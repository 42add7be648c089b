//! The IDX format of MNIST-like data sets (raw or gzipped), checked before anything is allocated.
//!
//! Layout: two zero bytes, a type code, the number of dimensions, then one big-endian u32 per
//! dimension and the values, big-endian, row-major.
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

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

/// The element type and the number of dimensions an IDX header's first four bytes give.
fn magic(path: &Path, head: &[u8; 4]) -> Result<(Elem, usize)> {
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
    Ok((elem, head[3] as usize))
}

fn read_idx(path: &Path) -> Result<Idx> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut raw = BufReader::new(file);
    let mut head = [0u8; 4];
    read_exact_at(&mut raw, &mut head, path, 0, "IDX header")?;
    let gz = head[0] == 0x1f && head[1] == 0x8b;
    let mut reader: Box<dyn Read> = if gz {
        // Put the four bytes already read back in front of the stream. A multi-member decoder,
        // because `cat a.gz b.gz` and parallel compressors make valid files of several members.
        let chained = std::io::Cursor::new(head.to_vec()).chain(raw);
        let mut d = MultiGzDecoder::new(chained);
        read_exact_at(&mut d, &mut head, path, 0, "IDX header (after gunzip)")?;
        Box::new(d)
    } else {
        Box::new(raw)
    };
    let (elem, ndims) = magic(path, &head)?;
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
                "dimensions overflow: their product is past the address space",
            )
        })?;
        dims.push(d);
    }
    let header_len = 4 + 4 * ndims as u64;
    let payload = count.checked_mul(elem.size()).ok_or_else(|| {
        Error::format(
            path,
            Some(header_len),
            "dimensions overflow: the data would be larger than the address space",
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
        let has = if bytes.len() > payload {
            "more".to_string()
        } else {
            format!("fewer ({})", bytes.len())
        };
        return Err(Error::format(
            path,
            Some(header_len),
            format!(
                "header {dims:?} claims {payload} bytes of data but the decompressed file has {has}"
            ),
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
            .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
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

/// Where an uncompressed IDX images file keeps its values, for reading rows in place
/// ([`crate::stream`]): the example shape, the row count, where the values start and how one
/// becomes an f32, checked against the file's size. A gzipped file cannot be read in place.
pub(crate) fn layout(path: &Path) -> Result<crate::stream::FileLayout> {
    use crate::npy::Elem as N;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut raw = BufReader::new(file);
    let mut head = [0u8; 4];
    read_exact_at(&mut raw, &mut head, path, 0, "IDX header")?;
    if head[0] == 0x1f && head[1] == 0x8b {
        return Err(Error::format(
            path,
            Some(0),
            "a gzipped IDX file cannot be streamed (its rows cannot be read in place); gunzip it first",
        ));
    }
    let (elem, ndims) = magic(path, &head)?;
    if !(2..=4).contains(&ndims) {
        return Err(Error::format(
            path,
            Some(3),
            format!("an images file has 2 to 4 dimensions, this one {ndims}"),
        ));
    }
    let mut dims = Vec::with_capacity(ndims);
    for i in 0..ndims {
        let mut b = [0u8; 4];
        let at = 4 + 4 * i as u64;
        read_exact_at(&mut raw, &mut b, path, at, "IDX dimensions")?;
        dims.push(u32::from_be_bytes(b) as usize);
    }
    let header_len = 4 + 4 * ndims as u64;
    // At most four u32 dimensions and 8-byte values: the product fits in u128.
    let payload = dims.iter().map(|&d| d as u128).product::<u128>() * elem.size() as u128;
    let available = file_len.saturating_sub(header_len);
    if payload != available as u128 {
        return Err(Error::format(
            path,
            Some(header_len),
            format!("header {dims:?} claims {payload} bytes of data but the file has {available}"),
        ));
    }
    let example = match dims.as_slice() {
        [_, h, w] => vec![1, *h, *w],
        [_, c, h, w] => vec![*c, *h, *w],
        [_, d] => vec![*d],
        _ => unreachable!("2 to 4 dimensions, checked above"),
    };
    if dims[0] == 0 || example.contains(&0) {
        return Err(Error::format(
            path,
            Some(4),
            format!("the file holds no values: dimensions {dims:?}"),
        ));
    }
    let (elem, source, name) = match elem {
        Elem::U8 => (N::U8, SourceType::U8, "u8"),
        Elem::I8 => (N::I8, SourceType::Int, "i8"),
        Elem::I16 => (N::I16, SourceType::Int, "i16"),
        Elem::I32 => (N::I32, SourceType::Int, "i32"),
        Elem::F32 => (N::F32, SourceType::F32, "f32"),
        Elem::F64 => (N::F64, SourceType::F64, "f64"),
    };
    Ok(crate::stream::FileLayout {
        path: path.to_path_buf(),
        data_offset: header_len,
        rows: dims[0],
        example,
        elem,
        size: match elem {
            N::U8 | N::I8 => 1,
            N::I16 => 2,
            N::I32 | N::F32 => 4,
            _ => 8,
        },
        big: true,
        source,
        dtype: format!("IDX {name}"),
    })
}

/// Reads an images file: (N, H, W) becomes examples of shape `[1, H, W]`, (N, C, H, W) gives
/// `[C, H, W]`, and (N, D) gives plain vectors `[D]`. The file may be gzipped (told by its first
/// two bytes, not its name). Values become f32 unchanged (no scaling here).
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
    if idx.dims[0] == 0 {
        return Err(Error::format(
            path,
            Some(4),
            "the file holds no examples (its first dimension is 0)",
        ));
    }
    if shape.contains(&0) {
        return Err(Error::format(
            path,
            Some(8),
            format!("each example is empty: dimensions {:?}", idx.dims),
        ));
    }
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

/// Reads a labels file: one dimension of non-negative integers (gzipped or not).
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

/// Reads images and their labels, checking that the counts agree; the labels are attached.
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

    /// The error `read_images` gives for a file made of `bytes`.
    fn images_err(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
        let e = read_images(&write(dir, name, bytes))
            .unwrap_err()
            .to_string();
        // Drop the temporary folder so the messages can be compared whole.
        e.replace(&format!("{}/", dir.path().display()), "")
    }

    #[test]
    fn reads_raw_and_gzip_images_with_labels() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 3 * 2).collect();
        let raw = idx_bytes(0x08, &[2, 3, 2], &pixels);
        // The name says nothing: gzip is told by its magic bytes.
        for (name, bytes) in [
            ("i", raw.clone()),
            ("i.gz", gz(&raw)),
            ("gz-in-disguise", gz(&raw)),
        ] {
            let p = write(&dir, name, &bytes);
            let s = read_images(&p).unwrap();
            assert_eq!(
                (s.n, s.shape.clone(), s.source),
                (2, vec![1, 3, 2], SourceType::U8)
            );
            assert_eq!(s.row(1)[0], 6.0);
        }
        // Two gzip members one after the other are one stream.
        let mut two = gz(&raw[..10]);
        two.extend(gz(&raw[10..]));
        assert_eq!(
            read_images(&write(&dir, "two.gz", &two))
                .unwrap()
                .data
                .len(),
            12
        );
        let labels = write(&dir, "l", &idx_bytes(0x08, &[2], &[7, 3]));
        let s = read_pair(&dir.path().join("i"), &labels).unwrap();
        assert_eq!(s.labels, Some(vec![7, 3]));
    }

    #[test]
    fn label_count_must_match_and_labels_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let images = write(&dir, "i", &idx_bytes(0x08, &[2, 1, 1], &[1, 2]));
        let three = write(&dir, "l3", &idx_bytes(0x08, &[3], &[7, 3, 1]));
        let e = read_pair(&images, &three).unwrap_err().to_string();
        assert!(
            e.contains("l3") && e.contains("expected 2 labels, got 3"),
            "{e}"
        );
        let neg = write(&dir, "neg", &idx_bytes(0x09, &[2], &[1, 0xff]));
        let e = read_labels(&neg).unwrap_err().to_string();
        assert!(e.contains("neg: label 1 is negative (-1)"), "{e}");
        let e = read_labels(&images).unwrap_err().to_string();
        assert!(
            e.contains("a labels file has 1 dimension, this one 3"),
            "{e}"
        );
        let floats = write(&dir, "fl", &idx_bytes(0x0D, &[1], &[0; 4]));
        let e = read_labels(&floats).unwrap_err().to_string();
        assert!(e.contains("labels must be integers"), "{e}");
    }

    #[test]
    fn hostile_headers() {
        let dir = tempfile::tempdir().unwrap();
        let e = images_err(&dir, "magic", &[1, 2, 8, 3, 0, 0, 0, 1]);
        assert_eq!(
            e,
            "magic: not an IDX file: magic starts with 01 02, expected 00 00 (at byte 0)"
        );
        let e = images_err(&dir, "type", &idx_bytes(0x07, &[1], &[0]));
        assert_eq!(e, "type: unknown IDX type code 0x07 (at byte 2)");
        let e = images_err(&dir, "zero-dims", &idx_bytes(0x08, &[], &[]));
        assert!(e.contains("declares zero dimensions"), "{e}");
        let e = images_err(&dir, "short", &[0, 0, 8]);
        assert_eq!(e, "short: file ends inside the IDX header (at byte 0)");
        let e = images_err(&dir, "short-dims", &[0, 0, 8, 3, 0, 0, 0, 1, 0]);
        assert!(
            e.contains("ends inside the IDX dimensions (at byte 8)"),
            "{e}"
        );
        // Truncated data, and data with bytes left over.
        let e = images_err(&dir, "trunc", &idx_bytes(0x08, &[2, 2, 2], &[1, 2, 3]));
        assert_eq!(
            e,
            "trunc: header [2, 2, 2] claims 8 bytes of data but the file has 3 (at byte 16)"
        );
        let e = images_err(&dir, "long", &idx_bytes(0x08, &[1, 1, 1], &[1, 2]));
        assert!(
            e.contains("claims 1 bytes of data but the file has 2"),
            "{e}"
        );
        // 4 GB claimed in a ~100-byte file, raw and gzipped: refused without allocating it.
        let huge = idx_bytes(0x08, &[1 << 16, 1 << 8, 1 << 8], &[0; 88]);
        assert_eq!(huge.len(), 104);
        let e = images_err(&dir, "huge", &huge);
        assert!(
            e.contains("claims 4294967296 bytes of data but the file has 88"),
            "{e}"
        );
        let e = images_err(&dir, "huge.gz", &gz(&huge));
        assert!(
            e.contains("claims 4294967296 bytes of data but the decompressed file has fewer (88)"),
            "{e}"
        );
        // Dimensions whose product overflows, and a product that fits but not in bytes.
        let e = images_err(
            &dir,
            "overflow",
            &idx_bytes(0x08, &[u32::MAX, u32::MAX, u32::MAX], &[]),
        );
        assert!(e.contains("overflow") && e.contains("address space"), "{e}");
        let e = images_err(
            &dir,
            "overflow-bytes",
            &idx_bytes(0x0E, &[1 << 31, 1 << 30], &[]),
        );
        assert!(
            e.contains("larger than the address space (at byte 12)"),
            "{e}"
        );
        // A gzip header followed by rubbish.
        let e = images_err(&dir, "badgz", &[0x1f, 0x8b, 0, 0, 1, 2, 3]);
        assert!(e.starts_with("badgz: "), "{e}");
        // A gzip stream cut short.
        let whole = gz(&idx_bytes(0x08, &[4, 4, 4], &[9; 64]));
        let e = images_err(&dir, "cut.gz", &whole[..whole.len() - 12]);
        assert!(e.starts_with("cut.gz: "), "{e}");
        // No examples, or empty examples.
        let e = images_err(&dir, "none", &idx_bytes(0x08, &[0, 28, 28], &[]));
        assert!(e.contains("holds no examples"), "{e}");
        let e = images_err(&dir, "empty", &idx_bytes(0x08, &[5, 0, 28], &[]));
        assert!(e.contains("each example is empty"), "{e}");
        let e = images_err(&dir, "five", &idx_bytes(0x08, &[1, 1, 1, 1, 1], &[0]));
        assert!(e.contains("2 to 4 dimensions, this one 5"), "{e}");
    }

    #[test]
    fn every_element_type_and_four_dimensions() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(u8, Vec<u8>, SourceType); 5] = [
            (0x09, vec![0xfe, 3], SourceType::Int),
            (
                0x0B,
                [-2i16, 3].iter().flat_map(|v| v.to_be_bytes()).collect(),
                SourceType::Int,
            ),
            (
                0x0C,
                [-2i32, 3].iter().flat_map(|v| v.to_be_bytes()).collect(),
                SourceType::Int,
            ),
            (
                0x0D,
                [-2f32, 3.0].iter().flat_map(|v| v.to_be_bytes()).collect(),
                SourceType::F32,
            ),
            (
                0x0E,
                [-2f64, 3.0].iter().flat_map(|v| v.to_be_bytes()).collect(),
                SourceType::F64,
            ),
        ];
        for (code, payload, source) in cases {
            let p = write(
                &dir,
                &format!("t{code}"),
                &idx_bytes(code, &[1, 1, 1, 2], &payload),
            );
            let s = read_images(&p).unwrap();
            assert_eq!((s.n, s.shape, s.source), (1, vec![1, 1, 2], source));
            assert_eq!(s.data, vec![-2.0, 3.0], "type code {code:#x}");
        }
    }

    #[test]
    fn non_finite_values_are_named_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let vals: Vec<u8> = [1.5f32, 0.0, f32::NAN]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let e = images_err(&dir, "nan", &idx_bytes(0x0D, &[1, 3], &vals));
        assert_eq!(e, "nan: value 2 is NaN; data must be finite");
        let vals: Vec<u8> = [f64::NEG_INFINITY]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let e = images_err(&dir, "inf", &idx_bytes(0x0E, &[1, 1], &vals));
        assert_eq!(e, "inf: value 0 is -inf; data must be finite");
        // An f64 too large for f32 becomes infinite, which is refused too.
        let vals: Vec<u8> = [1e300f64].iter().flat_map(|v| v.to_be_bytes()).collect();
        let e = images_err(&dir, "big", &idx_bytes(0x0E, &[1, 1], &vals));
        assert!(e.contains("value 0 is inf"), "{e}");
    }
}
