//! Data read in place, a block of rows at a time, for data sets larger than memory: one `.npy`
//! file, a folder of `.npy` shards, or an uncompressed IDX images file. Opening reads only the
//! headers and checks each against its file's size; [`RowSource::read`] then reads the rows asked
//! for with positioned reads and converts them to f32, so memory holds only what the caller keeps.
//!
//! Positioned reads rather than a memory map: the pages of a mapped file count in the process's
//! resident memory until the kernel drops them, so an epoch over a 12 GB map looks like 12 GB
//! resident; a read into a reused buffer keeps the figure at the buffer's size, and costs one copy
//! that is small beside the arithmetic of a training step.
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::npy::{self, Elem};
use crate::samples::{Samples, SourceType};

thread_local! {
    /// One scratch buffer a thread, grown once: a fresh one per block would be fresh pages.
    static RAW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Where one file keeps its rows and how its values become f32.
#[derive(Clone, Debug)]
pub struct FileLayout {
    pub(crate) path: PathBuf,
    pub(crate) data_offset: u64,
    pub(crate) rows: usize,
    pub(crate) example: Vec<usize>,
    pub(crate) elem: Elem,
    pub(crate) size: usize,
    pub(crate) big: bool,
    pub(crate) source: SourceType,
    pub(crate) dtype: String,
}

impl FileLayout {
    fn row_bytes(&self) -> u64 {
        (self.example.iter().product::<usize>() * self.size) as u64
    }
}

/// A run of rows read in one piece: a raw file, or a row group of a Parquet file.
#[derive(Clone, Debug)]
enum Part {
    Raw(FileLayout),
    Table(crate::parquet::Group),
    Images(crate::image_folder::Listing),
}

impl Part {
    fn rows(&self) -> usize {
        match self {
            Part::Raw(f) => f.rows,
            Part::Table(g) => g.rows,
            Part::Images(l) => l.len(),
        }
    }

    fn path(&self) -> &Path {
        match self {
            Part::Raw(f) => &f.path,
            Part::Table(g) => &g.path,
            Part::Images(l) => l.dir(),
        }
    }
}

/// Rows of one or more files (or Parquet row groups), numbered across them in order, read on
/// demand.
#[derive(Clone, Debug)]
pub struct RowSource {
    parts: Vec<Part>,
    /// The global index of each part's first row, and the total at the end.
    starts: Vec<usize>,
    shape: Vec<usize>,
    source: SourceType,
    /// Whether pages read are dropped from the page cache at once: for raw files together
    /// larger than half the machine's memory, which the cache cannot keep anyway. Left to the
    /// kernel, reclaiming them takes a core from training (`kswapd`) as the epoch goes.
    drop_behind: bool,
}

impl RowSource {
    /// Opens `path`: a folder (every `*.npy` file in it, in name order, one shard each), an
    /// `.npy` file (told by its magic) or an uncompressed IDX images file. Every shard must hold
    /// examples of the same shape and dtype, in C order.
    pub fn open(path: &Path) -> Result<RowSource> {
        let files = if path.is_dir() {
            let mut names: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "npy"))
                .collect();
            names.sort();
            if names.is_empty() {
                return Err(Error::format(path, None, "the folder holds no .npy files"));
            }
            names
                .iter()
                .map(|p| npy_layout(p))
                .collect::<Result<Vec<_>>>()?
        } else {
            vec![file_layout(path)?]
        };
        let first = &files[0];
        for f in &files[1..] {
            if f.example != first.example || f.dtype != first.dtype {
                return Err(Error::format(
                    &f.path,
                    Some(0),
                    format!(
                        "this shard holds examples of shape {:?} and dtype {}, but {} holds {:?} of {}; every shard must match",
                        f.example,
                        f.dtype,
                        first.path.display(),
                        first.example,
                        first.dtype
                    ),
                ));
            }
        }
        let (shape, source) = (first.example.clone(), first.source);
        Ok(RowSource::of(
            files.into_iter().map(Part::Raw).collect(),
            shape,
            source,
        ))
    }

    /// Opens a Parquet table (a file, or a folder of `.parquet` files): its numeric columns but
    /// the label and ignored ones ([`crate::parquet`]), one part per row group.
    pub fn open_parquet(path: &Path, opts: &crate::csv_table::CsvOptions) -> Result<RowSource> {
        let (groups, source) = crate::parquet::open(path, opts)?;
        let shape = vec![groups[0].features()];
        Ok(RowSource::of(
            groups.into_iter().map(Part::Table).collect(),
            shape,
            source,
        ))
    }

    /// Opens a folder of PNG or JPEG images (`images:DIR`, subfolders as classes): listed now,
    /// each image decoded when its row is read, the rows of a block on rayon's threads.
    pub fn open_images(dir: &Path, opts: &crate::image_folder::FolderOptions) -> Result<RowSource> {
        let listing = crate::image_folder::Listing::open(dir, opts)?;
        let shape = listing.shape();
        Ok(RowSource::of(
            vec![Part::Images(listing)],
            shape,
            SourceType::U8,
        ))
    }

    fn of(parts: Vec<Part>, shape: Vec<usize>, source: SourceType) -> RowSource {
        let mut starts = vec![0];
        for p in &parts {
            starts.push(starts.last().unwrap() + p.rows());
        }
        let raw_bytes: u64 = parts
            .iter()
            .map(|p| match p {
                Part::Raw(f) => f.rows as u64 * f.row_bytes(),
                _ => 0,
            })
            .sum();
        RowSource {
            parts,
            starts,
            shape,
            source,
            drop_behind: raw_bytes > memory_bytes() / 2,
        }
    }

    /// Rows in all.
    pub fn rows(&self) -> usize {
        *self.starts.last().unwrap()
    }

    /// The shape of one example (`[D]`, or `[C, H, W]` for images).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Values per example.
    pub fn features(&self) -> usize {
        self.shape().iter().product()
    }

    /// What the files hold (it picks the default scaling).
    pub fn source(&self) -> SourceType {
        self.source
    }

    /// The file of each part, in row order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.parts.iter().map(Part::path)
    }

    /// The feature columns' names, for a table.
    pub fn column_names(&self) -> Option<&[String]> {
        match &self.parts[0] {
            Part::Table(g) => Some(g.names()),
            Part::Raw(_) | Part::Images(_) => None,
        }
    }

    /// Consecutive ranges of at most `max_rows` rows covering every row in order; none crosses
    /// from one part (file or row group) into the next.
    pub fn blocks(&self, max_rows: usize) -> Vec<Range<usize>> {
        let max_rows = max_rows.max(1);
        let mut out = Vec::new();
        for w in self.starts.windows(2) {
            let mut a = w[0];
            while a < w[1] {
                let b = (a + max_rows).min(w[1]);
                out.push(a..b);
                a = b;
            }
        }
        out
    }

    /// Appends rows `rows` (global indices) to `out` as f32, row-major. A file that went missing
    /// or shrank since it was opened, or a value that is not finite, is an error naming the file.
    pub fn read(&self, rows: Range<usize>, out: &mut Vec<f32>) -> Result<()> {
        self.read_where(rows, |_| true, out, |_| {})
    }

    /// As [`RowSource::read`], but only the rows whose global index `keep` accepts, each passed to
    /// `each` as soon as it is converted (while it is still in cache): one pass over the values
    /// where a read, a filter and a transform would take three.
    pub fn read_where(
        &self,
        rows: Range<usize>,
        mut keep: impl FnMut(usize) -> bool,
        out: &mut Vec<f32>,
        mut each: impl FnMut(&mut [f32]),
    ) -> Result<()> {
        if rows.end > self.rows() {
            return Err(Error::Shape {
                what: "rows to read".into(),
                expected: format!("at most {}", self.rows()),
                got: format!("{rows:?}"),
            });
        }
        let d = self.features();
        RAW.with_borrow_mut(|raw| self.read_into(rows, false, &mut keep, out, &mut each, raw, d))
    }

    /// Tells the kernel that rows `rows` will be read soon, so that the disk reads them while
    /// the caller converts the rows before them. Only advice: nothing is read here.
    pub fn will_need(&self, rows: Range<usize>) {
        if rows.is_empty() || rows.end > self.rows() {
            return;
        }
        let k = self.starts.partition_point(|&s| s <= rows.start) - 1;
        if let Part::Raw(f) = &self.parts[k] {
            let local = rows.start - self.starts[k];
            let take = (rows.end - rows.start).min(f.rows - local);
            if let Ok(file) = File::open(&f.path) {
                let offset = f.data_offset + local as u64 * f.row_bytes();
                advise(&file, offset, take * f.row_bytes() as usize, WILL_NEED);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read_into(
        &self,
        rows: Range<usize>,
        missing: bool,
        keep: &mut impl FnMut(usize) -> bool,
        out: &mut Vec<f32>,
        each: &mut impl FnMut(&mut [f32]),
        raw: &mut Vec<u8>,
        d: usize,
    ) -> Result<()> {
        let mut at = rows.start;
        while at < rows.end {
            // The part holding row `at`: the last whose first row is at or before it.
            let k = self.starts.partition_point(|&s| s <= at) - 1;
            let local = at - self.starts[k];
            let take = (rows.end - at).min(self.parts[k].rows() - local);
            let f = match &self.parts[k] {
                Part::Raw(f) => f,
                Part::Table(g) => {
                    g.read_where(
                        local..local + take,
                        self.starts[k],
                        missing,
                        keep,
                        out,
                        each,
                    )?;
                    at += take;
                    continue;
                }
                Part::Images(l) => {
                    read_images(l, local, self.starts[k], take, keep, out, each)?;
                    at += take;
                    continue;
                }
            };
            let offset = f.data_offset + local as u64 * f.row_bytes();
            raw.resize(take * f.row_bytes() as usize, 0);
            let file = File::open(&f.path).map_err(|e| Error::io(&f.path, e))?;
            file.read_exact_at(raw, offset).map_err(|e| {
                Error::format(
                    &f.path,
                    Some(offset),
                    format!(
                        "cannot read rows {local}..{} of this file: {e} (was it truncated or replaced after it was opened?)",
                        local + take
                    ),
                )
            })?;
            if self.drop_behind {
                advise(&file, offset, raw.len(), DONT_NEED);
            }
            let floats = matches!(f.elem, Elem::F16 | Elem::F32 | Elem::F64);
            for (r, bytes) in raw.chunks_exact(f.row_bytes() as usize).enumerate() {
                if !keep(at + r) {
                    continue;
                }
                let before = out.len();
                npy::convert(f.elem, f.big, bytes, out);
                let row = &mut out[before..];
                if floats {
                    if let Some(i) = row.iter().position(|v| !v.is_finite()) {
                        return Err(Error::NonFinite {
                            path: f.path.clone(),
                            index: (local + r) * d + i,
                            value: row[i] as f64,
                        });
                    }
                }
                each(row);
            }
            at += take;
        }
        Ok(())
    }

    /// Rows `rows` as samples of this source's shape and type.
    pub fn samples(&self, rows: Range<usize>) -> Result<Samples> {
        let mut data = Vec::with_capacity(rows.len() * self.features());
        let n = rows.len();
        self.read(rows, &mut data)?;
        Ok(self.wrap(data, n))
    }

    /// As [`RowSource::samples`], but a table's nulls and NaN are read as missing cells (NaN)
    /// rather than refused.
    pub fn samples_with_missing(&self, rows: Range<usize>) -> Result<Samples> {
        let n = rows.len();
        let d = self.features();
        if rows == (0..self.rows()) {
            if let Some(groups) = self.groups() {
                return self.whole_table(&groups).map(|data| self.wrap(data, n));
            }
        }
        let mut data = Vec::with_capacity(rows.len() * self.features());
        RAW.with_borrow_mut(|raw| {
            self.read_into(rows, true, &mut |_| true, &mut data, &mut |_| {}, raw, d)
        })?;
        Ok(self.wrap(data, n))
    }

    /// The row groups, when every part is one.
    fn groups(&self) -> Option<Vec<&crate::parquet::Group>> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Table(g) => Some(g),
                Part::Raw(_) | Part::Images(_) => None,
            })
            .collect()
    }

    /// Every row of a table, its row groups decoded in parallel, each straight into its place.
    fn whole_table(&self, groups: &[&crate::parquet::Group]) -> Result<Vec<f32>> {
        use rayon::prelude::*;
        let d = self.features();
        // Zeroed pages come from the system untouched: each is faulted in once, by its writer.
        let mut data = vec![0.0f32; self.rows() * d];
        huge_pages(&mut data);
        let mut slices = Vec::with_capacity(groups.len());
        let mut rest = data.as_mut_slice();
        for g in groups {
            let (head, tail) = rest.split_at_mut(g.rows * d);
            slices.push(head);
            rest = tail;
        }
        groups
            .par_iter()
            .zip(slices.into_par_iter())
            .zip(self.starts.par_iter())
            .try_for_each(|((g, dst), &first)| g.fill(dst, first))?;
        Ok(data)
    }

    fn wrap(&self, data: Vec<f32>, n: usize) -> Samples {
        Samples {
            data,
            n,
            shape: self.shape().to_vec(),
            labels: None,
            source: self.source(),
        }
    }

    /// The labels of rows `rows`, for a table read with a label column or a folder of images
    /// with class subfolders.
    pub fn labels(&self, rows: Range<usize>) -> Result<Option<Vec<u32>>> {
        if let [Part::Images(l)] = self.parts.as_slice() {
            return Ok(l.labels(rows));
        }
        let mut out = Vec::new();
        for (k, part) in self.parts.iter().enumerate() {
            let Part::Table(g) = part else {
                return Ok(None);
            };
            if !g.has_labels() {
                return Ok(None);
            }
            let (a, b) = (self.starts[k], self.starts[k + 1]);
            let (lo, hi) = (rows.start.max(a), rows.end.min(b));
            if lo < hi {
                out.extend(g.labels(lo - a..hi - a, a)?);
            }
        }
        Ok(Some(out))
    }
}

