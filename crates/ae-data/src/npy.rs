//! NumPy `.npy` arrays: u8, f32 and f64, 2-D (examples × features) or image-shaped 3-D / 4-D.
//!
//! `npyz` reads the data, but two of its steps are unsafe on hostile files: it allocates the
//! header length the preamble claims (up to 4 GiB) and it multiplies the shape without checking
//! for overflow. So we read the preamble and header ourselves first, check the header fits in the
//! file and the shape's product fits in 64 bits, and then hand the same bytes to `npyz`. Before
//! reading any data we also check the shape against the file's size, so a lying header never makes
//! us allocate what it claims.
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use npyz::{DType, Order, TypeChar};
use py_literal::Value;

use crate::error::{Error, Result};
use crate::samples::{Samples, SourceType};

/// The preamble and header of an `.npy` file, read and checked.
struct Header {
    /// The bytes read so far (preamble and header), to replay into `npyz`.
    bytes: Vec<u8>,
    /// Where the data starts.
    data_offset: u64,
}

/// Reads the preamble (magic, version, header length) and the header text, refusing a header
/// longer than the file or a shape whose product overflows.
fn read_header(path: &Path, f: &mut impl Read, file_len: u64) -> Result<Header> {
    let short = |at: u64| Error::format(path, Some(at), "file ends inside the .npy header");
    let mut bytes = vec![0u8; 10];
    f.read_exact(&mut bytes).map_err(|_| short(0))?;
    if &bytes[..6] != b"\x93NUMPY" {
        return Err(Error::format(
            path,
            Some(0),
            "not an .npy file (no \\x93NUMPY magic)",
        ));
    }
    let header_len = match bytes[6] {
        1 => u16::from_le_bytes([bytes[8], bytes[9]]) as u64,
        2 | 3 => {
            let mut more = [0u8; 2];
            f.read_exact(&mut more).map_err(|_| short(10))?;
            bytes.extend_from_slice(&more);
            u32::from_le_bytes([bytes[8], bytes[9], more[0], more[1]]) as u64
        }
        v => {
            return Err(Error::format(
                path,
                Some(6),
                format!("unsupported .npy version {v}"),
            ))
        }
    };
    let start = bytes.len() as u64;
    let data_offset = start + header_len;
    if data_offset > file_len {
        return Err(Error::format(
            path,
            Some(8),
            format!("the header claims {header_len} bytes but the file has {file_len} in all"),
        ));
    }
    // Bounded by the file's size, checked just above.
    let mut text = vec![0u8; header_len as usize];
    f.read_exact(&mut text).map_err(|_| short(start))?;
    check_shape(path, &text, start)?;
    bytes.extend_from_slice(&text);
    Ok(Header { bytes, data_offset })
}

