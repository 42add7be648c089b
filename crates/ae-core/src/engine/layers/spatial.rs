//! Parameter-free image layers over channels-last activations: max pooling, nearest upsampling,
//! and the layout changes between the outside world's `(C, H, W)` and the engine's `(H, W, C)`.
use super::{Grads, Layer, Mode};
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

fn hwc(what: &str, input: &[usize]) -> Result<(usize, usize, usize)> {
    match input {
        [h, w, c] if *h > 0 && *w > 0 && *c > 0 => Ok((*h, *w, *c)),
        _ => Err(Error::Shape {
            what: format!("{what} input (height, width, channels)"),
            expected: vec![0, 0, 0],
            got: input.to_vec(),
        }),
    }
}

/// Max pooling over `size × size` windows with stride `size`, like `nn.MaxPool2d(size)`: a border
/// that does not fill a window is dropped.
#[derive(Clone, Debug)]
pub struct MaxPool2d {
    /// Window size and stride.
    pub size: usize,
    /// Per channel, whether the current window's maximum has taken its gradient (backward pass).
    taken: Vec<f32>,
}

impl MaxPool2d {
    /// Pooling over `size × size` windows.
    pub fn new(size: usize) -> Self {
        MaxPool2d {
            size,
            taken: Vec::new(),
        }
    }
}

impl Layer for MaxPool2d {
    fn kind(&self) -> &'static str {
        "max_pool2d"
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let (h, w, c) = hwc("max pooling", input)?;
        if h < self.size || w < self.size {
            return Err(Error::Shape {
                what: format!("max pooling input (window {})", self.size),
                expected: vec![self.size, self.size, c],
                got: input.to_vec(),
            });
        }
        Ok(vec![h / self.size, w / self.size, c])
    }

    /// # Shapes
    /// `x`: `[N, H, W, C]` → `y`: `[N, H / size, W / size, C]`.
    fn forward(&mut self, _values: &[Tensor], x: &Tensor, y: &mut Tensor, _mode: Mode) {
        let s = x.shape();
        let (n, h, w, c, k) = (s[0], s[1], s[2], s[3], self.size);
        let (oh, ow) = (h / k, w / k);
        y.resize(&[n, oh, ow, c]);
        let (xd, out) = (x.data(), y.data_mut());
        for (o, px) in out.chunks_exact_mut(c).enumerate() {
            let (b, oy, ox) = (o / (oh * ow), (o / ow) % oh, o % ow);
            px.fill(f32::NEG_INFINITY);
            for dy in 0..k {
                for dx in 0..k {
                    let i = ((b * h + oy * k + dy) * w + ox * k + dx) * c;
                    for (m, &v) in px.iter_mut().zip(&xd[i..i + c]) {
                        *m = m.max(v);
                    }
                }
            }
        }
    }

    /// Routes each output's gradient to the first input of its window that equals the maximum
    /// (PyTorch's choice on ties), found again by comparing with the output.
    fn backward(
        &mut self,
        _g: &mut Grads<'_>,
        x: &Tensor,
        y: &Tensor,
        dy: &Tensor,
        dx: Option<&mut Tensor>,
    ) {
        let Some(dx) = dx else { return };
        dx.resize(x.shape());
        crate::engine::simd::run(PoolBackward {
            shape: x.shape(),
            k: self.size,
            x: x.data(),
            y: y.data(),
            dy: dy.data(),
            dx: dx.data_mut(),
            taken: &mut self.taken,
        });
    }
}

/// The max-pooling backward loop, as a kernel compiled for the widest vectors (see
/// [`crate::engine::simd`]): per output pixel, over its window in order, a channel takes the gradient at
/// the first position equal to its maximum, with no branch so that channels vectorize.
struct PoolBackward<'a> {
    shape: &'a [usize],
    k: usize,
    x: &'a [f32],
    y: &'a [f32],
    dy: &'a [f32],
    dx: &'a mut [f32],
    taken: &'a mut Vec<f32>,
}

impl pulp::WithSimd for PoolBackward<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let (h, w, c, k) = (self.shape[1], self.shape[2], self.shape[3], self.k);
        let (oh, ow) = (h / k, w / k);
        // Rows and columns a window does not reach get no gradient.
        if h % k != 0 || w % k != 0 {
            self.dx.fill(0.0);
        }
        self.taken.resize(c, 0.0);
        let taken = &mut self.taken[..];
        for o in 0..self.y.len() / c {
            let (b, oy, ox) = (o / (oh * ow), (o / ow) % oh, o % ow);
            let (m, g) = (&self.y[o * c..(o + 1) * c], &self.dy[o * c..(o + 1) * c]);
            taken.fill(0.0);
            for ddy in 0..k {
                for ddx in 0..k {
                    let i = ((b * h + oy * k + ddy) * w + ox * k + ddx) * c;
                    let (xs, ds) = (&self.x[i..i + c], &mut self.dx[i..i + c]);
                    // Zipped slices and a non-short-circuit `&`: no bounds checks, no branches.
                    let lanes = ds.iter_mut().zip(xs).zip(m).zip(g).zip(taken.iter_mut());
                    for ((((d, &xv), &mv), &gv), t) in lanes {
                        let hit = (xv == mv) & (*t == 0.0);
                        *d = if hit { gv } else { 0.0 };
                        *t = if hit { 1.0 } else { *t };
                    }
                }
            }
        }
    }
}

