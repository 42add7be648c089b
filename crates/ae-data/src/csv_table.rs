//! CSV tables: header and delimiter detection, label and ignored columns, categorical columns
//! one-hot encoded, and errors that say which line and column are wrong.
use std::collections::{BTreeMap, BTreeSet};
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
    /// When not empty, the only columns (header names or 0-based indices) read as features, in
    /// the file's order; every other column but the label is left out.
    pub columns: Vec<String>,
    /// Categorical columns (header name or 0-based index) with their levels, in the order of
    /// their one-hot columns. A column holding text that is not listed gets its levels fitted:
    /// the distinct values, sorted.
    pub categories: BTreeMap<String, Vec<String>>,
    /// What a level missing from `categories` becomes.
    pub unknown_levels: UnknownLevels,
}

/// What a categorical cell whose value is not among the column's levels becomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownLevels {
    /// An error naming the file, line, column and value.
    #[default]
    Error,
    /// A row of zeros in the column's one-hot block.
    Zero,
}

impl std::str::FromStr for UnknownLevels {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "error" => Ok(UnknownLevels::Error),
            "zero" => Ok(UnknownLevels::Zero),
            _ => Err(format!("unknown choice `{s}`; expected error or zero")),
        }
    }
}

/// A text column with more distinct values than this is refused (an id or free text, not a
/// category).
pub const MAX_LEVELS: usize = 1000;

/// A text column of more values than this, all different, is taken for an id and refused.
const ID_LEVELS: usize = 20;

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
    /// The levels of each categorical column (one-hot), `None` for numeric ones.
    levels: Vec<Option<Vec<String>>>,
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
        if !opts.columns.is_empty() {
            let mut used = vec![false; width];
            for c in &opts.columns {
                used[find(c, "column")?] = true;
            }
            for (j, u) in used.into_iter().enumerate() {
                ignored[j] |= !u;
            }
        }
        if let Some(l) = label {
            ignored[l] = false;
        }
        let mut levels: Vec<Option<Vec<String>>> = vec![None; width];
        for (c, given) in &opts.categories {
            levels[find(c, "categorical column")?] = Some(given.clone());
        }
        Ok(Layout {
            label,
            ignored,
            levels,
        })
    }

    /// Whether column `j` is a feature.
    fn is_feature(&self, j: usize) -> bool {
        !self.ignored[j] && Some(j) != self.label
    }

    fn features(&self) -> usize {
        (0..self.ignored.len())
            .filter(|&j| self.is_feature(j))
            .map(|j| self.levels[j].as_ref().map_or(1, Vec::len))
            .sum()
    }
}

/// Column `j`'s header name, or its 0-based index when the file has no header.
fn column_name(names: Option<&Vec<String>>, j: usize) -> String {
    names.map_or_else(|| j.to_string(), |n| n[j].clone())
}

