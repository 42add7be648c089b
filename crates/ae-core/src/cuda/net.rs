//! What the GPU backend computes: an autoencoder as a chain of operations read from the model's
//! plan. Dense layers are fused nodes, `act(x · op(W) + b)`; convolutional models add patch
//! products (convolutions with their activation), max pooling, nearest upsampling and the
//! changes between flat rows and channels-last images. Runs it does not compute yet are refused
//! here, before anything is allocated, with the reason.
use crate::engine::layers::activation::Activation;
use crate::engine::layers::patches::Geometry;
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
    /// Applied after the bias.
    pub act: Activation,
}

/// A channels-last image size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hwc {
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Hwc {
    pub fn len(&self) -> usize {
        self.h * self.w * self.c
    }
}

/// A convolution with PyTorch's `[out, in, k, k]` weight over channels-last images, as a patch
/// product, then its bias and activation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ConvNode {
    pub weight: usize,
    pub bias: Option<usize>,
    pub geometry: Geometry,
    pub input: Hwc,
    pub output: Hwc,
    pub act: Activation,
}

impl ConvNode {
    /// Values in one patch: kernel² · input channels.
    pub fn width(&self) -> usize {
        self.geometry.kernel * self.geometry.kernel * self.input.c
    }

    /// Patch rows per example: one per output pixel.
    pub fn pixels(&self) -> usize {
        self.output.h * self.output.w
    }
}

/// A transposed convolution with PyTorch's `[in, out, k, k]` weight: each input pixel's values
/// times the weight give a patch of the output, and the patches are summed into it (col2im).
/// Its patch grid is the input's pixels and its patches are the output's, so the geometry reads
/// as a convolution from output to input.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ConvTNode {
    pub weight: usize,
    pub bias: Option<usize>,
    pub geometry: Geometry,
    pub input: Hwc,
    pub output: Hwc,
    pub act: Activation,
}

impl ConvTNode {
    /// Values in one patch of the output: kernel² · output channels.
    pub fn width(&self) -> usize {
        self.geometry.kernel * self.geometry.kernel * self.output.c
    }

    /// Patch rows per example: one per input pixel.
    pub fn pixels(&self) -> usize {
        self.input.h * self.input.w
    }
}

/// One operation of the chain.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Op {
    Dense(Node),
    Conv(ConvNode),
    ConvT(ConvTNode),
    /// Max pooling over `k × k` windows with stride `k` (rows and columns past the last whole
    /// window are dropped).
    Pool {
        input: Hwc,
        k: usize,
    },
    /// Nearest upsampling by `k`.
    Up {
        input: Hwc,
        k: usize,
    },
    /// `(C, H, W)` rows to channels-last images (`to_last`), or back.
    Permute {
        image: Hwc,
        to_last: bool,
    },
}

impl Op {
    /// Values per example this operation gives.
    pub fn outputs(&self) -> usize {
        match self {
            Op::Dense(n) => n.outputs,
            Op::Conv(c) => c.output.len(),
            Op::ConvT(c) => c.output.len(),
            Op::Pool { input, k } => (input.h / k) * (input.w / k) * input.c,
            Op::Up { input, k } => input.len() * k * k,
            Op::Permute { image, .. } => image.len(),
        }
    }

    /// Its activation (linear for operations without one).
    pub fn act(&self) -> Activation {
        match self {
            Op::Dense(n) => n.act,
            Op::Conv(c) => c.act,
            Op::ConvT(c) => c.act,
            _ => Activation::Linear,
        }
    }

    fn set_act(&mut self, a: Activation) -> bool {
        match self {
            Op::Dense(n) if n.act == Activation::Linear => n.act = a,
            Op::Conv(c) if c.act == Activation::Linear => c.act = a,
            Op::ConvT(c) if c.act == Activation::Linear => c.act = a,
            _ => return false,
        }
        true
    }
}

/// An autoencoder as the GPU computes it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GpuNet {
    /// Encoder then decoder operations; the last one's output are the logits.
    pub ops: Vec<Op>,
    /// Input (and output) features.
    pub features: usize,
    /// The operation whose output is the code (the encoder's last).
    pub code: usize,
    /// Applied to the logits: the reconstruction.
    pub output_act: Activation,
    /// A VAE's latent units: the code is `[μ | log σ²]`, twice as wide, and the decoder reads a
    /// sample of this many values.
    pub latent: Option<usize>,
}

