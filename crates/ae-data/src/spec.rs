//! The `--data` spec: which data a command reads.
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::csv_table::{self, CsvOptions};
use crate::datasets::{Lookup, Named, Split};
use crate::error::{Error, Result};
use crate::image_folder::{self, FolderOptions};
use crate::samples::Samples;
use crate::{cifar10, idx, npy};

/// Where data comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSpec {
    /// `fashion-mnist` or `mnist`.
    Named(Named),
    /// `idx:IMAGES[,LABELS]`.
    Idx {
        /// The images file.
        images: PathBuf,
        /// The labels file.
        labels: Option<PathBuf>,
    },
    /// `csv:PATH`.
    Csv(PathBuf),
    /// `npy:PATH`.
    Npy(PathBuf),
    /// `parquet:PATH` (a file, or a folder of `.parquet` files).
    Parquet(PathBuf),
    /// `images:DIR[,WxH][,gray|rgb]`.
    Images {
        /// The folder.
        dir: PathBuf,
        /// Size and colour options.
        options: FolderOptions,
    },
    /// `cifar10:DIR`.
    Cifar10(PathBuf),
}

impl DataSpec {
    /// Loads the data; a file spec is the whole file whatever `split` says.
    pub fn load(&self, lookup: &Lookup, split: Split, csv: &CsvOptions) -> Result<Samples> {
        match self {
            DataSpec::Named(n) => n.load(lookup, split),
            DataSpec::Idx {
                images,
                labels: Some(l),
            } => idx::read_pair(images, l),
            DataSpec::Idx {
                images,
                labels: None,
            } => idx::read_images(images),
            DataSpec::Csv(p) => Ok(csv_table::read(p, csv)?.samples),
            // A folder of shards (as `ae train --stream` reads them), here read whole.
            DataSpec::Npy(p) if p.is_dir() => {
                let shards = crate::stream::RowSource::open(p)?;
                shards.samples(0..shards.rows())
            }
            DataSpec::Npy(p) => npy::read(p),
            DataSpec::Parquet(p) => crate::parquet::read(p, csv),
            DataSpec::Images { dir, options } => image_folder::read(dir, options),
            DataSpec::Cifar10(dir) => cifar10::read(dir, split),
        }
    }

    /// Opens the data for reading as it goes (`--stream`): an `.npy` file or a folder of shards,
    /// a raw IDX images file, a Parquet table (read with the table options of `csv`) or a folder
    /// of images. Other kinds are an error saying which are streamed.
    pub fn stream(&self, csv: &CsvOptions) -> Result<crate::stream::RowSource> {
        use crate::stream::RowSource;
        match self {
            DataSpec::Npy(p) => RowSource::open(p),
            DataSpec::Idx { images, .. } => RowSource::open(images),
            DataSpec::Parquet(p) => RowSource::open_parquet(p, csv),
            DataSpec::Images { dir, options } => RowSource::open_images(dir, options),
            other => Err(Error::Spec {
                spec: other.to_string(),
                reason: "--stream reads npy:FILE, npy:FOLDER of .npy shards, idx:IMAGES \
                         (uncompressed), parquet:PATH or images:DIR; leave out --stream to read \
                         it into memory"
                    .into(),
            }),
        }
    }

    /// True for named data sets, which have a separate test split.
    pub fn has_test_split(&self) -> bool {
        matches!(self, DataSpec::Named(_) | DataSpec::Cifar10(_))
    }
}