/// Images `local..local + take` of `l` whose row index (`first` plus the image's place) `keep`
/// accepts, decoded in parallel straight into their rows of `out`, then each passed to `each`.
fn read_images(
    l: &crate::image_folder::Listing,
    local: usize,
    first: usize,
    take: usize,
    keep: &mut impl FnMut(usize) -> bool,
    out: &mut Vec<f32>,
    each: &mut impl FnMut(&mut [f32]),
) -> Result<()> {
    use rayon::prelude::*;
    let d: usize = l.shape().iter().product();
    let kept: Vec<usize> = (local..local + take).filter(|&i| keep(first + i)).collect();
    let before = out.len();
    out.resize(before + kept.len() * d, 0.0);
    out[before..]
        .par_chunks_mut(d)
        .zip(kept.par_iter())
        .try_for_each(|(row, &i)| l.fill(i, row))?;
    for row in out[before..].chunks_exact_mut(d) {
        each(row);
    }
    Ok(())
}

/// An `.npy` file or an IDX file, told by the first bytes.
fn file_layout(path: &Path) -> Result<FileLayout> {
    let mut magic = [0u8; 6];
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let n = file
        .read_at(&mut magic, 0)
        .map_err(|e| Error::io(path, e))?;
    if n == 6 && &magic == b"\x93NUMPY" {
        npy_layout(path)
    } else {
        crate::idx::layout(path)
    }
}

