//! Files of a model on disk: safetensors weights and checkpoints, written atomically.
//!
//! Every write goes to a temporary file in the destination folder, is fsynced, then renamed over
//! the destination: a reader (or a crash) sees the old file or the new one, never half of one.
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::engine::params::Params;
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename, fsync of the folder).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    #[cfg(unix)]
    {
        // Temporary files are private (0600); a run's files are ordinary documents.
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Makes the rename itself durable; not every filesystem allows fsync on a folder.
        let _ = d.sync_all();
    }
    Ok(())
}

fn to_bytes(t: &Tensor) -> Vec<u8> {
    t.data().iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Serializes named tensors (f32) with string metadata into safetensors bytes.
pub fn to_safetensors(
    tensors: &[(String, &Tensor)],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), to_bytes(t), t.shape().to_vec()))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, b, s)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::format("<memory>", format!("cannot build tensor view: {e}")))?;
    let meta = if metadata.is_empty() {
        None
    } else {
        Some(metadata)
    };
    safetensors::serialize(views, meta)
        .map_err(|e| Error::format("<memory>", format!("cannot serialize: {e}")))
}

/// Tensors read from a safetensors file, by name, with the file's metadata.
#[derive(Debug, Default)]
pub struct TensorFile {
    /// Tensors by name.
    pub tensors: HashMap<String, Tensor>,
    /// The `__metadata__` strings.
    pub metadata: HashMap<String, String>,
}

/// Reads a safetensors file of f32 tensors; any other dtype is an error naming the tensor.
pub fn read_safetensors(path: &Path) -> Result<TensorFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::format(path, format!("not a valid safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::format(path, format!("bad header: {e}")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::format(
                path,
                format!(
                    "tensor `{name}` has dtype {:?}; only F32 is supported",
                    view.dtype()
                ),
            ));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let t = Tensor::from_vec(view.shape(), data);
        tensors.insert(name, t);
    }
    Ok(TensorFile { tensors, metadata })
}

/// Saves the parameters under their names.
pub fn save_params(path: &Path, params: &Params, metadata: HashMap<String, String>) -> Result<()> {
    let named: Vec<(String, &Tensor)> = params
        .names
        .iter()
        .cloned()
        .zip(params.values.iter())
        .collect();
    write_atomic(path, &to_safetensors(&named, metadata)?)
}

/// Loads parameter values by name into `params`, requiring exactly the same names and shapes: a
/// missing, extra or misshapen tensor is an error naming it.
pub fn load_params_from(
    path: &Path,
    file: &mut TensorFile,
    prefix: &str,
    params: &mut Params,
) -> Result<()> {
    for (i, name) in params.names.iter().enumerate() {
        let key = format!("{prefix}{name}");
        let t = file
            .tensors
            .remove(&key)
            .ok_or_else(|| Error::format(path, format!("missing tensor `{key}`")))?;
        if t.shape() != params.values[i].shape() {
            return Err(Error::format(
                path,
                format!(
                    "tensor `{key}` has shape {:?} but the model needs {:?}",
                    t.shape(),
                    params.values[i].shape()
                ),
            ));
        }
        params.values[i] = t;
    }
    Ok(())
}

/// Loads weights saved by [`save_params`] into `params`; extra tensors are an error too.
pub fn load_params(path: &Path, params: &mut Params) -> Result<HashMap<String, String>> {
    let mut file = read_safetensors(path)?;
    load_params_from(path, &mut file, "", params)?;
    if let Some(extra) = file.tensors.keys().min() {
        return Err(Error::format(
            path,
            format!("unexpected tensor `{extra}`: the weights do not match the model's config"),
        ));
    }
    Ok(file.metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::params::ParamKind;

    fn params() -> Params {
        let mut p = Params::default();
        p.add(
            "encoder.0.weight",
            ParamKind::Weight,
            Tensor::from_vec(&[2, 3], vec![1.0, -2.0, 3.5, 0.25, 5.0, -6.0]),
        );
        p.add(
            "encoder.0.bias",
            ParamKind::Bias,
            Tensor::from_vec(&[2], vec![0.5, -0.5]),
        );
        p
    }

    #[test]
    fn round_trip_and_mismatches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let p = params();
        save_params(&path, &p, HashMap::from([("k".into(), "v".into())])).unwrap();
        let mut q = params();
        q.values.iter_mut().for_each(|t| t.fill(0.0));
        let meta = load_params(&path, &mut q).unwrap();
        assert_eq!(q.values, p.values);
        assert_eq!(meta["k"], "v");

        // A model with another shape refuses the file, naming the tensor.
        let mut r = Params::default();
        r.add(
            "encoder.0.weight",
            ParamKind::Weight,
            Tensor::zeros(&[3, 3]),
        );
        r.add("encoder.0.bias", ParamKind::Bias, Tensor::zeros(&[2]));
        let e = load_params(&path, &mut r).unwrap_err().to_string();
        assert!(
            e.contains("encoder.0.weight") && e.contains("[2, 3]"),
            "{e}"
        );

        // Missing and extra tensors.
        let mut s = params();
        s.add("decoder.0.bias", ParamKind::Bias, Tensor::zeros(&[3]));
        assert!(load_params(&path, &mut s)
            .unwrap_err()
            .to_string()
            .contains("missing tensor `decoder.0.bias`"));
        let mut t = Params::default();
        t.add(
            "encoder.0.weight",
            ParamKind::Weight,
            Tensor::zeros(&[2, 3]),
        );
        assert!(load_params(&path, &mut t)
            .unwrap_err()
            .to_string()
            .contains("unexpected tensor `encoder.0.bias`"));
    }

    #[test]
    fn garbage_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        // A header claiming 4 GB in a tiny file.
        let mut bytes = (4u64 << 30).to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        std::fs::write(&path, &bytes).unwrap();
        let e = read_safetensors(&path).unwrap_err().to_string();
        assert!(
            e.contains("bad.safetensors") && e.contains("not a valid safetensors"),
            "{e}"
        );
    }

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
