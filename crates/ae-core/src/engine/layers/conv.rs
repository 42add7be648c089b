//! 2-D convolution and transposed convolution over channels-last activations, as chunked patch
//! products (see [`super::patches`]).
//!
//! Parameters keep PyTorch's layouts, so a run's weights load into `nn.Conv2d` /
//! `nn.ConvTranspose2d` unchanged: `(out, in, kh, kw)` and `(in, out, kh, kw)`. Each pass permutes
//! the (small) weight into the patch order `(kh, kw, channel)` once, and permutes its gradient back.
//! Patches are gathered a cache-sized chunk at a time and never kept: the backward pass gathers them
//! again, which costs less than the memory a whole batch of patches would take (231 MB for the last
//! layer of the classic conv autoencoder at batch 256).
use super::activation::Activation;
use super::direct::Direct;
use super::patches::{add_bias, sum_channels, Geometry, Patches};
use super::{Grads, Layer, Mode};
use crate::engine::gemm::matmul;
use crate::engine::params::ParamId;
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// Buffers a convolution reuses from step to step.
/// Buffers a convolution reuses from step to step.
#[derive(Clone, Debug, Default)]
struct Scratch {
    /// The weight as a matrix in patch order.
    wmat: Vec<f32>,
    /// Its gradient.
    dwmat: Vec<f32>,
    /// A chunk of patches (or of patch gradients).
    cols: Vec<f32>,
    /// The gradient before the fused activation (a chunk, or all of it for the direct loop).
    dpre: Vec<f32>,
}

/// Output channels up to which the direct dot-product loop ([`super::direct`]) beats a patch
/// product.
const DOT_MAX_OUT: usize = 4;

/// `(a, b, kh, kw)` → `(a, kh, kw, b)`: a PyTorch conv weight as rows of patch-ordered values.
fn to_patch_order(w: &[f32], a: usize, b: usize, kk: usize, out: &mut Vec<f32>) {
    out.resize(w.len(), 0.0);
    for i in 0..a {
        for j in 0..b {
            for t in 0..kk {
                out[(i * kk + t) * b + j] = w[(i * b + j) * kk + t];
            }
        }
    }
}

/// Adds a patch-ordered gradient `(a, kh, kw, b)` into a PyTorch-layout gradient `(a, b, kh, kw)`.
fn add_from_patch_order(g: &mut [f32], m: &[f32], a: usize, b: usize, kk: usize) {
    for i in 0..a {
        for j in 0..b {
            for t in 0..kk {
                g[(i * b + j) * kk + t] += m[(i * kk + t) * b + j];
            }
        }
    }
}

fn image_shape(what: &str, input: &[usize], channels: usize) -> Result<(usize, usize)> {
    match input {
        [h, w, c] if *c == channels && *h > 0 && *w > 0 => Ok((*h, *w)),
        _ => Err(Error::Shape {
            what: format!("{what} input (height, width, channels)"),
            expected: vec![0, 0, channels],
            got: input.to_vec(),
        }),
    }
}

/// A 2-D convolution, like `nn.Conv2d(in_channels, out_channels, kernel, stride, padding)`,
/// optionally followed by an activation applied in the same pass.
///
/// Fusing the activation applies it to each chunk of output while that chunk is still in cache,
/// and folds its derivative into the gradient chunk the backward pass reads anyway: a separate
/// activation layer costs two extra trips through memory over the largest tensors of the network.
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel, stride, padding.
    pub geometry: Geometry,
    /// Weight `(out, in, kh, kw)`.
    pub weight: ParamId,
    /// Bias `(out)`.
    pub bias: Option<ParamId>,
    /// Applied to the output (linear: none).
    pub activation: Activation,
    scratch: Scratch,
}

