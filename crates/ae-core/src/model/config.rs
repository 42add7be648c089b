//! The architecture of an autoencoder as plain data: dense layer sizes or a convolutional stack,
//! activations, tied weights, initialization, variational or not. [`ModelConfig::build`] (in
//! `plan`) turns it into layers.
use serde::{Deserialize, Serialize};

use crate::engine::init::Init;
use crate::engine::layers::activation::Activation;
use crate::{Error, Result};

/// The architecture of a dense autoencoder.
///
/// The encoder maps the input through `hidden` sizes (the last is the code); the decoder mirrors
/// them back to the input size. `hidden = [64]` is the vanilla one-hidden-layer autoencoder; identity
/// activations everywhere give the linear autoencoder that PCA answers to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Per-example input shape, e.g. `[1, 28, 28]` or `[D]`.
    pub input_shape: Vec<usize>,
    /// Hidden layer sizes of the encoder; the last one is the code.
    pub hidden: Vec<usize>,
    /// Activation of hidden layers.
    pub activation: Activation,
    /// Activation of the code layer; `None` means the same as `activation`.
    #[serde(default)]
    pub code_activation: Option<Activation>,
    /// Activation of the reconstruction.
    pub output_activation: Activation,
    /// Decoder layers reuse the encoder's weights transposed.
    #[serde(default)]
    pub tied: bool,
    /// Weight initialization.
    #[serde(default = "default_init")]
    pub init: Init,
    /// A convolutional architecture (then `hidden` is empty); none for a dense autoencoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<ConvArch>,
    /// A variational autoencoder: the code layer gives a mean and a log-variance per latent unit
    /// (linear, twice the code size) and the decoder reads a sample (see [`crate::model::vae`]).
    #[serde(default)]
    pub variational: bool,
    /// A dense encoder reads which cells are missing (`NaN`) beside the values (see
    /// [`crate::engine::layers::indicator`]): its first layer takes twice the features.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub missing_indicator: bool,
}

fn default_init() -> Init {
    Init::Auto
}

impl ModelConfig {
    /// A dense autoencoder on inputs of `input_shape` whose encoder has layers of `hidden` sizes
    /// (the last is the code): ReLU hidden units and code, sigmoid output, untied, default
    /// initialization. Change any field after.
    pub fn dense(input_shape: &[usize], hidden: &[usize]) -> Self {
        ModelConfig {
            input_shape: input_shape.to_vec(),
            hidden: hidden.to_vec(),
            activation: Activation::Relu,
            code_activation: None,
            output_activation: Activation::Sigmoid,
            tied: false,
            init: Init::Auto,
            conv: None,
            variational: false,
            missing_indicator: false,
        }
    }

    /// A convolutional autoencoder on images of `input_shape` (`[C, H, W]`) with `arch`'s stages,
    /// activations as [`ModelConfig::dense`].
    pub fn conv(input_shape: &[usize], arch: ConvArch) -> Self {
        ModelConfig {
            conv: Some(arch),
            ..ModelConfig::dense(input_shape, &[])
        }
    }

    /// Number of input features.
    pub fn input_features(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// The number of code values per example: the last hidden size, or for a convolutional model
    /// its dense code or the size of its last feature map.
    pub fn code_size(&self) -> usize {
        match &self.conv {
            None => self.hidden.last().copied().unwrap_or(0),
            Some(arch) => arch.code.unwrap_or_else(|| {
                let (stages, c) = (arch.channels.len(), arch.channels.last().copied());
                match (c, conv_input(&self.input_shape)) {
                    (Some(c), Ok([_, h, w])) => c * (h >> stages) * (w >> stages),
                    _ => 0,
                }
            }),
        }
    }

    /// The activation of the code layer: the one set, else [`default_code_activation`].
    pub fn code_activation(&self) -> Activation {
        let deep = match &self.conv {
            None => self.hidden.len() > 1,
            Some(arch) => arch.code.is_some(),
        };
        self.code_activation
            .unwrap_or_else(|| default_code_activation(self.activation, deep))
    }

    /// Checks the config; errors name the field and the value.
    pub fn validate(&self) -> Result<()> {
        if self.variational {
            if self.tied {
                return Err(Error::config(
                    "tied",
                    "a variational autoencoder cannot tie weights: its code layer is twice the code size",
                ));
            }
            if self.conv.as_ref().is_some_and(|a| a.code.is_none()) {
                return Err(Error::config(
                    "code",
                    "a convolutional VAE needs a dense latent code: set code to its size",
                ));
            }
        }
        if self.input_shape.is_empty() || self.input_features() == 0 {
            return Err(Error::config(
                "input_shape",
                format!("must have at least one feature, got {:?}", self.input_shape),
            ));
        }
        if self.missing_indicator && (self.conv.is_some() || self.tied || self.variational) {
            return Err(Error::config(
                "missing-indicator",
                "missing-cell indicators go in front of a dense, untied, non-variational encoder",
            ));
        }
        if let Some(arch) = &self.conv {
            if !self.hidden.is_empty() || self.tied {
                return Err(Error::config(
                    "arch",
                    "a convolutional model takes its sizes from channels and code, and has no \
                     tied weights; leave hidden empty and tied off",
                ));
            }
            return validate_conv(arch, &self.input_shape);
        }
        if self.hidden.is_empty() {
            return Err(Error::config(
                "hidden",
                "needs at least one layer size (the code), got none",
            ));
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return Err(Error::config(
                "hidden",
                format!(
                    "layer sizes must be at least 1, got 0 at position {}",
                    i + 1
                ),
            ));
        }
        Ok(())
    }
}
/// How a convolutional decoder grows the image back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConvDecoder {
    /// Convolution, then nearest upsampling ×2, per stage (the classic Keras example).
    #[default]
    Upsample,
    /// A stride-2 transposed convolution per stage.
    Transpose,
}

