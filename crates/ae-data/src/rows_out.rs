//! Output written as it is computed, for data larger than memory: a file that appears under its
//! name only once complete ([`PartialFile`]), and rows of f32 as `.npy`, `.csv` or `.parquet`
//! ([`RowWriter`]) whose row count is known from the start.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

/// A file written under a temporary name beside its destination and renamed onto it by
/// [`PartialFile::commit`]; dropped before that, it is removed, so a failed or interrupted command
/// leaves an earlier file of that name as it was.
pub struct PartialFile {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl PartialFile {
    /// Starts writing what will become `path`.
    pub fn create(path: &Path) -> Result<PartialFile> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let tmp = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(PartialFile {
            path: path.to_path_buf(),
            tmp,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Moves the finished file onto its name.
    pub fn commit(mut self) -> Result<()> {
        let out = self.out.take().expect("not yet committed");
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}

impl Write for PartialFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.as_mut().expect("not yet committed").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.as_mut().expect("not yet committed").flush()
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Where a [`RowWriter`]'s rows go.
enum Sink {
    Npy(PartialFile),
    Csv(PartialFile),
    /// A column `index` (the row's place in the input) and one f32 column per name.
    Parquet(Box<ArrowWriter<PartialFile>>, Arc<Schema>),
}

/// Rows of `cols` f32 values written to `.npy` (little-endian f32, C order), `.csv` (with a
/// header) or `.parquet` (an `index` column of the rows' places in the input, then the named
/// columns; Snappy-compressed, one row group per write), chosen by the file's extension, as they
/// come.
pub struct RowWriter {
    path: PathBuf,
    sink: Sink,
    cols: usize,
    rows: usize,
    written: usize,
}

impl RowWriter {
    /// Starts a file of `rows` rows named by `header` (one name per column).
    pub fn create(path: &Path, header: &[String], rows: usize) -> Result<RowWriter> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let cols = header.len();
        let io = |e| Error::io(path, e);
        let sink = match ext.as_str() {
            "csv" => {
                let mut out = PartialFile::create(path)?;
                writeln!(out, "{}", header.join(",")).map_err(io)?;
                Sink::Csv(out)
            }
            "npy" => {
                let mut out = PartialFile::create(path)?;
                // Format version 1: the header, padded with spaces to a multiple of 64 bytes with
                // its magic and length, ends in a newline.
                let mut h = format!(
                    "{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}"
                );
                while (10 + h.len() + 1) % 64 != 0 {
                    h.push(' ');
                }
                h.push('\n');
                out.write_all(b"\x93NUMPY\x01\x00").map_err(io)?;
                out.write_all(&(h.len() as u16).to_le_bytes()).map_err(io)?;
                out.write_all(h.as_bytes()).map_err(io)?;
                Sink::Npy(out)
            }
            "parquet" => {
                let mut fields = vec![Field::new("index", DataType::UInt64, false)];
                fields.extend(
                    header
                        .iter()
                        .map(|h| Field::new(h, DataType::Float32, false)),
                );
                let schema = Arc::new(Schema::new(fields));
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .build();
                let w = ArrowWriter::try_new(
                    PartialFile::create(path)?,
                    schema.clone(),
                    Some(props),
                )
                .map_err(|e| Error::format(path, None, format!("cannot write Parquet: {e}")))?;
                Sink::Parquet(Box::new(w), schema)
            }
            other => {
                return Err(Error::format(
                    path,
                    None,
                    format!("unsupported output format `.{other}`; use .npy, .csv or .parquet"),
                ))
            }
        };
        Ok(RowWriter {
            path: path.to_path_buf(),
            sink,
            cols,
            rows,
            written: 0,
        })
    }

    /// Appends whole rows.
    pub fn write(&mut self, values: &[f32]) -> Result<()> {
        let n = values.len() / self.cols.max(1);
        if n * self.cols != values.len() || self.written + n > self.rows {
            return Err(Error::Shape {
                what: format!("rows to write to {}", self.path.display()),
                expected: format!(
                    "whole rows of {} values, {} rows in all",
                    self.cols, self.rows
                ),
                got: format!("{} values after {} rows", values.len(), self.written),
            });
        }
        let path = self.path.clone();
        let io = |e| Error::io(&path, e);
        match &mut self.sink {
            Sink::Csv(out) => {
                for r in values.chunks_exact(self.cols.max(1)) {
                    for (j, v) in r.iter().enumerate() {
                        if j > 0 {
                            out.write_all(b",").map_err(io)?;
                        }
                        write!(out, "{v}").map_err(io)?;
                    }
                    out.write_all(b"\n").map_err(io)?;
                }
            }
            Sink::Npy(out) => {
                for v in values {
                    out.write_all(&v.to_le_bytes()).map_err(io)?;
                }
            }
            Sink::Parquet(w, schema) => {
                let start = self.written as u64;
                let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from_iter_values(
                    start..start + n as u64,
                ))];
                for j in 0..self.cols {
                    columns.push(Arc::new(Float32Array::from_iter_values(
                        values.iter().skip(j).step_by(self.cols).copied(),
                    )));
                }
                let parquet = |e: &dyn std::fmt::Display| {
                    Error::format(&path, None, format!("cannot write Parquet: {e}"))
                };
                let batch =
                    RecordBatch::try_new(schema.clone(), columns).map_err(|e| parquet(&e))?;
                w.write(&batch).map_err(|e| parquet(&e))?;
                w.flush().map_err(|e| parquet(&e))?;
            }
        }
        self.written += n;
        Ok(())
    }

    /// Checks every row came and puts the file in place.
    pub fn finish(self) -> Result<()> {
        if self.written != self.rows {
            return Err(Error::Shape {
                what: format!("rows written to {}", self.path.display()),
                expected: self.rows.to_string(),
                got: self.written.to_string(),
            });
        }
        match self.sink {
            Sink::Csv(out) | Sink::Npy(out) => out.commit(),
            Sink::Parquet(w, _) => w
                .into_inner()
                .map_err(|e| Error::format(&self.path, None, format!("cannot write Parquet: {e}")))?
                .commit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_written_in_pieces_read_back_as_written_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<f32> = (0..30).map(|i| i as f32 * 0.25 - 3.0).collect();
        let header: Vec<String> = (0..3).map(|j| format!("code_{j}")).collect();
        for name in ["a.npy", "a.csv"] {
            let p = dir.path().join(name);
            let mut w = RowWriter::create(&p, &header, 10).unwrap();
            assert!(!p.exists(), "nothing under the name before the end");
            w.write(&values[..12]).unwrap();
            w.write(&values[12..]).unwrap();
            w.finish().unwrap();
            let back = if name.ends_with("npy") {
                crate::npy::read(&p).unwrap()
            } else {
                crate::csv_table::read(&p, &Default::default())
                    .unwrap()
                    .samples
            };
            assert_eq!((back.n, back.data), (10, values.clone()), "{name}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn an_unfinished_file_leaves_the_old_one_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("codes.npy");
        std::fs::write(&p, b"earlier results").unwrap();
        let header = vec!["x".to_string()];
        let mut w = RowWriter::create(&p, &header, 4).unwrap();
        w.write(&[1.0, 2.0]).unwrap();
        let err = w.finish().unwrap_err().to_string();
        assert!(err.contains("codes.npy") && err.contains('4'), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"earlier results");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut w = RowWriter::create(&p, &header, 1).unwrap();
        assert!(w.write(&[1.0, 2.0]).is_err(), "more rows than announced");
        let err = RowWriter::create(&dir.path().join("x.feather"), &header, 1)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(".feather") && err.contains(".parquet"),
            "{err}"
        );
    }
}
