//! Dense autoencoders: vanilla, deep symmetric, tied and linear, built from one config.
use crate::engine::layers::activation::Activation;
use crate::engine::layers::{Grads, Mode};
use crate::engine::loss::LossKind;
use crate::engine::params::Params;
use crate::engine::sequential::Sequential;
use crate::engine::tensor::Tensor;
use crate::model::config::ModelConfig;

/// The buffers of one forward and backward pass through an autoencoder: encoder and decoder
/// layers (which hold parameter ids, not values) with their activations, and the reconstruction.
/// A model has one; a data-parallel step gives each thread a [`Net::replica`] of it.
#[derive(Debug)]
pub struct Net {
    /// Input → code.
    pub encoder: Sequential,
    /// Code → output logits (pre-activation).
    pub decoder: Sequential,
    /// Applied to the logits to give the reconstruction.
    pub output_activation: Activation,
    /// The sampling stage of a variational autoencoder.
    pub gaussian: Option<crate::model::vae::Gaussian>,
    /// The reconstruction, `output_activation(logits)`.
    out: Tensor,
}

impl Net {
    /// A net of `encoder` and `decoder` whose logits go through `output_activation`.
    pub fn new(encoder: Sequential, decoder: Sequential, output_activation: Activation) -> Self {
        Net {
            encoder,
            decoder,
            output_activation,
            gaussian: None,
            out: Tensor::default(),
        }
    }

    /// The code of the last forward pass: the encoder's output, or a VAE's mean.
    pub fn code(&self) -> &Tensor {
        match &self.gaussian {
            Some(g) => &g.mu,
            None => self.encoder.output(),
        }
    }

    /// Runs encoder and decoder on `x` with the parameter values in `params`.
    ///
    /// # Shapes
    /// `x`: `[N, ..input_shape]` → code `[N, code]`, logits and reconstruction `[N, features]`.
    pub fn forward(&mut self, params: &Params, x: &Tensor, mode: Mode) {
        self.encoder.forward(params, x, mode);
        match &mut self.gaussian {
            Some(g) => {
                g.forward(self.encoder.output(), mode == Mode::Train);
                self.decoder.forward(params, &g.z, mode);
            }
            None => self.decoder.forward(params, self.encoder.output(), mode),
        }
        self.activate_output();
    }

    /// The reconstruction of the last forward pass, `output_activation(logits)`.
    pub fn reconstruction(&self) -> &Tensor {
        &self.out
    }

    fn activate_output(&mut self) {
        let pre = self.decoder.output();
        self.out.resize(pre.shape());
        self.output_activation
            .apply(pre.data(), self.out.data_mut());
    }

    /// The reconstruction loss of the last forward pass against `target` (same element count as the
    /// input), with its gradient written into the logits' gradient buffer, ready for `backward_into`.
    pub fn reconstruction_loss(&mut self, loss: LossKind, target: &Tensor) -> f64 {
        let (pre, dpre) = self.decoder.output_and_grad_mut();
        loss.loss_and_grad(self.output_activation, pre, &self.out, target, dpre)
    }

    /// Backpropagates ∂loss/∂logits (in the logits' gradient buffer) through decoder and encoder,
    /// adding parameter gradients into `g`. `code_hook(code, dcode)` may add a penalty's gradient at
    /// the code, `encoder_hook(i, out_i, grad_i)` at the output of encoder layer `i` (just before
    /// that layer's backward pass); `dx` receives the input gradient when given.
    pub fn backward_into(
        &mut self,
        g: &mut Grads<'_>,
        x: &Tensor,
        dx: Option<&mut Tensor>,
        code_hook: &mut dyn FnMut(&Tensor, &mut Tensor),
        encoder_hook: &mut dyn FnMut(usize, &Tensor, &mut Tensor),
    ) {
        let Net {
            encoder,
            decoder,
            gaussian,
            ..
        } = self;
        // The decoder's input gradient lands in the encoder's output-gradient buffer (through the
        // sampling stage of a VAE, whose hook then sees [μ | log σ²] and its gradient).
        let mut dcode = std::mem::take(encoder.output_grad_mut());
        match gaussian {
            Some(gs) => {
                let mut dz = std::mem::take(&mut gs.dz);
                decoder.backward_into(g, &gs.z, Some(&mut dz), &mut |_, _, _| {});
                gs.dz = dz;
                gs.backward(encoder.output(), &mut dcode);
            }
            None => decoder.backward_into(g, encoder.output(), Some(&mut dcode), &mut |_, _, _| {}),
        }
        code_hook(encoder.output(), &mut dcode);
        *encoder.output_grad_mut() = dcode;
        encoder.backward_into(g, x, dx, encoder_hook);
    }

