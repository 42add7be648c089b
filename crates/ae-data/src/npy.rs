//! NumPy `.npy` arrays, 2-D (examples × features) or image-shaped 3-D / 4-D, in C or Fortran
//! order, of bool, integer (1 to 8 bytes, signed or not) or float (2, 4 or 8 bytes) values in
//! either byte order; all become f32 in row-major order.
//!
//! `npyz` parses the header, but two of its steps are unsafe on hostile files: it allocates the
//! header length the preamble claims (up to 4 GiB) and it multiplies the shape without checking
//! for overflow. So we read the preamble and header ourselves first, check the header fits in the
//! file and the shape's product fits in 64 bits, and then hand the header's bytes to `npyz`. The
//! data we read and convert ourselves, in chunks, after checking the shape against the file's
//! size, so a lying header never makes us allocate what it claims.
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use npyz::{DType, Endianness, Order, TypeChar};
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

/// Refuses a header whose `'descr'` is a type string `npyz` cannot parse (naming it), or whose
/// `'shape'` is not a tuple of integers or has a product (zeros skipped, as `npyz` also multiplies
/// partial products for the strides) that does not fit in 64 bits. Other faults in the header are
/// left for `npyz` to report.
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
    // `npyz` refuses a type string it cannot parse (an object array's `|O`, say) with a message
    // that does not name it; name it here, with what we read.
    let descr = entries
        .iter()
        .find(|(k, _)| k.as_string().map(String::as_str) == Some("descr"));
    if let Some((_, Value::String(descr))) = descr {
        if descr.parse::<npyz::TypeStr>().is_err() {
            return Err(Error::format(
                path,
                Some(offset),
                format!("dtype {} is not supported; {SUPPORTED}", shown(descr)),
            ));
        }
    }
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

/// What the error messages say is supported.
const SUPPORTED: &str = concat!(
    "supported: bool (b1), integers (i1, i2, i4, i8, u1, u2, u4, u8) ",
    "and floats (f2, f4, f8), little- or big-endian"
);

/// `text` for an error message, cut short when a hostile header makes it long.
fn shown(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// How one stored value becomes an f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    Bool,
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F16,
    F32,
    F64,
}

/// The element kind, its size in bytes and what to mark the samples as, for a dtype we read.
///
/// The source type decides the default scaling (`ScalingKind::default_for`): `U8` means 8-bit
/// images, divided by 255; every other type is scaled min-max per feature. Only `|u1` keeps `U8`,
/// as before. Other integers and booleans are marked `Int`, as the IDX reader marks its i8, i16 and
/// i32: integer columns of a table (counts, codes, flags) have no fixed range the way 8-bit pixels
/// do, so min-max is the right default, and `Int` (rather than `F32`) still says what the file
/// held. f2 and f4 are marked `F32`, f8 `F64`.
fn elem_of(ty: &npyz::TypeStr) -> Option<(Elem, usize, SourceType)> {
    use SourceType::{Int, F32, F64, U8};
    Some(match (ty.type_char(), ty.size_field()) {
        (TypeChar::Bool, 1) => (Elem::Bool, 1, Int),
        (TypeChar::Uint, 1) => (Elem::U8, 1, U8),
        (TypeChar::Int, 1) => (Elem::I8, 1, Int),
        (TypeChar::Int, 2) => (Elem::I16, 2, Int),
        (TypeChar::Uint, 2) => (Elem::U16, 2, Int),
        (TypeChar::Int, 4) => (Elem::I32, 4, Int),
        (TypeChar::Uint, 4) => (Elem::U32, 4, Int),
        (TypeChar::Int, 8) => (Elem::I64, 8, Int),
        (TypeChar::Uint, 8) => (Elem::U64, 8, Int),
        (TypeChar::Float, 2) => (Elem::F16, 2, F32),
        (TypeChar::Float, 4) => (Elem::F32, 4, F32),
        (TypeChar::Float, 8) => (Elem::F64, 8, F64),
        _ => return None,
    })
}

