//! Anomaly scores on a table: train an autoencoder on rows that are mostly normal, score every
//! row by how badly it is rebuilt, and see whether the planted outliers come out on top.
//!
//! The table here is made up (600 rows of 10 columns near a 3-dimensional subspace, 30 of them
//! pushed off it), so the program runs anywhere; with your own CSV, load it with
//! `"csv:rows.csv".parse::<ae_core::ae_data::spec::DataSpec>()` and `DataSpec::load`.
use ae_core::analysis::anomaly::reconstruction_scores;
use ae_core::analysis::inference::Inference;
use ae_core::analysis::ranking::auroc;
use ae_core::engine::layers::activation::Activation;
use ae_core::run::to_tensor;
use ae_core::{train, Samples, Settings, TrainOptions};

fn table() -> (Samples, Vec<bool>) {
    let (n, d) = (600, 10);
    let mut rows = Vec::with_capacity(n * d);
    let mut outlier = Vec::with_capacity(n);
    for i in 0..n {
        let z = [
            (i as f32 * 0.37).sin(),
            (i as f32 * 0.11).cos(),
            ((i * 7 % 13) as f32) / 13.0,
        ];
        let odd = i % 20 == 7;
        for j in 0..d {
            let v = z[j % 3] * (1.0 + j as f32 * 0.1) + 0.2 * z[(j + 1) % 3];
            // An outlier breaks the pattern in a few columns.
            let push = if odd && j % 4 == i % 4 { 2.0 } else { 0.0 };
            rows.push(v + push);
        }
        outlier.push(odd);
    }
    (Samples::from_rows(rows, &[d]).expect("whole rows"), outlier)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (data, outlier) = table();
    let settings = Settings {
        hidden: vec![8, 3],
        // A linear code and output: a ReLU code unit can die on a small table.
        code_activation: Some(Activation::Linear),
        output_activation: Activation::Linear,
        epochs: 60,
        batch_size: 32,
        // Score every row, the outliers included, with the model trained on all of them.
        val_fraction: 0.0,
        ..Settings::default()
    }
    .check()?;
    let trained = train(&settings, data.clone(), TrainOptions::default())?;
    let mut x = data;
    trained.meta.scaler.transform(&mut x)?;
    let model = trained.task.model;
    let (scores, _) = reconstruction_scores(&Inference::cpu(&model), &to_tensor(x), false)?;
    let area = auroc(&scores, &outlier).expect("both kinds of rows");
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    println!("the ten highest scores:");
    for &i in &order[..10] {
        let tag = if outlier[i] { "planted outlier" } else { "" };
        println!("  row {i:>3}  score {:.5}  {tag}", scores[i]);
    }
    println!("AUROC of the scores against the planted outliers: {area:.3}");
    assert!(area > 0.9, "the outliers should stand out (AUROC {area})");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs() {
        super::main().unwrap();
    }
}