    /// The summed per-element `loss` of the last forward pass's reconstruction against `target`.
    pub fn loss_sum(&self, loss: LossKind, target: &Tensor) -> f64 {
        let (pre, out) = (self.decoder.output().data(), self.out.data());
        pre.iter()
            .zip(out)
            .zip(target.data())
            .map(|((&p, &o), &t)| loss.element(p, o, t))
            .sum()
    }

    /// A copy with the same layers and empty buffers.
    pub fn replica(&self) -> Net {
        Net {
            encoder: self.encoder.replica(),
            decoder: self.decoder.replica(),
            output_activation: self.output_activation,
            gaussian: self.gaussian.as_ref().map(|g| g.replica()),
            out: Tensor::default(),
        }
    }
}

/// Rows per batch of the `&self` inference methods.
const INFERENCE_BATCH: usize = 256;

/// A built autoencoder: its parameters and the buffers of a pass.
#[derive(Debug)]
pub struct Autoencoder {
    /// The config it was built from.
    pub config: ModelConfig,
    /// All parameters.
    pub params: Params,
    /// Layers and buffers.
    pub net: Net,
}

impl Autoencoder {
    /// Runs encoder and decoder on `x`.
    ///
    /// # Shapes
    /// `x`: `[N, ..input_shape]` → code `[N, code]`, logits and reconstruction `[N, features]`.
    pub fn forward(&mut self, x: &Tensor, mode: Mode) {
        self.net.forward(&self.params, x, mode);
    }

    /// The code from the last forward pass, `[N, code]` (a VAE's mean).
    pub fn code(&self) -> &Tensor {
        self.net.code()
    }

    /// The output logits (pre-activation) from the last forward pass, `[N, features]`.
    pub fn logits(&self) -> &Tensor {
        self.net.decoder.output()
    }

    /// The reconstruction from the last forward pass, `[N, features]`.
    pub fn reconstruction(&self) -> &Tensor {
        &self.net.out
    }

    /// Runs only the encoder; the code is then [`Autoencoder::code`].
    pub fn encode(&mut self, x: &Tensor) {
        self.net.encoder.forward(&self.params, x, Mode::Eval);
        if let Some(g) = &mut self.net.gaussian {
            g.forward(self.net.encoder.output(), false);
        }
    }

    /// The codes of the first `n` rows of `x` (all of them when `n` exceeds them), in batches.
    pub fn encode_rows(&mut self, x: &Tensor, n: usize) -> Tensor {
        let (n, c, k) = (x.rows().min(n), x.cols(), self.config.code_size());
        let mut out = Vec::with_capacity(n * k);
        let mut shape = x.shape().to_vec();
        shape[0] = n;
        let first = Tensor::from_vec(&shape, x.data()[..n * c].to_vec());
        first.for_batches(256, |_, batch| {
            self.encode(batch);
            out.extend_from_slice(self.code().data());
        });
        Tensor::from_vec(&[n, k], out)
    }

    /// Runs only the decoder on codes `z` (`[N, code]`); the result is [`Autoencoder::reconstruction`].
    pub fn decode(&mut self, z: &Tensor) {
        self.net.decoder.forward(&self.params, z, Mode::Eval);
        self.net.activate_output();
    }

    /// Backpropagates ∂loss/∂logits, already written into the logits' gradient buffer (see
    /// [`Autoencoder::reconstruction_loss`]), through decoder and encoder into the parameters'
    /// gradients. `code_hook(code, dcode)` may add a penalty's gradient at the code; `dx` receives
    /// the input gradient when given.
    pub fn backward(
        &mut self,
        x: &Tensor,
        dx: Option<&mut Tensor>,
        code_hook: &mut dyn FnMut(&Tensor, &mut Tensor),
    ) {
        self.backward_with(x, dx, code_hook, &mut |_, _, _| {});
    }

