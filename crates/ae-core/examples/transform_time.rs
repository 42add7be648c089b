//! The library's time to encode some rows with a saved run: best of 20 calls of scaling plus
//! `Autoencoder::codes`. `bench/python_overhead.py` runs it beside the same work through the
//! Python package.
//!
//!     cargo run --release -p ae-core --example transform_time -- RUN ROWS.npy
use std::time::Instant;

use ae_core::run::RunDir;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, run, rows] = args.as_slice() else {
        return Err("usage: transform_time RUN ROWS.npy".into());
    };
    let (settings, meta, task) = RunDir::open(run.as_ref())?.load()?;
    ae_core::training::configure_threads(settings.threads);
    let raw = ae_core::ae_data::npy::read(rows.as_ref())?;
    let mut best = f64::INFINITY;
    for _ in 0..20 {
        let t = Instant::now();
        let x = meta.prepare(raw.clone())?;
        let codes = task.model.codes(&x);
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(codes.rows(), raw.n);
    }
    println!("{best:.6}");
    Ok(())
}