/// Nearest-neighbour upsampling by an integer factor, like `nn.Upsample(scale_factor, mode="nearest")`.
#[derive(Clone, Debug)]
pub struct Upsample {
    /// Each pixel becomes `factor × factor` pixels.
    pub factor: usize,
}

impl Layer for Upsample {
    fn kind(&self) -> &'static str {
        "upsample"
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let (h, w, c) = hwc("upsampling", input)?;
        Ok(vec![h * self.factor, w * self.factor, c])
    }

    /// # Shapes
    /// `x`: `[N, H, W, C]` → `y`: `[N, H·factor, W·factor, C]`.
    fn forward(&mut self, _values: &[Tensor], x: &Tensor, y: &mut Tensor, _mode: Mode) {
        let s = x.shape();
        let (n, h, w, c, f) = (s[0], s[1], s[2], s[3], self.factor);
        y.resize(&[n, h * f, w * f, c]);
        let out = y.data_mut();
        let row = w * f * c;
        for (r, src) in x.data().chunks_exact(w * c).enumerate() {
            // Widen one input row, then repeat it f times.
            let first = r * f * row;
            for (j, px) in src.chunks_exact(c).enumerate() {
                for t in 0..f {
                    let o = first + (j * f + t) * c;
                    out[o..o + c].copy_from_slice(px);
                }
            }
            for t in 1..f {
                out.copy_within(first..first + row, first + t * row);
            }
        }
    }

    fn backward(
        &mut self,
        _g: &mut Grads<'_>,
        x: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
        dx: Option<&mut Tensor>,
    ) {
        let Some(dx) = dx else { return };
        let s = x.shape();
        let (w, c, f) = (s[2], s[3], self.factor);
        dx.resize(x.shape());
        dx.fill(0.0);
        let row = w * f * c;
        let dyd = dy.data();
        for (r, dst) in dx.data_mut().chunks_exact_mut(w * c).enumerate() {
            for t in 0..f {
                let src = &dyd[(r * f + t) * row..(r * f + t + 1) * row];
                for (j, px) in dst.chunks_exact_mut(c).enumerate() {
                    for u in 0..f {
                        let o = (j * f + u) * c;
                        for (d, &v) in px.iter_mut().zip(&src[o..o + c]) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }
}

/// Which way a [`Layout`] layer converts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// `(C, H, W)` (or the same values flattened) → `(H, W, C)`.
    ChannelsLast,
    /// `(H, W, C)` → `(C, H, W)`.
    ChannelsFirst,
}

/// Converts images between PyTorch's channels-first layout, in which data, codes and
/// reconstructions are seen from outside, and the channels-last layout convolutions use inside.
/// With one channel both layouts are the same values and this is a copy.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Direction.
    pub to: Order,
    /// The image's channels, height and width.
    pub chw: [usize; 3],
}

impl Layout {
    fn transpose(&self, src: &[f32], dst: &mut [f32], to: Order) {
        let [c, h, w] = self.chw;
        if c == 1 {
            dst.copy_from_slice(src);
            return;
        }
        let image = c * h * w;
        for (s, d) in src.chunks_exact(image).zip(dst.chunks_exact_mut(image)) {
            for ch in 0..c {
                for p in 0..h * w {
                    match to {
                        Order::ChannelsLast => d[p * c + ch] = s[ch * h * w + p],
                        Order::ChannelsFirst => d[ch * h * w + p] = s[p * c + ch],
                    }
                }
            }
        }
    }

    fn reverse(&self) -> Order {
        match self.to {
            Order::ChannelsLast => Order::ChannelsFirst,
            Order::ChannelsFirst => Order::ChannelsLast,
        }
    }
}

impl Layer for Layout {
    fn kind(&self) -> &'static str {
        "layout"
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let [c, h, w] = self.chw;
        if input.iter().product::<usize>() != c * h * w {
            return Err(Error::Shape {
                what: "image layout change".into(),
                expected: match self.to {
                    Order::ChannelsLast => vec![c, h, w],
                    Order::ChannelsFirst => vec![h, w, c],
                },
                got: input.to_vec(),
            });
        }
        Ok(match self.to {
            Order::ChannelsLast => vec![h, w, c],
            Order::ChannelsFirst => vec![c, h, w],
        })
    }

    fn forward(&mut self, _values: &[Tensor], x: &Tensor, y: &mut Tensor, _mode: Mode) {
        let [c, h, w] = self.chw;
        let shape = match self.to {
            Order::ChannelsLast => [x.rows(), h, w, c],
            Order::ChannelsFirst => [x.rows(), c, h, w],
        };
        y.resize(&shape);
        self.transpose(x.data(), y.data_mut(), self.to);
    }

    fn backward(
        &mut self,
        _g: &mut Grads<'_>,
        x: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
        dx: Option<&mut Tensor>,
    ) {
        if let Some(dx) = dx {
            dx.resize(x.shape());
            self.transpose(dy.data(), dx.data_mut(), self.reverse());
        }
    }
}