    /// [`Autoencoder::backward`] with a hook at every encoder layer's output as well
    /// (see [`Net::backward_into`]).
    pub fn backward_with(
        &mut self,
        x: &Tensor,
        dx: Option<&mut Tensor>,
        code_hook: &mut dyn FnMut(&Tensor, &mut Tensor),
        encoder_hook: &mut dyn FnMut(usize, &Tensor, &mut Tensor),
    ) {
        let (values, grads, frozen) = self.params.split();
        let mut g = Grads {
            values,
            grads,
            frozen,
        };
        self.net
            .backward_into(&mut g, x, dx, code_hook, encoder_hook);
    }

    /// Backpropagates a gradient at the code through the encoder only (activation maximization,
    /// encoder penalties): `seed(code, dcode)` writes ∂loss/∂code, `dx` receives ∂loss/∂input.
    /// Needs a preceding [`Autoencoder::encode`] or [`Autoencoder::forward`] on `x`.
    pub fn backward_from_code(
        &mut self,
        x: &Tensor,
        dx: Option<&mut Tensor>,
        seed: &mut dyn FnMut(&Tensor, &mut Tensor),
    ) {
        let encoder = &mut self.net.encoder;
        let mut dcode = std::mem::take(encoder.output_grad_mut());
        dcode.resize(encoder.output().shape());
        seed(encoder.output(), &mut dcode);
        *encoder.output_grad_mut() = dcode;
        encoder.backward(&mut self.params, x, dx, &mut |_, _, _| {});
    }

    /// The reconstruction loss of the last forward pass against `target`, with its gradient ready
    /// for [`Autoencoder::backward`].
    pub fn reconstruction_loss(&mut self, loss: LossKind, target: &Tensor) -> f64 {
        self.net.reconstruction_loss(loss, target)
    }

    /// The codes of `x` (`[N, ..input_shape]` → `[N, code]`; a VAE's mean), in batches of 256,
    /// without touching the model: each call computes on its own copy of the layers' buffers, so
    /// one model can serve several threads at once.
    pub fn codes(&self, x: &Tensor) -> Tensor {
        let k = self.config.code_size();
        let mut net = self.net.replica();
        let mut out = Vec::with_capacity(x.rows() * k);
        x.for_batches(INFERENCE_BATCH, |_, batch| {
            net.encoder.forward(&self.params, batch, Mode::Eval);
            if let Some(g) = &mut net.gaussian {
                g.forward(net.encoder.output(), false);
            }
            out.extend_from_slice(net.code().data());
        });
        Tensor::from_vec(&[x.rows(), k], out)
    }

    /// A copy with the same parameter values and fresh buffers.
    pub fn duplicate(&self) -> crate::Result<Autoencoder> {
        let mut copy = self.config.build(0)?;
        copy.params = self.params.clone();
        Ok(copy)
    }

