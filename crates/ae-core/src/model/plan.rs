//! From a [`ModelConfig`] to layers: a plan lists every layer of the encoder and decoder with its
//! parameter names and shapes, so that loading can check a weights file against the shapes before
//! anything is allocated, and building creates exactly what the plan says.
//!
//! Parameter names follow the `nn.Sequential` a PyTorch user would write for the same network
//! (`encoder.3.weight` is the weight of the encoder's fourth layer, activations and pooling
//! counted), so `model.safetensors` loads into that module with `load_state_dict`. The layout
//! changes at the edges of a convolutional network have no PyTorch counterpart and are not counted.
use crate::engine::init::Init;
use crate::engine::layers::activation::{Activation, ActivationLayer};
use crate::engine::layers::conv::{Conv2d, ConvTranspose2d};
use crate::engine::layers::dense::{Dense, WeightLayout};
use crate::engine::layers::indicator::MissingIndicator;
use crate::engine::layers::patches::Geometry;
use crate::engine::layers::spatial::{Layout, MaxPool2d, Order, Upsample};
use crate::engine::params::{ParamId, ParamKind, Params};
use crate::engine::rng::{stream, Purpose};
use crate::engine::sequential::Sequential;
use crate::engine::tensor::Tensor;
use crate::model::autoencoder::{Autoencoder, Net};
use crate::model::config::{conv_input, ConvArch, ConvDecoder, ModelConfig};
use crate::{Error, Result};

/// One planned layer.
#[derive(Clone, Debug)]
enum Spec {
    Dense {
        inputs: usize,
        outputs: usize,
        next: Activation,
        /// Reads this encoder layer's weight transposed (tied weights).
        tied_to: Option<String>,
    },
    Act(Activation),
    Conv {
        inputs: usize,
        outputs: usize,
        geometry: Geometry,
        next: Activation,
        /// Applied inside the layer.
        fused: Activation,
    },
    ConvT {
        inputs: usize,
        outputs: usize,
        geometry: Geometry,
        next: Activation,
    },
    Pool(usize),
    Up(usize),
    /// Missing-cell indicators of this many features (doubles them); not counted in names.
    Indicator(usize),
    /// A layout change; `visible` ones are PyTorch's `Flatten` / `Unflatten` and count in names.
    Layout {
        layout: Layout,
        visible: bool,
    },
}

impl Spec {
    fn counts(&self) -> bool {
        !matches!(
            self,
            Spec::Layout { visible: false, .. } | Spec::Indicator(_)
        )
    }

    /// The shape of the layer's own weight (none when it reads a shared one) and the length of
    /// its bias; none for a layer without parameters. Both loading checks and building use it.
    fn param_shapes(&self) -> Option<(Option<Vec<usize>>, usize)> {
        match self {
            Spec::Dense {
                inputs,
                outputs,
                tied_to,
                ..
            } => Some((tied_to.is_none().then(|| vec![*outputs, *inputs]), *outputs)),
            Spec::Conv {
                inputs,
                outputs,
                geometry: g,
                ..
            } => Some((Some(vec![*outputs, *inputs, g.kernel, g.kernel]), *outputs)),
            Spec::ConvT {
                inputs,
                outputs,
                geometry: g,
                ..
            } => Some((Some(vec![*inputs, *outputs, g.kernel, g.kernel]), *outputs)),
            _ => None,
        }
    }
}

