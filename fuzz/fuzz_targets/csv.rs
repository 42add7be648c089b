//! CSV reader on arbitrary bytes, with and without missing values allowed.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.csv");
    std::fs::write(&p, data).unwrap();
    let mut opts = ae_data::csv_table::CsvOptions::default();
    let _ = ae_data::csv_table::read(&p, &opts);
    opts.allow_missing = true;
    opts.label_column = Some("0".into());
    let _ = ae_data::csv_table::read(&p, &opts);
});