impl FromStr for DataSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| {
            Error::Spec {
            spec: s.into(),
            reason: format!("{reason}; expected fashion-mnist, mnist, idx:IMAGES[,LABELS], csv:PATH, npy:PATH, parquet:PATH, images:DIR[,WxH][,gray|rgb] or cifar10:DIR"),
        }
        };
        if let Some(n) = Named::parse_name(s) {
            return Ok(DataSpec::Named(n));
        }
        let (kind, rest) = s.split_once(':').ok_or_else(|| bad("unknown data set"))?;
        if rest.is_empty() {
            return Err(bad("missing path"));
        }
        match kind {
            "idx" => {
                let (images, labels) = match rest.split_once(',') {
                    Some((i, l)) => (PathBuf::from(i), Some(PathBuf::from(l))),
                    None => (PathBuf::from(rest), None),
                };
                Ok(DataSpec::Idx { images, labels })
            }
            "csv" => Ok(DataSpec::Csv(rest.into())),
            "npy" => Ok(DataSpec::Npy(rest.into())),
            "parquet" => Ok(DataSpec::Parquet(rest.into())),
            "cifar10" => Ok(DataSpec::Cifar10(rest.into())),
            "images" => {
                let mut parts = rest.split(',');
                let dir = parts.next().unwrap_or_default();
                let opts: Vec<&str> = parts.collect();
                let options = image_folder::parse_options(&opts).map_err(|r| bad(&r))?;
                Ok(DataSpec::Images {
                    dir: dir.into(),
                    options,
                })
            }
            _ => Err(bad(&format!("unknown kind `{kind}`"))),
        }
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSpec::Named(n) => f.write_str(n.name()),
            DataSpec::Idx {
                images,
                labels: Some(l),
            } => write!(f, "idx:{},{}", images.display(), l.display()),
            DataSpec::Idx {
                images,
                labels: None,
            } => write!(f, "idx:{}", images.display()),
            DataSpec::Csv(p) => write!(f, "csv:{}", p.display()),
            DataSpec::Npy(p) => write!(f, "npy:{}", p.display()),
            DataSpec::Parquet(p) => write!(f, "parquet:{}", p.display()),
            DataSpec::Cifar10(p) => write!(f, "cifar10:{}", p.display()),
            DataSpec::Images { dir, options } => {
                write!(f, "images:{}", dir.display())?;
                if let Some((w, h)) = options.size {
                    write!(f, ",{w}x{h}")?;
                }
                match options.color {
                    Some(image_folder::Color::Gray) => write!(f, ",gray"),
                    Some(image_folder::Color::Rgb) => write!(f, ",rgb"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trip() {
        for s in [
            "fashion-mnist",
            "mnist",
            "idx:a.gz,b.gz",
            "idx:a",
            "csv:x/y.csv",
            "npy:z.npy",
            "parquet:t/",
            "csv:C:/data/x.csv",
            "cifar10:data/cifar",
            "images:photos",
            "images:photos,32x24,rgb",
            "images:p,gray",
        ] {
            assert_eq!(s.parse::<DataSpec>().unwrap().to_string(), s);
        }
        assert_eq!(
            "idx:i.gz,l.gz".parse::<DataSpec>().unwrap(),
            DataSpec::Idx {
                images: "i.gz".into(),
                labels: Some("l.gz".into())
            }
        );
        for s in ["cifar", "csv:", "tsv:x", "idx:"] {
            let e = s.parse::<DataSpec>().unwrap_err().to_string();
            assert!(
                e.contains(&format!("`{s}`"))
                    && e.contains(
                        "expected fashion-mnist, mnist, idx:IMAGES[,LABELS], csv:PATH, npy:PATH, parquet:PATH, images:DIR[,WxH][,gray|rgb] or cifar10:DIR"
                    ),
                "{e}"
            );
        }
    }

    #[test]
    fn file_specs_load_the_whole_file_whatever_the_split() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "a,b\n1,2\n3,4\n").unwrap();
        let npy = dir.path().join("t.npy");
        npy::write_f32(&npy, &[3, 1], &[1.0, 2.0, 3.0]).unwrap();
        let lookup = Lookup::default();
        let opts = CsvOptions::default();
        for split in [Split::Train, Split::Test] {
            let s = DataSpec::Csv(csv.clone())
                .load(&lookup, split, &opts)
                .unwrap();
            assert_eq!((s.n, s.shape), (2, vec![2]));
            let s = DataSpec::Npy(npy.clone())
                .load(&lookup, split, &opts)
                .unwrap();
            assert_eq!((s.n, s.shape), (3, vec![1]));
        }
        assert!(!DataSpec::Csv(csv).has_test_split());
        assert!(DataSpec::Named(Named::Mnist).has_test_split());
        assert!(DataSpec::Cifar10("c".into()).has_test_split());
        assert!("images:x,12".parse::<DataSpec>().is_err());
    }
}