impl Conv2d {
    /// A convolution reading `weight` and `bias`, its output passed through `activation`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        geometry: Geometry,
        weight: ParamId,
        bias: Option<ParamId>,
        activation: Activation,
    ) -> Self {
        Conv2d {
            in_channels,
            out_channels,
            geometry,
            weight,
            bias,
            activation,
            scratch: Scratch::default(),
        }
    }

    fn patches(&self, x: &Tensor) -> Patches {
        let s = x.shape();
        let (h, w) = (s[1], s[2]);
        Patches {
            h,
            w,
            c: self.in_channels,
            oh: self.geometry.out_len(h).unwrap_or(0),
            ow: self.geometry.out_len(w).unwrap_or(0),
            g: self.geometry,
        }
    }

    fn kk(&self) -> usize {
        self.geometry.kernel * self.geometry.kernel
    }

    /// The gradient before the activation for output rows `r0 .. r0 + rows`: `dy` itself when the
    /// activation is linear, else `dy · f'` written into `dpre`.
    fn pre_grad<'a>(
        act: Activation,
        y: &[f32],
        dy: &'a [f32],
        dpre: &'a mut Vec<f32>,
        range: std::ops::Range<usize>,
    ) -> &'a [f32] {
        if act == Activation::Linear {
            return &dy[range];
        }
        dpre.resize(range.len(), 0.0);
        act.backward(&y[range.clone()], &dy[range], dpre);
        dpre
    }
}

impl Layer for Conv2d {
    fn kind(&self) -> &'static str {
        "conv2d"
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(Conv2d {
            scratch: Scratch::default(),
            ..self.clone()
        })
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let (h, w) = image_shape("convolution", input, self.in_channels)?;
        match (self.geometry.out_len(h), self.geometry.out_len(w)) {
            (Some(oh), Some(ow)) => Ok(vec![oh, ow, self.out_channels]),
            _ => Err(Error::Shape {
                what: format!(
                    "convolution input (kernel {} with padding {})",
                    self.geometry.kernel, self.geometry.padding
                ),
                expected: vec![self.geometry.kernel, self.geometry.kernel, self.in_channels],
                got: input.to_vec(),
            }),
        }
    }

    /// # Shapes
    /// `x`: `[N, H, W, in]` → `y`: `[N, H', W', out]`.
    fn forward(&mut self, values: &[Tensor], x: &Tensor, y: &mut Tensor, _mode: Mode) {
        let pt = self.patches(x);
        let (n, co, width) = (x.rows(), self.out_channels, pt.width());
        y.resize(&[n, pt.oh, pt.ow, co]);
        let kk = self.kk();
        let s = &mut self.scratch;
        to_patch_order(
            values[self.weight.0].data(),
            co,
            self.in_channels,
            kk,
            &mut s.wmat,
        );
        let bias = self.bias.map(|b| values[b.0].data());
        let out = y.data_mut();
        if co <= DOT_MAX_OUT {
            out.fill(0.0);
            if let Some(b) = bias {
                add_bias(out, b);
            }
            Direct {
                pt: &pt,
                x: x.data(),
                w: &s.wmat,
                co,
            }
            .forward_dot(out);
            self.activation.apply_in_place(out);
            return;
        }
        let total = n * pt.per_image();
        let chunk = pt.chunk_rows();
        s.cols.resize(chunk.min(total) * width, 0.0);
        for r0 in (0..total).step_by(chunk) {
            let rows = chunk.min(total - r0);
            pt.gather(x.data(), r0, rows, &mut s.cols);
            let out = &mut out[r0 * co..(r0 + rows) * co];
            // y[rows, out] = patches[rows, width] · wmatᵀ[width, out], then bias and activation
            // while the chunk is in cache.
            matmul(out, rows, co, width, &s.cols, false, &s.wmat, true, false);
            if let Some(b) = bias {
                add_bias(out, b);
            }
            self.activation.apply_in_place(out);
        }
    }

    fn backward(
        &mut self,
        g: &mut Grads<'_>,
        x: &Tensor,
        y: &Tensor,
        dy: &Tensor,
        dx: Option<&mut Tensor>,
    ) {
        let pt = self.patches(x);
        let (co, width, kk) = (self.out_channels, pt.width(), self.kk());
        let (yd, dyd) = (y.data(), dy.data());
        let want_w = !g.frozen[self.weight.0];
        let want_b = self.bias.filter(|b| !g.frozen[b.0]);
        let mut dx = dx;
        if let Some(dx) = dx.as_deref_mut() {
            dx.resize(x.shape());
            dx.fill(0.0);
        }
        let act = self.activation;
        let s = &mut self.scratch;
        to_patch_order(
            g.values[self.weight.0].data(),
            co,
            self.in_channels,
            kk,
            &mut s.wmat,
        );
        if want_w {
            s.dwmat.clear();
            s.dwmat.resize(co * width, 0.0);
        }
        let total = x.rows() * pt.per_image();
        if co <= DOT_MAX_OUT {
            let d = Conv2d::pre_grad(act, yd, dyd, &mut s.dpre, 0..total * co);
            if let Some(b) = want_b {
                sum_channels(g.grads[b.0].data_mut(), d);
            }
            let dw = want_w.then_some(&mut s.dwmat[..]);
            let direct = Direct {
                pt: &pt,
                x: x.data(),
                w: &s.wmat,
                co,
            };
            direct.backward_dot(d, dw, dx.map(|d| d.data_mut()));
        } else {
            let chunk = pt.chunk_rows();
            s.cols.resize(chunk.min(total) * width, 0.0);
            for r0 in (0..total).step_by(chunk) {
                let rows = chunk.min(total - r0);
                let d = Conv2d::pre_grad(act, yd, dyd, &mut s.dpre, r0 * co..(r0 + rows) * co);
                if let Some(b) = want_b {
                    sum_channels(g.grads[b.0].data_mut(), d);
                }
                if want_w {
                    pt.gather(x.data(), r0, rows, &mut s.cols);
                    // dW[out, width] += dyᵀ[out, rows] · patches[rows, width]
                    matmul(&mut s.dwmat, co, width, rows, d, true, &s.cols, false, true);
                }
                if let Some(dx) = dx.as_deref_mut() {
                    // dpatches[rows, width] = dy[rows, out] · wmat[out, width]
                    matmul(
                        &mut s.cols,
                        rows,
                        width,
                        co,
                        d,
                        false,
                        &s.wmat,
                        false,
                        false,
                    );
                    pt.scatter_add(&s.cols, r0, rows, dx.data_mut());
                }
            }
        }
        if want_w {
            add_from_patch_order(
                g.grads[self.weight.0].data_mut(),
                &s.dwmat,
                co,
                self.in_channels,
                kk,
            );
        }
    }

    fn params(&self) -> Vec<ParamId> {
        std::iter::once(self.weight).chain(self.bias).collect()
    }

    fn flops_per_example(&self, input: &[usize]) -> u64 {
        match self.output_shape(input) {
            Ok(o) => 6 * (o[0] * o[1] * self.out_channels * self.in_channels * self.kk()) as u64,
            Err(_) => 0,
        }
    }
}