/// One layer of a model as an exporter sees it (see [`ModelConfig::layer_ops`]).
#[derive(Clone, Debug, PartialEq)]
pub enum LayerOp {
    /// `y = x·Wᵀ + b`, `W` the parameter `{prefix}.weight` of shape `[out, in]`; tied: `y = x·W`
    /// with the encoder weight `{tied}.weight`, of shape `[in, out]` here.
    Dense {
        /// Name prefix of the layer's own parameters (its bias, and its weight when untied).
        prefix: String,
        /// The encoder layer whose weight a tied decoder layer reads.
        tied_to: Option<String>,
    },
    /// An element-wise activation.
    Activation(Activation),
    /// A 2-D convolution with PyTorch's `[out, in, k, k]` weight `{prefix}.weight`, then `fused`.
    Conv {
        /// Name prefix of the weight and bias.
        prefix: String,
        /// Kernel, stride and zero padding.
        geometry: Geometry,
        /// The activation applied inside the layer.
        fused: Activation,
    },
    /// A transposed 2-D convolution with PyTorch's `[in, out, k, k]` weight, doubling the size.
    ConvTranspose {
        /// Name prefix of the weight and bias.
        prefix: String,
        /// Kernel, stride and zero padding.
        geometry: Geometry,
    },
    /// Max pooling over `k × k` windows with stride `k`.
    MaxPool(usize),
    /// Nearest-neighbour upsampling by `k`.
    Upsample(usize),
    /// `[N, D]` rows with NaN for missing cells → `[N, 2·D]`: the rows with NaN as 0, then 1 for
    /// each missing cell and 0 for each observed one
    /// ([`crate::engine::layers::indicator::MissingIndicator`]).
    MissingIndicator,
    /// A change between flat rows and `(C, H, W)` images as seen from outside (the engine's
    /// channels-last layout inside a convolutional network is not the exporter's concern):
    /// `to_image` reshapes rows into `chw` images, otherwise images are flattened.
    Reshape {
        /// Rows to images (true) or images to rows.
        to_image: bool,
        /// The image's channels, height and width.
        chw: [usize; 3],
    },
}

/// The layers of one side (`encoder` or `decoder`), each with its name prefix.
struct Side {
    name: &'static str,
    layers: Vec<(String, Spec)>,
    next_index: usize,
}

impl Side {
    fn new(name: &'static str) -> Self {
        Side {
            name,
            layers: Vec::new(),
            next_index: 0,
        }
    }

    fn push(&mut self, spec: Spec) {
        let prefix = format!("{}.{}", self.name, self.next_index);
        if spec.counts() {
            self.next_index += 1;
        }
        self.layers.push((prefix, spec));
    }

    /// A convolution with its activation fused in (see [`Conv2d`]); the activation still takes
    /// an index in parameter names, as `nn.ReLU` does in PyTorch.
    fn push_fused(&mut self, spec: Spec, act: Activation) {
        self.push(spec);
        if act != Activation::Linear {
            self.next_index += 1;
        }
    }

    /// A layer followed by its activation (no activation layer for the identity, or when the model
    /// applies it, as for the output).
    fn push_with(&mut self, spec: Spec, act: Activation, layer: bool) {
        self.push(spec);
        if layer && act != Activation::Linear {
            self.push(Spec::Act(act));
        }
    }
}

/// The planned layers of a model.
struct Plan {
    encoder: Side,
    decoder: Side,
}

fn same(kernel: usize) -> Geometry {
    Geometry {
        kernel,
        stride: 1,
        padding: kernel / 2,
    }
}

impl ModelConfig {
    fn plan(&self) -> Result<Plan> {
        self.validate()?;
        match &self.conv {
            None => Ok(self.dense_plan()),
            Some(arch) => self.conv_plan(arch),
        }
    }

    fn dense_plan(&self) -> Plan {
        let mut sizes = vec![self.input_features()];
        sizes.extend(&self.hidden);
        let mut enc = Side::new("encoder");
        let mut dec = Side::new("decoder");
        let mut enc_names = Vec::new();
        if self.missing_indicator {
            enc.push(Spec::Indicator(sizes[0]));
        }
        for (i, w) in sizes.windows(2).enumerate() {
            let last = i + 2 == sizes.len();
            let act = match (last, self.variational) {
                (true, true) => Activation::Linear,
                (true, false) => self.code_activation(),
                _ => self.activation,
            };
            // A VAE's code layer gives [μ | log σ²].
            let outputs = if last && self.variational {
                2 * w[1]
            } else {
                w[1]
            };
            enc_names.push(format!("encoder.{}", enc.next_index));
            let inputs = if i == 0 && self.missing_indicator {
                2 * w[0]
            } else {
                w[0]
            };
            let spec = Spec::Dense {
                inputs,
                outputs,
                next: act,
                tied_to: None,
            };
            enc.push_with(spec, act, true);
        }
        let rev: Vec<usize> = sizes.iter().rev().copied().collect();
        for (i, w) in rev.windows(2).enumerate() {
            let last = i + 2 == rev.len();
            let act = if last {
                self.output_activation
            } else {
                self.activation
            };
            let tied_to = self
                .tied
                .then(|| enc_names[enc_names.len() - 1 - i].clone());
            let spec = Spec::Dense {
                inputs: w[0],
                outputs: w[1],
                next: act,
                tied_to,
            };
            dec.push_with(spec, act, !last);
        }
        Plan {
            encoder: enc,
            decoder: dec,
        }
    }

