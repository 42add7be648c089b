//! `--preset`: the classic flavors with settings from the literature; any flag overrides them.
use ae_core::engine::layers::activation::Activation;
use ae_core::model::ConvDecoder;
use ae_core::training::settings::ArchName;
use clap::ValueEnum;

use crate::args::TrainArgs;

/// A named starting point.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Preset {
    /// 784-64-784, ReLU code, sigmoid output, MSE, Adam (the vanilla model of Hubens, "Deep
    /// inside: Autoencoders", 2018, one of this project's seed texts).
    Vanilla,
    /// 784-128-64-128-784, ReLU (Hubens' multilayer autoencoder).
    Deep,
    /// 784-64-784 with L1 activity on the code: Keras' `activity_regularizer=l1(1e-5)` sums over
    /// the 64 units, i.e. λ = 64 · 1e-5 = 6.4e-4 on our per-unit mean (Chollet, "Building
    /// Autoencoders in Keras", 2016).
    SparseL1,
    /// 784-196-784 sigmoid, KL sparsity ρ = 0.05, β = 3 (Ng, CS294A "Sparse autoencoder" notes, 2011;
    /// the 196-unit MNIST set-up of the UFLDL exercises).
    SparseKl,
    /// 784-256-64-256-784 with 30% masking noise (Vincent et al., JMLR 2010, masking noise of
    /// 10–40%).
    Denoising,
    /// 784-256-784 sigmoid with a contractive penalty λ = 1.3e-4 (Rifai et al., ICML 2011, one-layer
    /// CAE: λ = 0.1 against a reconstruction error summed over 784 pixels, i.e. 0.1 / 784 against
    /// our per-pixel mean).
    Contractive,
    /// 784-1000-500-250-30 mirrored, linear code units, greedy layer-wise pretraining of 5 epochs
    /// per layer then fine-tuning (Hinton & Salakhutdinov, Science 2006; Bengio et al., NIPS 2007).
    Stacked,
    /// The stacked network with 25% masking noise at every pretraining stage (Vincent et al.,
    /// JMLR 2010, stacked denoising autoencoders).
    StackedDenoising,
    /// The classic convolutional autoencoder of Chollet, "Building Autoencoders in Keras" (2016):
    /// conv 32 3×3 same + ReLU + 2×2 max-pool, twice; conv 32 + nearest upsampling ×2, twice; conv
    /// to the input's channels + sigmoid. MSE and Adam as in the PyTorch reference.
    Conv,
    /// The same network trained to remove Gaussian noise of standard deviation 0.5 (Chollet's
    /// denoising example uses noise factor 0.5; he clips the noisy images to [0, 1], we do not).
    ConvDenoising,
}

impl Preset {
    /// The options this preset sets.
    pub fn args(self) -> TrainArgs {
        let deep = || vec![1000, 500, 250, 30];
        let base = TrainArgs::default();
        match self {
            Preset::Vanilla => TrainArgs {
                hidden: Some(vec![64]),
                ..base
            },
            Preset::Deep => TrainArgs {
                hidden: Some(vec![128, 64]),
                ..base
            },
            Preset::SparseL1 => TrainArgs {
                hidden: Some(vec![64]),
                sparsity: Some("l1:6.4e-4".parse().expect("valid")),
                ..base
            },
            Preset::SparseKl => TrainArgs {
                hidden: Some(vec![196]),
                activation: Some(Activation::Sigmoid),
                sparsity: Some("kl:0.05:3".parse().expect("valid")),
                ..base
            },
            Preset::Denoising => TrainArgs {
                hidden: Some(vec![256, 64]),
                noise: Some("mask:0.3".parse().expect("valid")),
                ..base
            },
            Preset::Contractive => TrainArgs {
                hidden: Some(vec![256]),
                activation: Some(Activation::Sigmoid),
                contractive: Some(1.3e-4),
                ..base
            },
            Preset::Stacked => TrainArgs {
                hidden: Some(deep()),
                code_activation: Some(Activation::Linear),
                pretrain: Some("greedy:5".parse().expect("valid")),
                ..base
            },
            Preset::StackedDenoising => TrainArgs {
                noise: Some("mask:0.25".parse().expect("valid")),
                ..Preset::Stacked.args()
            },
            Preset::Conv => TrainArgs {
                arch: Some(ArchName::Conv),
                channels: Some(vec![32, 32]),
                kernel: Some(3),
                decoder: Some(ConvDecoder::Upsample),
                ..base
            },
            Preset::ConvDenoising => TrainArgs {
                noise: Some("gaussian:0.5".parse().expect("valid")),
                ..Preset::Conv.args()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ae_core::training::settings::Settings;

    #[test]
    fn every_preset_gives_valid_settings() {
        for p in Preset::value_variants() {
            let s = p.args().apply(Settings::default());
            s.validate().unwrap_or_else(|e| panic!("{p:?}: {e}"));
        }
        let s = Preset::SparseKl.args().apply(Settings::default());
        assert_eq!(
            (s.hidden.clone(), s.activation),
            (vec![196], Activation::Sigmoid)
        );
    }
}
