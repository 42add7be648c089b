//! ONNX export of a trained autoencoder's encoder, decoder or both, for ONNX Runtime (and so
//! for Spark, Triton or any language it serves). Written with prost from the schema's field
//! numbers ([`super::proto`]): the ONNX crates on crates.io either load models or wrap the C++
//! runtime, and none writes one.
//!
//! The graph has a dynamic batch dimension named `batch`. Inputs are `input` (`[batch,
//! ..input_shape]`) or `code` (`[batch, code]`, the decoder's); outputs are `code`, or a VAE's
//! `mean` and `log_variance`, and `reconstruction` (`[batch, features]`). With scaling, the graph
//! takes data in the units of the files the run read and gives reconstructions in those units.
//! Dense (deep, tied, variational) and convolutional models (pooling, upsampling, transposed
//! convolutions, a dense code) are exported.
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use ae_data::scaling::{Scaler, ScalingKind};
use prost::Message;

use super::proto::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto, ATTRIBUTE_FLOAT, ATTRIBUTE_INT,
    ATTRIBUTE_INTS, ATTRIBUTE_STRING, FLOAT, INT64,
};
use crate::analysis::classifier::Classifier;
use crate::engine::layers::activation::Activation;
use crate::engine::layers::patches::Geometry;
use crate::engine::params::Params;
use crate::model::plan::LayerOp;
use crate::model::Autoencoder;
use crate::{Error, Result};

/// The ONNX operator set the graphs use (every operator here has been stable since).
pub const OPSET: i64 = 13;

/// Which part of the model to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Input → code (a VAE's mean and log-variance).
    Encoder,
    /// Code → reconstruction.
    Decoder,
    /// Input → reconstruction (a VAE decodes its mean).
    Autoencoder,
}

impl FromStr for Part {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "encoder" => Ok(Part::Encoder),
            "decoder" => Ok(Part::Decoder),
            "autoencoder" => Ok(Part::Autoencoder),
            _ => Err(Error::config(
                "part",
                format!("must be encoder, decoder or autoencoder, got `{s}`"),
            )),
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Encoder => "encoder",
            Part::Decoder => "decoder",
            Part::Autoencoder => "autoencoder",
        })
    }
}

/// The ONNX model (serialized `ModelProto`) of `part` of `model`; with `scaler`, the run's
/// scaling is applied to inputs and undone on reconstructions.
pub fn export(model: &Autoencoder, scaler: Option<&Scaler>, part: Part) -> Result<Vec<u8>> {
    let config = &model.config;
    let (encoder, decoder) = config.layer_ops()?;
    let scaler = scaler.filter(|s| s.kind != ScalingKind::None);
    let mut g = Graph::new(&model.params);
    let k = config.code_size();
    let features = config.input_features();
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let mut code = None;
    if part != Part::Decoder {
        inputs.push(input_value(&config.input_shape));
        let x = g.scaled_input(&config.input_shape, config.conv.is_none(), scaler);
        let h = g.layers(&x, &encoder)?;
        if config.variational {
            let mean = g.columns(&h, 0, k, "mean");
            let logvar = g.columns(&h, k, 2 * k, "log_variance");
            if part == Part::Encoder {
                outputs.push(value(&mean, &[None, Some(k)]));
                outputs.push(value(&logvar, &[None, Some(k)]));
            }
            code = Some(mean);
        } else if part == Part::Encoder {
            g.output(&h, "code");
            outputs.push(value("code", &[None, Some(k)]));
        } else {
            code = Some(h);
        }
    } else {
        inputs.push(value("code", &[None, Some(k)]));
        code = Some("code".to_string());
    }
    if let Some(z) = code.filter(|_| part != Part::Encoder) {
        let mut y = g.layers(&z, &decoder)?;
        y = g.activation(&y, config.output_activation);
        if let Some(s) = scaler {
            let offset = g.constant("scaling.offset", &[features], s.offset.clone());
            let scale = g.constant("scaling.scale", &[features], s.scale.clone());
            y = g.node("Div", &[&y, &scale], vec![]);
            y = g.node("Add", &[&y, &offset], vec![]);
        }
        g.output(&y, "reconstruction");
        outputs.push(value("reconstruction", &[None, Some(features)]));
    }
    Ok(g.finish(&format!("{part}"), inputs, outputs))
}

