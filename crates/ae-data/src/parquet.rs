//! Parquet tables (`parquet:PATH`, one file or a folder of `.parquet` files read in name order),
//! through the arrow-rs crates. Numeric and boolean columns are the features, as f32; a null (or
//! a NaN) is a missing cell; `label_column` holds the labels, `ignore_columns` leaves columns
//! out and `columns` keeps only those named, as for CSV; only the columns used are decoded.
//! Each row group is a part of a [`crate::stream::RowSource`], so a table is read one row group
//! (or a slice of one) at a time, whole into memory or streamed.
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelector,
};
use parquet::arrow::ProjectionMask;

use crate::csv_table::CsvOptions;
use crate::error::{Error, Result};
use crate::samples::{Samples, SourceType};

/// Rows per decoded batch: small enough that arrow's column buffers are reused from the heap
/// rather than fresh pages each batch (1 Mi rows was 15% slower on a 1 GB table), large enough
/// that per-batch work does not show.
const BATCH_ROWS: usize = 1 << 16;

/// Which of a table's columns are read, by their index among the schema's top-level fields.
#[derive(Debug)]
pub(crate) struct Columns {
    /// The feature columns, in schema order.
    pub features: Vec<usize>,
    /// Their names.
    pub names: Vec<String>,
    /// The label column.
    pub label: Option<usize>,
}

/// One row group of one file.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub path: PathBuf,
    pub index: usize,
    pub rows: usize,
    meta: ArrowReaderMetadata,
    columns: Arc<Columns>,
}

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::format(path, None, format!("cannot read the Parquet table: {e}"))
}

/// Whether a column of this type is read as numbers.
fn numeric(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Boolean)
}

/// The files behind `path`: itself, or the `.parquet` files of a folder in name order.
fn files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(Error::format(
            path,
            None,
            "the folder holds no .parquet files",
        ));
    }
    Ok(names)
}

/// Opens the table at `path` (a file or a folder) and lists its row groups, with the columns
/// `opts` picks: the columns it lists (`columns`), else every numeric or boolean column but the
/// label and the ignored ones. A text column among them is an error naming it; so is a file whose
/// columns differ from the first file's.
pub(crate) fn open(path: &Path, opts: &CsvOptions) -> Result<(Vec<Group>, SourceType)> {
    let mut groups = Vec::new();
    let mut first: Option<(Vec<String>, Arc<Columns>, PathBuf)> = None;
    let mut all_u8 = true;
    for file in files(path)? {
        let f = File::open(&file).map_err(|e| Error::io(&file, e))?;
        let meta =
            ArrowReaderMetadata::load(&f, ArrowReaderOptions::new()).map_err(|e| err(&file, e))?;
        let schema = meta.schema().clone();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let columns = match &first {
            Some((seen, columns, at)) => {
                if *seen != names {
                    return Err(Error::format(
                        &file,
                        None,
                        format!(
                            "its columns {names:?} differ from those of {} ({seen:?}); every file of a table must have the same",
                            at.display()
                        ),
                    ));
                }
                columns.clone()
            }
            None => {
                let columns = Arc::new(pick(&file, &schema, opts)?);
                first = Some((names, columns.clone(), file.clone()));
                columns
            }
        };
        all_u8 &= columns
            .features
            .iter()
            .all(|&i| schema.field(i).data_type() == &DataType::UInt8);
        for (index, g) in meta.metadata().row_groups().iter().enumerate() {
            let rows = usize::try_from(g.num_rows()).unwrap_or(0);
            if rows > 0 {
                groups.push(Group {
                    path: file.clone(),
                    index,
                    rows,
                    meta: meta.clone(),
                    columns: columns.clone(),
                });
            }
        }
    }
    if groups.is_empty() {
        return Err(Error::format(path, None, "the table holds no rows"));
    }
    let source = if all_u8 {
        SourceType::U8
    } else {
        SourceType::F32
    };
    Ok((groups, source))
}

