//! PyTorch export: a small Python module that defines the run's autoencoder with `torch.nn`,
//! written beside a safetensors file of its weights, so a user can go on training it with
//! PyTorch's own tools (DistributedDataParallel, mixed precision, their own loops).
//!
//! The module's parameter names are the run's own (`encoder.0.weight`, …): each side is an
//! `nn.ModuleDict` keyed by the layer's index, so `load_state_dict` of the weights file is strict
//! and `state_dict()` saves back to the same names. Layers come from the same plan as the ONNX
//! export ([`crate::model::plan::LayerOp`]), so both describe one network. A tied decoder layer
//! owns only its bias and reads its encoder layer's weight, transposed, so tying survives further
//! training. With scaling, the run's offset and scale are buffers (`scaling_offset`,
//! `scaling_scale`): `encode` takes data in the units of the files the run read and `decode`
//! returns them.
use std::fmt::Write as _;

use ae_data::scaling::{Scaler, ScalingKind};

use crate::engine::layers::activation::Activation;
use crate::engine::tensor::Tensor;
use crate::model::plan::LayerOp;
use crate::model::Autoencoder;
use crate::{Error, Result};

/// The module's source and the tensors of its weights file, by name.
pub struct Export {
    /// Python source of the module.
    pub source: String,
    /// Every tensor `load()` reads: the model's parameters, then the scaling buffers if any.
    pub tensors: Vec<(String, Tensor)>,
}

/// The PyTorch module of `model`; with `scaler`, the run's scaling is applied to inputs and
/// undone on reconstructions. `what` describes the run in the module's docstring, and `name` is
/// the module's file name without `.py`.
pub fn export(
    model: &Autoencoder,
    scaler: Option<&Scaler>,
    what: &str,
    name: &str,
) -> Result<Export> {
    let config = &model.config;
    let (encoder, decoder) = config.layer_ops()?;
    let scaler = scaler.filter(|s| s.kind != ScalingKind::None);
    let shape = |name: &str| -> Result<Vec<usize>> {
        let id = model
            .params
            .find(name)
            .ok_or_else(|| Error::config("export", format!("the model has no `{name}`")))?;
        Ok(model.params.values[id.0].shape().to_vec())
    };
    let k = config.code_size();
    let features = config.input_features();

    let mut modules = String::new();
    for (side, ops) in [("encoder", &encoder), ("decoder", &decoder)] {
        writeln!(modules, "        self.{side} = nn.ModuleDict({{").unwrap();
        for op in ops.iter() {
            let line = match op {
                LayerOp::Dense {
                    prefix,
                    tied_to: None,
                } => {
                    let w = shape(&format!("{prefix}.weight"))?;
                    format!("nn.Linear({}, {})", w[1], w[0])
                }
                LayerOp::Dense {
                    prefix,
                    tied_to: Some(_),
                } => format!("Bias({})", shape(&format!("{prefix}.bias"))?[0]),
                LayerOp::Conv {
                    prefix, geometry, ..
                } => {
                    let w = shape(&format!("{prefix}.weight"))?;
                    format!(
                        "nn.Conv2d({}, {}, {}, stride={}, padding={})",
                        w[1], w[0], geometry.kernel, geometry.stride, geometry.padding
                    )
                }
                LayerOp::ConvTranspose { prefix, geometry } => {
                    let w = shape(&format!("{prefix}.weight"))?;
                    format!(
                        "nn.ConvTranspose2d({}, {}, {}, stride={}, padding={}, output_padding={})",
                        w[0],
                        w[1],
                        geometry.kernel,
                        geometry.stride,
                        geometry.padding,
                        output_padding(geometry)?
                    )
                }
                _ => continue,
            };
            writeln!(modules, "            {:?}: {line},", key(op)).unwrap();
        }
        writeln!(modules, "        }})").unwrap();
    }
    let (offset, scale) = match scaler {
        Some(_) => (
            "(x - self.scaling_offset) * self.scaling_scale",
            "x / self.scaling_scale + self.scaling_offset",
        ),
        None => ("x", "x"),
    };
    // Parameters outside the two sides (a Gaussian decoder's learned log-variance) are used by
    // the training objective, not by `forward`; they are kept so that the weights load whole.
    for (n, t) in model.params.names.iter().zip(&model.params.values) {
        if !(n.starts_with("encoder.") || n.starts_with("decoder.")) {
            writeln!(
                modules,
                "        self.{n} = nn.Parameter(torch.zeros({}))  # used by the training objective, not by forward",
                python_tuple(t.shape())
            )
            .unwrap();
        }
    }
    if scaler.is_some() {
        writeln!(
            modules,
            "        self.register_buffer(\"scaling_offset\", torch.zeros({features}))\n        \
             self.register_buffer(\"scaling_scale\", torch.ones({features}))"
        )
        .unwrap();
    }

    let mut encode = String::from("        x = x.reshape(x.shape[0], -1)\n");
    writeln!(encode, "        x = {offset}").unwrap();
    encode += &steps(&encoder)?;
    if config.variational {
        writeln!(encode, "        return x[:, :{k}], x[:, {k}:]").unwrap();
    } else {
        encode += "        return x\n";
    }
    let mut decode = String::from("        x = code\n");
    decode += &steps(&decoder)?;
    if let Some(a) = activation(config.output_activation) {
        writeln!(decode, "        x = {a}").unwrap();
    }
    decode += "        x = x.reshape(x.shape[0], -1)\n";
    writeln!(decode, "        x = {scale}").unwrap();
    decode += "        return x\n";
    let forward = if config.variational {
        "        mean, log_variance = self.encode(x)\n        \
         code = mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean) if self.training else mean\n        \
         return self.decode(code), mean, log_variance\n"
    } else {
        "        return self.decode(self.encode(x))\n"
    };
    let encode_doc = if config.variational {
        "The latent mean and log-variance of `x`, each `[batch, CODE_SIZE]`."
    } else {
        "The code of `x`: `[batch, CODE_SIZE]`."
    };
    let forward_doc = if config.variational {
        "The reconstruction (of a sampled code when training, of the mean in eval mode), the mean and the log-variance."
    } else {
        "The reconstruction of `x`: `[batch, FEATURES]`."
    };
    let units = if scaler.is_some() {
        "Inputs and reconstructions are in the units of the data files the run read: the run's scaling\nis part of the module (buffers `scaling_offset` and `scaling_scale`).".to_string()
    } else {
        "Inputs and reconstructions are in the model's own units, after the run's scaling."
            .to_string()
    };

    let missing = if config.missing_indicator {
        "A missing cell is NaN: the encoder sees which cells are missing, as it did in training."
    } else {
        "Inputs must be complete: a missing cell (NaN) spreads to the whole row; fill it first (`ae impute`)."
    };
    let mut tensors: Vec<(String, Tensor)> = model
        .params
        .names
        .iter()
        .cloned()
        .zip(model.params.values.iter().cloned())
        .collect();
    if let Some(s) = scaler {
        tensors.push((
            "scaling_offset".into(),
            Tensor::from_vec(&[features], s.offset.clone()),
        ));
        tensors.push((
            "scaling_scale".into(),
            Tensor::from_vec(&[features], s.scale.clone()),
        ));
    }
    let source = format!(
        r#""""The autoencoder of {what} as a PyTorch module, written by ae {version}.

    import {name}  # this file
    model = {name}.load()  # with its weights, from {name}.safetensors beside it
    code = model.encode(x)  # x: [batch, *INPUT_SHAPE] or [batch, FEATURES]
    reconstruction = model.decode(code)  # [batch, FEATURES]

{units}
{missing}
Parameter names are the run's own, so `model.state_dict()` saves back to the same names.
"""
import os

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SHAPE = {input_shape}
FEATURES = {features}
CODE_SIZE = {k}
VARIATIONAL = {variational}


class Bias(nn.Module):
    """The bias of a decoder layer whose weight is its encoder layer's, transposed (tied)."""

    def __init__(self, n):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n))


