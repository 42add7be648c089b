//! CSV tables of numbers: header detection, and errors that say which line and column are wrong.
use std::path::Path;

use crate::error::{Error, Result};
use crate::samples::{Samples, SourceType};

/// How to read a CSV file.
#[derive(Clone, Debug, Default)]
pub struct CsvOptions {
    /// Empty, `NaN` and `NA` cells become NaN instead of an error (for imputation).
    pub allow_missing: bool,
    /// A column holding labels (header name or 0-based index), pulled out of the features.
    pub label_column: Option<String>,
    /// Field delimiter; `None` detects it from the first line (`,` `;` tab `|`).
    pub delimiter: Option<u8>,
    /// Columns (header names or 0-based indices) left out of the features.
    pub ignore_columns: Vec<String>,
}


/// Delimiters that detection chooses among, in order of preference on a tie.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// The delimiter of the file's first non-blank line: the candidate that occurs most often outside
/// quotes (a comma when none does).
pub fn detect_delimiter(path: &Path) -> Result<u8> {
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut line = Vec::new();
    let mut reader = std::io::BufReader::new(file.take(1 << 20));
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(path, e))?
            == 0
        {
            return Ok(b',');
        }
        if line.iter().any(|b| !b.is_ascii_whitespace()) {
            break;
        }
    }
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for &b in &line {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(i) = DELIMITERS.iter().position(|&d| d == b) {
                counts[i] += 1;
            }
        }
    }
    let best = (0..DELIMITERS.len())
        .rev()
        .max_by_key(|&i| counts[i])
        .expect("candidates");
    Ok(if counts[best] == 0 {
        b','
    } else {
        DELIMITERS[best]
    })
}

/// How the columns of a file map to labels, features and ignored columns.
struct Layout {
    label: Option<usize>,
    ignored: Vec<bool>,
}

impl Layout {
    fn resolve(
        path: &Path,
        opts: &CsvOptions,
        header: Option<&[String]>,
        width: usize,
    ) -> Result<Layout> {
        let find = |spec: &str, what: &str| -> Result<usize> {
            let idx = match (spec.parse::<usize>(), header) {
                (Ok(i), _) => Some(i),
                (Err(_), Some(h)) => h.iter().position(|c| c == spec),
                (Err(_), None) => None,
            };
            match idx {
                Some(i) if i < width => Ok(i),
                _ => Err(Error::Csv {
                    path: path.into(),
                    line: 1,
                    column: None,
                    reason: match header {
                        Some(h) => format!(
                            "no {what} `{spec}`: the columns are {}",
                            h.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
                        ),
                        None => format!(
                            "no {what} `{spec}`: the file has no header, so give a 0-based index below {width}"
                        ),
                    },
                }),
            }
        };
        let label = opts
            .label_column
            .as_deref()
            .map(|l| find(l, "label column"))
            .transpose()?;
        let mut ignored = vec![false; width];
        for c in &opts.ignore_columns {
            ignored[find(c, "column to ignore")?] = true;
        }
        if let Some(l) = label {
            ignored[l] = false;
        }
        Ok(Layout { label, ignored })
    }

    fn features(&self) -> usize {
        (0..self.ignored.len())
            .filter(|&j| !self.ignored[j] && Some(j) != self.label)
            .count()
    }
}

/// A CSV reader over `path` with `opts`' delimiter (or the detected one).
fn open(path: &Path, opts: &CsvOptions) -> Result<csv::Reader<std::fs::File>> {
    let delimiter = match opts.delimiter {
        Some(d) => d,
        None => detect_delimiter(path)?,
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(file))
}

/// A CSV table read into samples (shape `[D]` per row, source `Text`), with its header when it had
/// one.
#[derive(Clone, Debug)]
pub struct Table {
    /// The feature values (shape `[D]` per example).
    pub samples: Samples,
    /// Column names of the features (the label column taken out), when the file had a header.
    pub columns: Option<Vec<String>>,
}

/// Cells that stand for a missing value.
fn is_missing(cell: &str) -> bool {
    matches!(cell, "" | "nan" | "NaN" | "NAN" | "NA" | "na" | "null")
}

