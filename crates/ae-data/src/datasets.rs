//! The named data sets (Fashion-MNIST, MNIST): where to find them on disk, and their download.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

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

/// SHA-256 of the official Fashion-MNIST files, as published in the Fashion-MNIST repository's
/// README and pinned by TensorFlow Datasets and torchvision-style loaders.
const FASHION_SHA256: [&str; 4] = [
    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
];

/// SHA-256 of the MNIST files as distributed by the PyTorch and Google Cloud mirrors (the same
/// bytes as the original distribution).
const MNIST_SHA256: [&str; 4] = [
    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
];

/// Where to look for named data sets first.
#[derive(Clone, Debug, Default)]
pub struct Lookup {
    /// `--data-dir`: searched before everything else (as is, and with the data set's name appended).
    pub data_dir: Option<PathBuf>,
}

/// Progress of a download.
#[derive(Clone, Debug)]
pub struct FetchEvent {
    /// The file being downloaded.
    pub file: String,
    /// Bytes received so far.
    pub done: u64,
    /// Bytes expected, when the server said.
    pub total: Option<u64>,
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

    fn checksums(self) -> [&'static str; 4] {
        match self {
            Named::FashionMnist => FASHION_SHA256,
            Named::Mnist => MNIST_SHA256,
        }
    }

    /// The folders searched, in order.
    pub fn search_path(self, lookup: &Lookup) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(d) = &lookup.data_dir {
            dirs.push(d.clone());
            dirs.push(d.join(self.name()));
        }
        if let Some(d) = std::env::var_os("AE_DATA_DIR") {
            dirs.push(PathBuf::from(d).join(self.name()));
        }
        if let Some(d) = dirs::cache_dir() {
            dirs.push(d.join("autoencoder").join(self.name()));
        }
        dirs.push(PathBuf::from("/usr/share/datasets").join(self.name()));
        dirs
    }

    /// The first folder that holds all four files (gzipped or not).
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

    /// Loads a split with its labels.
    pub fn load(self, lookup: &Lookup, split: Split) -> Result<Samples> {
        let dir = self.locate(lookup)?;
        let (images, labels) = match split {
            Split::Train => (FILES[0], FILES[1]),
            Split::Test => (FILES[2], FILES[3]),
        };
        let found = |f| file_in(&dir, f).expect("locate checked every file");
        idx::read_pair(&found(images), &found(labels))
    }

    /// Downloads the missing files into `dest`, checking each one's SHA-256; `base_url` (or the
    /// `AE_DATASET_MIRROR` variable) replaces the official location.
    pub fn fetch(
        self,
        dest: &Path,
        base_url: Option<&str>,
        progress: &mut dyn FnMut(FetchEvent),
    ) -> Result<PathBuf> {
        let env = std::env::var("AE_DATASET_MIRROR").ok();
        let base = base_url.or(env.as_deref()).unwrap_or(self.base_url());
        let files: Vec<(&str, &str)> = FILES.iter().copied().zip(self.checksums()).collect();
        fetch_files(&files, base, dest, progress)?;
        Ok(dest.to_path_buf())
    }

    /// Parses a name.
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