class Autoencoder(nn.Module):
    def __init__(self):
        super().__init__()
{modules}
    def encode(self, x):
        """{encode_doc}"""
        e = self.encoder
{encode}
    def decode(self, code):
        """The reconstruction of `code`: `[batch, FEATURES]`."""
        e, d = self.encoder, self.decoder
{decode}
    def forward(self, x):
        """{forward_doc}"""
{forward}

def load(path=None, device="cpu"):
    """The module with its trained weights (default: the .safetensors file beside this one)."""
    from safetensors.torch import load_file

    if path is None:
        path = os.path.splitext(os.path.abspath(__file__))[0] + ".safetensors"
    net = Autoencoder()
    net.load_state_dict(load_file(path, device=str(device)))
    return net.to(device)
"#,
        version = env!("CARGO_PKG_VERSION"),
        input_shape = python_tuple(&config.input_shape),
        variational = if config.variational { "True" } else { "False" },
    );
    Ok(Export { source, tensors })
}

/// The `ModuleDict` key of a layer with parameters: the index after its side's name.
fn key(op: &LayerOp) -> &str {
    let prefix = match op {
        LayerOp::Dense { prefix, .. }
        | LayerOp::Conv { prefix, .. }
        | LayerOp::ConvTranspose { prefix, .. } => prefix,
        _ => "",
    };
    prefix.rsplit('.').next().unwrap_or(prefix)
}

/// The module side (`e` or `d`) holding a layer of prefix `prefix`.
fn side(prefix: &str) -> &'static str {
    if prefix.starts_with("encoder.") {
        "e"
    } else {
        "d"
    }
}

