//! `ae`: the command-line program. Parses arguments, runs the command, prints the whole error
//! chain and exits non-zero on failure.
/// `println!` that never panics: output to a closed pipe (`ae … | head`) is dropped, so a reader
/// that stops early cannot kill the work behind it.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!` that never panics (see `say!`).
macro_rules! note {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod anomaly;
mod args;
mod classify;
mod compare;
mod compress;
mod data;
mod device;
mod eval;
mod export;
mod generate;
mod impute;
mod labeled;
mod output;
mod pca;
mod probe;
mod progress;
mod report;
mod streamed;
mod train;
mod visualize;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use args::{Cli, Command, DatasetsAction};

fn main() -> ExitCode {
    ignore_file_size_signal();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            note!("error: {e}");
            // A cause that its message already quotes (an I/O error inside a file's error) is
            // said once.
            let mut said = e.to_string();
            for cause in e.chain().skip(1) {
                let text = cause.to_string();
                if !said.contains(&text) {
                    note!("  caused by: {text}");
                }
                said = text;
            }
            ExitCode::FAILURE
        }
    }
}

/// A write past the file-size limit (`ulimit -f`) raises SIGXFSZ, whose default action kills the
/// process; ignored, the write fails with EFBIG instead and is reported like a full disk.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command.unwrap_or(Command::Train(Box::default())) {
        Command::Train(a) => train::run(*a),
        Command::Eval(a) => eval::eval(a),
        Command::Encode(a) => eval::encode(a),
        Command::Reconstruct(a) => eval::reconstruct(a),
        Command::Export(a) => export::export(a),
        Command::Denoise(a) => eval::denoise(a),
        Command::Impute(a) => impute::impute(a),
        Command::Pca(a) => pca::pca(a),
        Command::Compare(a) => compare::compare(a),
        Command::Visualize(a) => visualize::visualize(a),
        Command::Probe(a) => probe::probe(a),
        Command::Classify(a) => classify::classify(a),
        Command::Predict(a) => classify::predict(a),
        Command::Anomaly(a) => anomaly::anomaly(a),
        Command::Report(a) => report::report(a),
        Command::Sample(a) => generate::sample(a),
        Command::Interpolate(a) => generate::interpolate(a),
        Command::Compress(a) => compress::run(a),
        Command::Datasets(a) => datasets(a.action),
    }
}

fn datasets(action: DatasetsAction) -> Result<()> {
    use ae_data::datasets::{Lookup, Named};
    match action {
        DatasetsAction::List { data_dir } => {
            let lookup = Lookup { data_dir };
            for named in [Named::FashionMnist, Named::Mnist] {
                match named.locate(&lookup) {
                    Ok(p) => say!("{:<14} {}", named.name(), p.display()),
                    Err(_) => say!(
                        "{:<14} not found (get it with `ae datasets fetch {}`)",
                        named.name(),
                        named.name()
                    ),
                }
            }
            Ok(())
        }
        DatasetsAction::Fetch { name, dir, mirror } => {
            let named: Named = name.parse()?;
            let path = data::fetch(named, dir, mirror.as_deref(), false)?;
            say!("{} is in {}", named.name(), path.display());
            Ok(())
        }
    }
}
