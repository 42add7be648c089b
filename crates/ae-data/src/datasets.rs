//! The named data sets (Fashion-MNIST, MNIST): their official files and hashes, where to find them
//! on disk, and how to load a split. The download itself is in `download.rs`.
use std::path::{Path, PathBuf};
use std::str::FromStr;

// Named here too because callers meet them through `Named::fetch`.
pub use crate::download::{fetch_files, FetchEvent, Pinned};
use crate::error::{Error, Result};
use crate::idx;
use crate::samples::Samples;

/// A data set `ae` knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named {
    /// Zalando's Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 28×28 clothing images, 10 classes.
    FashionMnist,
    /// LeCun, Cortes & Burges' handwritten digits.
    Mnist,
}

/// A split of a named data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The 60,000 training examples.
    Train,
    /// The 10,000 test examples.
    Test,
}

/// The four files of an MNIST-style data set, in the order train images, train labels, test images,
/// test labels.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// The official Fashion-MNIST files (in the order of [`FILES`]) with their SHA-256 and size, as
/// pinned by TensorFlow Datasets in `tensorflow_datasets/url_checksums/fashion_mnist.txt`
/// (github.com/tensorflow/datasets) for the URLs under [`Named::base_url`]; the same hashes
/// appear in many projects that download these files.
const FASHION_FILES: [Pinned<'static>; 4] = [
    Pinned {
        name: FILES[0],
        sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        size: Some(26_421_880),
    },
    Pinned {
        name: FILES[1],
        sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        size: Some(29_515),
    },
    Pinned {
        name: FILES[2],
        sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        size: Some(4_422_102),
    },
    Pinned {
        name: FILES[3],
        sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        size: Some(5_148),
    },
];

/// The official MNIST files with their SHA-256 and size, as pinned by TensorFlow Datasets in
/// `tensorflow_datasets/url_checksums/mnist.txt` (for Google's CVDF mirror of LeCun's site; the
/// PyTorch mirror under [`Named::base_url`] serves the same bytes, and projects pinning that mirror
/// list the same hashes).
const MNIST_FILES: [Pinned<'static>; 4] = [
    Pinned {
        name: FILES[0],
        sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        size: Some(9_912_422),
    },
    Pinned {
        name: FILES[1],
        sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        size: Some(28_881),
    },
    Pinned {
        name: FILES[2],
        sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        size: Some(1_648_877),
    },
    Pinned {
        name: FILES[3],
        sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        size: Some(4_542),
    },
];

/// Where to look for named data sets first.
#[derive(Clone, Debug, Default)]
pub struct Lookup {
    /// `--data-dir`: searched before everything else (as is, and with the data set's name appended).
    pub data_dir: Option<PathBuf>,
}

impl Named {
    /// The name used on the command line and in folder names.
    pub fn name(self) -> &'static str {
        match self {
            Named::FashionMnist => "fashion-mnist",
            Named::Mnist => "mnist",
        }
    }

    /// The official download location.
    pub fn base_url(self) -> &'static str {
        match self {
            Named::FashionMnist => "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            Named::Mnist => "https://ossci-datasets.s3.amazonaws.com/mnist/",
        }
    }

    /// The official files with their SHA-256 and size.
    pub fn pinned_files(self) -> &'static [Pinned<'static>; 4] {
        match self {
            Named::FashionMnist => &FASHION_FILES,
            Named::Mnist => &MNIST_FILES,
        }
    }

    /// The folders searched, in order: `data_dir` and `data_dir/NAME`, `$AE_DATA_DIR/NAME`, the
    /// user cache folder's `autoencoder/NAME`, and `/usr/share/datasets/NAME` (where Debian's
    /// `dataset-fashion-mnist` puts its files).
    pub fn search_path(self, lookup: &Lookup) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(d) = &lookup.data_dir {
            dirs.push(d.clone());
            dirs.push(d.join(self.name()));
        }
        if let Some(d) = env_dir("AE_DATA_DIR") {
            dirs.push(d.join(self.name()));
        }
        if let Some(d) = dirs::cache_dir() {
            dirs.push(d.join("autoencoder").join(self.name()));
        }
        dirs.push(PathBuf::from("/usr/share/datasets").join(self.name()));
        dirs
    }

    /// The first folder that holds all four files (gzipped or not). Files found this way are not
    /// checked against the official SHA-256: Debian ships the same data re-compressed, so the
    /// compressed bytes differ; the IDX reader checks what is inside instead.
    pub fn locate(self, lookup: &Lookup) -> Result<PathBuf> {
        let searched = self.search_path(lookup);
        searched
            .iter()
            .find(|d| FILES.iter().all(|f| file_in(d, f).is_some()))
            .cloned()
            .ok_or_else(|| Error::DatasetNotFound {
                name: self.name().into(),
                searched,
            })
    }

    /// Loads a split with its labels (images of shape `[1, 28, 28]`, values 0 to 255).
    pub fn load(self, lookup: &Lookup, split: Split) -> Result<Samples> {
        let dir = self.locate(lookup)?;
        let (images, labels) = match split {
            Split::Train => (FILES[0], FILES[1]),
            Split::Test => (FILES[2], FILES[3]),
        };
        // `locate` saw the files, but one may have gone since: then report it as missing.
        let found = |f: &str| {
            file_in(&dir, f).ok_or_else(|| {
                Error::io(
                    dir.join(f),
                    std::io::Error::new(std::io::ErrorKind::NotFound, "file disappeared"),
                )
            })
        };
        idx::read_pair(&found(images)?, &found(labels)?)
    }

    /// Downloads the missing files into `dest` (created if needed), checking each one's SHA-256,
    /// and returns `dest`. Files already there with the right hash are kept; `base_url` (or else
    /// the `AE_DATASET_MIRROR` variable) replaces the official location. See [`fetch_files`] for
    /// what happens on failure.
    pub fn fetch(
        self,
        dest: &Path,
        base_url: Option<&str>,
        progress: &mut dyn FnMut(FetchEvent),
    ) -> Result<PathBuf> {
        let env = std::env::var("AE_DATASET_MIRROR")
            .ok()
            .filter(|m| !m.is_empty());
        let base = base_url.or(env.as_deref()).unwrap_or(self.base_url());
        fetch_files(self.pinned_files(), base, dest, progress)?;
        Ok(dest.to_path_buf())
    }

    /// Parses a name (`fashion-mnist`, also spelled `fashion_mnist` or `fashionmnist`; `mnist`).
    pub fn parse_name(s: &str) -> Option<Named> {
        match s {
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" => Some(Named::FashionMnist),
            "mnist" => Some(Named::Mnist),
            _ => None,
        }
    }
}

