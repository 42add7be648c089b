//! Checked downloads: each file streams into a temporary file while it is hashed, and only a
//! complete file with the pinned SHA-256 is renamed into place.
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A file to download and what it must be: its SHA-256 (lowercase hex) and, when known, its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pinned<'a> {
    /// File name, appended to the base URL and used in the destination folder.
    pub name: &'a str,
    /// Expected SHA-256, lowercase hex.
    pub sha256: &'a str,
    /// Expected size in bytes: a server that sends more is cut off (no disk filled by a bad mirror).
    pub size: Option<u64>,
}

/// Progress of a download: sent once when a file starts (`done` = 0), then after each chunk.
#[derive(Clone, Debug)]
pub struct FetchEvent {
    /// The file being downloaded.
    pub file: String,
    /// Bytes received so far.
    pub done: u64,
    /// Bytes expected, when the server said.
    pub total: Option<u64>,
}

/// The SHA-256 of a file on disk, lowercase hex.
fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
    Ok(hex(&h.finalize()))
}

/// Lowercase hex, two digits a byte.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Downloads each pinned file from `base` into `dest`, skipping files already there with the
/// right hash.
///
/// Each file streams into a temporary file in `dest` while it is hashed. On a wrong hash, a cut
/// connection (fewer bytes than the server announced, or an I/O error), an HTTP error or more bytes
/// than the pinned size, the temporary file is deleted and an error names the URL and the reason.
/// Only a complete file with the right hash is synced to disk and renamed into place, so a failed
/// download never leaves a file at the final path. Files fetched before a failure stay (they were
/// checked).
pub fn fetch_files(
    files: &[Pinned<'_>],
    base: &str,
    dest: &Path,
    progress: &mut dyn FnMut(FetchEvent),
) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let agent = agent();
    for file in files {
        let target = dest.join(file.name);
        if target.is_file() && sha256_file(&target)? == file.sha256 {
            continue;
        }
        let url = format!("{}/{}", base.trim_end_matches('/'), file.name);
        download(&agent, &url, file, dest, progress)?;
    }
    Ok(())
}

/// An HTTP client that gives up on a server that does not answer or stalls, but lets a slow,
/// steady download take as long as it needs.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        // The files are gzip already: ask for them as they are, so the hash is of those bytes.
        .accept_encoding(ureq::config::AutoHeaderValue::None)
        .build()
        .new_agent()
}

