//! What the GPU backend computes: a dense autoencoder as a chain of fused nodes, each
//! `act(x · op(W) + b)`, read from the model's plan. Runs it does not compute yet are refused
//! here, before anything is allocated, with the reason.
use crate::engine::layers::activation::Activation;
use crate::engine::params::Params;
use crate::model::plan::LayerOp;
use crate::objective::AutoencoderTask;
use crate::{Error, Result};

/// One dense layer with the activation that follows it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    /// Index of the weight in the parameters (the encoder's, for a tied decoder layer).
    pub weight: usize,
    /// Index of the bias, if any.
    pub bias: Option<usize>,
    /// The weight is stored `[out, in]` (PyTorch's `nn.Linear`); false: `[in, out]`, a tied
    /// decoder layer reading its encoder layer's weight.
    pub out_in: bool,
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
    /// Applied after the bias; the last node's is the model's output activation.
    pub act: Activation,
}

/// A dense autoencoder as the GPU computes it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DenseNet {
    /// Encoder then decoder nodes.
    pub nodes: Vec<Node>,
    /// Input (and output) features.
    pub features: usize,
    /// The node whose output is the code (the encoder's last).
    pub code: usize,
}

/// Why `task` cannot train on the GPU yet, if it cannot.
fn unsupported(task: &AutoencoderTask) -> Option<&'static str> {
    let o = &task.objective;
    let c = &task.model.config;
    if c.variational || o.kl.is_some() {
        return Some("variational autoencoders");
    }
    if o.contractive.is_some() {
        return Some("the contractive penalty");
    }
    if o.binarize {
        return Some("dynamic binarization");
    }
    if o.missing.is_some() {
        return Some("training on incomplete rows (--missing allow)");
    }
    None
}

fn refuse(what: &str) -> Error {
    Error::config(
        "device",
        format!(
            "the GPU backend trains dense autoencoders (plain, denoising, sparse, with weight \
             decay) so far; {what} still trains on the CPU (--device cpu)"
        ),
    )
}

impl DenseNet {
    /// The chain of `task`'s model, or an error saying what the GPU backend does not compute yet.
    pub fn of(task: &AutoencoderTask) -> Result<DenseNet> {
        if let Some(what) = unsupported(task) {
            return Err(refuse(what));
        }
        let config = &task.model.config;
        let params = &task.model.params;
        let (encoder, decoder) = config.layer_ops()?;
        let mut nodes: Vec<Node> = Vec::new();
        let mut code = 0;
        for (k, op) in encoder.iter().chain(&decoder).enumerate() {
            if k == encoder.len() {
                match nodes.len() {
                    0 => return Err(refuse("an encoder without dense layers")),
                    n => code = n - 1,
                }
            }
            match op {
                LayerOp::Dense { prefix, tied_to } => nodes.push(dense(params, prefix, tied_to)?),
                LayerOp::Activation(a) => match nodes.last_mut() {
                    Some(n) if n.act == Activation::Linear => n.act = *a,
                    _ => return Err(refuse("an activation that does not follow a dense layer")),
                },
                // Flattening an image before the first dense layer moves nothing in row-major
                // memory; any other change of layout belongs to convolutional networks.
                LayerOp::Reshape {
                    to_image: false, ..
                } if nodes.is_empty() => {}
                LayerOp::Reshape { .. } => return Err(refuse("convolutional layers")),
                LayerOp::MissingIndicator => return Err(refuse("missing-cell indicators")),
                _ => return Err(refuse("convolutional layers")),
            }
        }
        let features = config.input_features();
        let Some(last) = nodes.last_mut() else {
            return Err(refuse("a model without layers"));
        };
        if last.act != Activation::Linear {
            return Err(refuse("an activation after the output layer"));
        }
        last.act = config.output_activation;
        let chained = nodes.windows(2).all(|w| w[0].outputs == w[1].inputs);
        if !chained || nodes[0].inputs != features || nodes[nodes.len() - 1].outputs != features {
            return Err(Error::Shape {
                what: "dense chain on the GPU".into(),
                expected: vec![features],
                got: nodes.iter().map(|n| n.outputs).collect(),
            });
        }
        Ok(DenseNet {
            nodes,
            features,
            code,
        })
    }
}

