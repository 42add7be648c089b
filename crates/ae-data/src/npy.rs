//! NumPy `.npy` arrays: u8, f32 and f64, 2-D (examples × features) or image-shaped 3-D / 4-D.
//!
//! `npyz` parses the header; before it reads any data we check the header's shape against the
//! file's size, so a lying header never makes us allocate what it claims.
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use npyz::{DType, Order, TypeChar};

use crate::error::{Error, Result};
use crate::samples::{Samples, SourceType};

/// Length of the preamble plus header: magic (6), version (2), header length (2 or 4), header.
fn header_len(path: &Path, pre: &[u8; 12]) -> Result<u64> {
    if &pre[..6] != b"\x93NUMPY" {
        return Err(Error::format(
            path,
            Some(0),
            "not an .npy file (no \\x93NUMPY magic)",
        ));
    }
    match pre[6] {
        1 => Ok(10 + u16::from_le_bytes([pre[8], pre[9]]) as u64),
        2 | 3 => Ok(12 + u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as u64),
        v => Err(Error::format(
            path,
            Some(6),
            format!("unsupported .npy version {v}"),
        )),
    }
}

/// Refuses a header whose `'shape'` product overflows.
fn check_shape(path: &Path, header: &str) -> Result<()> {
    let bad = || {
        Error::format(
            path,
            Some(10),
            "the header's shape multiplies past the address space",
        )
    };
    let Some(at) = header.find("'shape'") else {
        return Ok(());
    };
    let rest = &header[at..];
    let (Some(open), Some(close)) = (rest.find('('), rest.find(')')) else {
        return Ok(());
    };
    let mut product: usize = 1;
    for part in rest[open + 1..close.max(open + 1)]
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let d: usize = part.trim_end_matches('L').parse().map_err(|_| bad())?;
        product = product.checked_mul(d).ok_or_else(bad)?;
    }
    product.checked_mul(8).map(|_| ()).ok_or_else(bad)
}

/// Reads an array of examples.
pub fn read(path: &Path) -> Result<Samples> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut pre = [0u8; 12];
    let mut f = BufReader::new(file);
    f.read_exact(&mut pre)
        .map_err(|_| Error::format(path, Some(0), "file too short for an .npy header"))?;
    let hlen = header_len(path, &pre)?;
    // npyz multiplies the shape without checking for overflow, so check the shape's product first.
    let dict_start = if pre[6] == 1 { 10 } else { 12 };
    let mut dict = vec![0u8; (hlen as usize).saturating_sub(12).min(1 << 20)];
    f.read_exact(&mut dict)
        .map_err(|_| Error::format(path, Some(12), "file ends inside the .npy header"))?;
    let mut head = pre[dict_start..].to_vec();
    head.extend_from_slice(&dict);
    check_shape(path, &String::from_utf8_lossy(&head))?;
    let mut replay = pre.to_vec();
    replay.extend_from_slice(&dict);
    let reader = std::io::Cursor::new(replay).chain(f);
    let npy = npyz::NpyFile::new(reader)
        .map_err(|e| Error::format(path, Some(10), format!("bad .npy header: {e}")))?;
    if npy.order() == Order::Fortran {
        return Err(Error::format(
            path,
            Some(10),
            "Fortran-ordered arrays are not supported; save with np.ascontiguousarray",
        ));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let DType::Plain(ty) = npy.dtype() else {
        return Err(Error::format(
            path,
            Some(10),
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
                Some(10),
                format!("dtype {ty} is not supported; use u8, f32 or f64"),
            ))
        }
    };
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let bytes = count.and_then(|c| c.checked_mul(size));
    let available = file_len.saturating_sub(hlen);
    if bytes.map(|b| b as u64) != Some(available) {
        return Err(Error::format(
            path,
            Some(hlen),
            format!("header shape {shape:?} of {ty} needs {} bytes of data but the file has {available}", bytes.map_or("more than addressable".into(), |b| b.to_string())),
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
    let example = match shape.as_slice() {
        [_, d] => vec![*d],
        [_, h, w] => vec![1, *h, *w],
        [_, c, h, w] => vec![*c, *h, *w],
        _ => {
            return Err(Error::format(
                path,
                Some(10),
                format!(
                    "expected a 2-D (examples × features), 3-D or 4-D array, got shape {shape:?}"
                ),
            ))
        }
    };
    Ok(Samples {
        data,
        n: shape[0],
        shape: example,
        labels: None,
        source,
    })
}

/// Writes an f32 array of `shape` (little-endian, C order).
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    use npyz::WriterBuilder;
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "npy::write_f32: data does not fit shape"
    );
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

    fn npy_bytes(descr: &str, fortran: bool, shape: &str, payload: &[u8]) -> Vec<u8> {
        let mut h = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + h.len() + 1) % 64 != 0 {
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

    #[test]
    fn reads_u8_f32_f64() {
        let dir = tempfile::tempdir().unwrap();
        let s = read(&write(
            &dir,
            "u8",
            &npy_bytes("|u1", false, "(2, 3)", &[1, 2, 3, 4, 5, 6]),
        ))
        .unwrap();
        assert_eq!(
            (s.n, s.shape.clone(), s.source, s.data[5]),
            (2, vec![3], SourceType::U8, 6.0)
        );
        let f: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let s = read(&write(&dir, "f32", &npy_bytes("<f4", false, "(1, 2)", &f))).unwrap();
        assert_eq!(s.data, vec![1.5, -2.0]);
        let f: Vec<u8> = [0.25f64; 4].iter().flat_map(|v| v.to_le_bytes()).collect();
        let s = read(&write(
            &dir,
            "img",
            &npy_bytes("<f8", false, "(1, 2, 2)", &f),
        ))
        .unwrap();
        assert_eq!(
            (s.shape.clone(), s.source),
            (vec![1, 2, 2], SourceType::F64)
        );
    }

    #[test]
    fn hostile_files() {
        let dir = tempfile::tempdir().unwrap();
        let e = read(&write(
            &dir,
            "lie",
            &npy_bytes("<f4", false, "(100000, 10000)", &[0; 8]),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("lie") && e.contains("4000000000 bytes") && e.contains("has 8"),
            "{e}"
        );
        let e = read(&write(
            &dir,
            "fortran",
            &npy_bytes("<f4", true, "(1, 2)", &[0; 8]),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("Fortran"), "{e}");
        let e = read(&write(
            &dir,
            "i8",
            &npy_bytes("<i8", false, "(1, 1)", &[0; 8]),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("not supported"), "{e}");
        let nan: Vec<u8> = [1.0f32, f32::NAN]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let e = read(&write(
            &dir,
            "nan",
            &npy_bytes("<f4", false, "(1, 2)", &nan),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("value 1 is NaN"), "{e}");
        let e = read(&write(
            &dir,
            "1d",
            &npy_bytes("<f4", false, "(2,)", &[0; 8]),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("2-D"), "{e}");
        let e = read(&write(&dir, "junk", b"hello world, not numpy"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("magic"), "{e}");
        let e = read(&write(
            &dir,
            "overflow",
            &npy_bytes("<f4", false, "(18446744073709551615, 4)", &[]),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("overflow") || e.contains("addressable"), "{e}");
    }

    #[test]
    fn write_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o.npy");
        write_f32(&p, &[2, 2], &[1.0, 2.0, 3.0, -4.0]).unwrap();
        let s = read(&p).unwrap();
        assert_eq!((s.n, s.data.clone()), (2, vec![1.0, 2.0, 3.0, -4.0]));
    }
}
