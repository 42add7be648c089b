//! The classic flavors as settings from the literature: each preset is a value of [`Settings`],
//! and anything a user sets is laid over it.
use crate::engine::layers::activation::Activation;
use crate::model::ConvDecoder;
use crate::training::settings::{ArchName, LrSchedule, Settings};
use crate::{Error, Result};

/// A named starting point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// 784-64-784 (Hubens, "Deep inside: Autoencoders", 2018).
    Vanilla,
    /// 784-128-64-128-784 (Hubens' multilayer autoencoder).
    Deep,
    /// 784-64-784 with L1 activity on the code (Chollet, 2016).
    SparseL1,
    /// 784-196-784 sigmoid with KL sparsity (Ng, CS294A notes, 2011).
    SparseKl,
    /// 784-256-64-256-784 with 30% masking noise (Vincent et al., 2010).
    Denoising,
    /// 784-256-784 sigmoid with a contractive penalty (Rifai et al., 2011).
    Contractive,
    /// 784-1000-500-250-30 with greedy pretraining (Hinton & Salakhutdinov, 2006).
    Stacked,
    /// The stacked network with masking noise at every stage (Vincent et al., 2010).
    StackedDenoising,
    /// The classic convolutional autoencoder (Chollet, 2016).
    Conv,
    /// The convolutional autoencoder trained to remove Gaussian noise.
    ConvDenoising,
}

impl Preset {
    /// Every preset, in the order `ae train --help` lists them.
    pub const ALL: [Preset; 10] = [
        Preset::Vanilla,
        Preset::Deep,
        Preset::SparseL1,
        Preset::SparseKl,
        Preset::Denoising,
        Preset::Contractive,
        Preset::Stacked,
        Preset::StackedDenoising,
        Preset::Conv,
        Preset::ConvDenoising,
    ];