/// Downloads one file to `dest/NAME` through a temporary file; see [`fetch_files`].
fn download(
    agent: &ureq::Agent,
    url: &str,
    file: &Pinned<'_>,
    dest: &Path,
    progress: &mut dyn FnMut(FetchEvent),
) -> Result<()> {
    let dl = |reason: String| Error::Download {
        url: url.to_string(),
        reason,
    };
    let mut response = agent.get(url).call().map_err(|e| dl(e.to_string()))?;
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_big = |n: u64| {
        file.size.filter(|&s| n > s).map(|s| {
            dl(format!(
                "the server sends more than the {s} bytes the file has"
            ))
        })
    };
    if let Some(e) = total.and_then(too_big) {
        return Err(e);
    }
    // ureq's default body limit (10 MB) is below the largest file; the pinned size bounds it
    // instead, one byte over so that an overlong body is seen.
    let limit = file.size.map_or(u64::MAX, |s| s + 1);
    let mut body = response.body_mut().with_config().limit(limit).reader();
    // Dropped (and so deleted) on every early return below.
    let mut tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(dest)
        .map_err(|e| Error::io(dest, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    progress(FetchEvent {
        file: file.name.to_string(),
        done,
        total,
    });
    loop {
        let k = body
            .read(&mut buf)
            .map_err(|e| dl(format!("connection failed after {done} bytes: {e}")))?;
        if k == 0 {
            break;
        }
        done += k as u64;
        if let Some(e) = too_big(done) {
            return Err(e);
        }
        hasher.update(&buf[..k]);
        tmp.write_all(&buf[..k])
            .map_err(|e| Error::io(tmp.path(), e))?;
        progress(FetchEvent {
            file: file.name.to_string(),
            done,
            total,
        });
    }
    if let Some(t) = total.filter(|&t| t != done) {
        return Err(dl(format!("connection closed after {done} of {t} bytes")));
    }
    let actual = hex(&hasher.finalize());
    if actual != file.sha256 {
        return Err(Error::Checksum {
            file: url.to_string(),
            expected: file.sha256.to_string(),
            actual,
        });
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), e))?;
    let target = dest.join(file.name);
    tmp.persist(&target)
        .map_err(|e| Error::io(&target, e.error))?;
    // The rename is durable only once the folder itself is synced.
    std::fs::File::open(dest)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dest, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// What the test server answers: status, declared Content-Length, body actually sent.
    type Reply = (u16, usize, Vec<u8>);

    /// A bounded HTTP/1.1 server on 127.0.0.1: answers at most `requests` requests, then stops.
    /// It only ever listens on the loopback address.
    fn serve(requests: usize, respond: fn(&str) -> Reply) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let Ok(mut s) = stream else { continue };
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    match r.read_line(&mut h) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if h == "\r\n" => break,
                        Ok(_) => {}
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

    fn pin<'a>(name: &'a str, sha256: &'a str) -> Pinned<'a> {
        Pinned {
            name,
            sha256,
            size: None,
        }
    }

    /// The names in `dir`, temporary files included.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn good_download_lands_and_is_skipped_next_time() {
        let base = serve(2, |p| match p {
            "/a.gz" => (200, 5, b"hello".to_vec()),
            _ => (200, 3, b"bye".to_vec()),
        });
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("new/folder");
        let (ha, hb) = (sha(b"hello"), sha(b"bye"));
        let files = [pin("a.gz", &ha), pin("b.gz", &hb)];
        let mut events = Vec::new();
        fetch_files(&files, &base, &dest, &mut |e| events.push(e)).unwrap();
        assert_eq!(std::fs::read(dest.join("a.gz")).unwrap(), b"hello");
        assert_eq!(std::fs::read(dest.join("b.gz")).unwrap(), b"bye");
        assert_eq!(names(&dest), ["a.gz", "b.gz"]);
        let last = events.iter().rfind(|e| e.file == "a.gz").unwrap();
        assert_eq!((last.done, last.total), (5, Some(5)));
        // The server is gone now: a second fetch must not need it.
        fetch_files(&files, &base, &dest, &mut |_| {}).unwrap();
    }

    #[test]
    fn wrong_bytes_leave_no_file() {
        let base = serve(1, |_| (200, 5, b"evil!".to_vec()));
        let dir = tempfile::tempdir().unwrap();
        let want = sha(b"hello");
        let e = fetch_files(&[pin("a.gz", &want)], &base, dir.path(), &mut |_| {})
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "{base}/a.gz: SHA-256 mismatch: expected {want}, got {}; the file was discarded",
                sha(b"evil!")
            )
        );
        assert!(names(dir.path()).is_empty(), "left {:?}", names(dir.path()));
    }

    #[test]
    fn wrong_file_already_there_is_replaced() {
        let base = serve(1, |_| (200, 5, b"hello".to_vec()));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.gz"), b"stale").unwrap();
        let want = sha(b"hello");
        fetch_files(&[pin("a.gz", &want)], &base, dir.path(), &mut |_| {}).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.gz")).unwrap(), b"hello");
    }

    #[test]
    fn cut_connection_leaves_no_file() {
        let base = serve(1, |_| (200, 1000, b"only a part".to_vec()));
        let dir = tempfile::tempdir().unwrap();
        let want = sha(b"hello");
        let e = fetch_files(&[pin("a.gz", &want)], &base, dir.path(), &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("downloading {base}/a.gz: "))
                && (e.contains("closed after 11 of 1000 bytes")
                    || e.contains("connection failed after")),
            "{e}"
        );
        assert!(names(dir.path()).is_empty(), "left {:?}", names(dir.path()));
    }

    #[test]
    fn more_than_the_pinned_size_is_refused() {
        let base = serve(2, |p| match p {
            // Announced too large.
            "/a.gz" => (200, 1 << 30, b"0123456789".to_vec()),
            // Announced honestly, but longer than the file is.
            _ => (200, 10, b"0123456789".to_vec()),
        });
        let dir = tempfile::tempdir().unwrap();
        let want = sha(b"01234");
        for name in ["a.gz", "b.gz"] {
            let file = Pinned {
                name,
                sha256: &want,
                size: Some(5),
            };
            let e = fetch_files(&[file], &base, dir.path(), &mut |_| {})
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("/{name}")) && e.contains("more than the 5 bytes"),
                "{e}"
            );
        }
        assert!(names(dir.path()).is_empty(), "left {:?}", names(dir.path()));
    }

    #[test]
    fn not_found_is_an_error_naming_the_url() {
        let base = serve(1, |_| (404, 0, Vec::new()));
        let dir = tempfile::tempdir().unwrap();
        let want = sha(b"x");
        let e = fetch_files(&[pin("a.gz", &want)], &base, dir.path(), &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("downloading {base}/a.gz: ")) && e.contains("404"),
            "{e}"
        );
        assert!(names(dir.path()).is_empty(), "left {:?}", names(dir.path()));
    }
}