/// A transposed 2-D convolution, like `nn.ConvTranspose2d(in, out, kernel, stride, padding,
/// output_padding)`: the adjoint of a [`Conv2d`] from `out` to `in` channels, so its forward pass
/// is a convolution's input-gradient pass and the other way round.
#[derive(Clone, Debug)]
pub struct ConvTranspose2d {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel, stride, padding (of the convolution this is the adjoint of).
    pub geometry: Geometry,
    /// Extra rows and columns at the bottom and right of the output (less than the stride).
    pub output_padding: usize,
    /// Weight `(in, out, kh, kw)`.
    pub weight: ParamId,
    /// Bias `(out)`.
    pub bias: Option<ParamId>,
    scratch: Scratch,
}

impl ConvTranspose2d {
    /// A transposed convolution reading `weight` and `bias`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        geometry: Geometry,
        output_padding: usize,
        weight: ParamId,
        bias: Option<ParamId>,
    ) -> Self {
        ConvTranspose2d {
            in_channels,
            out_channels,
            geometry,
            output_padding,
            weight,
            bias,
            scratch: Scratch::default(),
        }
    }

    /// Output length for `len` input pixels: `(len − 1)·stride − 2·padding + kernel + output_padding`.
    fn out_len(&self, len: usize) -> Option<usize> {
        let g = &self.geometry;
        ((len - 1) * g.stride + g.kernel + self.output_padding).checked_sub(2 * g.padding)
    }

    /// The patches of the output image, one per input pixel.
    fn patches(&self, x: &Tensor) -> Patches {
        let s = x.shape();
        let (h, w) = (s[1], s[2]);
        Patches {
            h: self.out_len(h).unwrap_or(0),
            w: self.out_len(w).unwrap_or(0),
            c: self.out_channels,
            oh: h,
            ow: w,
            g: self.geometry,
        }
    }

    fn kk(&self) -> usize {
        self.geometry.kernel * self.geometry.kernel
    }
}

