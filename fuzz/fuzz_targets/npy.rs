//! NPY reader on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.npy");
    std::fs::write(&p, data).unwrap();
    let _ = ae_data::npy::read(&p);
});