/// The Python lines applying `ops` to `x`, each indented for a method body.
fn steps(ops: &[LayerOp]) -> Result<String> {
    let mut out = String::new();
    for op in ops {
        let line = match op {
            LayerOp::Dense {
                prefix,
                tied_to: None,
            } => format!("{}[{:?}](x)", side(prefix), key(op)),
            LayerOp::Dense {
                prefix,
                tied_to: Some(enc),
            } => {
                let enc_key = enc.rsplit('.').next().unwrap_or(enc);
                format!(
                    "F.linear(x, {}[{enc_key:?}].weight.t(), {}[{:?}].bias)",
                    side(enc),
                    side(prefix),
                    key(op)
                )
            }
            LayerOp::Activation(a) => match activation(*a) {
                Some(s) => s,
                None => continue,
            },
            LayerOp::Conv { prefix, fused, .. } => {
                let conv = format!("{}[{:?}](x)", side(prefix), key(op));
                match activation(*fused) {
                    Some(a) => {
                        writeln!(out, "        x = {conv}").unwrap();
                        a
                    }
                    None => conv,
                }
            }
            LayerOp::ConvTranspose { prefix, .. } => format!("{}[{:?}](x)", side(prefix), key(op)),
            LayerOp::MissingIndicator => {
                "torch.cat([torch.where(torch.isnan(x), torch.zeros_like(x), x), torch.isnan(x).to(x.dtype)], 1)"
                    .to_string()
            }
            LayerOp::MaxPool(k) => format!("F.max_pool2d(x, {k})"),
            LayerOp::Upsample(k) => format!("F.interpolate(x, scale_factor={k}, mode=\"nearest\")"),
            LayerOp::Reshape {
                to_image: true,
                chw: [c, h, w],
            } => format!("x.reshape(x.shape[0], {c}, {h}, {w})"),
            LayerOp::Reshape {
                to_image: false, ..
            } => "x.flatten(1)".to_string(),
        };
        writeln!(out, "        x = {line}").unwrap();
    }
    Ok(out)
}

/// The expression applying `a` to `x`; none for the identity.
fn activation(a: Activation) -> Option<String> {
    Some(match a {
        Activation::Linear => return None,
        Activation::Relu => "F.relu(x)".into(),
        Activation::Sigmoid => "torch.sigmoid(x)".into(),
        Activation::Tanh => "torch.tanh(x)".into(),
        Activation::LeakyRelu { slope } => format!("F.leaky_relu(x, {slope:?})"),
    })
}

/// The output padding that makes a transposed convolution double its input, as the engine's does.
fn output_padding(g: &crate::engine::layers::patches::Geometry) -> Result<usize> {
    g.doubling_output_padding().ok_or_else(|| {
        Error::config(
            "export",
            format!(
                "no output padding gives a transposed convolution of kernel {} the engine's size",
                g.kernel
            ),
        )
    })
}

fn python_tuple(v: &[usize]) -> String {
    match v {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            v.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    fn dense(tied: bool, variational: bool) -> Autoencoder {
        let mut c = ModelConfig::dense(&[6], &[5, 3]);
        c.tied = tied;
        c.variational = variational;
        c.build(0).unwrap()
    }

    #[test]
    fn every_parameter_is_written_and_named_in_the_module() {
        for (tied, vae) in [(false, false), (true, false), (false, true)] {
            let model = dense(tied, vae);
            let e = export(&model, None, "a test run", "model").unwrap();
            let names: Vec<_> = e.tensors.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                names,
                model
                    .params
                    .names
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
            );
            // Each layer with parameters is declared once under its side and index.
            for name in model.params.names.iter().filter(|n| n.ends_with(".bias")) {
                let (side, rest) = name.split_once('.').unwrap();
                let index = rest.split('.').next().unwrap();
                let declared = format!("self.{side} = nn.ModuleDict({{");
                let at = e.source.find(&declared).unwrap();
                assert!(e.source[at..].contains(&format!("\"{index}\": ")), "{name}");
            }
            assert_eq!(e.source.contains(": Bias("), tied, "tied {tied}");
            assert_eq!(e.source.contains("return x[:, :3], x[:, 3:]"), vae);
        }
    }

    #[test]
    fn scaling_becomes_two_buffers() {
        let model = dense(false, false);
        let scaler = Scaler {
            kind: ScalingKind::MinMax,
            offset: vec![1.0; 6],
            scale: vec![0.5; 6],
        };
        let e = export(&model, Some(&scaler), "a test run", "model").unwrap();
        let last: Vec<_> = e
            .tensors
            .iter()
            .rev()
            .take(2)
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(last, ["scaling_scale", "scaling_offset"]);
        assert!(e
            .source
            .contains("(x - self.scaling_offset) * self.scaling_scale"));
        assert!(e
            .source
            .contains("x / self.scaling_scale + self.scaling_offset"));
        let plain = export(&model, None, "a test run", "model").unwrap();
        assert!(!plain.source.contains("scaling_offset"));
    }

    #[test]
    fn a_learned_variance_is_carried() {
        let mut model = dense(false, false);
        model.params.add(
            "decoder_logvar",
            crate::engine::params::ParamKind::Bias,
            Tensor::zeros(&[1]),
        );
        let e = export(&model, None, "a test run", "model").unwrap();
        assert!(e
            .source
            .contains("self.decoder_logvar = nn.Parameter(torch.zeros((1,)))"));
        let names: Vec<_> = e.tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"decoder_logvar"));
    }
}