fn npy_layout(path: &Path) -> Result<FileLayout> {
    let (l, _) = npy::open(path)?;
    if l.fortran && l.shape.len() > 1 {
        return Err(Error::format(
            path,
            Some(8),
            "a Fortran-order array cannot be streamed row by row (its rows are not contiguous); \
             save it in C order (np.save(f, np.ascontiguousarray(a))) or read it without --stream",
        ));
    }
    Ok(FileLayout {
        path: path.to_path_buf(),
        data_offset: l.data_offset,
        rows: l.shape[0],
        example: l.example,
        elem: l.elem,
        size: l.size,
        big: l.big,
        source: l.source,
        dtype: l.dtype,
    })
}

/// A page-cache advice (`posix_fadvise`'s), a plain number so that callers need no platform
/// gate.
type Advice = i32;
#[cfg(target_os = "linux")]
const WILL_NEED: Advice = libc::POSIX_FADV_WILLNEED;
#[cfg(target_os = "linux")]
const DONT_NEED: Advice = libc::POSIX_FADV_DONTNEED;
#[cfg(not(target_os = "linux"))]
const WILL_NEED: Advice = 0;
#[cfg(not(target_os = "linux"))]
const DONT_NEED: Advice = 0;

/// Page-cache advice on `len` bytes of `file` from `offset`; ignored where refused.
#[cfg(target_os = "linux")]
fn advise(file: &File, offset: u64, len: usize, advice: Advice) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain system call on a descriptor we hold open; it reads no memory of ours.
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            advice,
        );
    }
}

