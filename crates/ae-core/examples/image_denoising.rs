//! Image denoising: train a convolutional autoencoder to rebuild clean images from copies with
//! Gaussian noise, then compare the noisy and the denoised images with the clean ones (PSNR).
//!
//! The images here are made up (12×12 bars at varying places), so the program runs anywhere in
//! seconds; for Fashion-MNIST, load `"fashion-mnist".parse::<DataSpec>()` instead and keep the
//! rest.
use ae_core::engine::layers::Mode;
use ae_core::engine::rng::{stream, Purpose};
use ae_core::model::ConvDecoder;
use ae_core::objective::noise::Noise;
use ae_core::run::to_tensor;
use ae_core::training::settings::ArchName;
use ae_core::{train, Samples, Settings, TrainOptions};

fn images(n: usize) -> Samples {
    let s = 12;
    let mut data = Vec::with_capacity(n * s * s);
    for i in 0..n {
        for y in 0..s {
            for x in 0..s {
                let on = (x + i) % s < 2 || (y + 2 * i) % s == 0;
                data.push(if on { 0.9 } else { 0.1 });
            }
        }
    }
    Samples::from_rows(data, &[1, s, s]).expect("whole images")
}

fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (1.0 / mse).log10()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let noise: Noise = "gaussian:0.3".parse()?;
    let settings = Settings {
        arch: ArchName::Conv,
        channels: vec![16, 16],
        decoder: ConvDecoder::Upsample,
        noise: Some(noise),
        epochs: 60,
        batch_size: 32,
        lr: 3e-3,
        ..Settings::default()
    }
    .check()?;
    let trained = train(&settings, images(480), TrainOptions::default())?;

    // Unseen images, corrupted the same way.
    let mut clean = images(64);
    trained.meta.scaler.transform(&mut clean)?;
    let clean = to_tensor(clean);
    let mut noisy = clean.clone();
    noise.corrupt(
        clean.data(),
        noisy.data_mut(),
        &mut stream(7, Purpose::Misc, 0, 0),
    );
    let mut model = trained.task.model;
    model.forward(&noisy, Mode::Eval);
    let (before, after) = (
        psnr(noisy.data(), clean.data()),
        psnr(model.reconstruction().data(), clean.data()),
    );
    println!("PSNR against the clean images: noisy {before:.2} dB, denoised {after:.2} dB");
    assert!(after > before + 3.0, "denoising should gain over 3 dB");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs() {
        super::main().unwrap();
    }
}
