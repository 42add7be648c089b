//! IDX reader on arbitrary bytes (raw or gzipped): any error is fine, a panic or an allocation the
//! file cannot back is a finding.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.idx");
    std::fs::write(&p, data).unwrap();
    let _ = ae_data::idx::read_images(&p);
    let _ = ae_data::idx::read_labels(&p);
});