/// The ONNX model of a classifier made by `ae classify`: `input` → `logits` and
/// `probabilities` (softmax), `[batch, classes]`; with `scaler`, inputs in the data's units.
pub fn export_classifier(model: &Classifier, scaler: Option<&Scaler>) -> Result<Vec<u8>> {
    let scaler = scaler.filter(|s| s.kind != ScalingKind::None);
    let config = &model.config;
    let mut g = Graph::new(&model.params);
    let mut x = match &config.encoder {
        Some(enc) => {
            let (encoder, _) = enc.layer_ops()?;
            let x = g.scaled_input(&enc.input_shape, enc.conv.is_none(), scaler);
            let h = g.layers(&x, &encoder)?;
            if enc.variational {
                g.columns(&h, 0, enc.code_size(), "mean")
            } else {
                h
            }
        }
        None => g.scaled_input(&config.input_shape, true, scaler),
    };
    let head = match config.head_hidden {
        Some(_) => vec!["head.0", "head.2"],
        None => vec!["head.0"],
    };
    for (i, prefix) in head.iter().enumerate() {
        if i > 0 {
            x = g.activation(&x, Activation::Relu);
        }
        x = g.layers(
            &x,
            &[LayerOp::Dense {
                prefix: prefix.to_string(),
                tied_to: None,
            }],
        )?;
    }
    let c = config.classes;
    let p = g.node("Softmax", &[&x], vec![int_attr("axis", 1)]);
    g.output(&x, "logits");
    g.rename(&p, "probabilities");
    let outputs = vec![
        value("logits", &[None, Some(c)]),
        value("probabilities", &[None, Some(c)]),
    ];
    Ok(g.finish(
        "classifier",
        vec![input_value(&config.input_shape)],
        outputs,
    ))
}

/// The `input` value: `[batch, ..shape]`.
fn input_value(shape: &[usize]) -> ValueInfoProto {
    let mut dims = vec![None];
    dims.extend(shape.iter().map(|&d| Some(d)));
    value("input", &dims)
}

/// A graph being written: nodes, initializers (each added once) and fresh value names.
struct Graph<'a> {
    params: &'a Params,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    added: BTreeSet<String>,
    next: usize,
}

impl<'a> Graph<'a> {
    fn new(params: &'a Params) -> Self {
        Graph {
            params,
            nodes: Vec::new(),
            initializers: Vec::new(),
            added: BTreeSet::new(),
            next: 0,
        }
    }

    /// The serialized model of this graph.
    fn finish(
        self,
        what: &str,
        input: Vec<ValueInfoProto>,
        output: Vec<ValueInfoProto>,
    ) -> Vec<u8> {
        ModelProto {
            ir_version: 8,
            producer_name: "ae".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: format!("the {what} of an autoencoder trained with ae"),
            graph: Some(GraphProto {
                node: self.nodes,
                name: format!("ae_{what}"),
                initializer: self.initializers,
                input,
                output,
            }),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
        }
        .encode_to_vec()
    }

    /// `input` (`[batch, ..input_shape]`), flat when `flat` or when a scaler is given, then
    /// scaled. A convolutional encoder's first layer reshapes flat rows into images.
    fn scaled_input(
        &mut self,
        input_shape: &[usize],
        flat: bool,
        scaler: Option<&Scaler>,
    ) -> String {
        let mut x = "input".to_string();
        if flat || scaler.is_some() {
            x = self.flat(&x, input_shape.len());
        }
        if let Some(s) = scaler {
            let features = input_shape.iter().product();
            let offset = self.constant("scaling.offset", &[features], s.offset.clone());
            let scale = self.constant("scaling.scale", &[features], s.scale.clone());
            x = self.node("Sub", &[&x, &offset], vec![]);
            x = self.node("Mul", &[&x, &scale], vec![]);
        }
        x
    }

    /// Makes `x` the graph output `name` (through an Identity node).
    fn output(&mut self, x: &str, name: &str) {
        let out = self.node("Identity", &[x], vec![]);
        self.rename(&out, name);
    }