/// Why `task` cannot train on the GPU yet, if it cannot.
fn unsupported(task: &AutoencoderTask) -> Option<&'static str> {
    let o = &task.objective;
    let c = &task.model.config;
    if (c.variational || o.kl.is_some()) && o.learned_variance {
        return Some("a learned decoder variance (--learned-variance)");
    }
    if (c.variational || o.kl.is_some()) && o.sparsity.is_some() {
        return Some("sparsity on a VAE's code");
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
            "the GPU backend trains dense and convolutional autoencoders (plain, denoising, \
             sparse, contractive, variational, with weight decay) so far, not yet {what}; use \
             the CPU (--device cpu)"
        ),
    )
}

/// What flows between operations while the chain is read.
#[derive(Clone, Copy)]
enum Shape {
    Flat(usize),
    Image(Hwc),
}

impl GpuNet {
    /// The chain of `task`'s model, or an error naming what the GPU does not compute yet.
    pub fn of(task: &AutoencoderTask) -> Result<GpuNet> {
        if let Some(what) = unsupported(task) {
            return Err(refuse(what));
        }
        let config = &task.model.config;
        let params = &task.model.params;
        let features = config.input_features();
        let (encoder, decoder) = config.layer_ops()?;
        let mut ops: Vec<Op> = Vec::new();
        let mut code = None;
        let mut shape = Shape::Flat(features);
        let latent = config.variational.then(|| config.code_size());
        let chain_error = |got: Vec<usize>| Error::Shape {
            what: "the chain of layers on the GPU".into(),
            expected: vec![features],
            got,
        };
        for (k, op) in encoder.iter().chain(&decoder).enumerate() {
            if k == encoder.len() {
                match ops.len() {
                    0 => return Err(refuse("an encoder without layers")),
                    n => code = Some(n - 1),
                }
                if let Some(z) = latent {
                    if !matches!(shape, Shape::Flat(w) if w == 2 * z) {
                        return Err(chain_error(vec![2 * z]));
                    }
                    shape = Shape::Flat(z);
                }
            }
            match (op, shape) {
                (LayerOp::Dense { prefix, tied_to }, Shape::Flat(len)) => {
                    let node = dense(params, prefix, tied_to)?;
                    if node.inputs != len {
                        return Err(chain_error(vec![len, node.inputs]));
                    }
                    shape = Shape::Flat(node.outputs);
                    ops.push(Op::Dense(node));
                }
                (LayerOp::Activation(a), _) => {
                    if !ops.last_mut().is_some_and(|o| o.set_act(*a)) {
                        return Err(refuse("an activation that does not follow a layer"));
                    }
                }
                (LayerOp::Reshape { to_image, chw }, _) => {
                    let [c, h, w] = *chw;
                    let image = Hwc { h, w, c };
                    if *to_image {
                        shape = Shape::Image(image);
                    } else if matches!(shape, Shape::Flat(_)) {
                        // Flattening rows that are already flat (a dense model's first step).
                        continue;
                    } else {
                        shape = Shape::Flat(image.len());
                    }
                    // One channel: the two layouts are the same values in the same order.
                    if c > 1 {
                        ops.push(Op::Permute {
                            image,
                            to_last: *to_image,
                        });
                    }
                }
                (
                    LayerOp::Conv {
                        prefix,
                        geometry,
                        fused,
                    },
                    Shape::Image(input),
                ) => {
                    let node = conv(params, prefix, *geometry, input, *fused)?;
                    shape = Shape::Image(node.output);
                    ops.push(Op::Conv(node));
                }
                (LayerOp::MaxPool(k), Shape::Image(input)) => {
                    if input.h < *k || input.w < *k {
                        return Err(chain_error(vec![input.h, input.w, input.c]));
                    }
                    ops.push(Op::Pool { input, k: *k });
                    shape = Shape::Image(Hwc {
                        h: input.h / k,
                        w: input.w / k,
                        c: input.c,
                    });
                }
                (LayerOp::Upsample(k), Shape::Image(input)) => {
                    ops.push(Op::Up { input, k: *k });
                    shape = Shape::Image(Hwc {
                        h: input.h * k,
                        w: input.w * k,
                        c: input.c,
                    });
                }
                (LayerOp::ConvTranspose { prefix, geometry }, Shape::Image(input)) => {
                    let node = conv_t(params, prefix, *geometry, input)?;
                    shape = Shape::Image(node.output);
                    ops.push(Op::ConvT(node));
                }
                (LayerOp::MissingIndicator, _) => return Err(refuse("missing-cell indicators")),
                (other, _) => {
                    return Err(refuse(&format!(
                        "a layer in an unexpected place ({other:?})"
                    )))
                }
            }
        }
        let Some(last) = ops.last() else {
            return Err(refuse("a model without layers"));
        };
        if last.act() != Activation::Linear {
            return Err(refuse("an activation after the output layer"));
        }
        if !matches!(shape, Shape::Flat(n) if n == features) {
            return Err(chain_error(ops.iter().map(|o| o.outputs()).collect()));
        }
        Ok(GpuNet {
            ops,
            features,
            code: code.unwrap_or(0),
            output_act: config.output_activation,
            latent,
        })
    }
}

