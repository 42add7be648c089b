//! CSV tables of numbers: header detection, and errors that say which line and column are wrong.
use std::path::Path;

use crate::error::{Error, Result};
use crate::samples::{Samples, SourceType};

/// How to read a CSV file.
#[derive(Clone, Debug)]
pub struct CsvOptions {
    /// Empty, `NaN` and `NA` cells become NaN instead of an error (for imputation).
    pub allow_missing: bool,
    /// A column holding labels (header name or 0-based index), pulled out of the features.
    pub label_column: Option<String>,
    /// Field delimiter.
    pub delimiter: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            allow_missing: false,
            label_column: None,
            delimiter: b',',
        }
    }
}

/// A CSV table read into samples, with its header when it had one.
#[derive(Clone, Debug)]
pub struct Table {
    /// The feature values (shape `[D]` per example).
    pub samples: Samples,
    /// Column names of the features, when the file had a header.
    pub columns: Option<Vec<String>>,
}

fn is_missing(cell: &str) -> bool {
    matches!(cell, "" | "nan" | "NaN" | "NAN" | "NA" | "na" | "null")
}

/// Reads `path` as a table of numbers.
pub fn read(path: &Path, opts: &CsvOptions) -> Result<Table> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(opts.delimiter)
        .from_reader(file);
    let mut columns: Option<Vec<String>> = None;
    let mut width: Option<usize> = None;
    let mut label_idx: Option<usize> = None;
    let mut data = Vec::new();
    let mut labels = Vec::new();
    let mut n = 0;
    let mut record = csv::ByteRecord::new();
    let mut first = true;
    loop {
        let more = reader.read_byte_record(&mut record).map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            Error::Csv {
                path: path.into(),
                line,
                column: None,
                reason: e.to_string(),
            }
        })?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| p.line() as usize);
        let mut cells = Vec::with_capacity(record.len());
        for (j, raw) in record.iter().enumerate() {
            let cell = std::str::from_utf8(raw).map_err(|_| Error::Csv {
                path: path.into(),
                line,
                column: Some(j + 1),
                reason: "not valid UTF-8 text".into(),
            })?;
            cells.push(cell.trim());
        }
        if cells.len() == 1 && cells[0].is_empty() {
            continue; // blank line
        }
        if first {
            first = false;
            // A header is a first row with a cell that is neither a number nor a missing marker.
            if cells
                .iter()
                .any(|c| !is_missing(c) && c.parse::<f64>().is_err())
            {
                columns = Some(cells.iter().map(|c| c.to_string()).collect());
                width = Some(cells.len());
                label_idx = resolve_label(path, opts, columns.as_deref(), cells.len())?;
                continue;
            }
        }
        match width {
            None => {
                width = Some(cells.len());
                label_idx = resolve_label(path, opts, None, cells.len())?;
            }
            Some(w) if w != cells.len() => {
                return Err(Error::Csv {
                    path: path.into(),
                    line,
                    column: None,
                    reason: format!(
                        "row has {} fields, expected {w} like the rows before",
                        cells.len()
                    ),
                })
            }
            Some(_) => {}
        }
        for (j, cell) in cells.iter().enumerate() {
            let bad = |reason: String| Error::Csv {
                path: path.into(),
                line,
                column: Some(j + 1),
                reason,
            };
            if Some(j) == label_idx {
                let l: u32 = cell
                    .parse()
                    .map_err(|_| bad(format!("label `{cell}` is not a non-negative integer")))?;
                labels.push(l);
                continue;
            }
            let v = if is_missing(cell) {
                if !opts.allow_missing {
                    return Err(bad(format!("missing value `{cell}`")));
                }
                f32::NAN
            } else {
                let v: f64 = cell
                    .parse()
                    .map_err(|_| bad(format!("`{cell}` is not a number")))?;
                if !v.is_finite() {
                    return Err(bad(format!("`{cell}` is not finite")));
                }
                v as f32
            };
            data.push(v);
        }
        n += 1;
    }
    let w = width.unwrap_or(0);
    let d = w - label_idx.map_or(0, |_| 1);
    if n == 0 || d == 0 {
        return Err(Error::Csv {
            path: path.into(),
            line: 1,
            column: None,
            reason: "no data rows".into(),
        });
    }
    if let (Some(cols), Some(li)) = (columns.as_mut(), label_idx) {
        cols.remove(li);
    }
    let samples = Samples {
        data,
        n,
        shape: vec![d],
        labels: label_idx.map(|_| labels),
        source: SourceType::Text,
    };
    Ok(Table { samples, columns })
}