/// Reads `path` as a table of numbers.
///
/// The first row is a header when any of its cells is neither a number nor a missing marker.
/// Every row must have as many fields as the first; blank lines are skipped. Errors name the file,
/// the line and the column.
pub fn read(path: &Path, opts: &CsvOptions) -> Result<Table> {
    let mut reader = open(path, opts)?;
    let mut columns: Option<Vec<String>> = None;
    let mut width: Option<usize> = None;
    let mut layout = Layout {
        label: None,
        ignored: Vec::new(),
    };
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
                layout = Layout::resolve(path, opts, columns.as_deref(), cells.len())?;
                continue;
            }
        }
        match width {
            None => {
                width = Some(cells.len());
                layout = Layout::resolve(path, opts, None, cells.len())?;
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
            if Some(j) == layout.label {
                let l: u32 = cell
                    .parse()
                    .map_err(|_| bad(format!("label `{cell}` is not a non-negative integer")))?;
                labels.push(l);
                continue;
            }
            if layout.ignored[j] {
                continue;
            }
            let v = if is_missing(cell) {
                if !opts.allow_missing {
                    let what = if cell.is_empty() {
                        "empty cell".to_string()
                    } else {
                        format!("`{cell}`")
                    };
                    return Err(bad(format!(
                        "{what} is a missing value; train on incomplete rows with missing allow (ae train --missing allow), or fill them with ae impute"
                    )));
                }
                f32::NAN
            } else {
                let v: f64 = cell.parse().map_err(|_| {
                    let name = columns
                        .as_ref()
                        .map_or_else(|| j.to_string(), |c| c[j].clone());
                    bad(format!(
                        "`{cell}` is not a number: a text column? leave it out (ignore-columns {name})"
                    ))
                })?;
                if !v.is_finite() {
                    return Err(bad(format!("`{cell}` is not finite")));
                }
                if !(v as f32).is_finite() {
                    return Err(bad(format!("`{cell}` is too large for 32-bit floats")));
                }
                v as f32
            };
            data.push(v);
        }
        n += 1;
    }
    let d = layout.features();
    if n == 0 || d == 0 {
        let reason = if n == 0 {
            "no data rows"
        } else {
            "no feature columns besides the label and the ignored ones"
        };
        return Err(Error::Csv {
            path: path.into(),
            line: 1,
            column: None,
            reason: reason.into(),
        });
    }
    let columns = columns.map(|c| {
        c.into_iter()
            .enumerate()
            .filter(|&(j, _)| !layout.ignored[j] && Some(j) != layout.label)
            .map(|(_, name)| name)
            .collect()
    });
    let samples = Samples {
        data,
        n,
        shape: vec![d],
        labels: layout.label.map(|_| labels),
        source: SourceType::Text,
    };
    Ok(Table { samples, columns })
}