fn find(params: &Params, name: String) -> Result<usize> {
    params
        .find(&name)
        .map(|id| id.0)
        .ok_or_else(|| Error::config("model", format!("no parameter {name}")))
}

fn dense(params: &Params, prefix: &str, tied_to: &Option<String>) -> Result<Node> {
    let weight = find(
        params,
        format!("{}.weight", tied_to.as_deref().unwrap_or(prefix)),
    )?;
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

fn conv(
    params: &Params,
    prefix: &str,
    geometry: Geometry,
    input: Hwc,
    act: Activation,
) -> Result<ConvNode> {
    let weight = find(params, format!("{prefix}.weight"))?;
    let bias = params.find(&format!("{prefix}.bias")).map(|id| id.0);
    let k = geometry.kernel;
    let out_c = match params.values[weight].shape() {
        [o, i, kh, kw] if *i == input.c && *kh == k && *kw == k => *o,
        other => {
            return Err(Error::Shape {
                what: format!("{prefix}.weight on the GPU"),
                expected: vec![0, input.c, k, k],
                got: other.to_vec(),
            })
        }
    };
    let (Some(h), Some(w)) = (geometry.out_len(input.h), geometry.out_len(input.w)) else {
        return Err(refuse("a convolution larger than its padded input"));
    };
    Ok(ConvNode {
        weight,
        bias,
        geometry,
        input,
        output: Hwc { h, w, c: out_c },
        act,
    })
}

fn conv_t(params: &Params, prefix: &str, geometry: Geometry, input: Hwc) -> Result<ConvTNode> {
    let weight = find(params, format!("{prefix}.weight"))?;
    let bias = params.find(&format!("{prefix}.bias")).map(|id| id.0);
    let k = geometry.kernel;
    let out_c = match params.values[weight].shape() {
        [i, o, kh, kw] if *i == input.c && *kh == k && *kw == k => *o,
        other => {
            return Err(Error::Shape {
                what: format!("{prefix}.weight on the GPU"),
                expected: vec![input.c, 0, k, k],
                got: other.to_vec(),
            })
        }
    };
    // The engine's output padding, stride − 1, doubles the size at stride 2.
    let len = |n: usize| {
        ((n - 1) * geometry.stride + k + geometry.stride - 1).checked_sub(2 * geometry.padding)
    };
    let (Some(h), Some(w)) = (len(input.h), len(input.w)) else {
        return Err(refuse(
            "a transposed convolution with more padding than output",
        ));
    };
    Ok(ConvTNode {
        weight,
        bias,
        geometry,
        input,
        output: Hwc { h, w, c: out_c },
        act: Activation::Linear,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConvArch, ConvDecoder, ModelConfig};
    use crate::objective::Objective;

    fn task(config: ModelConfig, objective: Objective) -> Result<GpuNet> {
        GpuNet::of(&AutoencoderTask::new(config.build(0)?, objective)?)
    }

    fn dense_shapes(net: &GpuNet) -> Vec<(usize, usize)> {
        net.ops
            .iter()
            .map(|o| match o {
                Op::Dense(n) => (n.inputs, n.outputs),
                other => panic!("not dense: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_deep_dense_model_becomes_one_fused_node_per_layer() {
        let mut config = ModelConfig::dense(&[1, 4, 5], &[8, 3]);
        config.output_activation = Activation::Sigmoid;
        let net = task(config.clone(), Objective::default()).unwrap();
        assert_eq!(dense_shapes(&net), [(20, 8), (8, 3), (3, 8), (8, 20)]);
        assert_eq!(net.features, 20);
        assert_eq!(net.code, 1);
        assert_eq!(net.ops[0].act(), config.activation);
        assert_eq!(net.ops[1].act(), config.code_activation());
        assert_eq!(net.ops[3].act(), Activation::Linear);
        assert_eq!(net.output_act, Activation::Sigmoid);
    }

    #[test]
    fn a_tied_decoder_reads_its_encoder_weight_transposed() {
        let mut config = ModelConfig::dense(&[6], &[4, 2]);
        config.tied = true;
        let net = task(config, Objective::default()).unwrap();
        let (Op::Dense(first), Op::Dense(last)) = (&net.ops[0], &net.ops[3]) else {
            panic!("dense");
        };
        assert_eq!(last.weight, first.weight);
        assert!(!last.out_in);
        assert_eq!((last.inputs, last.outputs), (4, 6));
    }

    #[test]
    fn a_conv_model_becomes_permutes_convolutions_pools_and_upsamplings() {
        let arch = ConvArch {
            channels: vec![4, 3],
            kernel: 3,
            decoder: ConvDecoder::Upsample,
            code: Some(5),
        };
        let net = task(ModelConfig::conv(&[2, 8, 8], arch), Objective::default()).unwrap();
        let kinds: Vec<&str> = net
            .ops
            .iter()
            .map(|o| match o {
                Op::Dense(_) => "dense",
                Op::Conv(_) => "conv",
                Op::ConvT(_) => "conv_t",
                Op::Pool { .. } => "pool",
                Op::Up { .. } => "up",
                Op::Permute { .. } => "permute",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "permute", "conv", "pool", "conv", "pool", "permute", "dense", "dense", "permute",
                "conv", "up", "conv", "up", "conv", "permute"
            ]
        );
        assert_eq!(net.code, 6);
        assert_eq!(net.ops[6].outputs(), 5);
        assert_eq!(net.ops.last().unwrap().outputs(), 128);
        let Op::Conv(last) = &net.ops[13] else {
            panic!("conv")
        };
        assert_eq!(
            (last.input.c, last.output.c, last.act),
            (4, 2, Activation::Linear)
        );
    }

    #[test]
    fn what_the_gpu_does_not_compute_yet_is_refused_by_name() {
        let config = ModelConfig::dense(&[6], &[4, 2]);
        let incomplete = Objective {
            missing: Some(0.1),
            ..Objective::default()
        };
        let e = task(config.clone(), incomplete).unwrap_err().to_string();
        assert!(
            e.contains("--missing allow") && e.contains("--device cpu"),
            "{e}"
        );
        let mut vae = config.clone();
        vae.variational = true;
        let learned = Objective {
            kl: Some(crate::model::vae::KlTerm {
                beta: 1.0,
                warmup: 0,
                free_bits: None,
            }),
            learned_variance: true,
            ..Objective::default()
        };
        let e = task(vae, learned).unwrap_err().to_string();
        assert!(e.contains("learned-variance"), "{e}");
    }

    #[test]
    fn a_vae_samples_between_its_encoder_and_decoder() {
        let mut config = ModelConfig::dense(&[6], &[4, 2]);
        config.variational = true;
        let objective = Objective {
            kl: Some(crate::model::vae::KlTerm {
                beta: 1.0,
                warmup: 0,
                free_bits: None,
            }),
            ..Objective::default()
        };
        let net = task(config, objective).unwrap();
        assert_eq!(net.latent, Some(2));
        assert_eq!(dense_shapes(&net), [(6, 4), (4, 4), (2, 4), (4, 6)]);
        assert_eq!(net.code, 1);
    }

    #[test]
    fn a_transposed_decoder_doubles_the_size_at_each_stage() {
        let arch = ConvArch {
            channels: vec![2, 3],
            kernel: 3,
            decoder: ConvDecoder::Transpose,
            code: Some(3),
        };
        let config = ModelConfig::conv(&[1, 8, 8], arch);
        let net = task(config.clone(), Objective::default()).unwrap();
        let sizes: Vec<(Hwc, Hwc, Activation)> = net
            .ops
            .iter()
            .filter_map(|o| match o {
                Op::ConvT(c) => Some((c.input, c.output, c.act)),
                _ => None,
            })
            .collect();
        let hwc = |h, w, c| Hwc { h, w, c };
        let relu = config.activation;
        assert_eq!(
            sizes,
            [
                (hwc(2, 2, 3), hwc(4, 4, 3), relu),
                (hwc(4, 4, 3), hwc(8, 8, 2), relu)
            ]
        );
        assert_eq!(net.ops.last().unwrap().outputs(), 64);
    }
}