    fn conv_plan(&self, arch: &ConvArch) -> Result<Plan> {
        let [c, h, w] = conv_input(&self.input_shape)?;
        let stages = arch.channels.len();
        let (ch, cw) = (h >> stages, w >> stages);
        let c_last = *arch.channels.last().expect("validated: channels not empty");
        let k = arch.kernel;
        let act = self.activation;
        let mut enc = Side::new("encoder");
        let mut dec = Side::new("decoder");
        let layout = |to, chw, visible| Spec::Layout {
            layout: Layout { to, chw },
            visible,
        };

        enc.push(layout(Order::ChannelsLast, [c, h, w], false));
        let mut prev = c;
        for &out in &arch.channels {
            let spec = Spec::Conv {
                inputs: prev,
                outputs: out,
                geometry: same(k),
                next: act,
                fused: act,
            };
            enc.push_fused(spec, act);
            enc.push(Spec::Pool(2));
            prev = out;
        }
        let map = [c_last, ch, cw];
        let map_len = c_last * ch * cw;
        match arch.code {
            Some(code) => {
                enc.push(layout(Order::ChannelsFirst, map, true));
                let (ca, outputs) = if self.variational {
                    (Activation::Linear, 2 * code)
                } else {
                    (self.code_activation(), code)
                };
                let spec = Spec::Dense {
                    inputs: map_len,
                    outputs,
                    next: ca,
                    tied_to: None,
                };
                enc.push_with(spec, ca, true);
                let spec = Spec::Dense {
                    inputs: code,
                    outputs: map_len,
                    next: act,
                    tied_to: None,
                };
                dec.push_with(spec, act, true);
                dec.push(layout(Order::ChannelsLast, map, true));
            }
            None => {
                enc.push(layout(Order::ChannelsFirst, map, false));
                dec.push(layout(Order::ChannelsLast, map, false));
            }
        }
        for &out in arch.channels.iter().rev() {
            match arch.decoder {
                ConvDecoder::Upsample => {
                    let spec = Spec::Conv {
                        inputs: prev,
                        outputs: out,
                        geometry: same(k),
                        next: act,
                        fused: act,
                    };
                    dec.push_fused(spec, act);
                    dec.push(Spec::Up(2));
                }
                ConvDecoder::Transpose => {
                    // Stride 2, padding k/2 and output padding 1 double the size exactly.
                    let geometry = Geometry {
                        kernel: k,
                        stride: 2,
                        padding: k / 2,
                    };
                    let spec = Spec::ConvT {
                        inputs: prev,
                        outputs: out,
                        geometry,
                        next: act,
                    };
                    dec.push_with(spec, act, true);
                }
            }
            prev = out;
        }
        let spec = Spec::Conv {
            inputs: prev,
            outputs: c,
            geometry: same(k),
            next: self.output_activation,
            fused: Activation::Linear,
        };
        dec.push_with(spec, self.output_activation, false);
        dec.push(layout(Order::ChannelsFirst, [c, h, w], false));
        Ok(Plan {
            encoder: enc,
            decoder: dec,
        })
    }