impl std::str::FromStr for ConvDecoder {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "upsample" => Ok(ConvDecoder::Upsample),
            "transpose" => Ok(ConvDecoder::Transpose),
            _ => Err(Error::config(
                "decoder",
                format!("unknown decoder `{s}`; expected upsample or transpose"),
            )),
        }
    }
}

/// A convolutional autoencoder: per stage, convolution + activation + 2×2 max-pooling in the
/// encoder, mirrored in the decoder, which ends in a convolution to the input's channels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvArch {
    /// Output channels of each encoder stage.
    pub channels: Vec<usize>,
    /// Square kernel size (odd, padded to keep the image size).
    pub kernel: usize,
    /// How the decoder upsamples.
    #[serde(default)]
    pub decoder: ConvDecoder,
    /// Size of a dense code after the last stage; none: the code is the last feature map.
    #[serde(default)]
    pub code: Option<usize>,
}

/// The `[C, H, W]` of a convolutional model's input, or an error saying why the data does not fit.
pub(crate) fn conv_input(shape: &[usize]) -> Result<[usize; 3]> {
    match shape {
        [c, h, w] => Ok([*c, *h, *w]),
        _ => Err(Error::config(
            "arch",
            format!(
                "a convolutional model needs image data shaped (channels, height, width), got \
                 examples of shape {shape:?}"
            ),
        )),
    }
}

/// Checks a conv architecture against the input shape; errors name the flag.
pub(crate) fn validate_conv(arch: &ConvArch, input_shape: &[usize]) -> Result<()> {
    let [c, h, w] = conv_input(input_shape)?;
    if c == 0 {
        return Err(Error::config(
            "input_shape",
            "images need at least one channel",
        ));
    }
    if arch.channels.is_empty() || arch.channels.contains(&0) {
        return Err(Error::config(
            "channels",
            format!(
                "needs one or more channel counts of at least 1, got {:?}",
                arch.channels
            ),
        ));
    }
    if arch.kernel.is_multiple_of(2) || arch.kernel > 31 {
        return Err(Error::config(
            "kernel",
            format!(
                "must be odd (padding keeps the size) and at most 31, got {}",
                arch.kernel
            ),
        ));
    }
    let stages = arch.channels.len() as u32;
    let f = 1usize.checked_shl(stages).filter(|&f| f <= h.min(w));
    match f {
        Some(f) if h % f == 0 && w % f == 0 => {}
        _ => {
            return Err(Error::config(
                "channels",
                format!(
                    "{stages} pooling stages halve the image {stages} times, so its height and \
                     width must be multiples of {}; the data's images are {h}×{w} (use fewer \
                     stages, or resize the images)",
                    1u64.checked_shl(stages).unwrap_or(u64::MAX)
                ),
            ));
        }
    }
    if arch.code == Some(0) {
        return Err(Error::config("code", "must be at least 1, got 0"));
    }
    Ok(())
}

/// The code activation when none is set. A code layer that follows other encoder layers (a deep
/// dense encoder, or a dense code after convolutions) is linear, as in PCA and the references
/// (Hinton & Salakhutdinov 2006): a ReLU bottleneck of a few units often has units that are 0 for
/// every input, and nothing brings them back. A code layer that is the whole encoder (one hidden
/// layer, or a conv model whose code is its last feature map) keeps the hidden `activation`: it is
/// the only nonlinearity the encoder has.
pub fn default_code_activation(activation: Activation, deep: bool) -> Activation {
    if deep {
        Activation::Linear
    } else {
        activation
    }
}