/// The feature and label columns of `schema` as `opts` asks.
fn pick(path: &Path, schema: &arrow_schema::Schema, opts: &CsvOptions) -> Result<Columns> {
    let find = |name: &str| -> Result<usize> {
        if let Some(i) = schema.fields().iter().position(|f| f.name() == name) {
            return Ok(i);
        }
        match name.parse::<usize>() {
            Ok(i) if i < schema.fields().len() => Ok(i),
            _ => Err(Error::format(
                path,
                None,
                format!(
                    "no column `{name}`; the columns are {:?}",
                    schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>()
                ),
            )),
        }
    };
    let label = opts.label_column.as_deref().map(find).transpose()?;
    let ignored = opts
        .ignore_columns
        .iter()
        .map(|c| find(c))
        .collect::<Result<Vec<_>>>()?;
    let used = opts
        .columns
        .iter()
        .map(|c| find(c))
        .collect::<Result<Vec<_>>>()?;
    let mut features = Vec::new();
    let mut names = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        let unused = !used.is_empty() && !used.contains(&i);
        if Some(i) == label || ignored.contains(&i) || unused {
            continue;
        }
        if !numeric(f.data_type()) {
            let way_out = if used.is_empty() {
                format!("leave it out with --ignore-columns {}", f.name())
            } else {
                "leave it out of --columns".to_string()
            };
            return Err(Error::format(
                path,
                None,
                format!(
                    "column `{}` holds {} values, not numbers; {way_out}",
                    f.name(),
                    f.data_type(),
                ),
            ));
        }
        features.push(i);
        names.push(f.name().clone());
    }
    if features.is_empty() {
        return Err(Error::format(path, None, "no numeric columns to read"));
    }
    if let Some(l) = label {
        let t = schema.field(l).data_type();
        if !t.is_integer() {
            return Err(Error::format(
                path,
                None,
                format!(
                    "label column `{}` holds {t} values; labels are non-negative integers",
                    schema.field(l).name()
                ),
            ));
        }
    }
    Ok(Columns {
        features,
        names,
        label,
    })
}

/// Writes rows `rows` of the columns `cols` into `dst` row after row, a null as NaN. In tiles of
/// rows, so that the tile being written stays in cache while every column passes over it.
fn transpose(cols: &[&arrow_array::Float32Array], rows: &[usize], dst: &mut [f32], d: usize) {
    const TILE: usize = 256;
    for (t, chunk) in rows.chunks(TILE).enumerate() {
        let tile = &mut dst[t * TILE * d..(t * TILE + chunk.len()) * d];
        for (j, c) in cols.iter().enumerate() {
            let values = c.values();
            if c.null_count() == 0 {
                for (k, &r) in chunk.iter().enumerate() {
                    tile[k * d + j] = values[r];
                }
            } else {
                for (k, &r) in chunk.iter().enumerate() {
                    tile[k * d + j] = if c.is_null(r) { f32::NAN } else { values[r] };
                }
            }
        }
    }
}

/// Writes every row of the columns `cols` into `dst` row after row, a null as NaN, and returns
/// the place in `dst` of the first infinite value if there is one. Eight columns at a time over
/// a tile of rows: each row then gets 32 contiguous bytes per pass, and the tile stays in cache
/// until it is checked. Written out rather than left to a crate: arrow's own kernels give columns,
/// and this transpose is most of the cost of reading a table into rows.
fn transpose_all(cols: &[&arrow_array::Float32Array], dst: &mut [f32], d: usize) -> Option<usize> {
    const TILE: usize = 128;
    const WIDE: usize = 8;
    let n = dst.len() / d;
    for t0 in (0..n).step_by(TILE) {
        let m = TILE.min(n - t0);
        let tile = &mut dst[t0 * d..(t0 + m) * d];
        let mut j = 0;
        while j + WIDE <= d {
            let c: [&[f32]; WIDE] = std::array::from_fn(|i| &cols[j + i].values()[t0..t0 + m]);
            for k in 0..m {
                let row = &mut tile[k * d + j..k * d + j + WIDE];
                for i in 0..WIDE {
                    row[i] = c[i][k];
                }
            }
            j += WIDE;
        }
        for (j, c) in cols.iter().enumerate().skip(j) {
            let values = &c.values()[t0..t0 + m];
            for (k, &v) in values.iter().enumerate() {
                tile[k * d + j] = v;
            }
        }
        for (j, c) in cols.iter().enumerate() {
            if c.null_count() > 0 {
                for k in (0..m).filter(|&k| c.is_null(t0 + k)) {
                    tile[k * d + j] = f32::NAN;
                }
            }
        }
        // Without stopping at the first: a loop that cannot stop early is vectorised.
        if tile.iter().fold(false, |any, v| any | v.is_infinite()) {
            return tile
                .iter()
                .position(|v| v.is_infinite())
                .map(|i| t0 * d + i);
        }
    }
    None
}

impl Group {
    /// Features per row.
    pub fn features(&self) -> usize {
        self.columns.features.len()
    }