/// An IEEE 754 half-precision value (the bits of NumPy's `float16`) as f32, exactly: every f16
/// value, subnormals, infinities and NaN included, is an f32 value.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    if exp == 0 {
        // Zero and subnormals: man · 2^-24, exact in f32.
        let v = man as f32 * f32::from_bits(0x3380_0000);
        return if sign == 0 { v } else { -v };
    }
    let bits = if exp == 0x1f {
        // Infinity and NaN (the payload kept, shifted into place).
        sign | 0x7f80_0000 | (man << 13)
    } else {
        // Normal numbers: rebias the exponent from 15 to 127.
        sign | ((exp + 127 - 15) << 23) | (man << 13)
    };
    f32::from_bits(bits)
}

/// Converts the values in `bytes` (whole elements of `elem`, big-endian when `big`) to f32,
/// appending them to `out`.
///
/// Integers past f32's 24-bit significand (|v| > 2^24 = 16 777 216, so some i32, u32, i64 and u64
/// values) cannot all be held exactly: `as f32` rounds them to the nearest f32 (ties to even), a
/// relative error of at most 2^-24. f8 values past f32's range become infinite, and are then
/// refused as non-finite like any other. Booleans are 0 or 1 (any non-zero byte counts as true).
pub(crate) fn convert(elem: Elem, big: bool, bytes: &[u8], out: &mut Vec<f32>) {
    macro_rules! each {
        ($t:ty, $n:literal, $f:expr) => {
            out.extend(bytes.chunks_exact($n).map(|c| {
                let mut a = [0u8; $n];
                a.copy_from_slice(c);
                let v = if big {
                    <$t>::from_be_bytes(a)
                } else {
                    <$t>::from_le_bytes(a)
                };
                ($f)(v)
            }))
        };
    }
    match elem {
        Elem::Bool => out.extend(bytes.iter().map(|&b| f32::from(u8::from(b != 0)))),
        Elem::U8 => out.extend(bytes.iter().map(|&b| f32::from(b))),
        Elem::I8 => out.extend(bytes.iter().map(|&b| f32::from(b as i8))),
        Elem::I16 => each!(i16, 2, f32::from),
        Elem::U16 => each!(u16, 2, f32::from),
        Elem::I32 => each!(i32, 4, |v: i32| v as f32),
        Elem::U32 => each!(u32, 4, |v: u32| v as f32),
        Elem::I64 => each!(i64, 8, |v: i64| v as f32),
        Elem::U64 => each!(u64, 8, |v: u64| v as f32),
        Elem::F16 => each!(u16, 2, f16_to_f32),
        Elem::F32 => each!(f32, 4, |v: f32| v),
        Elem::F64 => each!(f64, 8, |v: f64| v as f32),
    }
}

/// Walks an array stored in Fortran order (the first axis varies fastest) and gives, for each
/// stored value in turn, its index in row-major (C) order: the transpose, for any number of axes.
struct FortranWalk {
    shape: Vec<usize>,
    /// Row-major strides: how far the C index moves for one step along each axis.
    strides: Vec<usize>,
    /// The current value's index along each axis.
    at: Vec<usize>,
    /// The current value's row-major index.
    pos: usize,
}

impl FortranWalk {
    /// For `shape`, whose product is known to fit in `usize`.
    fn new(shape: &[usize]) -> FortranWalk {
        let mut strides = vec![1; shape.len()];
        for k in (0..shape.len().saturating_sub(1)).rev() {
            strides[k] = strides[k + 1] * shape[k + 1];
        }
        FortranWalk {
            shape: shape.to_vec(),
            strides,
            at: vec![0; shape.len()],
            pos: 0,
        }
    }

    /// The row-major index of the next stored value.
    fn next_index(&mut self) -> usize {
        let here = self.pos;
        for ax in 0..self.shape.len() {
            self.at[ax] += 1;
            self.pos += self.strides[ax];
            if self.at[ax] < self.shape[ax] {
                break;
            }
            // This axis wraps round; carry into the next (slower) one.
            self.at[ax] = 0;
            self.pos -= self.shape[ax] * self.strides[ax];
        }
        here
    }
}

