//! Reads a table whole into memory and prints its size and the seconds it took: the Rust side of
//! `bench/parquet_read.py`. Usage: `read_table parquet:PATH|csv:PATH|npy:PATH [REPEATS]`.
use std::time::Instant;

use ae_data::csv_table::CsvOptions;
use ae_data::datasets::{Lookup, Split};
use ae_data::spec::DataSpec;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let spec: DataSpec = args
        .next()
        .ok_or("usage: read_table SPEC [REPEATS]")?
        .parse()?;
    let repeats: usize = args.next().map_or(Ok(3), |r| r.parse())?;
    for _ in 0..repeats {
        let t = Instant::now();
        let s = spec.load(&Lookup::default(), Split::Train, &CsvOptions::default())?;
        let secs = t.elapsed().as_secs_f64();
        let sum: f64 = s.data.iter().step_by(4099).map(|&v| v as f64).sum();
        println!(
            "{} rows x {} features in {secs:.3} s (checksum {sum:.3})",
            s.n,
            s.features()
        );
    }
    Ok(())
}