    /// Names and shapes of the parameters [`ModelConfig::build`] creates, in order, computed without
    /// allocating them: loading checks a weights file against these before building anything, so
    /// a config that claims a huge network cannot make us allocate it.
    pub fn param_shapes(&self) -> Result<Vec<(String, Vec<usize>)>> {
        let plan = self.plan()?;
        let mut shapes = Vec::new();
        for (prefix, spec) in plan.encoder.layers.iter().chain(&plan.decoder.layers) {
            let Some((weight, bias)) = spec.param_shapes() else {
                continue;
            };
            if let Some(w) = weight {
                shapes.push((format!("{prefix}.weight"), w));
            }
            shapes.push((format!("{prefix}.bias"), vec![bias]));
        }
        Ok(shapes)
    }

    /// The encoder's and the decoder's layers in order, for exporters. The decoder's list ends
    /// before the output activation, which the model applies (`output_activation`); a VAE's
    /// encoder ends at `[μ | log σ²]`.
    pub fn layer_ops(&self) -> Result<(Vec<LayerOp>, Vec<LayerOp>)> {
        let plan = self.plan()?;
        let ops = |side: &Side| -> Vec<LayerOp> {
            side.layers
                .iter()
                .map(|(prefix, spec)| match spec {
                    Spec::Dense { tied_to, .. } => LayerOp::Dense {
                        prefix: prefix.clone(),
                        tied_to: tied_to.clone(),
                    },
                    Spec::Act(a) => LayerOp::Activation(*a),
                    Spec::Conv {
                        geometry, fused, ..
                    } => LayerOp::Conv {
                        prefix: prefix.clone(),
                        geometry: *geometry,
                        fused: *fused,
                    },
                    Spec::ConvT { geometry, .. } => LayerOp::ConvTranspose {
                        prefix: prefix.clone(),
                        geometry: *geometry,
                    },
                    Spec::Pool(k) => LayerOp::MaxPool(*k),
                    Spec::Up(k) => LayerOp::Upsample(*k),
                    Spec::Indicator(_) => LayerOp::MissingIndicator,
                    Spec::Layout { layout, .. } => LayerOp::Reshape {
                        to_image: matches!(layout.to, Order::ChannelsLast),
                        chw: layout.chw,
                    },
                })
                .collect()
        };
        Ok((ops(&plan.encoder), ops(&plan.decoder)))
    }

    /// Builds the model with freshly initialized weights drawn from `seed`.
    pub fn build(&self, seed: u64) -> Result<Autoencoder> {
        let plan = self.plan()?;
        let mut params = Params::default();
        let mut rng = stream(seed, Purpose::Init, 0, 0);
        let mut sides = [Sequential::new(), Sequential::new()];
        for (seq, side) in sides.iter_mut().zip([&plan.encoder, &plan.decoder]) {
            for (prefix, spec) in &side.layers {
                self.add_layer(seq, &mut params, &mut rng, prefix, spec)?;
            }
        }
        let [encoder, decoder] = sides;
        let mut net = Net::new(encoder, decoder, self.output_activation);
        if self.variational {
            net.gaussian = Some(crate::model::vae::Gaussian::new(self.code_size()));
        }
        // Check the chain once, so a shape mistake is an error here rather than a panic in a step.
        let mut code = net.encoder.output_shape(&self.input_shape)?;
        if self.variational {
            code = vec![self.code_size()];
        }
        let out = net.decoder.output_shape(&code)?;
        if out.iter().product::<usize>() != self.input_features() {
            return Err(Error::Shape {
                what: "decoder output".into(),
                expected: self.input_shape.clone(),
                got: out,
            });
        }
        Ok(Autoencoder {
            config: self.clone(),
            params,
            net,
        })
    }