/// Where an `.npy` file's values are and how to read them, from its checked header.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// Where the data starts.
    pub data_offset: u64,
    /// How one stored value becomes an f32.
    pub elem: Elem,
    /// Big-endian values.
    pub big: bool,
    /// Stored in Fortran order (the first axis fastest).
    pub fortran: bool,
    /// The array's shape.
    pub shape: Vec<usize>,
    /// The shape of one example.
    pub example: Vec<usize>,
    /// Values in all.
    pub count: usize,
    /// Bytes per value.
    pub size: usize,
    /// What the file holds.
    pub source: SourceType,
    /// The dtype as NumPy writes it (`|u1`, `<f4`).
    pub dtype: String,
}

/// Opens an `.npy` file and checks its header against its size (see [`read`]); the reader is
/// left at the first value.
pub(crate) fn open(path: &Path) -> Result<(Layout, BufReader<File>)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut f = BufReader::new(file);
    let header = read_header(path, &mut f, file_len)?;
    let hlen = header.data_offset;
    // Only the header's bytes go to `npyz`; we read the data from `f` ourselves.
    let npy = npyz::NpyHeader::from_reader(std::io::Cursor::new(header.bytes))
        .map_err(|e| Error::format(path, Some(8), format!("bad .npy header: {e}")))?;
    let fortran = npy.order() == Order::Fortran;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let ty = match npy.dtype() {
        DType::Plain(ty) => ty,
        other => {
            return Err(Error::format(
                path,
                Some(8),
                format!(
                    "structured dtype {} is not supported; {SUPPORTED}",
                    shown(&other.descr())
                ),
            ))
        }
    };
    let big = ty.endianness() == Endianness::Big;
    let Some((elem, size, source)) = elem_of(&ty) else {
        return Err(Error::format(
            path,
            Some(8),
            format!("dtype {ty} is not supported; {SUPPORTED}"),
        ));
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
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let bytes = count.and_then(|c| c.checked_mul(size));
    let available = file_len - hlen;
    let (Some(count), Some(bytes)) = (count, bytes) else {
        return Err(Error::format(
            path,
            Some(hlen),
            format!(
                "header shape {shape:?} of {ty} needs more than addressable bytes of data but the file has {available}"
            ),
        ));
    };
    if bytes as u64 != available {
        return Err(Error::format(
            path,
            Some(hlen),
            format!(
                "header shape {shape:?} of {ty} needs {bytes} bytes of data but the file has {available}"
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
    Ok((
        Layout {
            data_offset: hlen,
            elem,
            big,
            fortran,
            shape,
            example,
            count,
            size,
            source,
            dtype: ty.to_string(),
        },
        f,
    ))
}

/// Reads an array of examples: `(N, D)` gives examples of shape `[D]`, `(N, H, W)` gives
/// `[1, H, W]` and `(N, C, H, W)` gives `[C, H, W]`.
///
/// Values become f32; integers past 2^24 (= 16 777 216) in magnitude are rounded to the nearest
/// f32. Fortran-ordered arrays (as `np.asfortranarray` gives, and pandas' `DataFrame.to_numpy()`
/// for a frame of one dtype: `np.save(f, df.to_numpy())` writes `'fortran_order': True`) are
/// transposed to row-major order as they are read. The dtypes read are bool, signed and unsigned
/// integers of 1 to 8 bytes and floats of 2, 4 and 8 bytes, in either byte order.
pub fn read(path: &Path) -> Result<Samples> {
    let (layout, mut f) = open(path)?;
    let Layout {
        data_offset: hlen,
        elem,
        big,
        fortran,
        shape,
        example,
        count,
        size,
        source,
        ..
    } = layout;
    // From here on every allocation is bounded by the file's size, checked just above: `count`
    // values of at least one byte each are in the file.
    let io = |e: std::io::Error| Error::format(path, Some(hlen), format!("cannot read data: {e}"));
    const CHUNK: usize = 1 << 16;
    let mut raw = vec![0u8; CHUNK.min(count) * size];
    let mut values = Vec::with_capacity(CHUNK.min(count));
    let mut walk = fortran.then(|| FortranWalk::new(&shape));
    let mut data = if walk.is_some() {
        vec![0.0f32; count]
    } else {
        Vec::with_capacity(count)
    };
    let mut left = count;
    while left > 0 {
        let k = left.min(CHUNK);
        let chunk = &mut raw[..k * size];
        f.read_exact(chunk).map_err(io)?;
        values.clear();
        convert(elem, big, chunk, &mut values);
        match walk.as_mut() {
            Some(walk) => {
                for &v in &values {
                    data[walk.next_index()] = v;
                }
            }
            None => data.extend_from_slice(&values),
        }
        left -= k;
    }
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
        // A Fortran-ordered header lies the same way, and is refused the same way.
        let e = err(
            &dir,
            "fortran-lie",
            &npy_bytes("<f8", true, "(100000, 10000)", &[0; 8]),
        );
        assert!(
            e.starts_with("fortran-lie: ")
                && e.contains("needs 8000000000 bytes of data but the file has 8"),
            "{e}"
        );
        let e = err(&dir, "c16", &npy_bytes("<c16", false, "(1, 1)", &[0; 16]));
        assert!(
            e.starts_with("c16: dtype <c16 is not supported; supported: bool (b1), integers"),
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
        assert!(
            e.contains("structured dtype [('a', '<f4'), ] is not supported; supported: bool"),
            "{e}"
        );
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

    fn le64(v: &[f64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn ok(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> Samples {
        read(&write(dir, name, bytes)).unwrap()
    }

    #[test]
    fn fortran_order_2d_is_transposed_to_row_major() {
        let dir = tempfile::tempdir().unwrap();
        // np.asfortranarray([[1., 2, 3], [4, 5, 6]]), bytes as NumPy 2.4 saves them: the columns
        // one after another.
        let s = ok(
            &dir,
            "f",
            &npy_bytes(
                "<f8",
                true,
                "(2, 3)",
                &le64(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]),
            ),
        );
        assert_eq!(
            (s.n, s.shape.clone(), s.source),
            (2, vec![3], SourceType::F64)
        );
        assert_eq!(s.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(s.row(1), &[4.0, 5.0, 6.0]);
        // A single column or a single row is stored the same in either order.
        let s = ok(
            &dir,
            "col",
            &npy_bytes("<f8", true, "(3, 1)", &le64(&[1.0, 2.0, 3.0])),
        );
        assert_eq!((s.n, s.data), (3, vec![1.0, 2.0, 3.0]));
    }

    /// The stored bytes of `np.asfortranarray(np.arange(n).reshape(shape))`: the first axis
    /// varies fastest, so value `i` (row-major) lands at the column-major position of its index.
    fn fortran_arange(shape: &[usize]) -> Vec<f64> {
        let n: usize = shape.iter().product();
        let mut stored = vec![0.0; n];
        for c_index in 0..n {
            // Row-major multi-index of `c_index`, then its column-major offset.
            let mut rest = c_index;
            let mut at = vec![0; shape.len()];
            for k in (0..shape.len()).rev() {
                at[k] = rest % shape[k];
                rest /= shape[k];
            }
            let mut f_index = 0;
            for k in (0..shape.len()).rev() {
                f_index = f_index * shape[k] + at[k];
            }
            stored[f_index] = c_index as f64;
        }
        stored
    }

    #[test]
    fn fortran_order_3d_and_4d_reverse_every_axis() {
        let dir = tempfile::tempdir().unwrap();
        let stored = fortran_arange(&[2, 3, 4]);
        // The first values as NumPy writes them for this array.
        assert_eq!(&stored[..8], &[0.0, 12.0, 4.0, 16.0, 8.0, 20.0, 1.0, 13.0]);
        let s = ok(
            &dir,
            "3d",
            &npy_bytes("<f8", true, "(2, 3, 4)", &le64(&stored)),
        );
        assert_eq!((s.n, s.shape.clone()), (2, vec![1, 3, 4]));
        assert_eq!(s.data, (0..24).map(|v| v as f32).collect::<Vec<_>>());
        // 4-D, as i2, so the element size differs from the index arithmetic's.
        let stored: Vec<u8> = fortran_arange(&[2, 3, 2, 5])
            .iter()
            .flat_map(|&v| (v as i16).to_le_bytes())
            .collect();
        let s = ok(&dir, "4d", &npy_bytes("<i2", true, "(2, 3, 2, 5)", &stored));
        assert_eq!((s.n, s.shape.clone()), (2, vec![3, 2, 5]));
        assert_eq!(s.data, (0..60).map(|v| v as f32).collect::<Vec<_>>());
        // More values than one read chunk, so the walk carries on across chunks.
        let stored = fortran_arange(&[300, 250]);
        let s = ok(
            &dir,
            "big",
            &npy_bytes("<f8", true, "(300, 250)", &le64(&stored)),
        );
        assert!(s.data.iter().enumerate().all(|(i, &v)| v == i as f32));
    }

    #[test]
    fn integer_and_bool_dtypes_read_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let i64s = [-(1i64 << 24), -1, 0, 16_777_216];
        let b: Vec<u8> = i64s.iter().flat_map(|v| v.to_le_bytes()).collect();
        let s = ok(&dir, "i8", &npy_bytes("<i8", false, "(2, 2)", &b));
        assert_eq!(
            (s.data, s.source),
            (
                vec![-16_777_216.0, -1.0, 0.0, 16_777_216.0],
                SourceType::Int
            )
        );
        let b: Vec<u8> = [i32::MIN, -7, 7, 1 << 20]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let s = ok(&dir, "i4", &npy_bytes("<i4", false, "(1, 4)", &b));
        assert_eq!(s.data, vec![-2_147_483_648.0, -7.0, 7.0, 1_048_576.0]);
        // int8 as NumPy writes it (`|i1`): -1 and 2.
        let s = ok(
            &dir,
            "i1",
            &npy_bytes("|i1", false, "(1, 4)", &[0xff, 2, 0x80, 0x7f]),
        );
        assert_eq!(
            (s.data, s.source),
            (vec![-1.0, 2.0, -128.0, 127.0], SourceType::Int)
        );
        let b: Vec<u8> = [0u16, 1, 65535]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let s = ok(&dir, "u2", &npy_bytes("<u2", false, "(3, 1)", &b));
        assert_eq!((s.n, s.data), (3, vec![0.0, 1.0, 65535.0]));
        let b: Vec<u8> = [u32::MAX, 5].iter().flat_map(|v| v.to_le_bytes()).collect();
        let s = ok(&dir, "u4", &npy_bytes("<u4", false, "(1, 2)", &b));
        assert_eq!(s.data, vec![4_294_967_296.0, 5.0]);
        let s = ok(
            &dir,
            "u8",
            &npy_bytes("<u8", false, "(1, 1)", &u64::MAX.to_le_bytes()),
        );
        assert_eq!(s.data, vec![18_446_744_073_709_551_616.0]);
        // `|u1` stays 8-bit data (scaled by 255 by default).
        let s = ok(&dir, "u1", &npy_bytes("|u1", false, "(1, 2)", &[0, 255]));
        assert_eq!((s.data, s.source), (vec![0.0, 255.0], SourceType::U8));
        // np.array([[True, False], [False, True]]).
        let s = ok(
            &dir,
            "b1",
            &npy_bytes("|b1", false, "(2, 2)", &[1, 0, 0, 1]),
        );
        assert_eq!(
            (s.data, s.source),
            (vec![1.0, 0.0, 0.0, 1.0], SourceType::Int)
        );
        // A bool array in Fortran order too.
        let s = ok(
            &dir,
            "b1f",
            &npy_bytes("|b1", true, "(2, 3)", &[1, 0, 0, 1, 1, 0]),
        );
        assert_eq!(s.data, vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn integers_past_2_pow_24_round_to_nearest() {
        let dir = tempfile::tempdir().unwrap();
        // 2^24 + 1 is not an f32; it lies halfway and rounds to even (2^24). 2^24 + 3 rounds up.
        let b: Vec<u8> = [(1i64 << 24) + 1, (1 << 24) + 3, i64::MAX]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let s = ok(&dir, "big", &npy_bytes("<i8", false, "(1, 3)", &b));
        assert_eq!(
            s.data,
            vec![16_777_216.0, 16_777_220.0, 9_223_372_036_854_775_808.0]
        );
    }

    #[test]
    fn big_endian_and_half_precision() {
        let dir = tempfile::tempdir().unwrap();
        // np.array([[1, -2]], dtype='>i4'), as NumPy writes it.
        let s = ok(
            &dir,
            "bei4",
            &npy_bytes(
                ">i4",
                false,
                "(1, 2)",
                &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe],
            ),
        );
        assert_eq!(s.data, vec![1.0, -2.0]);
        let b: Vec<u8> = [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let s = ok(&dir, "bef8", &npy_bytes(">f8", true, "(2, 3)", &b));
        assert_eq!(s.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let b: Vec<u8> = [-300i16, 300]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let s = ok(&dir, "bei2", &npy_bytes(">i2", false, "(1, 2)", &b));
        assert_eq!(s.data, vec![-300.0, 300.0]);
        let b: Vec<u8> = [u64::from(u32::MAX) + 1]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let s = ok(&dir, "beu8", &npy_bytes(">u8", false, "(1, 1)", &b));
        assert_eq!(s.data, vec![4_294_967_296.0]);
        // np.array([[1.5, -0.0001, 65504, 6e-8]], dtype=np.float16), bytes as NumPy writes them.
        let f2 = [0x00, 0x3e, 0x8e, 0x86, 0xff, 0x7b, 0x01, 0x00];
        let s = ok(&dir, "f2", &npy_bytes("<f2", false, "(1, 4)", &f2));
        assert_eq!(s.source, SourceType::F32);
        assert_eq!(
            s.data,
            vec![1.5, -1678.0 * 2f32.powi(-24), 65504.0, 2f32.powi(-24)]
        );
        let be: Vec<u8> = f2.chunks(2).flat_map(|c| [c[1], c[0]]).collect();
        assert_eq!(
            ok(&dir, "bef2", &npy_bytes(">f2", false, "(1, 4)", &be)).data,
            s.data
        );
        // Half-precision infinity is refused like any other non-finite value.
        let e = err(
            &dir,
            "f2inf",
            &npy_bytes("<f2", false, "(1, 2)", &[0, 0, 0, 0xfc]),
        );
        assert_eq!(e, "f2inf: value 1 is -inf; data must be finite");
    }

    #[test]
    fn half_precision_conversion_is_exact() {
        assert_eq!(f16_to_f32(0x0000).to_bits(), 0.0f32.to_bits());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0400), 6.103_515_6e-5); // smallest normal, 2^-14
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24)); // largest subnormal
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn unsupported_dtypes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        // np.array([[1, 'a']], dtype=object): a pickle follows the header.
        let e = err(
            &dir,
            "obj",
            &npy_bytes("|O", false, "(1, 2)", b"\x80\x04\x95 pickle"),
        );
        assert!(
            e.starts_with("obj: dtype |O is not supported; supported: bool (b1), integers"),
            "{e}"
        );
        let e = err(&dir, "str", &npy_bytes("<U2", false, "(1, 1)", &[0; 8]));
        assert!(e.contains("dtype <U2 is not supported; supported:"), "{e}");
        let e = err(&dir, "c8", &npy_bytes("<c8", true, "(1, 1)", &[0; 8]));
        assert!(e.contains("dtype <c8 is not supported"), "{e}");
        let e = err(&dir, "dt", &npy_bytes("<M8[ns]", false, "(1, 1)", &[0; 8]));
        assert!(e.contains("dtype <M8[ns] is not supported"), "{e}");
        let e = err(&dir, "f16", &npy_bytes("<f16", false, "(1, 1)", &[0; 16]));
        assert!(e.contains("dtype <f16 is not supported"), "{e}");
        // A hostile descr is cut short in the message.
        let long = format!("<{}", "x".repeat(500));
        let e = err(&dir, "long", &npy_bytes(&long, false, "(1, 1)", &[0; 4]));
        assert!(e.contains("…") && e.len() < 300, "{e}");
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
