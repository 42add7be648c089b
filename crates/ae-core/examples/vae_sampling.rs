//! Sampling from a variational autoencoder: train a VAE on small images, draw codes from its
//! prior N(0, I), decode them into new images, and print a few as text.
//!
//! The images here are made up (8×8 bars), so the program runs anywhere in seconds; for
//! Fashion-MNIST, load `"fashion-mnist".parse::<DataSpec>()` and give the VAE more units.
use ae_core::engine::loss::LossKind;
use ae_core::model::vae::prior_samples;
use ae_core::training::settings::ModelName;
use ae_core::{train, Samples, Settings, TrainOptions};

fn bars(n: usize) -> Samples {
    let s = 8;
    let mut data = Vec::with_capacity(n * s * s);
    for i in 0..n {
        let (row, vertical) = (i % s, i % 3 == 0);
        for y in 0..s {
            for x in 0..s {
                let on = if vertical { x == row } else { y == row };
                data.push(if on { 1.0 } else { 0.0 });
            }
        }
    }
    Samples::from_rows(data, &[1, s, s]).expect("whole images")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings {
        model: ModelName::Vae,
        hidden: vec![32, 2],
        loss: LossKind::Bce,
        epochs: 40,
        batch_size: 32,
        lr: 3e-3,
        ..Settings::default()
    }
    .check()?;
    let trained = train(&settings, bars(600), TrainOptions::default())?;
    let elbo = trained.history.last().expect("epochs").train.total();
    println!("negative ELBO after training: {elbo:.2} nats per image");

    let mut model = trained.task.model;
    let z = prior_samples(4, model.config.code_size(), 0);
    model.decode(&z);
    let images = model.reconstruction().data().to_vec();
    for (k, image) in images.chunks(64).enumerate() {
        println!("sample {k}:");
        for row in image.chunks(8) {
            let line: String = row
                .iter()
                .map(|&p| {
                    if p > 0.5 {
                        '#'
                    } else if p > 0.2 {
                        '+'
                    } else {
                        '.'
                    }
                })
                .collect();
            println!("  {line}");
        }
    }
    assert!(images.iter().all(|p| (0.0..=1.0).contains(p)));
    assert!(
        elbo < 44.4,
        "the VAE should beat coding 64 pixels at p = 1/2 (44.4 nats)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs() {
        super::main().unwrap();
    }
}