/// Refuses a header whose `'shape'` is not a tuple of integers or whose product (zeros skipped,
/// as `npyz` also multiplies partial products for the strides) does not fit in 64 bits. Other
/// faults in the header are left for `npyz` to report.
fn check_shape(path: &Path, text: &[u8], offset: u64) -> Result<()> {
    let bad = |reason: &str| Error::format(path, Some(offset), reason.to_string());
    let text = std::str::from_utf8(text).map_err(|_| bad("the header is not text"))?;
    // The literal parser backtracks exponentially on deeply nested brackets (found by fuzzing: a
    // 168-byte file with twenty `{` hung it). A real header nests at most three deep (a
    // structured dtype's list of tuples inside the dict), so refuse anything deeper first.
    let mut depth = 0usize;
    for ch in text.chars() {
        match ch {
            '{' | '[' | '(' => {
                depth += 1;
                if depth > 4 {
                    return Err(bad("bad .npy header: brackets nested too deep"));
                }
            }
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let value: Value = text
        .trim_end()
        .parse()
        .map_err(|e| bad(&format!("bad .npy header: {e}")))?;
    let Value::Dict(entries) = value else {
        return Err(bad("bad .npy header: not a dictionary"));
    };
    let Some((_, shape)) = entries
        .iter()
        .find(|(k, _)| k.as_string().map(String::as_str) == Some("shape"))
    else {
        return Err(bad("bad .npy header: no 'shape'"));
    };
    let dims = match shape {
        Value::Tuple(d) | Value::List(d) => d,
        _ => return Err(bad("bad .npy header: 'shape' is not a tuple")),
    };
    let mut product: u64 = 1;
    for d in dims {
        let d = d
            .as_integer()
            .and_then(|i| u64::try_from(i).ok())
            .ok_or_else(|| bad("bad .npy header: 'shape' holds something other than sizes"))?;
        product = product
            .checked_mul(d.max(1))
            .ok_or_else(|| bad("the header's shape overflows: its product is past 64 bits"))?;
    }
    Ok(())
}

/// Reads an array of examples: `(N, D)` gives examples of shape `[D]`, `(N, H, W)` gives
/// `[1, H, W]` and `(N, C, H, W)` gives `[C, H, W]`. Values become f32 unchanged.
pub fn read(path: &Path) -> Result<Samples> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut f = BufReader::new(file);
    let header = read_header(path, &mut f, file_len)?;
    let hlen = header.data_offset;
    let npy = npyz::NpyFile::new(std::io::Cursor::new(header.bytes).chain(f))
        .map_err(|e| Error::format(path, Some(8), format!("bad .npy header: {e}")))?;
    if npy.order() == Order::Fortran {
        return Err(Error::format(
            path,
            Some(8),
            "Fortran-ordered arrays are not supported; save with np.ascontiguousarray",
        ));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let DType::Plain(ty) = npy.dtype() else {
        return Err(Error::format(
            path,
            Some(8),
            "structured dtypes are not supported; use u8, f32 or f64",
        ));
    };
    let (size, source) = match (ty.type_char(), ty.size_field()) {
        (TypeChar::Uint, 1) => (1, SourceType::U8),
        (TypeChar::Float, 4) => (4, SourceType::F32),
        (TypeChar::Float, 8) => (8, SourceType::F64),
        _ => {
            return Err(Error::format(
                path,
                Some(8),
                format!("dtype {ty} is not supported; use u8, f32 or f64"),
            ))
        }
    };
    let example = match shape.as_slice() {
        [_, d] => vec![*d],
        [_, h, w] => vec![1, *h, *w],
        [_, c, h, w] => vec![*c, *h, *w],
        _ => {
            return Err(Error::format(
                path,
                Some(8),
                format!(
                    "expected a 2-D (examples × features), 3-D or 4-D array, got shape {shape:?}"
                ),
            ))
        }
    };
    let bytes = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|c| c.checked_mul(size));
    let available = file_len - hlen;
    if bytes.map(|b| b as u64) != Some(available) {
        let needs = bytes.map_or("more than addressable".into(), |b| b.to_string());
        return Err(Error::format(
            path,
            Some(hlen),
            format!(
                "header shape {shape:?} of {ty} needs {needs} bytes of data but the file has {available}"
            ),
        ));
    }
    if shape[0] == 0 {
        return Err(Error::format(
            path,
            Some(8),
            "the array holds no examples (its first dimension is 0)",
        ));
    }
    if example.contains(&0) {
        return Err(Error::format(
            path,
            Some(8),
            format!("each example is empty: shape {shape:?}"),
        ));
    }
    let io = |e: std::io::Error| Error::format(path, Some(hlen), format!("cannot read data: {e}"));
    let data: Vec<f32> = match source {
        SourceType::U8 => npy
            .into_vec::<u8>()
            .map_err(io)?
            .into_iter()
            .map(f32::from)
            .collect(),
        SourceType::F32 => npy.into_vec::<f32>().map_err(io)?,
        _ => npy
            .into_vec::<f64>()
            .map_err(io)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
    };
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            path: path.into(),
            index: i,
            value: data[i] as f64,
        });
    }
    Ok(Samples {
        data,
        n: shape[0],
        shape: example,
        labels: None,
        source,
    })
}