/// Elsewhere the advice is not given.
#[cfg(not(target_os = "linux"))]
fn advise(_: &File, _: u64, _: usize, _: Advice) {}

/// The machine's physical memory in bytes (u64::MAX where it cannot be told).
fn memory_bytes() -> u64 {
    // SAFETY: sysconf reads system settings and touches no memory of ours.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages <= 0 || size <= 0 {
        return u64::MAX;
    }
    pages as u64 * size as u64
}

/// Asks the kernel to back `data`'s untouched pages with 2 MB pages where it can: a gigabyte of
/// 4 KB pages is a quarter of a million page faults on first write, which cost more than the
/// writing itself on a virtual machine. Only advice: where refused, nothing changes.
#[cfg(target_os = "linux")]
pub(crate) fn huge_pages(data: &mut [f32]) {
    const HUGE: usize = 2 << 20;
    let start = data.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(data);
    let from = start.div_ceil(HUGE) * HUGE;
    let to = end / HUGE * HUGE;
    if to > from {
        // SAFETY: the range lies inside `data`, which we borrow mutably; the advice changes how
        // its pages are backed, never their contents.
        unsafe {
            libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
        }
    }
}

/// Elsewhere pages stay as the system gives them.
#[cfg(not(target_os = "linux"))]
pub(crate) fn huge_pages(_: &mut [f32]) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn save_u8(path: &Path, rows: usize, cols: usize, first: u8) -> Vec<f32> {
        let data: Vec<u8> = (0..rows * cols)
            .map(|i| first.wrapping_add((i % 251) as u8))
            .collect();
        let header =
            format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
        let mut h = header.into_bytes();
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(b' ');
        }
        h.push(b'\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
        bytes.extend_from_slice(&h);
        bytes.extend_from_slice(&data);
        std::fs::write(path, bytes).unwrap();
        data.iter().map(|&b| f32::from(b)).collect()
    }

    #[test]
    fn shards_read_as_one_array_across_their_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let mut all = save_u8(&dir.path().join("a.npy"), 5, 3, 0);
        all.extend(save_u8(&dir.path().join("b.npy"), 4, 3, 100));
        std::fs::write(dir.path().join("notes.txt"), "not a shard").unwrap();
        let src = RowSource::open(dir.path()).unwrap();
        assert_eq!((src.rows(), src.features()), (9, 3));
        assert_eq!(src.source(), SourceType::U8);
        let mut out = Vec::new();
        src.read(3..8, &mut out).unwrap();
        assert_eq!(out, all[9..24]);
        assert_eq!(src.blocks(2), vec![0..2, 2..4, 4..5, 5..7, 7..9]);
        let whole = src.samples(0..9).unwrap();
        assert_eq!(
            whole.data,
            crate::npy::read(&dir.path().join("a.npy"))
                .unwrap()
                .data
                .into_iter()
                .chain(crate::npy::read(&dir.path().join("b.npy")).unwrap().data)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn idx_files_stream_and_gzipped_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = vec![0, 0, 0x08, 3, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 3];
        bytes.extend((0..24u8).collect::<Vec<_>>());
        let p = dir.path().join("images-idx3-ubyte");
        std::fs::write(&p, &bytes).unwrap();
        let src = RowSource::open(&p).unwrap();
        assert_eq!((src.rows(), src.shape()), (4, &[1, 2, 3][..]));
        let mut out = Vec::new();
        src.read(1..3, &mut out).unwrap();
        assert_eq!(out, (6..18).map(|v| v as f32).collect::<Vec<_>>());
        assert_eq!(
            src.samples(0..4).unwrap().data,
            crate::idx::read_images(&p).unwrap().data
        );

        let gz = dir.path().join("images.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &bytes).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let err = RowSource::open(&gz).unwrap_err().to_string();
        assert!(err.contains("images.gz") && err.contains("gunzip"), "{err}");
    }

    #[test]
    fn bad_shards_are_named() {
        let dir = tempfile::tempdir().unwrap();
        save_u8(&dir.path().join("a.npy"), 5, 3, 0);
        save_u8(&dir.path().join("b.npy"), 4, 2, 0);
        let err = RowSource::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("b.npy") && err.contains("[2]") && err.contains("[3]"),
            "{err}"
        );

        // Truncated before opening: the header's claim is checked against the size.
        save_u8(&dir.path().join("b.npy"), 4, 3, 0);
        let b = dir.path().join("b.npy");
        let len = std::fs::metadata(&b).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&b).unwrap();
        f.set_len(len - 2).unwrap();
        let err = RowSource::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("b.npy") && err.contains("needs 12 bytes"),
            "{err}"
        );

        // Truncated or removed after opening: the read names the file.
        f.set_len(len).unwrap();
        let src = RowSource::open(dir.path()).unwrap();
        f.set_len(len - 4).unwrap();
        let err = src.read(0..9, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("b.npy") && err.contains("truncated"), "{err}");
        std::fs::remove_file(&b).unwrap();
        let err = src.read(6..7, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("b.npy"), "{err}");
        // Rows of the first shard still read.
        src.read(0..5, &mut Vec::new()).unwrap();

        let empty = tempfile::tempdir().unwrap();
        let err = RowSource::open(empty.path()).unwrap_err().to_string();
        assert!(err.contains("no .npy files"), "{err}");
    }

    #[test]
    fn fortran_order_and_non_finite_values_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.npy");
        crate::npy::write_f32(&p, &[2, 2], &[1.0, f32::NAN, 3.0, 4.0]).unwrap();
        let src = RowSource::open(&p).unwrap();
        let err = src.read(0..2, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("f.npy"), "{err}");

        let h = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
        bytes.extend_from_slice(h.as_bytes());
        bytes.extend_from_slice(&[0u8; 16]);
        let q = dir.path().join("fortran.npy");
        std::fs::write(&q, bytes).unwrap();
        let err = RowSource::open(&q).unwrap_err().to_string();
        assert!(
            err.contains("fortran.npy") && err.contains("C order"),
            "{err}"
        );
    }

    #[test]
    fn a_folder_of_images_streams_as_it_reads_whole() {
        use crate::image_folder::{read, Color, FolderOptions};
        use image::{Rgb, RgbImage};
        let d = tempfile::tempdir().unwrap();
        for (class, n) in [("cat", 5u8), ("dog", 4)] {
            std::fs::create_dir(d.path().join(class)).unwrap();
            for k in 0..n {
                let (w, h) = (6 + (k % 2) as u32, 5);
                RgbImage::from_fn(w, h, |x, y| Rgb([k * 20, x as u8 * 30, y as u8 * 40 + n]))
                    .save(d.path().join(class).join(format!("{k}.png")))
                    .unwrap();
            }
        }
        let opts = FolderOptions {
            size: Some((6, 5)),
            color: None,
        };
        let whole = read(d.path(), &opts).unwrap();
        let s = RowSource::open_images(d.path(), &opts).unwrap();
        assert_eq!((s.rows(), s.shape()), (9, &[3usize, 5, 6][..]));
        assert_eq!(s.source(), SourceType::U8);
        assert_eq!(s.samples(0..9).unwrap().data, whole.data);
        assert_eq!(s.labels(2..7).unwrap(), Some(vec![0, 0, 0, 1, 1]));
        // Rows as a block: only the kept ones, each passed on.
        let (mut out, mut seen) = (Vec::new(), 0);
        s.read_where(3..8, |i| i % 2 == 1, &mut out, |_| seen += 1)
            .unwrap();
        let d3 = 90;
        assert_eq!(seen, 3);
        for (k, row) in out.chunks(d3).enumerate() {
            let i = 3 + 2 * k;
            assert_eq!(row, &whole.data[i * d3..(i + 1) * d3], "row {i}");
        }
        // Grey when asked; sizes that differ without a size asked are named.
        let gray = FolderOptions {
            color: Some(Color::Gray),
            ..opts.clone()
        };
        let g = RowSource::open_images(d.path(), &gray).unwrap();
        assert_eq!(
            g.samples(0..9).unwrap().data,
            read(d.path(), &gray).unwrap().data
        );
        let free = RowSource::open_images(d.path(), &FolderOptions::default()).unwrap();
        let e = free.samples(0..9).unwrap_err().to_string();
        assert!(e.contains("1.png") && e.contains("7×5"), "{e}");
        // A file that is no image, or vanished since the folder was listed, is named.
        std::fs::write(d.path().join("dog/2.png"), b"not a png").unwrap();
        let e = s.samples(0..9).unwrap_err().to_string();
        assert!(e.contains("2.png") && e.contains("decode"), "{e}");
        std::fs::remove_file(d.path().join("dog/2.png")).unwrap();
        let e = s.samples(0..9).unwrap_err().to_string();
        assert!(e.contains("2.png"), "{e}");
    }
}
