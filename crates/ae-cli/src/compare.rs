//! `ae compare RUN_A RUN_B`: test metrics side by side on the same data, and for two linear maps
//! (a linear autoencoder, PCA) the principal angles between the subspaces they project onto.
use ae_core::analysis::subspace::{linear_map, principal_angles};
use ae_core::run::RunDir;
use anyhow::Result;
use serde_json::json;

use crate::args::{CompareArgs, RunData};
use crate::eval::{load, metrics};

/// Runs `ae compare`.
pub fn compare(args: CompareArgs) -> Result<()> {
    // Both runs see the same data: --data, else the first run's.
    let data = match args.data.clone() {
        Some(d) => d,
        None => RunDir::open(&args.run_a)?.read_settings()?.data,
    };
    let input = |run: &std::path::Path| RunData {
        run: run.to_path_buf(),
        data: Some(data.clone()),
        split: args.split,
        data_dir: args.data_dir.clone(),
        threads: args.threads,
        classes: None,
    };
    let mut a = load(&input(&args.run_a))?;
    let mut b = load(&input(&args.run_b))?;
    let ma = metrics(&mut a.task.model, a.meta.scaler.kind, &a.x, &a.x);
    let mb = metrics(&mut b.task.model, b.meta.scaler.kind, &b.x, &b.x);
    let angles = match (linear_map(&a.task.model), linear_map(&b.task.model)) {
        (Some((wa, ka)), Some((wb, kb))) => {
            let d = a.task.model.config.input_features();
            Some(principal_angles(&wa, ka, &wb, kb, d)?)
        }
        _ => None,
    };
    if args.json {
        let v = json!({
            "a": { "run": args.run_a, "flavor": a.meta.flavor, "metrics": ma },
            "b": { "run": args.run_b, "flavor": b.meta.flavor, "metrics": mb },
            "principal_angles_deg": angles,
        });
        say!("{v}");
        return Ok(());
    }
    say!("data: {data}");
    say!("{:<18} {:>14} {:>14}", "", a.meta.flavor, b.meta.flavor);
    let rows = [
        ("mse", ma.mse, mb.mse),
        ("sse per example", ma.sse_per_example, mb.sse_per_example),
        ("bce", ma.bce, mb.bce),
        ("psnr (dB)", ma.psnr_db, mb.psnr_db),
        ("mean ||J||_F", ma.mean_jacobian_norm, mb.mean_jacobian_norm),
    ];
    for (name, x, y) in rows {
        say!("{name:<18} {x:>14.6} {y:>14.6}");
    }
    say!("{:<18} {:>14} {:>14}", "examples", ma.n, mb.n);
    match angles {
        Some(t) => {
            let mean = t.iter().sum::<f64>() / t.len() as f64;
            say!(
                "principal angles between the two subspaces (degrees): largest {:.2}, mean {:.2}, \
                 smallest {:.2}",
                t.last().copied().unwrap_or(0.0),
                mean,
                t.first().copied().unwrap_or(0.0)
            );
        }
        None => say!("(principal angles: only for two linear one-layer maps, e.g. PCA runs)"),
    }
    Ok(())
}