    /// The batches of rows `local` of this group holding the columns `which`.
    fn batches(&self, local: Range<usize>, which: &[usize]) -> Result<Vec<RecordBatch>> {
        let file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone());
        let mask = ProjectionMask::roots(builder.parquet_schema(), which.iter().copied());
        let mut builder = builder
            .with_projection(mask)
            .with_row_groups(vec![self.index])
            .with_batch_size(BATCH_ROWS);
        if local.len() < self.rows {
            builder = builder.with_row_selection(RowSelection::from(vec![
                RowSelector::skip(local.start),
                RowSelector::select(local.len()),
            ]));
        }
        let reader = builder.build().map_err(|e| err(&self.path, e))?;
        reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| err(&self.path, e))
    }

    /// The columns of `batch` as f32 arrays (a float32 column as it is, others cast).
    fn floats(&self, batch: &RecordBatch) -> Result<Vec<arrow_array::ArrayRef>> {
        batch
            .columns()
            .iter()
            .map(|c| arrow_cast::cast(c, &DataType::Float32).map_err(|e| err(&self.path, e)))
            .collect()
    }

    /// Appends rows `local` of this group whose index (`first` plus the row's place in the
    /// group) `keep` accepts, as f32 rows, each passed to `each`. Nulls and NaN become NaN when
    /// `missing` allows them, else they are an error naming the row.
    pub fn read_where(
        &self,
        local: Range<usize>,
        first: usize,
        missing: bool,
        keep: &mut impl FnMut(usize) -> bool,
        out: &mut Vec<f32>,
        each: &mut impl FnMut(&mut [f32]),
    ) -> Result<()> {
        let d = self.features();
        let mut at = first + local.start;
        let mut kept = Vec::new();
        for batch in self.batches(local, &self.columns.features)? {
            // The projection keeps schema order, which is the order of `features`.
            let cols = self.floats(&batch)?;
            let cols: Vec<_> = cols
                .iter()
                .map(|c| c.as_primitive::<Float32Type>())
                .collect();
            let n = batch.num_rows();
            kept.clear();
            kept.extend((0..n).filter(|&r| keep(at + r)));
            let before = out.len();
            out.resize(before + kept.len() * d, 0.0);
            transpose(&cols, &kept, &mut out[before..], d);
            for (k, row) in out[before..].chunks_exact_mut(d).enumerate() {
                let bad = |v: &f32| v.is_infinite() || (!missing && v.is_nan());
                if let Some(j) = row.iter().position(bad) {
                    return Err(Error::NonFinite {
                        path: self.path.clone(),
                        index: (at + kept[k]) * d + j,
                        value: row[j] as f64,
                    });
                }
                each(row);
            }
            at += n;
        }
        Ok(())
    }

    /// Writes every row of this group into `dst` (rows × features), nulls and NaN as NaN; an
    /// infinite value is an error naming its row (`first` is the group's first row).
    pub fn fill(&self, dst: &mut [f32], first: usize) -> Result<()> {
        let d = self.features();
        let mut at = 0;
        for batch in self.batches(0..self.rows, &self.columns.features)? {
            let cols = self.floats(&batch)?;
            let cols: Vec<_> = cols
                .iter()
                .map(|c| c.as_primitive::<Float32Type>())
                .collect();
            let n = batch.num_rows();
            let out = dst.get_mut(at * d..(at + n) * d).ok_or_else(|| {
                err(
                    &self.path,
                    "a row group holds more rows than its metadata says",
                )
            })?;
            if let Some(i) = transpose_all(&cols, out, d) {
                return Err(Error::NonFinite {
                    path: self.path.clone(),
                    index: (first + at) * d + i,
                    value: out[i] as f64,
                });
            }
            at += n;
        }
        if at != self.rows {
            return Err(err(
                &self.path,
                format!(
                    "a row group decoded {at} rows where its metadata says {}",
                    self.rows
                ),
            ));
        }
        Ok(())
    }

    /// The labels of rows `local`; a null or negative one is an error naming the row.
    pub fn labels(&self, local: Range<usize>, first: usize) -> Result<Vec<u32>> {
        let Some(l) = self.columns.label else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(local.len());
        let mut at = first + local.start;
        for batch in self.batches(local, &[l])? {
            let col = arrow_cast::cast(batch.column(0), &DataType::Int64)
                .map_err(|e| err(&self.path, e))?;
            let col = col.as_primitive::<Int64Type>();
            for r in 0..col.len() {
                let v = if col.is_null(r) { -1 } else { col.value(r) };
                let Ok(v) = u32::try_from(v) else {
                    return Err(Error::format(
                        &self.path,
                        None,
                        format!(
                            "row {}: the label is {}; labels are non-negative integers",
                            at + r,
                            if col.is_null(r) {
                                "missing".to_string()
                            } else {
                                v.to_string()
                            }
                        ),
                    ));
                };
                out.push(v);
            }
            at += col.len();
        }
        Ok(out)
    }

    /// Whether the table has a label column.
    pub fn has_labels(&self) -> bool {
        self.columns.label.is_some()
    }

    /// The feature columns' names.
    pub fn names(&self) -> &[String] {
        &self.columns.names
    }
}