impl Layer for ConvTranspose2d {
    fn kind(&self) -> &'static str {
        "conv_transpose2d"
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(ConvTranspose2d {
            scratch: Scratch::default(),
            ..self.clone()
        })
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let (h, w) = image_shape("transposed convolution", input, self.in_channels)?;
        match (self.out_len(h), self.out_len(w)) {
            (Some(oh), Some(ow)) if oh > 0 && ow > 0 => Ok(vec![oh, ow, self.out_channels]),
            _ => Err(Error::Shape {
                what: "transposed convolution input (too small for its padding)".into(),
                expected: vec![
                    self.geometry.padding,
                    self.geometry.padding,
                    self.in_channels,
                ],
                got: input.to_vec(),
            }),
        }
    }

    /// # Shapes
    /// `x`: `[N, H, W, in]` → `y`: `[N, H', W', out]`, H' = (H − 1)·stride − 2·padding + kernel +
    /// output_padding.
    fn forward(&mut self, values: &[Tensor], x: &Tensor, y: &mut Tensor, _mode: Mode) {
        let pt = self.patches(x);
        let (n, ci, width) = (x.rows(), self.in_channels, pt.width());
        y.resize(&[n, pt.h, pt.w, self.out_channels]);
        let s = &mut self.scratch;
        to_patch_order(
            values[self.weight.0].data(),
            ci,
            self.out_channels,
            self.geometry.kernel * self.geometry.kernel,
            &mut s.wmat,
        );
        let out = y.data_mut();
        out.fill(0.0);
        let total = n * pt.per_image();
        let chunk = pt.chunk_rows();
        s.cols.resize(chunk.min(total) * width, 0.0);
        let xd = x.data();
        for r0 in (0..total).step_by(chunk) {
            let rows = chunk.min(total - r0);
            // patches[rows, width] = x[rows, in] · wmat[in, width], scattered into the output.
            matmul(
                &mut s.cols,
                rows,
                width,
                ci,
                &xd[r0 * ci..(r0 + rows) * ci],
                false,
                &s.wmat,
                false,
                false,
            );
            pt.scatter_add(&s.cols, r0, rows, out);
        }
        if let Some(b) = self.bias {
            add_bias(out, values[b.0].data());
        }
    }

    fn backward(
        &mut self,
        g: &mut Grads<'_>,
        x: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
        dx: Option<&mut Tensor>,
    ) {
        let pt = self.patches(x);
        let (ci, width, kk) = (self.in_channels, pt.width(), self.kk());
        if let Some(b) = self.bias.filter(|b| !g.frozen[b.0]) {
            sum_channels(g.grads[b.0].data_mut(), dy.data());
        }
        let want_w = !g.frozen[self.weight.0];
        let mut dx = dx;
        if !want_w && dx.is_none() {
            return;
        }
        let s = &mut self.scratch;
        to_patch_order(
            g.values[self.weight.0].data(),
            ci,
            self.out_channels,
            kk,
            &mut s.wmat,
        );
        if want_w {
            s.dwmat.clear();
            s.dwmat.resize(ci * width, 0.0);
        }
        if let Some(dx) = dx.as_deref_mut() {
            dx.resize(x.shape());
        }
        let total = x.rows() * pt.per_image();
        let chunk = pt.chunk_rows();
        s.cols.resize(chunk.min(total) * width, 0.0);
        let xd = x.data();
        for r0 in (0..total).step_by(chunk) {
            let rows = chunk.min(total - r0);
            pt.gather(dy.data(), r0, rows, &mut s.cols);
            if want_w {
                // dW[in, width] += xᵀ[in, rows] · dpatches[rows, width]
                matmul(
                    &mut s.dwmat,
                    ci,
                    width,
                    rows,
                    &xd[r0 * ci..(r0 + rows) * ci],
                    true,
                    &s.cols,
                    false,
                    true,
                );
            }
            if let Some(dx) = dx.as_deref_mut() {
                // dx[rows, in] = dpatches[rows, width] · wmatᵀ[width, in]
                matmul(
                    &mut dx.data_mut()[r0 * ci..(r0 + rows) * ci],
                    rows,
                    ci,
                    width,
                    &s.cols,
                    false,
                    &s.wmat,
                    true,
                    false,
                );
            }
        }
        if want_w {
            add_from_patch_order(
                g.grads[self.weight.0].data_mut(),
                &s.dwmat,
                ci,
                self.out_channels,
                kk,
            );
        }
    }

    fn params(&self) -> Vec<ParamId> {
        std::iter::once(self.weight).chain(self.bias).collect()
    }

    fn flops_per_example(&self, input: &[usize]) -> u64 {
        match input {
            [h, w, _] => 6 * (h * w * self.in_channels * self.out_channels * self.kk()) as u64,
            _ => 0,
        }
    }
}
