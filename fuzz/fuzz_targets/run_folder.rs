//! A run folder whose config.toml, meta.json and model.safetensors come from the fuzzer (the input
//! is cut in three at two 0xFF bytes): loading must fail cleanly or give a usable model.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0xFF);
    let (config, meta, weights) = (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    std::fs::write(dir.path().join("meta.json"), meta).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), weights).unwrap();
    let Ok(run) = ae_core::run::RunDir::open(dir.path()) else { return };
    if let Ok((_, meta, mut task)) = run.load() {
        // Bound the work: only small models are run.
        if task.model.params.count() < 100_000 && meta.input_shape.iter().product::<usize>() < 10_000 {
            let d: usize = meta.input_shape.iter().product();
            let mut shape = vec![2];
            shape.extend(&meta.input_shape);
            let x = ae_core::Tensor::from_vec(&shape, vec![0.5; 2 * d]);
            task.model.forward(&x, ae_core::engine::layers::Mode::Eval);
        }
    }
});