/// Calls `f(line, cells, header, record)` for every non-blank row of the file (cells trimmed); `header`
/// is true for a first row holding a cell that is neither a number nor a missing marker, and
/// `record` holds the row as read (untrimmed). Rows must all be as wide as the first.
fn each_row(
    path: &Path,
    opts: &CsvOptions,
    mut f: impl FnMut(usize, &[&str], bool, &csv::ByteRecord) -> Result<()>,
) -> Result<()> {
    let mut reader = open(path, opts)?;
    let mut record = csv::ByteRecord::new();
    let (mut first, mut width) = (true, None);
    loop {
        let more = reader
            .read_byte_record(&mut record)
            .map_err(|e| Error::Csv {
                path: path.into(),
                line: e.position().map_or(0, |p| p.line() as usize),
                column: None,
                reason: e.to_string(),
            })?;
        if !more {
            return Ok(());
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
        match width {
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
            _ => width = Some(cells.len()),
        }
        let header = first
            && cells
                .iter()
                .any(|c| !is_missing(c) && c.parse::<f64>().is_err());
        first = false;
        f(line, &cells, header, &record)?;
    }
}

/// What a column holds below the header: its distinct text values (cells that are neither numbers
/// nor missing markers), whether it also holds numbers, and where its first text cell is.
#[derive(Clone, Debug, Default)]
struct ColumnText {
    levels: BTreeSet<String>,
    /// Text cells in all.
    count: usize,
    numbers: bool,
    first: Option<(usize, String)>,
}

/// [`ColumnText`] of every column.
fn text_columns(path: &Path, opts: &CsvOptions) -> Result<Vec<ColumnText>> {
    let mut found: Vec<ColumnText> = Vec::new();
    let mut names: Option<Vec<String>> = None;
    each_row(path, opts, |line, cells, header, _| {
        if header {
            names = Some(cells.iter().map(|c| c.to_string()).collect());
            return Ok(());
        }
        found.resize(cells.len(), ColumnText::default());
        for (j, c) in cells.iter().enumerate() {
            let col = &mut found[j];
            if is_missing(c) {
                continue;
            }
            if c.parse::<f64>().is_ok() {
                col.numbers = true;
                continue;
            }
            if col.first.is_none() {
                col.first = Some((line, c.to_string()));
            }
            col.levels.insert(c.to_string());
            col.count += 1;
            if col.levels.len() > MAX_LEVELS {
                let name = column_name(names.as_ref(), j);
                return Err(Error::Csv {
                    path: path.into(),
                    line,
                    column: Some(j + 1),
                    reason: format!(
                        "column `{name}` holds more than {MAX_LEVELS} distinct text values: an id or free text, not a category? leave it out (ignore-columns {name})"
                    ),
                });
            }
        }
        Ok(())
    })?;
    Ok(found)
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
    /// Column names of the features (the label column taken out, `column=level` for each
    /// one-hot column), when the file had a header.
    pub columns: Option<Vec<String>>,
    /// The levels of each categorical column, by header name (or 0-based index without one).
    pub categories: BTreeMap<String, Vec<String>>,
}

/// Cells that stand for a missing value.
fn is_missing(cell: &str) -> bool {
    matches!(cell, "" | "nan" | "NaN" | "NAN" | "NA" | "na" | "null")
}

/// Reads `path` as a table.
///
/// The first row is a header when any of its cells is neither a number nor a missing marker.
/// Every row must have as many fields as the first; blank lines are skipped. A feature column that
/// holds text is categorical: one 0/1 column per level (named `column=level`), its levels given in
/// `opts.categories` or fitted (the distinct values, sorted) and returned in
/// [`Table::categories`]. Errors name the file, the line and the column.
pub fn read(path: &Path, opts: &CsvOptions) -> Result<Table> {
    let text = text_columns(path, opts)?;
    let mut columns: Option<Vec<String>> = None;
    let mut layout: Option<Layout> = None;
    let mut data = Vec::new();
    let mut labels = Vec::new();
    let mut n = 0;
    each_row(path, opts, |line, cells, header, _| {
        if header {
            columns = Some(cells.iter().map(|c| c.to_string()).collect());
            return Ok(());
        }
        let l = match &mut layout {
            Some(l) => l,
            None => {
                let mut l = Layout::resolve(path, opts, columns.as_deref(), cells.len())?;
                for (j, col) in text.iter().enumerate() {
                    let Some((at, cell)) = &col.first else {
                        continue;
                    };
                    if !l.is_feature(j) || l.levels[j].is_some() {
                        continue;
                    }
                    if col.numbers {
                        // Numbers and text in one column: a stray marker more likely than a category.
                        let name = column_name(columns.as_ref(), j);
                        return Err(Error::Csv {
                            path: path.into(),
                            line: *at,
                            column: Some(j + 1),
                            reason: format!(
                                "`{cell}` is not a number, and column `{name}` holds numbers too (a text column is read as a category; a mixed one is refused): fix the cell, or leave the column out (ignore-columns {name})"
                            ),
                        });
                    }
                    if col.levels.len() > ID_LEVELS && col.levels.len() == col.count {
                        let name = column_name(columns.as_ref(), j);
                        return Err(Error::Csv {
                            path: path.into(),
                            line: *at,
                            column: Some(j + 1),
                            reason: format!(
                                "`{cell}` is not a number, and every value of column `{name}` differs ({} of them): an id or free text, not a category; leave it out (ignore-columns {name})",
                                col.count
                            ),
                        });
                    }
                    l.levels[j] = Some(col.levels.iter().cloned().collect());
                }
                layout.insert(l)
            }
        };
        for (j, cell) in cells.iter().enumerate() {
            let bad = |reason: String| Error::Csv {
                path: path.into(),
                line,
                column: Some(j + 1),
                reason,
            };
            if Some(j) == l.label {
                let v: u32 = cell
                    .parse()
                    .map_err(|_| bad(format!("label `{cell}` is not a non-negative integer")))?;
                labels.push(v);
                continue;
            }
            if l.ignored[j] {
                continue;
            }
            if is_missing(cell) {
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
                let width = l.levels[j].as_ref().map_or(1, Vec::len);
                data.extend(std::iter::repeat_n(f32::NAN, width));
                continue;
            }
            if let Some(levels) = &l.levels[j] {
                let at = levels.iter().position(|v| v == cell);
                if at.is_none() && opts.unknown_levels == UnknownLevels::Error {
                    let name = column_name(columns.as_ref(), j);
                    return Err(bad(format!(
                        "`{cell}` is not a level of the categorical column `{name}` ({} levels: {}); unknown-levels zero reads it as a row of zeros",
                        levels.len(),
                        levels.iter().take(8).map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
                    )));
                }
                data.extend((0..levels.len()).map(|k| if Some(k) == at { 1.0 } else { 0.0 }));
                continue;
            }
            let v: f64 = cell
                .parse()
                .map_err(|_| bad(format!("`{cell}` is not a number")))?;
            if !v.is_finite() {
                return Err(bad(format!("`{cell}` is not finite")));
            }
            if !(v as f32).is_finite() {
                return Err(bad(format!("`{cell}` is too large for 32-bit floats")));
            }
            data.push(v as f32);
        }
        n += 1;
        Ok(())
    })?;
    let layout = match layout {
        Some(l) => l,
        None => Layout::resolve(
            path,
            opts,
            columns.as_deref(),
            columns.as_ref().map_or(0, Vec::len),
        )?,
    };
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
    let name = |j: usize| column_name(columns.as_ref(), j);
    let mut categories = BTreeMap::new();
    let mut names = Vec::with_capacity(d);
    for j in (0..layout.ignored.len()).filter(|&j| layout.is_feature(j)) {
        match &layout.levels[j] {
            Some(levels) => {
                names.extend(levels.iter().map(|v| format!("{}={v}", name(j))));
                categories.insert(name(j), levels.clone());
            }
            None => names.push(name(j)),
        }
    }
    let samples = Samples {
        data,
        n,
        shape: vec![d],
        labels: layout.label.map(|_| labels),
        source: SourceType::Text,
    };
    Ok(Table {
        samples,
        columns: columns.map(|_| names),
        categories,
    })
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
    if let Some(c) = table.categories.keys().next() {
        return Err(Error::Csv {
            path: src.into(),
            line: 1,
            column: None,
            reason: format!("filling tables with categorical columns (`{c}`) is not supported yet; leave them out (ignore-columns {c})"),
        });
    }
    let d = table.samples.features();
    if fill.len() != table.samples.n * d {
        return Err(Error::Shape {
            what: format!("values to fill {} with", src.display()),
            expected: format!("{} × {d}", table.samples.n),
            got: format!("{} values", fill.len()),
        });
    }
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
    let (mut row, mut filled) = (0usize, 0usize);
    let mut layout: Option<Layout> = None;
    // `read` above has checked every row (width, UTF-8), so the cells here are valid text.
    each_row(src, opts, |_, cells, header, record| {
        if header {
            let names: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
            layout = Some(Layout::resolve(src, opts, Some(&names), cells.len())?);
            return w.write_byte_record(record).map_err(err);
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
                let as_read = std::str::from_utf8(&record[j])
                    .unwrap_or_default()
                    .to_string();
                if Some(j) == l.label || l.ignored[j] {
                    return as_read;
                }
                let v = fill[row * d + k];
                k += 1;
                if is_missing(c) {
                    filled += 1;
                    v.to_string()
                } else {
                    as_read
                }
            })
            .collect();
        row += 1;
        w.write_record(&out).map_err(err)
    })?;
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
        // Read with commas, `1;2` is one text cell, so a header, and `3;4` a text column: one
        // category of one level.
        let t = read(&p, &commas).unwrap();
        assert_eq!(t.columns.unwrap(), vec!["1;2=3;4"]);
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
    fn text_columns_become_one_hot_categories_with_fitted_or_given_levels() {
        let (_d, p) = file(b"size,city,colour\n1.5,Oslo,red\n2,Lyon,\n3,Oslo,blue\n");
        let o = CsvOptions {
            allow_missing: true,
            ..CsvOptions::default()
        };
        let t = read(&p, &o).unwrap();
        assert_eq!(
            t.columns.as_deref().unwrap(),
            [
                "size",
                "city=Lyon",
                "city=Oslo",
                "colour=blue",
                "colour=red"
            ]
        );
        let nan = f32::NAN;
        let want = [
            1.5, 0., 1., 0., 1., 2., 1., 0., nan, nan, 3., 0., 1., 1., 0.,
        ];
        for (g, w) in t.samples.data.iter().zip(want) {
            assert!(
                g == &w || (g.is_nan() && w.is_nan()),
                "{:?}",
                t.samples.data
            );
        }
        assert_eq!(t.categories["city"], ["Lyon", "Oslo"]);
        // Levels recorded by a run are kept, in their order; a value outside them is an error
        // naming it, or zeros.
        let mut given = o.clone();
        given
            .categories
            .insert("city".into(), vec!["Oslo".into(), "Kyiv".into()]);
        given
            .categories
            .insert("colour".into(), vec!["red".into(), "blue".into()]);
        let e = read(&p, &given).unwrap_err().to_string();
        assert!(
            e.contains("line 3, column 2: `Lyon` is not a level of the categorical column `city` (2 levels: `Oslo`, `Kyiv`)"),
            "{e}"
        );
        given.unknown_levels = UnknownLevels::Zero;
        let t = read(&p, &given).unwrap();
        assert_eq!(&t.samples.data[..5], [1.5, 1., 0., 1., 0.]);
        assert_eq!(&t.samples.data[5..8], [2., 0., 0.]);
        // A numeric-looking column named in the levels is categorical too.
        let (_d2, q) = file(b"zip,x\n75001,1\n69001,2\n");
        let mut zip = CsvOptions::default();
        zip.categories
            .insert("zip".into(), vec!["69001".into(), "75001".into()]);
        assert_eq!(
            read(&q, &zip).unwrap().samples.data,
            [0., 1., 1., 1., 0., 2.]
        );
    }

    #[test]
    fn a_text_column_with_too_many_levels_is_refused_as_an_id() {
        let mut text = String::from("id,x\n");
        for i in 0..=MAX_LEVELS {
            text += &format!("u{i},1\n");
        }
        let (_d, p) = file(text.as_bytes());
        let e = read(&p, &CsvOptions::default()).unwrap_err().to_string();
        assert!(
            e.contains("more than 1000 distinct text values") && e.contains("ignore-columns id"),
            "{e}"
        );
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
            e.ends_with("t.csv: line 2, column 2: `abc` is not a number, and column `1` holds numbers too (a text column is read as a category; a mixed one is refused): fix the cell, or leave the column out (ignore-columns 1)"),
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
        // Only some columns, by name or index, in the file's order; the label read too.
        let (_d, p) = file(b"a,b,c,y\n1,2,3,0\n4,5,6,1\n");
        let only = CsvOptions {
            columns: vec!["c".into(), "0".into()],
            label_column: Some("y".into()),
            ..CsvOptions::default()
        };
        let t = read(&p, &only).unwrap();
        assert_eq!(t.samples.data, vec![1.0, 3.0, 4.0, 6.0]);
        assert_eq!(t.columns, Some(vec!["a".into(), "c".into()]));
        assert_eq!(t.samples.labels, Some(vec![0, 1]));
        let unknown = CsvOptions {
            columns: vec!["q".into()],
            ..CsvOptions::default()
        };
        let e = read(&p, &unknown).unwrap_err().to_string();
        assert!(e.contains("no column `q`"), "{e}");
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