    /// Adds a node of `op` on `inputs`; returns the name of its output.
    fn node(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        self.next += 1;
        let out = format!("{}_{}", op.to_lowercase(), self.next);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: out.clone(),
            op_type: op.into(),
            attribute,
        });
        out
    }

    /// Gives the node whose output is `was` the output name `name`.
    fn rename(&mut self, was: &str, name: &str) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.output[0] == was)
            .expect("a node of this graph");
        node.output[0] = name.into();
    }

    /// A float initializer named `name` (added once), returning its name.
    fn constant(&mut self, name: &str, dims: &[usize], data: Vec<f32>) -> String {
        if self.added.insert(name.to_string()) {
            self.initializers.push(TensorProto {
                dims: dims.iter().map(|&d| d as i64).collect(),
                data_type: FLOAT,
                float_data: data,
                int64_data: Vec::new(),
                name: name.into(),
            });
        }
        name.into()
    }

    fn int64s(&mut self, name: &str, data: Vec<i64>) -> String {
        if self.added.insert(name.to_string()) {
            self.initializers.push(TensorProto {
                dims: vec![data.len() as i64],
                data_type: INT64,
                float_data: Vec::new(),
                int64_data: data,
                name: name.into(),
            });
        }
        name.into()
    }

    /// A model parameter as an initializer of the same name.
    fn param(&mut self, name: &str) -> Result<String> {
        let id = self
            .params
            .find(name)
            .ok_or_else(|| Error::config("export", format!("the model has no `{name}`")))?;
        let t = &self.params.values[id.0];
        Ok(self.constant(name, t.shape(), t.data().to_vec()))
    }

    /// `[batch, ..shape]` → `[batch, features]` when the shape has more than one axis.
    fn flat(&mut self, x: &str, rank: usize) -> String {
        if rank <= 1 {
            return x.into();
        }
        self.node("Flatten", &[x], vec![int_attr("axis", 1)])
    }

    /// `[batch, c·h·w]` rows (or images) as `[batch, c, h, w]` images.
    fn image(&mut self, x: &str, [c, h, w]: [usize; 3]) -> String {
        let shape = self.int64s(
            &format!("image_{c}x{h}x{w}"),
            vec![-1, c as i64, h as i64, w as i64],
        );
        self.node("Reshape", &[x, &shape], vec![])
    }

    /// Columns `from..to` of `x` (`[batch, C]`), named `name`.
    fn columns(&mut self, x: &str, from: usize, to: usize, name: &str) -> String {
        let starts = self.int64s(&format!("{name}.starts"), vec![from as i64]);
        let ends = self.int64s(&format!("{name}.ends"), vec![to as i64]);
        let axes = self.int64s(&format!("{name}.axes"), vec![1]);
        let out = self.node("Slice", &[x, &starts, &ends, &axes], vec![]);
        self.rename(&out, name);
        name.into()
    }

    fn activation(&mut self, x: &str, a: Activation) -> String {
        match a {
            Activation::Linear => x.into(),
            Activation::Relu => self.node("Relu", &[x], vec![]),
            Activation::Sigmoid => self.node("Sigmoid", &[x], vec![]),
            Activation::Tanh => self.node("Tanh", &[x], vec![]),
            Activation::LeakyRelu { slope } => {
                self.node("LeakyRelu", &[x], vec![float_attr("alpha", slope)])
            }
        }
    }

    /// The layers `ops` applied to `x`.
    fn layers(&mut self, x: &str, ops: &[LayerOp]) -> Result<String> {
        let mut x = x.to_string();
        for op in ops {
            x = match op {
                LayerOp::Dense { prefix, tied_to } => {
                    let bias = self.param(&format!("{prefix}.bias"))?;
                    // An own weight is [out, in]: Gemm transposes it. A tied layer reads its
                    // encoder layer's [out, in] weight as its own [in, out].
                    let (weight, trans_b) = match tied_to {
                        None => (self.param(&format!("{prefix}.weight"))?, 1),
                        Some(enc) => (self.param(&format!("{enc}.weight"))?, 0),
                    };
                    self.node(
                        "Gemm",
                        &[&x, &weight, &bias],
                        vec![int_attr("transB", trans_b)],
                    )
                }
                LayerOp::Activation(a) => self.activation(&x, *a),
                LayerOp::Conv {
                    prefix,
                    geometry: g,
                    fused,
                } => {
                    let weight = self.param(&format!("{prefix}.weight"))?;
                    let bias = self.param(&format!("{prefix}.bias"))?;
                    let y = self.node("Conv", &[&x, &weight, &bias], conv_attrs(*g, None));
                    self.activation(&y, *fused)
                }
                LayerOp::ConvTranspose {
                    prefix,
                    geometry: g,
                } => {
                    let Some(extra) = g.doubling_output_padding() else {
                        return Err(Error::config(
                            "export",
                            format!("no ONNX output padding gives a transposed convolution of kernel {} the engine's size", g.kernel),
                        ));
                    };
                    let weight = self.param(&format!("{prefix}.weight"))?;
                    let bias = self.param(&format!("{prefix}.bias"))?;
                    self.node(
                        "ConvTranspose",
                        &[&x, &weight, &bias],
                        conv_attrs(*g, Some(extra)),
                    )
                }
                LayerOp::MissingIndicator => {
                    // Where(IsNaN(x), 0, x) beside Cast(IsNaN(x)): values, then indicators.
                    let missing = self.node("IsNaN", &[&x], vec![]);
                    let zero = self.constant("missing.zero", &[], vec![0.0]);
                    let values = self.node("Where", &[&missing, &zero, &x], vec![]);
                    let flags = self.node("Cast", &[&missing], vec![int_attr("to", FLOAT as i64)]);
                    self.node("Concat", &[&values, &flags], vec![int_attr("axis", 1)])
                }
                LayerOp::MaxPool(k) => self.node(
                    "MaxPool",
                    &[&x],
                    vec![
                        ints_attr("kernel_shape", &[*k, *k]),
                        ints_attr("strides", &[*k, *k]),
                    ],
                ),
                LayerOp::Upsample(k) => {
                    let scales = self.constant(
                        &format!("upsample{k}.scales"),
                        &[4],
                        vec![1.0, 1.0, *k as f32, *k as f32],
                    );
                    self.node(
                        "Resize",
                        &[&x, "", &scales],
                        vec![string_attr("mode", "nearest")],
                    )
                }
                LayerOp::Reshape {
                    to_image: true,
                    chw,
                } => self.image(&x, *chw),
                LayerOp::Reshape {
                    to_image: false, ..
                } => self.flat(&x, 3),
            };
        }
        Ok(x)
    }
}

fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: ATTRIBUTE_INT,
        ..Default::default()
    }
}

fn ints_attr(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.iter().map(|&x| x as i64).collect(),
        r#type: ATTRIBUTE_INTS,
        ..Default::default()
    }
}

fn string_attr(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: v.as_bytes().to_vec(),
        r#type: ATTRIBUTE_STRING,
        ..Default::default()
    }
}

/// Kernel, strides and padding of a convolution (and a transposed one's output padding).
fn conv_attrs(g: Geometry, output_padding: Option<usize>) -> Vec<AttributeProto> {
    let mut a = vec![
        ints_attr("kernel_shape", &[g.kernel, g.kernel]),
        ints_attr("strides", &[g.stride, g.stride]),
        ints_attr("pads", &[g.padding; 4]),
    ];
    if let Some(p) = output_padding {
        a.push(ints_attr("output_padding", &[p, p]));
    }
    a
}

fn float_attr(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: ATTRIBUTE_FLOAT,
        ..Default::default()
    }
}

/// A float tensor value of `dims`, `None` for the dynamic batch dimension.
fn value(name: &str, dims: &[Option<usize>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| match d {
                            Some(v) => Dimension {
                                dim_value: Some(*v as i64),
                                dim_param: None,
                            },
                            None => Dimension {
                                dim_value: None,
                                dim_param: Some("batch".into()),
                            },
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    fn decode(bytes: &[u8]) -> GraphProto {
        ModelProto::decode(bytes).unwrap().graph.unwrap()
    }

    fn ops(g: &GraphProto) -> Vec<&str> {
        g.node.iter().map(|n| n.op_type.as_str()).collect()
    }

    #[test]
    fn a_deep_model_becomes_gemms_and_activations_with_a_dynamic_batch() {
        let mut cfg = ModelConfig::dense(&[1, 4, 4], &[8, 3]);
        cfg.output_activation = Activation::Sigmoid;
        let ae = cfg.build(0).unwrap();
        let g = decode(&export(&ae, None, Part::Autoencoder).unwrap());
        assert_eq!(
            ops(&g),
            ["Flatten", "Gemm", "Relu", "Gemm", "Gemm", "Relu", "Gemm", "Sigmoid", "Identity"]
        );
        assert_eq!(g.input[0].name, "input");
        let dims = |v: &ValueInfoProto| {
            let t = v.r#type.as_ref().unwrap().tensor_type.as_ref().unwrap();
            t.shape.as_ref().unwrap().dim.clone()
        };
        assert_eq!(dims(&g.input[0])[0].dim_param.as_deref(), Some("batch"));
        assert_eq!(dims(&g.input[0])[2].dim_value, Some(4));
        assert_eq!(g.output[0].name, "reconstruction");
        assert_eq!(dims(&g.output[0])[1].dim_value, Some(16));
        // Every parameter once, with its shape.
        let names: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), ae.params.len());
        let w = g
            .initializer
            .iter()
            .find(|t| t.name == "encoder.0.weight")
            .unwrap();
        assert_eq!(w.dims, [8, 16]);
        assert_eq!(w.float_data.len(), 128);
        // The encoder alone ends at the linear code.
        let g = decode(&export(&ae, None, Part::Encoder).unwrap());
        assert_eq!(ops(&g), ["Flatten", "Gemm", "Relu", "Gemm", "Identity"]);
        assert_eq!(g.output[0].name, "code");
        // A classifier: the encoder, the head, logits and their softmax.
        let clf = Classifier::on_encoder(ae, Some(5), 4, 0).unwrap();
        let g = decode(&export_classifier(&clf, None).unwrap());
        assert_eq!(
            ops(&g),
            ["Flatten", "Gemm", "Relu", "Gemm", "Gemm", "Relu", "Gemm", "Softmax", "Identity"]
        );
        let outs: Vec<&str> = g.output.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(outs, ["logits", "probabilities"]);
    }

    #[test]
    fn tied_vae_and_scaled_models_and_refusals() {
        let mut cfg = ModelConfig::dense(&[6], &[4, 2]);
        cfg.tied = true;
        let ae = cfg.build(0).unwrap();
        let g = decode(&export(&ae, None, Part::Decoder).unwrap());
        assert_eq!(g.input[0].name, "code");
        let gemms: Vec<&NodeProto> = g.node.iter().filter(|n| n.op_type == "Gemm").collect();
        // The decoder reads the encoder's weights, untransposed.
        assert_eq!(gemms[0].input[1], "encoder.2.weight");
        assert_eq!(gemms[0].attribute[0].i, 0);
        cfg.tied = false;
        cfg.variational = true;
        let vae = cfg.build(0).unwrap();
        let g = decode(&export(&vae, None, Part::Encoder).unwrap());
        let outs: Vec<&str> = g.output.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(outs, ["mean", "log_variance"]);
        let scaler = Scaler {
            kind: ScalingKind::MinMax,
            offset: vec![1.0; 6],
            scale: vec![0.5; 6],
        };
        let g = decode(&export(&vae, Some(&scaler), Part::Autoencoder).unwrap());
        let o = ops(&g);
        assert_eq!(&o[..2], ["Sub", "Mul"]);
        assert_eq!(&o[o.len() - 3..], ["Div", "Add", "Identity"]);
        let arch = crate::model::ConvArch {
            channels: vec![2],
            kernel: 3,
            decoder: crate::model::ConvDecoder::Transpose,
            code: Some(3),
        };
        let conv = ModelConfig::conv(&[1, 8, 8], arch).build(0).unwrap();
        let g = decode(&export(&conv, None, Part::Autoencoder).unwrap());
        let o = ops(&g);
        for op in [
            "Conv",
            "MaxPool",
            "Flatten",
            "Gemm",
            "Reshape",
            "ConvTranspose",
        ] {
            assert!(o.contains(&op), "{op}: {o:?}");
        }
        assert!("coder".parse::<Part>().is_err());
    }
}