    fn add_layer(
        &self,
        seq: &mut Sequential,
        params: &mut Params,
        rng: &mut crate::engine::rng::Rng,
        prefix: &str,
        spec: &Spec,
    ) -> Result<()> {
        // Adds the layer's parameters, shaped as `Spec::param_shapes` says.
        let mut add = |params: &mut Params, fan_in, fan_out, next| {
            let (shape, outs) = spec.param_shapes().expect("a layer with parameters");
            self.init_params(params, rng, prefix, shape, outs, (fan_in, fan_out), next)
        };
        match spec {
            Spec::Dense {
                inputs,
                outputs,
                next,
                tied_to,
            } => {
                let (w, b) = add(params, *inputs, *outputs, *next);
                let (weight, layout) = match (w, tied_to) {
                    (Some(w), _) => (w, WeightLayout::OutIn),
                    (None, Some(name)) => {
                        let shared = params.find(&format!("{name}.weight")).ok_or_else(|| {
                            Error::config("tied", format!("no weight `{name}.weight` to share"))
                        })?;
                        (shared, WeightLayout::InOut)
                    }
                    (None, None) => {
                        unreachable!("a dense layer has its own weight or a shared one")
                    }
                };
                seq.push(Dense {
                    inputs: *inputs,
                    outputs: *outputs,
                    weight,
                    bias: Some(b),
                    layout,
                });
            }
            Spec::Conv {
                inputs,
                outputs,
                geometry: g,
                next,
                fused,
            } => {
                let kk = g.kernel * g.kernel;
                let (w, b) = add(params, inputs * kk, outputs * kk, *next);
                seq.push(Conv2d::new(
                    *inputs,
                    *outputs,
                    *g,
                    w.expect("own weight"),
                    Some(b),
                    *fused,
                ));
            }
            Spec::ConvT {
                inputs,
                outputs,
                geometry: g,
                next,
            } => {
                // PyTorch computes a transposed convolution's fan-in from its weight's second
                // axis, the output channels; we follow it so `--init torch` matches.
                let kk = g.kernel * g.kernel;
                let (w, b) = add(params, outputs * kk, inputs * kk, *next);
                let op = g.stride - 1;
                seq.push(ConvTranspose2d::new(
                    *inputs,
                    *outputs,
                    *g,
                    op,
                    w.expect("own weight"),
                    Some(b),
                ));
            }
            Spec::Act(a) => seq.push(ActivationLayer { activation: *a }),
            Spec::Pool(s) => seq.push(MaxPool2d::new(*s)),
            Spec::Up(f) => seq.push(Upsample { factor: *f }),
            Spec::Indicator(features) => seq.push(MissingIndicator {
                features: *features,
            }),
            Spec::Layout { layout, .. } => seq.push(layout.clone()),
        }
        Ok(())
    }
}

impl ModelConfig {
    /// The scheme weights start from: `init`, except that `auto` in a model with missing-cell
    /// indicators starts as PyTorch's `nn.Linear` does (uniform in ±1/√fan_in, biases too). Its
    /// smaller first steps fill cells better: RMSE of `ae impute` on breast cancer at 10%
    /// missing, 3 seeds, 0.0518 against 0.0559 with He/Glorot (BENCHMARKS.md).
    pub fn initialization(&self) -> Init {
        match self.init {
            Init::Auto if self.missing_indicator => Init::Torch,
            other => other,
        }
    }

    /// Adds `{prefix}.weight` (unless `shape` is none: a shared weight) and `{prefix}.bias` of
    /// `outs` values, initialized for a layer with `fans` = (fan_in, fan_out) followed by `next`.
    #[allow(clippy::too_many_arguments)]
    fn init_params(
        &self,
        params: &mut Params,
        rng: &mut crate::engine::rng::Rng,
        prefix: &str,
        shape: Option<Vec<usize>>,
        outs: usize,
        (fan_in, fan_out): (usize, usize),
        next: Activation,
    ) -> (Option<ParamId>, ParamId) {
        let mut bias = Tensor::zeros(&[outs]);
        let weight = shape.map(|s| {
            let mut w = Tensor::zeros(&s);
            self.initialization().fill(
                w.data_mut(),
                Some(bias.data_mut()),
                fan_in,
                fan_out,
                next,
                rng,
            );
            params.add(format!("{prefix}.weight"), ParamKind::Weight, w)
        });
        if weight.is_none() {
            self.initialization()
                .fill(&mut [], Some(bias.data_mut()), fan_in, fan_out, next, rng);
        }
        let b = params.add(format!("{prefix}.bias"), ParamKind::Bias, bias);
        (weight, b)
    }
}