    /// The logits and the reconstructions of `x`, both `[N, features]`, in batches, without
    /// touching the model (see [`Autoencoder::codes`]).
    pub fn logits_and_reconstructions(&self, x: &Tensor) -> (Tensor, Tensor) {
        let mut net = self.net.replica();
        let (mut pre, mut out) = (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
        x.for_batches(INFERENCE_BATCH, |_, batch| {
            net.forward(&self.params, batch, Mode::Eval);
            pre.extend_from_slice(net.decoder.output().data());
            out.extend_from_slice(net.out.data());
        });
        let shape = [x.rows(), self.config.input_features()];
        (Tensor::from_vec(&shape, pre), Tensor::from_vec(&shape, out))
    }

    /// The encoder's outputs for `x`: a VAE's `[μ | log σ²]` (`[N, 2·code]`), else the codes; in
    /// batches, without touching the model (see [`Autoencoder::codes`]).
    pub fn encoder_outputs(&self, x: &Tensor) -> Tensor {
        // A VAE's encoder gives [μ | log σ²], twice the code; other encoders give the code.
        let width = self.config.code_size() * (1 + self.config.variational as usize);
        let mut net = self.net.replica();
        let mut out = Vec::with_capacity(x.rows() * width);
        x.for_batches(INFERENCE_BATCH, |_, batch| {
            net.encoder.forward(&self.params, batch, Mode::Eval);
            out.extend_from_slice(net.encoder.output().data());
        });
        Tensor::from_vec(&[x.rows(), width], out)
    }

    /// The reconstructions of `x`, `[N, features]`, in batches, without touching the model (see
    /// [`Autoencoder::codes`]).
    pub fn reconstruct(&self, x: &Tensor) -> Tensor {
        let mut net = self.net.replica();
        let mut out = Vec::with_capacity(x.len());
        x.for_batches(INFERENCE_BATCH, |_, batch| {
            net.forward(&self.params, batch, Mode::Eval);
            out.extend_from_slice(net.out.data());
        });
        Tensor::from_vec(&[x.rows(), self.config.input_features()], out)
    }

    /// The decoded outputs of codes `z` (`[N, code]` → `[N, features]`), in batches, without
    /// touching the model.
    pub fn decode_codes(&self, z: &Tensor) -> Tensor {
        let mut net = self.net.replica();
        let mut out = Vec::with_capacity(z.rows() * self.config.input_features());
        z.for_batches(INFERENCE_BATCH, |_, batch| {
            net.decoder.forward(&self.params, batch, Mode::Eval);
            net.activate_output();
            out.extend_from_slice(net.out.data());
        });
        Tensor::from_vec(&[z.rows(), self.config.input_features()], out)
    }

    /// Forward plus backward FLOPs per example.
    pub fn flops_per_example(&self) -> u64 {
        let code = self
            .net
            .encoder
            .output_shape(&self.config.input_shape)
            .unwrap_or_default();
        self.net.encoder.flops_per_example(&self.config.input_shape)
            + self.net.decoder.flops_per_example(&code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_inference_equals_the_buffered_passes_and_serves_threads_at_once() {
        for variational in [false, true] {
            let mut cfg = ModelConfig::dense(&[7], &[5, 3]);
            cfg.variational = variational;
            cfg.activation = Activation::Tanh;
            let mut model = cfg.build(2).unwrap();
            let x = Tensor::from_vec(
                &[300, 7],
                (0..2100).map(|i| ((i * 13 % 17) as f32) / 17.0).collect(),
            );
            let codes = model.codes(&x);
            assert_eq!(codes, model.encode_rows(&x, usize::MAX));
            let recon = model.reconstruct(&x);
            let mut want = Vec::new();
            x.for_batches(256, |_, b| {
                model.forward(b, Mode::Eval);
                want.extend_from_slice(model.reconstruction().data());
            });
            assert_eq!(recon.data(), want.as_slice());
            let z = Tensor::from_vec(&[2, 3], vec![0.1, -0.2, 0.3, 1.0, 0.0, -1.0]);
            model.decode(&z);
            assert_eq!(model.decode_codes(&z).data(), model.reconstruction().data());
            // One model, two threads at once, the same answers.
            let shared = &model;
            let (a, b) = std::thread::scope(|s| {
                let a = s.spawn(|| shared.codes(&x));
                let b = s.spawn(|| shared.reconstruct(&x));
                (a.join().unwrap(), b.join().unwrap())
            });
            assert_eq!((a, b), (codes, recon));
        }
    }
    use crate::engine::init::Init;
    use crate::engine::layers::activation::Activation;

    #[test]
    fn param_shapes_match_what_build_creates() {
        for (hidden, act, code, out, tied) in [
            (vec![4], Activation::Relu, None, Activation::Sigmoid, false),
            (
                vec![6, 3],
                Activation::Tanh,
                Some(Activation::Linear),
                Activation::Linear,
                true,
            ),
            (
                vec![8, 5, 2],
                Activation::Linear,
                None,
                Activation::Sigmoid,
                false,
            ),
            (
                vec![7, 3],
                Activation::Sigmoid,
                Some(Activation::Relu),
                Activation::Linear,
                false,
            ),
        ] {
            let cfg = ModelConfig {
                input_shape: vec![1, 3, 3],
                hidden,
                activation: act,
                code_activation: code,
                output_activation: out,
                tied,
                init: Init::Auto,
                conv: None,
                variational: false,
                missing_indicator: false,
            };
            let model = cfg.build(0).unwrap();
            let built: Vec<(String, Vec<usize>)> = model
                .params
                .names
                .iter()
                .cloned()
                .zip(model.params.values.iter().map(|t| t.shape().to_vec()))
                .collect();
            assert_eq!(cfg.param_shapes().unwrap(), built, "{cfg:?}");
        }
    }
}