/// The node of dense layer `prefix`, reading the weight of `tied_to` when given.
fn dense(params: &Params, prefix: &str, tied_to: &Option<String>) -> Result<Node> {
    let find = |name: String| {
        params
            .find(&name)
            .map(|id| id.0)
            .ok_or_else(|| Error::config("model", format!("no parameter {name}")))
    };
    let weight = find(format!("{}.weight", tied_to.as_deref().unwrap_or(prefix)))?;
    let bias = params.find(&format!("{prefix}.bias")).map(|id| id.0);
    let shape = params.values[weight].shape();
    if shape.len() != 2 {
        return Err(refuse("a dense layer whose weight is not a matrix"));
    }
    let out_in = tied_to.is_none();
    let (outputs, inputs) = if out_in {
        (shape[0], shape[1])
    } else {
        (shape[1], shape[0])
    };
    Ok(Node {
        weight,
        bias,
        out_in,
        inputs,
        outputs,
        act: Activation::Linear,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;
    use crate::objective::Objective;

    fn task(config: ModelConfig, objective: Objective) -> Result<DenseNet> {
        DenseNet::of(&AutoencoderTask::new(config.build(0)?, objective)?)
    }

    #[test]
    fn a_deep_dense_model_becomes_one_fused_node_per_layer() {
        let mut config = ModelConfig::dense(&[1, 4, 5], &[8, 3]);
        config.output_activation = Activation::Sigmoid;
        let net = task(config.clone(), Objective::default()).unwrap();
        let shape: Vec<_> = net.nodes.iter().map(|n| (n.inputs, n.outputs)).collect();
        assert_eq!(shape, [(20, 8), (8, 3), (3, 8), (8, 20)]);
        assert_eq!(net.features, 20);
        assert_eq!(net.code, 1);
        assert_eq!(net.nodes[0].act, config.activation);
        assert_eq!(net.nodes[1].act, config.code_activation());
        assert_eq!(net.nodes[3].act, Activation::Sigmoid);
        assert!(net.nodes.iter().all(|n| n.out_in && n.bias.is_some()));
    }

    #[test]
    fn a_tied_decoder_reads_its_encoder_weight_transposed() {
        let mut config = ModelConfig::dense(&[6], &[4, 2]);
        config.tied = true;
        let net = task(config, Objective::default()).unwrap();
        assert_eq!(net.nodes[3].weight, net.nodes[0].weight);
        assert_eq!(net.nodes[2].weight, net.nodes[1].weight);
        assert!(!net.nodes[3].out_in);
        assert_eq!((net.nodes[3].inputs, net.nodes[3].outputs), (4, 6));
    }

    #[test]
    fn what_the_gpu_does_not_compute_yet_is_refused_by_name() {
        let config = ModelConfig::dense(&[6], &[4, 2]);
        let mut one_layer = config.clone();
        one_layer.hidden = vec![3];
        let contractive = Objective {
            contractive: Some(0.1),
            ..Objective::default()
        };
        let e = task(one_layer, contractive).unwrap_err().to_string();
        assert!(
            e.contains("contractive") && e.contains("--device cpu"),
            "{e}"
        );
        let arch = crate::model::ConvArch {
            channels: vec![2],
            kernel: 3,
            decoder: crate::model::ConvDecoder::Transpose,
            code: Some(3),
        };
        let conv = ModelConfig::conv(&[1, 8, 8], arch);
        let e = task(conv, Objective::default()).unwrap_err().to_string();
        assert!(e.contains("convolutional"), "{e}");
    }
}
