//! The TOML settings of a run (`config.toml`, and `ae train --config`) from arbitrary text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(s) = toml::from_str::<ae_core::training::settings::Settings>(text) {
        let _ = s.validate();
        let _ = s.model_config(&[4]).validate();
    }
});