impl FromStr for Named {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Named::parse_name(s).ok_or_else(|| Error::Spec {
            spec: s.into(),
            reason: "unknown data set; expected fashion-mnist or mnist".into(),
        })
    }
}

/// The default download folder: `$AE_DATA_DIR/NAME`, else the user cache folder's
/// `autoencoder/NAME` (else the temporary folder's, on a system without a cache folder).
pub fn default_cache_dir(named: Named) -> PathBuf {
    match env_dir("AE_DATA_DIR") {
        Some(d) => d.join(named.name()),
        None => dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("autoencoder")
            .join(named.name()),
    }
}

/// A folder named by an environment variable; unset and empty are the same.
fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The file `name` in `dir`, gzipped or (without `.gz`) not.
fn file_in(dir: &Path, name: &str) -> Option<PathBuf> {
    let gz = dir.join(name);
    if gz.is_file() {
        return Some(gz);
    }
    let plain = dir.join(name.trim_end_matches(".gz"));
    plain.is_file().then_some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_table_is_well_formed() {
        for named in [Named::FashionMnist, Named::Mnist] {
            let files = named.pinned_files();
            for (f, name) in files.iter().zip(FILES) {
                assert_eq!(f.name, name);
                assert_eq!(f.sha256.len(), 64);
                assert!(f
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            }
            assert!(named.base_url().ends_with('/'));
            assert_eq!(named.name().parse::<Named>().unwrap(), named);
        }
        assert!("cifar".parse::<Named>().is_err());
    }

    #[test]
    fn locate_searches_data_dir_first_and_accepts_plain_names() {
        let dir = tempfile::tempdir().unwrap();
        let lookup = Lookup {
            data_dir: Some(dir.path().to_path_buf()),
        };
        let sub = dir.path().join("mnist");
        std::fs::create_dir(&sub).unwrap();
        // Three of four files is not enough.
        for f in &FILES[..3] {
            std::fs::write(sub.join(f.trim_end_matches(".gz")), b"").unwrap();
        }
        let e = Named::Mnist.locate(&lookup).unwrap_err().to_string();
        assert!(e.contains(&sub.display().to_string()), "{e}");
        std::fs::write(sub.join(FILES[3]), b"").unwrap();
        assert_eq!(Named::Mnist.locate(&lookup).unwrap(), sub);
        let searched = Named::Mnist.search_path(&lookup);
        assert_eq!(searched[..2], [dir.path().to_path_buf(), sub]);
        assert_eq!(
            searched.last().unwrap(),
            Path::new("/usr/share/datasets/mnist")
        );
    }

    #[test]
    fn not_found_message_says_how_to_get_it() {
        let lookup = Lookup {
            data_dir: Some(PathBuf::from("/nonexistent/place")),
        };
        match Named::Mnist.locate(&lookup).unwrap_err() {
            Error::DatasetNotFound { name, searched } => {
                assert_eq!(name, "mnist");
                assert_eq!(searched, Named::Mnist.search_path(&lookup));
            }
            other => panic!("{other}"),
        }
        let e = Named::Mnist.locate(&lookup).unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/place") && e.contains("ae datasets fetch mnist"),
            "{e}"
        );
    }

    /// Needs the real Fashion-MNIST data set (Debian's `dataset-fashion-mnist`, in
    /// /usr/share/datasets/fashion-mnist). Without it the test fails when `CI` is set and is
    /// skipped with a note otherwise.
    #[test]
    fn real_fashion_mnist_needs_dataset() {
        let dir = Path::new("/usr/share/datasets/fashion-mnist");
        if !dir.is_dir() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{} is missing: CI must install dataset-fashion-mnist",
                dir.display()
            );
            eprintln!(
                "note: {} is absent; skipping the real Fashion-MNIST test",
                dir.display()
            );
            return;
        }
        let lookup = Lookup {
            data_dir: Some(dir.to_path_buf()),
        };
        let train = Named::FashionMnist.load(&lookup, Split::Train).unwrap();
        let test = Named::FashionMnist.load(&lookup, Split::Test).unwrap();
        for (s, n) in [(&train, 60_000), (&test, 10_000)] {
            assert_eq!((s.n, s.shape.clone()), (n, vec![1, 28, 28]));
            assert_eq!(s.source, crate::samples::SourceType::U8);
            assert_eq!(s.data.len(), n * 784);
            let labels = s.labels.as_ref().unwrap();
            assert_eq!(labels.len(), n);
            assert!(labels.iter().all(|&l| l < 10));
            assert!(s.data.iter().all(|&v| (0.0..=255.0).contains(&v)));
        }
        // The first training image is an ankle boot (class 9).
        assert_eq!(train.labels.as_ref().unwrap()[0], 9);
    }
}