/// Writes an f32 array of `shape` (little-endian, C order, format version 1).
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    use npyz::WriterBuilder;
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count != Some(data.len()) {
        return Err(Error::Shape {
            what: format!("values to write to {}", path.display()),
            expected: format!("shape {shape:?}"),
            got: format!("{} values", data.len()),
        });
    }
    let mut bytes = Vec::new();
    {
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut bytes)
            .begin_nd()
            .map_err(|e| Error::io(path, e))?;
        w.extend(data.iter().copied())
            .map_err(|e| Error::io(path, e))?;
        w.finish().map_err(|e| Error::io(path, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 `.npy` file as NumPy writes it (header padded to 64 bytes).
    fn npy_bytes(descr: &str, fortran: bool, shape: &str, payload: &[u8]) -> Vec<u8> {
        let fortran = if fortran { "True" } else { "False" };
        npy_dict(
            &format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}"),
            payload,
        )
    }

    /// A version-1 `.npy` file with header `dict`.
    fn npy_dict(dict: &str, payload: &[u8]) -> Vec<u8> {
        let mut h = dict.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(payload);
        b
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn err(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
        let e = read(&write(dir, name, bytes)).unwrap_err().to_string();
        // Drop the temporary folder so the messages can be compared whole.
        e.replace(&format!("{}/", dir.path().display()), "")
    }

    fn le32(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn reads_u8_f32_f64_and_big_endian() {
        let dir = tempfile::tempdir().unwrap();
        let s = read(&write(
            &dir,
            "u8",
            &npy_bytes("|u1", false, "(2, 3)", &[1, 2, 3, 4, 5, 6]),
        ))
        .unwrap();
        assert_eq!(
            (s.n, s.shape.clone(), s.source, s.row(1)),
            (2, vec![3], SourceType::U8, &[4.0, 5.0, 6.0][..])
        );
        let s = read(&write(
            &dir,
            "f32",
            &npy_bytes("<f4", false, "(1, 2)", &le32(&[1.5, -2.0])),
        ))
        .unwrap();
        assert_eq!((s.data, s.source), (vec![1.5, -2.0], SourceType::F32));
        let be: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let s = read(&write(&dir, "be", &npy_bytes(">f4", false, "(1, 2)", &be))).unwrap();
        assert_eq!(s.data, vec![1.5, -2.0]);
        let f: Vec<u8> = [0.25f64, 0.5, 0.75, 1.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let s = read(&write(
            &dir,
            "img",
            &npy_bytes("<f8", false, "(1, 2, 2)", &f),
        ))
        .unwrap();
        assert_eq!(
            (s.shape.clone(), s.source, s.data),
            (vec![1, 2, 2], SourceType::F64, vec![0.25, 0.5, 0.75, 1.0])
        );
        let s = read(&write(
            &dir,
            "nchw",
            &npy_bytes("|u1", false, "(1, 3, 1, 2)", &[0; 6]),
        ))
        .unwrap();
        assert_eq!(s.shape, vec![3, 1, 2]);
    }

    #[test]
    fn hostile_files() {
        let dir = tempfile::tempdir().unwrap();
        let e = err(
            &dir,
            "lie",
            &npy_bytes("<f4", false, "(100000, 10000)", &[0; 8]),
        );
        assert!(
            e.starts_with("lie: ")
                && e.contains("needs 4000000000 bytes of data but the file has 8"),
            "{e}"
        );
        let e = err(&dir, "fortran", &npy_bytes("<f4", true, "(1, 2)", &[0; 8]));
        assert!(
            e.contains("Fortran-ordered arrays are not supported"),
            "{e}"
        );
        let e = err(&dir, "i8", &npy_bytes("<i8", false, "(1, 1)", &[0; 8]));
        assert!(
            e.contains("dtype <i8 is not supported; use u8, f32 or f64"),
            "{e}"
        );
        let e = err(&dir, "1d", &npy_bytes("<f4", false, "(2,)", &[0; 8]));
        assert!(e.contains("expected a 2-D"), "{e}");
        let e = err(&dir, "junk", b"hello world, not numpy");
        assert!(e.starts_with("junk: not an .npy file"), "{e}");
        let e = err(&dir, "tiny", b"\x93NUM");
        assert!(e.contains("file ends inside the .npy header"), "{e}");
        let e = err(&dir, "version", b"\x93NUMPY\x07\x00\x00\x00");
        assert!(e.contains("unsupported .npy version 7"), "{e}");
        let e = err(
            &dir,
            "overflow",
            &npy_bytes("<f4", false, "(18446744073709551615, 4)", &[]),
        );
        assert!(e.contains("shape overflows"), "{e}");
        // A zero dimension does not hide an overflow of the other dimensions' product.
        let e = err(
            &dir,
            "zero-overflow",
            &npy_bytes("<f4", false, "(0, 4294967296, 4294967296)", &[]),
        );
        assert!(e.contains("shape overflows"), "{e}");
        let e = err(
            &dir,
            "no-shape",
            &npy_dict("{'descr': '<f4', 'fortran_order': False}", &[]),
        );
        assert!(e.contains("no 'shape'"), "{e}");
        let e = err(&dir, "not-python", &npy_dict("{'descr': <f4}", &[]));
        assert!(e.contains("bad .npy header"), "{e}");
        let e = err(&dir, "negative", &npy_bytes("<f4", false, "(-1, 4)", &[]));
        assert!(
            e.contains("'shape' holds something other than sizes"),
            "{e}"
        );
        let e = err(&dir, "none", &npy_bytes("<f4", false, "(0, 4)", &[]));
        assert!(e.contains("holds no examples"), "{e}");
        let structured = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1, 1), }";
        let e = err(&dir, "struct", &npy_dict(structured, &[0; 4]));
        assert!(e.contains("structured dtypes are not supported"), "{e}");
        // A version-2 header claiming 4 GiB in a small file: refused before anything is allocated.
        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        v2.extend_from_slice(&u32::MAX.to_le_bytes());
        v2.extend_from_slice(&[b' '; 100]);
        let e = err(&dir, "v2", &v2);
        assert!(
            e.contains("the header claims 4294967295 bytes but the file has 112 in all"),
            "{e}"
        );
    }

    #[test]
    fn non_finite_values_are_named_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let e = err(
            &dir,
            "nan",
            &npy_bytes("<f4", false, "(2, 2)", &le32(&[1.0, 2.0, 3.0, f32::NAN])),
        );
        assert_eq!(e, "nan: value 3 is NaN; data must be finite");
        let e = err(
            &dir,
            "inf",
            &npy_bytes("<f4", false, "(1, 2)", &le32(&[f32::INFINITY, 1.0])),
        );
        assert_eq!(e, "inf: value 0 is inf; data must be finite");
    }

    #[test]
    fn write_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o.npy");
        write_f32(&p, &[2, 2], &[1.0, 2.0, 3.0, -4.0]).unwrap();
        let s = read(&p).unwrap();
        assert_eq!(
            (s.n, s.shape.clone(), s.data.clone()),
            (2, vec![2], vec![1.0, 2.0, 3.0, -4.0])
        );
        write_f32(&p, &[1, 1, 2, 2], &[1.0, 2.0, 3.0, -4.0]).unwrap();
        assert_eq!(read(&p).unwrap().shape, vec![1, 2, 2]);
        let e = write_f32(&p, &[3, 2], &[1.0]).unwrap_err().to_string();
        assert!(e.contains("expected shape [3, 2], got 1 values"), "{e}");
    }

    /// Found by fuzzing: nested brackets made the header parser backtrack for minutes.
    #[test]
    fn deeply_nested_header_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': (1, {}2), }}",
            "{".repeat(25)
        );
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(&[0; 8]);
        let p = dir.path().join("nested.npy");
        std::fs::write(&p, b).unwrap();
        let started = std::time::Instant::now();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("nested too deep"), "{e}");
        assert!(started.elapsed().as_secs() < 1);
    }
}
