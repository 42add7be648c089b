//! The one error type of the data crate: every variant names the file (or URL) and the place.
use std::path::PathBuf;

/// Everything that can go wrong while reading, scaling or fetching data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused a read or write.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A binary file (IDX, NPY) is malformed.
    #[error("{path}: {reason}{}", offset.map(|o| format!(" (at byte {o})")).unwrap_or_default())]
    Format {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad part (in the decompressed stream for gzipped files).
        offset: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// A CSV cell or row is unusable.
    #[error("{path}: line {line}{}: {reason}", column.map(|c| format!(", column {c}")).unwrap_or_default())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based column number, when one cell is at fault.
        column: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// A value is NaN or infinite.
    #[error("{path}: value {index} is {value}; data must be finite")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// Flat index of the value (row-major over the whole array).
        index: usize,
        /// The value itself.
        value: f64,
    },
    /// A named data set is not on this machine.
    #[error("{}", not_found_message(name, searched))]
    DatasetNotFound {
        /// The data set's name (`fashion-mnist`, `mnist`).
        name: String,
        /// Every folder looked in, in order.
        searched: Vec<PathBuf>,
    },
    /// A download failed.
    #[error("downloading {url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A downloaded file does not have the published SHA-256.
    #[error("{file}: SHA-256 mismatch: expected {expected}, got {actual}; the file was discarded")]
    Checksum {
        /// The URL (or name) of the file.
        file: String,
        /// The published hash.
        expected: String,
        /// The hash of what arrived.
        actual: String,
    },
    /// A `--data` spec (or data set name) cannot be understood.
    #[error("bad data spec `{spec}`: {reason}")]
    Spec {
        /// The text given.
        spec: String,
        /// What is wrong, with the accepted forms.
        reason: String,
    },
    /// Data of the wrong shape for what is asked.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// What was being checked.
        what: String,
        /// The shape or count wanted.
        expected: String,
        /// The shape or count found.
        got: String,
    },
    /// A scaling cannot apply to this data.
    #[error("scaling: {reason}")]
    Scaling {
        /// Why not.
        reason: String,
    },
}

/// Result with the data crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A format error on `path` at `offset`.
    pub fn format(
        path: impl Into<PathBuf>,
        offset: Option<u64>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Format {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// What to say when a named data set is missing: where we looked and every way to get it.
fn not_found_message(name: &str, searched: &[PathBuf]) -> String {
    let list: Vec<String> = searched
        .iter()
        .map(|p| format!("  {}", p.display()))
        .collect();
    let debian = match name {
        "fashion-mnist" => "\n  - on Debian or Ubuntu: apt-get install dataset-fashion-mnist",
        // Checked with apt-cache: Debian packages Fashion-MNIST but not MNIST.
        _ => "",
    };
    format!(
        "data set {name} not found; looked in:\n{}\nTo get it:\n  - ae datasets fetch {name}   (downloads the official files and checks their SHA-256){debian}\n  - or put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (gzipped or not) in one of those folders, or in $AE_DATA_DIR/{name} with AE_DATA_DIR set",
        list.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_place() {
        let e = Error::format("a.idx", Some(4), "bad").to_string();
        assert_eq!(e, "a.idx: bad (at byte 4)");
        let e = Error::Csv {
            path: "t.csv".into(),
            line: 3,
            column: Some(2),
            reason: "`x` is not a number".into(),
        };
        assert_eq!(
            e.to_string(),
            "t.csv: line 3, column 2: `x` is not a number"
        );
    }

    #[test]
    fn not_found_says_how_to_get_each_set() {
        let e = Error::DatasetNotFound {
            name: "fashion-mnist".into(),
            searched: vec![PathBuf::from("/x/fashion-mnist")],
        }
        .to_string();
        assert!(
            e.contains("/x/fashion-mnist")
                && e.contains("ae datasets fetch fashion-mnist")
                && e.contains("apt-get install dataset-fashion-mnist")
                && e.contains("AE_DATA_DIR"),
            "{e}"
        );
        let e = Error::DatasetNotFound {
            name: "mnist".into(),
            searched: vec![],
        }
        .to_string();
        assert!(
            e.contains("ae datasets fetch mnist") && !e.contains("apt-get"),
            "{e}"
        );
    }
}