/// Copies the table at `src` to `dst` with its missing cells filled: every other cell, the header,
/// the label and the ignored columns are written back exactly as read (same text, same
/// delimiter). `fill` holds one value per feature cell (`[rows, features]`, row-major, as
/// [`read`] gave them); only those of missing cells are used. Returns the cells filled.
pub fn write_filled(src: &Path, opts: &CsvOptions, dst: &Path, fill: &[f32]) -> Result<usize> {
    let delimiter = match opts.delimiter {
        Some(d) => d,
        None => detect_delimiter(src)?,
    };
    let table = read(
        src,
        &CsvOptions {
            allow_missing: true,
            ..opts.clone()
        },
    )?;
    let d = table.samples.features();
    if fill.len() != table.samples.n * d {
        return Err(Error::Shape {
            what: format!("values to fill {} with", src.display()),
            expected: format!("{} × {d}", table.samples.n),
            got: format!("{} values", fill.len()),
        });
    }
    let mut reader = open(src, opts)?;
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_path(dst)
        .map_err(|e| Error::Csv {
            path: dst.into(),
            line: 0,
            column: None,
            reason: e.to_string(),
        })?;
    let err = |e: csv::Error| Error::Csv {
        path: dst.into(),
        line: 0,
        column: None,
        reason: e.to_string(),
    };
    let mut record = csv::ByteRecord::new();
    let (mut row, mut filled, mut first) = (0usize, 0usize, true);
    let mut layout: Option<Layout> = None;
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| Error::Csv {
            path: src.into(),
            line: e.position().map_or(0, |p| p.line() as usize),
            column: None,
            reason: e.to_string(),
        })?
    {
        let cells: Vec<&str> = record
            .iter()
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        if cells.len() == 1 && cells[0].trim().is_empty() {
            continue;
        }
        let header = first
            && cells
                .iter()
                .any(|c| !is_missing(c.trim()) && c.trim().parse::<f64>().is_err());
        first = false;
        if header {
            let names: Vec<String> = cells.iter().map(|c| c.trim().to_string()).collect();
            layout = Some(Layout::resolve(src, opts, Some(&names), cells.len())?);
            w.write_byte_record(&record).map_err(err)?;
            continue;
        }
        let l = match &layout {
            Some(l) => l,
            None => layout.insert(Layout::resolve(src, opts, None, cells.len())?),
        };
        let mut k = 0;
        let out: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(j, c)| {
                if Some(j) == l.label || l.ignored[j] {
                    return c.to_string();
                }
                let v = fill[row * d + k];
                k += 1;
                if is_missing(c.trim()) {
                    filled += 1;
                    v.to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        w.write_record(&out).map_err(err)?;
        row += 1;
    }
    w.flush().map_err(|e| Error::io(dst, e))?;
    Ok(filled)
}

/// Writes `rows × cols` values (row-major) with an optional header of `cols` names.
pub fn write(
    path: &Path,
    header: Option<&[String]>,
    rows: usize,
    cols: usize,
    data: &[f32],
) -> Result<()> {
    if rows.checked_mul(cols) != Some(data.len()) {
        return Err(Error::Shape {
            what: format!("values to write to {}", path.display()),
            expected: format!("{rows} × {cols}"),
            got: format!("{} values", data.len()),
        });
    }
    if let Some(h) = header.filter(|h| h.len() != cols) {
        return Err(Error::Shape {
            what: format!("header to write to {}", path.display()),
            expected: format!("{cols} names"),
            got: h.len().to_string(),
        });
    }
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
            (t.samples.n, t.samples.shape.clone(), t.samples.data.clone()),
            (2, vec![2], vec![1.0, 2.0, 3.0, 4.5])
        );
        assert_eq!(
            (t.samples.source, t.samples.labels),
            (SourceType::Text, None)
        );
        let (_d, p) = file(b"1,2\n3,4\n\n");
        let t = read(&p, &CsvOptions::default()).unwrap();
        assert_eq!((t.columns, t.samples.n), (None, 2));
        // A byte-order mark is not part of the first name; numbers may be quoted or spaced.
        let (_d, p) = file(b"\xef\xbb\xbfx,y\n\"1e3\", -2\n");
        let t = read(&p, &CsvOptions::default()).unwrap();
        assert_eq!(t.columns, Some(vec!["x".into(), "y".into()]));
        assert_eq!(t.samples.data, vec![1000.0, -2.0]);
    }

    #[test]
    fn other_delimiter() {
        let (_d, p) = file(b"1;2\n3;4\n");
        let opts = CsvOptions {
            delimiter: Some(b';'),
            ..CsvOptions::default()
        };
        assert_eq!(
            read(&p, &opts).unwrap().samples.data,
            vec![1.0, 2.0, 3.0, 4.0]
        );
        // Unset, the delimiter is detected from the first line.
        assert_eq!(
            read(&p, &CsvOptions::default()).unwrap().samples.data,
            vec![1.0, 2.0, 3.0, 4.0]
        );
        let commas = CsvOptions {
            delimiter: Some(b','),
            ..CsvOptions::default()
        };
        let e = read(&p, &commas).unwrap_err().to_string();
        // Read with commas, `1;2` is one text cell, so a header, and `3;4` is the first bad cell.
        assert!(e.contains("line 2, column 1: `3;4` is not a number"), "{e}");
        // Tabs and pipes; a comma inside quotes does not count.
        for (text, want) in [
            (&b"a\tb\n1\t2\n"[..], b'\t'),
            (b"a|b|c\n1|2|3\n", b'|'),
            (b"\"x,y\";z\n1;2\n", b';'),
            (b"5\n6\n", b','),
        ] {
            let (_d, p) = file(text);
            assert_eq!(detect_delimiter(&p).unwrap(), want);
        }
    }

    #[test]
    fn each_bad_cell_gets_its_line_and_column() {
        let o = CsvOptions::default();
        let e = err(b"1,2,3\n4,5\n", &o);
        assert!(
            e.ends_with("t.csv: line 2: row has 2 fields, expected 3 like the rows before"),
            "{e}"
        );
        let e = err(b"1,2\n3,abc\n", &o);
        assert!(
            e.ends_with("t.csv: line 2, column 2: `abc` is not a number: a text column? leave it out (ignore-columns 1)"),
            "{e}"
        );
        let e = err(b"x,y\n1,2\n3,NaN\n", &o);
        assert!(
            e.contains("t.csv: line 3, column 2: `NaN` is a missing value"),
            "{e}"
        );
        let e = err(b"1,2\n,4\n", &o);
        assert!(
            e.contains("line 2, column 1: empty cell is a missing value"),
            "{e}"
        );
        let e = err(b"1,2\n3,inf\n", &o);
        assert!(e.ends_with("line 2, column 2: `inf` is not finite"), "{e}");
        let e = err(b"1,2\n3,1e39\n", &o);
        assert!(e.contains("`1e39` is too large for 32-bit floats"), "{e}");
        let e = err(b"1,2\n3,\xff\xfe\n", &o);
        assert!(
            e.ends_with("t.csv: line 2, column 2: not valid UTF-8 text"),
            "{e}"
        );
        let e = err(b"", &o);
        assert!(e.ends_with("t.csv: line 1: no data rows"), "{e}");
        let e = err(b"a,b\n", &o);
        assert!(e.ends_with("no data rows"), "{e}");
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
        assert_eq!(t.samples.data[..1], [1.0]);
        assert!(t.samples.data[1].is_nan() && t.samples.data[3].is_nan());
        assert_eq!(t.columns, Some(vec!["x1".into(), "x2".into()]));
        let e = err(b"x1,y\n1,0.5\n", &opts);
        assert!(
            e.contains("line 2, column 2: label `0.5` is not a non-negative integer"),
            "{e}"
        );
        let e = err(b"x1,y\n1,-1\n", &opts);
        assert!(e.contains("label `-1`"), "{e}");
        let e = err(b"x1,z\n1,1\n", &opts);
        assert!(e.contains("no label column `y`"), "{e}");
        let e = err(b"y\n1\n", &opts);
        assert!(e.contains("no feature columns besides the label"), "{e}");
        // By 0-based index, without a header.
        let (_d, p) = file(b"4,1,2\n5,3,4\n");
        let by_index = CsvOptions {
            label_column: Some("0".into()),
            ..CsvOptions::default()
        };
        let t = read(&p, &by_index).unwrap();
        assert_eq!(t.samples.labels, Some(vec![4, 5]));
        assert_eq!(t.samples.data, vec![1.0, 2.0, 3.0, 4.0]);
        let far = CsvOptions {
            label_column: Some("3".into()),
            ..CsvOptions::default()
        };
        assert!(read(&p, &far)
            .unwrap_err()
            .to_string()
            .contains("no label column `3`"));
    }

    #[test]
    fn write_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o.csv");
        let values = [1.0, -2.5, 3.25, 4.0, 1e-7, 123456.79];
        let names = ["a".to_string(), "b".into()];
        write(&p, Some(&names), 3, 2, &values).unwrap();
        let t = read(&p, &CsvOptions::default()).unwrap();
        assert_eq!(t.samples.data, values);
        assert_eq!(t.columns.as_deref(), Some(&names[..]));
        write(&p, None, 2, 3, &values).unwrap();
        let t = read(&p, &CsvOptions::default()).unwrap();
        assert_eq!((t.samples.n, t.columns), (2, None));
        let e = write(&p, None, 2, 2, &values).unwrap_err().to_string();
        assert!(e.contains("expected 2 × 2, got 6 values"), "{e}");
        let e = write(&p, Some(&names), 2, 3, &values)
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected 3 names, got 2"), "{e}");
    }
}
