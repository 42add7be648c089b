//! A direct convolution loop for the thin layers where patch matrices cost more than they save:
//! few output channels (a decoder's last layer, one channel for grey images), where the patch
//! product is a matrix-vector product and gathering 288 values per pixel dominates. (A direct
//! `a·x + y` loop for few values per patch, an encoder's first layer, measured slower than the
//! patch product, so that layer keeps it.)
//!
//! Both read the image in place through [`Patches`]' geometry. Per output pixel and kernel row, the
//! valid part of the kernel row is one contiguous run of the channels-last image, so every inner
//! loop is a dot product or an `a·x + y` over a contiguous slice. The loops run inside `pulp`
//! kernels (see [`crate::engine::simd`]) so that they are compiled for AVX2 / AVX-512, with no closure
//! between the kernel and the loops (a closure's body may be compiled for SSE2 only).
use pulp::{Simd, WithSimd};

use super::patches::Patches;
use crate::engine::simd;

/// A valid part of a kernel row: offset in the image batch, offset in the patch row, length.
type Run = (usize, usize, usize);

/// Largest kernel (the config allows odd sizes up to 31).
const MAX_K: usize = 32;

/// The kernel rows of patch `r` that fall inside the image, written to `out`; returns how many.
/// For each: the offset of its first valid pixel in the image batch, the offset of that pixel in
/// the patch row, and the run length (pixels × channels).
#[inline(always)]
fn runs(pt: &Patches, r: usize, out: &mut [Run; MAX_K]) -> usize {
    let (k, c, w) = (pt.g.kernel, pt.c, pt.w);
    let (n, y0, x0) = pt.origin(r);
    let kx0 = (-x0).max(0) as usize;
    let kx1 = (w as isize - x0).clamp(0, k as isize) as usize;
    if kx0 >= kx1 {
        return 0;
    }
    let mut m = 0;
    for ky in 0..k {
        let y = y0 + ky as isize;
        if y < 0 || y as usize >= pt.h {
            continue;
        }
        let pixel = (n * pt.h + y as usize) * w + (x0 + kx0 as isize) as usize;
        out[m] = (pixel * c, (ky * k + kx0) * c, (kx1 - kx0) * c);
        m += 1;
    }
    m
}

/// Sum of `a[i]·b[i]` with 16 independent lanes, so the compiler vectorizes it.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    acc.iter().sum::<f32>() + tail
}

/// `y += a·x`.
#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// Arguments of the loops.
pub(crate) struct Direct<'a> {
    /// Geometry.
    pub pt: &'a Patches,
    /// The input batch, channels-last.
    pub x: &'a [f32],
    /// The weight in patch order, `(out, width)`.
    pub w: &'a [f32],
    /// Output channels.
    pub co: usize,
}

impl Direct<'_> {
    /// Few output channels: `y[r, o] += patch(r) · w[o]`, `w` being `(out, width)`.
    pub fn forward_dot(&self, y: &mut [f32]) {
        simd::run(Kernel {
            d: self,
            pass: Pass::ForwardDot(y),
        })
    }

    /// The backward pass of [`Direct::forward_dot`]: `dw += dy ⊗ patches`, `dx += scatter(dy · w)`.
    pub fn backward_dot(&self, dy: &[f32], dw: Option<&mut [f32]>, dx: Option<&mut [f32]>) {
        simd::run(Kernel {
            d: self,
            pass: Pass::BackwardDot(dy, dw, dx),
        })
    }
}

enum Pass<'a> {
    ForwardDot(&'a mut [f32]),
    BackwardDot(&'a [f32], Option<&'a mut [f32]>, Option<&'a mut [f32]>),
}

struct Kernel<'a, 'b> {
    d: &'a Direct<'b>,
    pass: Pass<'a>,
}

impl WithSimd for Kernel<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Direct { pt, x, w, co } = *self.d;
        let width = pt.width();
        let mut rs = [(0, 0, 0); MAX_K];
        match self.pass {
            Pass::ForwardDot(y) => {
                for (r, out) in y.chunks_exact_mut(co).enumerate() {
                    let m = runs(pt, r, &mut rs);
                    for &(xi, wi, len) in &rs[..m] {
                        let xs = &x[xi..xi + len];
                        for (o, v) in out.iter_mut().enumerate() {
                            *v += dot(xs, &w[o * width + wi..o * width + wi + len]);
                        }
                    }
                }
            }
            Pass::BackwardDot(dy, mut dw, mut dx) => {
                for (r, g) in dy.chunks_exact(co).enumerate() {
                    let m = runs(pt, r, &mut rs);
                    for &(xi, wi, len) in &rs[..m] {
                        for (o, &go) in g.iter().enumerate() {
                            let wr = o * width + wi..o * width + wi + len;
                            if let Some(dw) = dw.as_deref_mut() {
                                axpy(&mut dw[wr.clone()], go, &x[xi..xi + len]);
                            }
                            if let Some(dx) = dx.as_deref_mut() {
                                axpy(&mut dx[xi..xi + len], go, &w[wr]);
                            }
                        }
                    }
                }
            }
        }
    }
}