fn resolve_label(
    path: &Path,
    opts: &CsvOptions,
    header: Option<&[String]>,
    width: usize,
) -> Result<Option<usize>> {
    let Some(spec) = &opts.label_column else {
        return Ok(None);
    };
    let idx = match (spec.parse::<usize>(), header) {
        (Ok(i), _) => Some(i),
        (Err(_), Some(h)) => h.iter().position(|c| c == spec),
        (Err(_), None) => None,
    };
    match idx {
        Some(i) if i < width => Ok(Some(i)),
        _ => Err(Error::Csv {
            path: path.into(),
            line: 1,
            column: None,
            reason: format!("no label column `{spec}`"),
        }),
    }
}

/// Writes `rows × cols` values with an optional header.
pub fn write(
    path: &Path,
    header: Option<&[String]>,
    rows: usize,
    cols: usize,
    data: &[f32],
) -> Result<()> {
    assert_eq!(
        rows * cols,
        data.len(),
        "csv::write: data does not fit rows × cols"
    );
    let mut w = csv::Writer::from_path(path).map_err(|e| Error::Csv {
        path: path.into(),
        line: 0,
        column: None,
        reason: e.to_string(),
    })?;
    let err = |e: csv::Error| Error::Csv {
        path: path.into(),
        line: 0,
        column: None,
        reason: e.to_string(),
    };
    if let Some(h) = header {
        w.write_record(h).map_err(err)?;
    }
    for r in data.chunks_exact(cols.max(1)) {
        w.write_record(r.iter().map(|v| v.to_string()))
            .map_err(err)?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    fn err(text: &[u8], opts: &CsvOptions) -> String {
        let (_d, p) = file(text);
        read(&p, opts).unwrap_err().to_string()
    }

    #[test]
    fn header_detection_both_ways() {
        let (_d, p) = file(b"a,b\n1,2\n3,4.5\n");
        let t = read(&p, &CsvOptions::default()).unwrap();
        assert_eq!(t.columns, Some(vec!["a".into(), "b".into()]));
        assert_eq!(
            (t.samples.n, t.samples.data.clone()),
            (2, vec![1.0, 2.0, 3.0, 4.5])
        );
        let (_d, p) = file(b"1,2\n3,4\n");
        let t = read(&p, &CsvOptions::default()).unwrap();
        assert_eq!((t.columns, t.samples.n), (None, 2));
    }

    #[test]
    fn ragged_text_nan_and_non_utf8_rows() {
        let o = CsvOptions::default();
        let e = err(b"1,2,3\n4,5\n", &o);
        assert!(
            e.contains("line 2") && e.contains("2 fields, expected 3"),
            "{e}"
        );
        let e = err(b"1,2\n3,abc\n", &o);
        assert!(
            e.contains("line 2, column 2") && e.contains("`abc` is not a number"),
            "{e}"
        );
        let e = err(b"1,2\n3,NaN\n", &o);
        assert!(
            e.contains("line 2, column 2") && e.contains("missing"),
            "{e}"
        );
        let e = err(b"1,2\n,4\n", &o);
        assert!(e.contains("line 2, column 1"), "{e}");
        let e = err(b"1,2\n3,inf\n", &o);
        assert!(e.contains("not finite"), "{e}");
        let e = err(b"1,2\n3,\xff\xfe\n", &o);
        assert!(e.contains("UTF-8") && e.contains("t.csv"), "{e}");
        let e = err(b"", &o);
        assert!(e.contains("no data rows"), "{e}");
    }

    #[test]
    fn missing_allowed_and_labels() {
        let opts = CsvOptions {
            allow_missing: true,
            label_column: Some("y".into()),
            ..CsvOptions::default()
        };
        let (_d, p) = file(b"x1,y,x2\n1,0,\n2,3,NaN\n");
        let t = read(&p, &opts).unwrap();
        assert_eq!(t.samples.labels, Some(vec![0, 3]));
        assert_eq!(t.samples.shape, vec![2]);
        assert!(t.samples.data[1].is_nan() && t.samples.data[3].is_nan());
        assert_eq!(t.columns, Some(vec!["x1".into(), "x2".into()]));
        let e = err(b"x1,y\n1,0.5\n", &opts);
        assert!(e.contains("label `0.5`"), "{e}");
    }

    #[test]
    fn write_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o.csv");
        write(
            &p,
            Some(&["a".into(), "b".into()]),
            2,
            2,
            &[1.0, -2.5, 3.25, 4.0],
        )
        .unwrap();
        let t = read(&p, &CsvOptions::default()).unwrap();
        assert_eq!(t.samples.data, vec![1.0, -2.5, 3.25, 4.0]);
    }
}
