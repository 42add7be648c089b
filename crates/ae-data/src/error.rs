//! The one error type of the data crate: every variant names the file (or URL) and the place.
use std::path::PathBuf;

/// Everything that can go wrong while reading, scaling or fetching data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused a read or write.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A binary file (IDX, NPY) is malformed.
    #[error("{path}: {reason}{}", offset.map(|o| format!(" (at byte {o})")).unwrap_or_default())]
    Format {
        path: PathBuf,
        offset: Option<u64>,
        reason: String,
    },
    /// A CSV cell or row is unusable.
    #[error("{path}: line {line}{}: {reason}", column.map(|c| format!(", column {c}")).unwrap_or_default())]
    Csv {
        path: PathBuf,
        line: usize,
        column: Option<usize>,
        reason: String,
    },
    /// A value is NaN or infinite.
    #[error("{path}: value {index} is {value}; data must be finite")]
    NonFinite {
        path: PathBuf,
        index: usize,
        value: f64,
    },
    /// A named data set is not on this machine.
    #[error("{}", not_found_message(name, searched))]
    DatasetNotFound {
        name: String,
        searched: Vec<PathBuf>,
    },
    /// A download failed.
    #[error("downloading {url}: {reason}")]
    Download { url: String, reason: String },
    /// A downloaded file does not have the published SHA-256.
    #[error("{file}: SHA-256 mismatch: expected {expected}, got {actual}; the file was discarded")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    /// A `--data` spec cannot be understood.
    #[error("bad data spec `{spec}`: {reason}")]
    Spec { spec: String, reason: String },
    /// Data of the wrong shape for what is asked.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },
    /// A scaling cannot apply to this data.
    #[error("scaling: {reason}")]
    Scaling { reason: String },
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

fn not_found_message(name: &str, searched: &[PathBuf]) -> String {
    let list: Vec<String> = searched
        .iter()
        .map(|p| format!("  {}", p.display()))
        .collect();
    let debian = if name == "fashion-mnist" {
        "\n  - on Debian or Ubuntu: apt-get install dataset-fashion-mnist"
    } else {
        ""
    };
    format!(
        "data set {name} not found; looked in:\n{}\nTo get it:\n  - ae datasets fetch {name}   (downloads the official files and checks their SHA-256){debian}\n  - or put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in one of those folders (or in $AE_DATA_DIR/{name})",
        list.join("\n")
    )
}