    /// The name users type.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Vanilla => "vanilla",
            Preset::Deep => "deep",
            Preset::SparseL1 => "sparse-l1",
            Preset::SparseKl => "sparse-kl",
            Preset::Denoising => "denoising",
            Preset::Contractive => "contractive",
            Preset::Stacked => "stacked",
            Preset::StackedDenoising => "stacked-denoising",
            Preset::Conv => "conv",
            Preset::ConvDenoising => "conv-denoising",
        }
    }

    /// What the preset is and where its settings come from.
    pub fn about(self) -> &'static str {
        match self {
            Preset::Vanilla => "784-64-784, ReLU code, sigmoid output, MSE, Adam (the vanilla model of Hubens, \"Deep inside: Autoencoders\", 2018, one of this project's seed texts)",
            Preset::Deep => "784-128-64-128-784, ReLU hidden layers, a linear code, cosine learning-rate decay (Hubens' multilayer autoencoder, whose code is ReLU too: --code-activation relu; a ReLU bottleneck loses units, BENCHMARKS.md)",
            Preset::SparseL1 => "784-64-784 with L1 activity on the code: Keras' activity_regularizer=l1(1e-5) sums over the 64 units, i.e. λ = 64 · 1e-5 = 6.4e-4 on our per-unit mean (Chollet, \"Building Autoencoders in Keras\", 2016)",
            Preset::SparseKl => "784-196-784 sigmoid, KL sparsity ρ = 0.05, β = 3 (Ng, CS294A \"Sparse autoencoder\" notes, 2011; the 196-unit MNIST set-up of the UFLDL exercises)",
            Preset::Denoising => "784-256-64-256-784 (linear code) with 30% masking noise (Vincent et al., JMLR 2010, masking noise of 10–40%)",
            Preset::Contractive => "784-256-784 sigmoid with a contractive penalty λ = 1.3e-4 (Rifai et al., ICML 2011, one-layer CAE: λ = 0.1 against a reconstruction error summed over 784 pixels, i.e. 0.1 / 784 against our per-pixel mean)",
            Preset::Stacked => "784-1000-500-250-30 mirrored, linear code units, greedy layer-wise pretraining of 5 epochs per layer then fine-tuning with cosine learning-rate decay (Hinton & Salakhutdinov, Science 2006; Bengio et al., NIPS 2007)",
            Preset::StackedDenoising => "the stacked network with 25% masking noise at every pretraining stage (Vincent et al., JMLR 2010, stacked denoising autoencoders)",
            Preset::Conv => "the classic convolutional autoencoder of Chollet, \"Building Autoencoders in Keras\" (2016): conv 32 3×3 same + ReLU + 2×2 max-pool, twice; conv 32 + nearest upsampling ×2, twice; conv to the input's channels + sigmoid. MSE and Adam as in the PyTorch reference",
            Preset::ConvDenoising => "the same network trained to remove Gaussian noise of standard deviation 0.5 (Chollet's denoising example uses noise factor 0.5; he clips the noisy images to [0, 1], we do not)",
        }
    }

    /// The preset's settings (the defaults for everything it leaves alone).
    pub fn settings(self) -> Settings {
        let base = Settings::default();
        match self {
            Preset::Vanilla => Settings {
                hidden: vec![64],
                ..base
            },
            Preset::Deep => Settings {
                hidden: vec![128, 64],
                lr_schedule: LrSchedule::Cosine { warmup: 0 },
                ..base
            },
            Preset::SparseL1 => Settings {
                hidden: vec![64],
                sparsity: Some("l1:6.4e-4".parse().expect("valid")),
                ..base
            },
            Preset::SparseKl => Settings {
                hidden: vec![196],
                activation: Activation::Sigmoid,
                sparsity: Some("kl:0.05:3".parse().expect("valid")),
                ..base
            },
            Preset::Denoising => Settings {
                hidden: vec![256, 64],
                noise: Some("mask:0.3".parse().expect("valid")),
                ..base
            },
            Preset::Contractive => Settings {
                hidden: vec![256],
                activation: Activation::Sigmoid,
                contractive: Some(1.3e-4),
                ..base
            },
            Preset::Stacked => Settings {
                hidden: vec![1000, 500, 250, 30],
                code_activation: Some(Activation::Linear),
                pretrain: Some("greedy:5".parse().expect("valid")),
                // Fashion-MNIST, 50 epochs: test error per image 5.88 with cosine decay, 6.05
                // (without pretraining) at a constant rate (BENCHMARKS.md).
                lr_schedule: LrSchedule::Cosine { warmup: 0 },
                ..base
            },
            Preset::StackedDenoising => Settings {
                noise: Some("mask:0.25".parse().expect("valid")),
                ..Preset::Stacked.settings()
            },
            Preset::Conv => Settings {
                arch: ArchName::Conv,
                channels: vec![32, 32],
                kernel: 3,
                decoder: ConvDecoder::Upsample,
                ..base
            },
            Preset::ConvDenoising => Settings {
                noise: Some("gaussian:0.5".parse().expect("valid")),
                ..Preset::Conv.settings()
            },
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
                Error::config(
                    "preset",
                    format!("unknown preset `{s}`; expected one of {}", names.join(", ")),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_gives_valid_settings_and_its_name_parses_back() {
        for p in Preset::ALL {
            p.settings()
                .check()
                .unwrap_or_else(|e| panic!("{p:?}: {e}"));
            assert_eq!(p.name().parse::<Preset>().unwrap(), p);
        }
        let s = Preset::SparseKl.settings();
        assert_eq!((s.hidden, s.activation), (vec![196], Activation::Sigmoid));
        assert!("nope"
            .parse::<Preset>()
            .unwrap_err()
            .to_string()
            .contains("sparse-kl"));
    }

    #[test]
    fn an_overlay_beats_the_preset_and_zero_means_none() {
        let t: toml::Table =
            toml::from_str("hidden = [32, 8]\nlinear = true\nearly-stopping = 0").unwrap();
        let s = Preset::StackedDenoising.settings().overlay(&t).unwrap();
        assert_eq!(s.hidden, vec![32, 8]);
        assert_eq!(s.activation, Activation::Linear);
        assert_eq!(s.output_activation, Activation::Linear);
        assert!(s.noise.is_some() && s.early_stopping.is_none());
        let bad: toml::Table = toml::from_str("hiden = [3]").unwrap();
        let e = Settings::default().overlay(&bad).unwrap_err().to_string();
        assert!(e.contains("hiden"), "{e}");
    }
}