/// The default download folder: `$AE_DATA_DIR/NAME`, else the user cache folder.
pub fn default_cache_dir(named: Named) -> PathBuf {
    match std::env::var_os("AE_DATA_DIR") {
        Some(d) => PathBuf::from(d).join(named.name()),
        None => dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("autoencoder")
            .join(named.name()),
    }
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

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Downloads each `(file, sha256)` from `base` into `dest`, skipping files already there with the
/// right hash. Each file streams into a temporary file beside its destination while it is hashed;
/// only a complete file with the right hash is renamed into place, so a failed download never
/// leaves a file at the final path.
pub fn fetch_files(
    files: &[(&str, &str)],
    base: &str,
    dest: &Path,
    progress: &mut dyn FnMut(FetchEvent),
) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    for (name, expected) in files {
        let target = dest.join(name);
        if target.is_file() && sha256_file(&target)? == *expected {
            continue;
        }
        let url = format!("{}/{}", base.trim_end_matches('/'), name);
        let dl = |reason: String| Error::Download {
            url: url.clone(),
            reason,
        };
        let mut response = ureq::get(&url).call().map_err(|e| dl(e.to_string()))?;
        let total = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut body = response.body_mut().with_config().limit(u64::MAX).reader();
        let mut tmp = tempfile::Builder::new()
            .prefix(".download-")
            .tempfile_in(dest)
            .map_err(|e| Error::io(dest, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut done = 0u64;
        loop {
            let k = body
                .read(&mut buf)
                .map_err(|e| dl(format!("connection failed after {done} bytes: {e}")))?;
            if k == 0 {
                break;
            }
            hasher.update(&buf[..k]);
            tmp.write_all(&buf[..k])
                .map_err(|e| Error::io(tmp.path(), e))?;
            done += k as u64;
            progress(FetchEvent {
                file: name.to_string(),
                done,
                total,
            });
        }
        if let Some(t) = total.filter(|&t| t != done) {
            return Err(dl(format!("connection closed after {done} of {t} bytes")));
        }
        let actual = hex(&hasher.finalize());
        if actual != *expected {
            return Err(Error::Checksum {
                file: url,
                expected: expected.to_string(),
                actual,
            });
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
        tmp.persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// A bounded HTTP/1.1 server on 127.0.0.1: answers `requests` requests, then stops. `respond`
    /// maps a path to (status, declared length, body).
    fn serve(requests: usize, respond: fn(&str) -> (u16, usize, Vec<u8>)) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let Ok(mut s) = stream else { continue };
                let mut line = String::new();
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                r.read_line(&mut line).unwrap();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, len, body) = respond(&path);
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                );
                let _ = s.write_all(&body);
            }
        });
        format!("http://{addr}")
    }

    fn sha(b: &[u8]) -> String {
        hex(&Sha256::digest(b))
    }

    fn no_files(dir: &Path) -> bool {
        std::fs::read_dir(dir)
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    }

    #[test]
    fn good_download_lands_and_is_skipped_next_time() {
        let base = serve(1, |_| (200, 5, b"hello".to_vec()));
        let dir = tempfile::tempdir().unwrap();
        let mut events = 0;
        fetch_files(&[("a.gz", &sha(b"hello"))], &base, dir.path(), &mut |_| {
            events += 1
        })
        .unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.gz")).unwrap(), b"hello");
        assert!(events > 0);
        // The server is gone now: a second fetch must not need it.
        fetch_files(&[("a.gz", &sha(b"hello"))], &base, dir.path(), &mut |_| {}).unwrap();
    }

    #[test]
    fn wrong_bytes_leave_no_file() {
        let base = serve(1, |_| (200, 5, b"evil!".to_vec()));
        let dir = tempfile::tempdir().unwrap();
        let e = fetch_files(&[("a.gz", &sha(b"hello"))], &base, dir.path(), &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SHA-256 mismatch") && e.contains("a.gz") && e.contains(&sha(b"evil!")),
            "{e}"
        );
        assert!(no_files(dir.path()), "a file was left behind");
    }

    #[test]
    fn cut_connection_leaves_no_file() {
        let base = serve(1, |_| (200, 1000, b"only a part".to_vec()));
        let dir = tempfile::tempdir().unwrap();
        let e = fetch_files(&[("a.gz", &sha(b"hello"))], &base, dir.path(), &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a.gz") && (e.contains("closed after") || e.contains("connection failed")),
            "{e}"
        );
        assert!(no_files(dir.path()), "a file was left behind");
    }

    #[test]
    fn not_found_is_an_error_naming_the_url() {
        let base = serve(1, |_| (404, 0, Vec::new()));
        let dir = tempfile::tempdir().unwrap();
        let e = fetch_files(&[("a.gz", &sha(b"x"))], &base, dir.path(), &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("/a.gz") && e.contains("404"), "{e}");
        assert!(no_files(dir.path()));
    }

    #[test]
    fn not_found_message_says_how_to_get_it() {
        let lookup = Lookup {
            data_dir: Some(PathBuf::from("/nonexistent/place")),
        };
        let e = Named::Mnist.locate(&lookup).unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/place") && e.contains("ae datasets fetch mnist"),
            "{e}"
        );
        let e = Error::DatasetNotFound {
            name: "fashion-mnist".into(),
            searched: vec![],
        }
        .to_string();
        assert!(e.contains("apt-get install dataset-fashion-mnist"), "{e}");
    }
}