/// Reads the whole table at `path` into memory: features (nulls as NaN, the missing cells
/// `--missing allow` trains on) and, with `opts.label_column`, labels.
pub fn read(path: &Path, opts: &CsvOptions) -> Result<Samples> {
    let source = crate::stream::RowSource::open_parquet(path, opts)?;
    let mut s = source.samples_with_missing(0..source.rows())?;
    s.labels = source.labels(0..source.rows())?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::RowSource;
    use arrow_array::{BooleanArray, Float64Array, Int32Array, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    /// Rows `from..from + n` of a table: `a` int32, `b` float64 (null every 7th row), `flag`
    /// boolean, `name` text, `y` the label (row % 3); written in row groups of `group` rows.
    fn table(path: &Path, from: usize, n: usize, group: usize) {
        let rows = from..from + n;
        let a = Int32Array::from_iter_values(rows.clone().map(|i| i as i32 * 2));
        let b = Float64Array::from_iter(
            rows.clone()
                .map(|i| (i % 7 != 3).then_some(i as f64 * 0.5 - 1.0)),
        );
        let flag = BooleanArray::from_iter(rows.clone().map(|i| Some(i % 2 == 0)));
        let name = StringArray::from_iter_values(rows.clone().map(|i| format!("row{i}")));
        let y = Int32Array::from_iter_values(rows.map(|i| (i % 3) as i32));
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(a) as arrow_array::ArrayRef),
            ("b", Arc::new(b) as _),
            ("flag", Arc::new(flag) as _),
            ("name", Arc::new(name) as _),
            ("y", Arc::new(y) as _),
        ])
        .unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group))
            .build();
        let mut w =
            ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    fn opts(label: Option<&str>, ignore: &[&str]) -> CsvOptions {
        CsvOptions {
            label_column: label.map(str::to_string),
            ignore_columns: ignore.iter().map(|s| s.to_string()).collect(),
            ..CsvOptions::default()
        }
    }

    fn expected(i: usize) -> [f32; 3] {
        let b = if i % 7 == 3 {
            f32::NAN
        } else {
            i as f32 * 0.5 - 1.0
        };
        [i as f32 * 2.0, b, f32::from(u8::from(i.is_multiple_of(2)))]
    }

    fn same(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
    }

    #[test]
    fn columns_become_rows_with_nulls_and_the_first_infinity_found() {
        // 11 columns: one block of eight and three single ones; 300 rows: more than one tile.
        let (n, d) = (300, 11);
        let value = |r: usize, j: usize| (r * 100 + j) as f32;
        let cols: Vec<arrow_array::Float32Array> = (0..d)
            .map(|j| (0..n).map(|r| (r % 13 != j).then(|| value(r, j))).collect())
            .collect();
        let refs: Vec<_> = cols.iter().collect();
        let mut out = vec![0.0; n * d];
        assert_eq!(transpose_all(&refs, &mut out, d), None);
        for r in 0..n {
            for j in 0..d {
                let v = out[r * d + j];
                if r % 13 == j {
                    assert!(v.is_nan(), "row {r} column {j}: {v}");
                } else {
                    assert_eq!(v, value(r, j), "row {r} column {j}");
                }
            }
        }
        let mut cols = cols;
        cols[9] = (0..n)
            .map(|r| if r >= 200 { f32::NEG_INFINITY } else { 1.0 })
            .collect();
        cols[2] = (0..n)
            .map(|r| if r == 250 { f32::INFINITY } else { 1.0 })
            .collect();
        let refs: Vec<_> = cols.iter().collect();
        assert_eq!(transpose_all(&refs, &mut out, d), Some(200 * d + 9));
    }

    #[test]
    fn a_folder_of_tables_reads_as_one_with_nulls_missing_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        table(&dir.path().join("p0.parquet"), 0, 25, 10);
        table(&dir.path().join("p1.parquet"), 25, 15, 10);
        let o = opts(Some("y"), &["name"]);
        let s = read(dir.path(), &o).unwrap();
        assert_eq!((s.n, s.shape.clone()), (40, vec![3]));
        let want: Vec<f32> = (0..40).flat_map(expected).collect();
        assert!(same(&s.data, &want));
        assert_eq!(
            s.labels.unwrap(),
            (0..40).map(|i| (i % 3) as u32).collect::<Vec<_>>()
        );
        let src = RowSource::open_parquet(dir.path(), &o).unwrap();
        assert_eq!(src.column_names().unwrap(), ["a", "b", "flag"]);
        // Row groups: 10, 10, 5 in the first file, 10, 5 in the second; blocks never cross one.
        assert_eq!(
            src.blocks(7),
            vec![0..7, 7..10, 10..17, 17..20, 20..25, 25..32, 32..35, 35..40]
        );
        // A slice across files and groups, with a filter, reads the rows it names.
        let mut out = Vec::new();
        let keep = |i: usize| i % 2 == 1;
        RowSource::open_parquet(dir.path(), &o)
            .unwrap()
            .read_where(9..28, |i| i % 2 == 1 && i % 7 != 3, &mut out, |_| {})
            .unwrap();
        let want: Vec<f32> = (9..28)
            .filter(|&i| keep(i) && i % 7 != 3)
            .flat_map(expected)
            .collect();
        assert!(same(&out, &want));
        // Streamed, a null is refused by name (streaming has no missing cells).
        let err = src.read(0..5, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("p0.parquet"), "{err}");
    }

    #[test]
    fn text_columns_other_schemas_and_bad_labels_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        table(&p, 0, 12, 100);
        let err = read(&p, &opts(None, &[])).unwrap_err().to_string();
        assert!(
            err.contains("`name`") && err.contains("--ignore-columns name"),
            "{err}"
        );
        let err = read(&p, &opts(Some("nope"), &["name"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`nope`") && err.contains("\"flag\""), "{err}");
        let err = read(&p, &opts(Some("b"), &["name"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("label column `b`"), "{err}");
        // By index too: column 4 is y.
        let s = read(&p, &opts(Some("4"), &["3"])).unwrap();
        assert_eq!(s.labels.unwrap()[..4], [0, 1, 2, 0]);
        // Only the columns asked for (in the file's order), the text column never read.
        let only = CsvOptions {
            columns: vec!["flag".into(), "a".into()],
            ..opts(Some("y"), &[])
        };
        let s = read(&p, &only).unwrap();
        assert_eq!(s.shape, vec![2]);
        let want: Vec<f32> = (0..12)
            .flat_map(|i| [expected(i)[0], expected(i)[2]])
            .collect();
        assert!(same(&s.data, &want));
        assert_eq!(s.labels.unwrap()[..3], [0, 1, 2]);
        let bad = CsvOptions {
            columns: vec!["a".into(), "zz".into()],
            ..CsvOptions::default()
        };
        let err = read(&p, &bad).unwrap_err().to_string();
        assert!(err.contains("no column `zz`"), "{err}");

        let other = dir.path().join("u.parquet");
        let batch = RecordBatch::try_from_iter([(
            "z",
            Arc::new(Int32Array::from(vec![1, 2])) as arrow_array::ArrayRef,
        )])
        .unwrap();
        let mut w =
            ArrowWriter::try_new(File::create(&other).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let err = read(dir.path(), &opts(Some("y"), &["name"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("u.parquet") && err.contains("differ"), "{err}");

        let junk = dir.path().join("junk.parquet");
        std::fs::write(&junk, b"PAR1 not really").unwrap();
        let err = read(&junk, &opts(None, &[])).unwrap_err().to_string();
        assert!(err.contains("junk.parquet"), "{err}");
    }

    #[test]
    fn rows_written_as_parquet_read_back_with_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("codes.parquet");
        let header: Vec<String> = vec!["code_0".into(), "code_1".into()];
        let mut w = crate::rows_out::RowWriter::create(&p, &header, 5).unwrap();
        w.write(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        w.write(&[5.0, 6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        w.finish().unwrap();
        let s = read(&p, &opts(Some("index"), &[])).unwrap();
        assert_eq!(s.data, (1..=10).map(|v| v as f32).collect::<Vec<_>>());
        assert_eq!(s.labels.unwrap(), vec![0, 1, 2, 3, 4]);
    }
}
