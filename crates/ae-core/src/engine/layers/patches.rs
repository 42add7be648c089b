//! Patch gathering (im2col) and scattering (col2im) over channels-last images: the geometry shared
//! by [`super::conv::Conv2d`] and [`super::conv::ConvTranspose2d`].
//!
//! Convolution layers keep activations channels-last (`[N, H, W, C]`) inside the network. Then one
//! kernel row of a patch (`k` pixels × `C` channels) is a single contiguous run of the image, so a
//! patch is gathered with `k` copies, and a convolution becomes one matrix product per chunk of
//! output pixels with the channels as the product's inner, contiguous axis.

/// Kernel size, stride and zero padding of a square convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Kernel height and width.
    pub kernel: usize,
    /// Step between patches.
    pub stride: usize,
    /// Zeros added on every side.
    pub padding: usize,
}

impl Geometry {
    /// Output length of a convolution over `len` input pixels, or `None` when the kernel does not
    /// fit the padded input.
    pub fn out_len(&self, len: usize) -> Option<usize> {
        (len + 2 * self.padding)
            .checked_sub(self.kernel)
            .map(|v| v / self.stride.max(1) + 1)
    }

    /// The output padding that makes a transposed convolution of this geometry double its input
    /// ((in − 1)·s − 2p + k + extra = 2·in), as the engine's does; `None` when no padding below
    /// the stride does. Exporters write it as PyTorch's and ONNX's `output_padding`.
    pub fn doubling_output_padding(&self) -> Option<usize> {
        (2 * self.stride + 2 * self.padding)
            .checked_sub(self.kernel + self.stride)
            .filter(|&e| e < self.stride)
    }
}

/// Where the patches of one convolution lie: a channels-last image of `h × w × c` seen through
/// `geometry`, giving `oh × ow` patches of `kernel² · c` values each.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Patches {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub oh: usize,
    pub ow: usize,
    pub g: Geometry,
}

/// Floats per chunk of gathered patches: small enough that the chunk and its product stay in
/// this machine kind's 1 MiB L2 cache, large enough that a product is worth starting.
const CHUNK_FLOATS: usize = 48 * 1024;

impl Patches {
    /// Values in one patch (a row of the patch matrix), ordered (kernel row, kernel column, channel).
    pub fn width(&self) -> usize {
        self.g.kernel * self.g.kernel * self.c
    }

    /// Patches per image.
    pub fn per_image(&self) -> usize {
        self.oh * self.ow
    }

    /// How many patch rows to process at once.
    pub fn chunk_rows(&self) -> usize {
        (CHUNK_FLOATS / self.width()).max(16)
    }

    /// For patch row `r` (over the whole batch), the image it reads and the kernel's top-left
    /// corner in that image (may be negative in the padding).
    #[inline(always)]
    pub fn origin(&self, r: usize) -> (usize, isize, isize) {
        let n = r / self.per_image();
        let p = r % self.per_image();
        let (y, x) = (p / self.ow, p % self.ow);
        let pad = self.g.padding as isize;
        (
            n,
            (y * self.g.stride) as isize - pad,
            (x * self.g.stride) as isize - pad,
        )
    }

    /// Copies patches `r0 .. r0 + rows` of the batch `x` (`[N, h, w, c]`) into `cols`
    /// (`rows × width`), zeros where a patch hangs over the border.
    pub fn gather(&self, x: &[f32], r0: usize, rows: usize, cols: &mut [f32]) {
        let (k, c, w) = (self.g.kernel, self.c, self.w);
        let image = self.h * w * c;
        let width = self.width();
        for (i, patch) in cols[..rows * width].chunks_exact_mut(width).enumerate() {
            let (n, y0, x0) = self.origin(r0 + i);
            let img = &x[n * image..(n + 1) * image];
            let inside_x = x0 >= 0 && x0 as usize + k <= w;
            for (ky, dst) in patch.chunks_exact_mut(k * c).enumerate() {
                let y = y0 + ky as isize;
                if y < 0 || y as usize >= self.h {
                    dst.fill(0.0);
                    continue;
                }
                let row = &img[y as usize * w * c..(y as usize + 1) * w * c];
                if inside_x {
                    let start = x0 as usize * c;
                    dst.copy_from_slice(&row[start..start + k * c]);
                    continue;
                }
                for (kx, d) in dst.chunks_exact_mut(c).enumerate() {
                    let xx = x0 + kx as isize;
                    if xx < 0 || xx as usize >= w {
                        d.fill(0.0);
                    } else {
                        d.copy_from_slice(&row[xx as usize * c..(xx as usize + 1) * c]);
                    }
                }
            }
        }
    }

    /// Adds patches `r0 .. r0 + rows` from `cols` back into the batch `x` (`[N, h, w, c]`): the
    /// adjoint of [`Patches::gather`]. Values over the border are dropped.
    pub fn scatter_add(&self, cols: &[f32], r0: usize, rows: usize, x: &mut [f32]) {
        let (k, c, w) = (self.g.kernel, self.c, self.w);
        let image = self.h * w * c;
        let width = self.width();
        for (i, patch) in cols[..rows * width].chunks_exact(width).enumerate() {
            let (n, y0, x0) = self.origin(r0 + i);
            let img = &mut x[n * image..(n + 1) * image];
            let inside_x = x0 >= 0 && x0 as usize + k <= w;
            for (ky, src) in patch.chunks_exact(k * c).enumerate() {
                let y = y0 + ky as isize;
                if y < 0 || y as usize >= self.h {
                    continue;
                }
                let row = &mut img[y as usize * w * c..(y as usize + 1) * w * c];
                if inside_x {
                    let start = x0 as usize * c;
                    add(&mut row[start..start + k * c], src);
                    continue;
                }
                for (kx, s) in src.chunks_exact(c).enumerate() {
                    let xx = x0 + kx as isize;
                    if xx >= 0 && (xx as usize) < w {
                        add(&mut row[xx as usize * c..(xx as usize + 1) * c], s);
                    }
                }
            }
        }
    }
}

fn add(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// Adds `bias[c]` to every pixel of channels-last rows of `bias.len()` channels.
pub(crate) fn add_bias(out: &mut [f32], bias: &[f32]) {
    for px in out.chunks_exact_mut(bias.len()) {
        add(px, bias);
    }
}

/// Adds the per-channel sum of channels-last gradient rows into `grad`.
pub(crate) fn sum_channels(grad: &mut [f32], dy: &[f32]) {
    for px in dy.chunks_exact(grad.len()) {
        add(grad, px);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// gather and scatter_add are adjoint: ⟨gather(x), c⟩ = ⟨x, scatter(c)⟩ for any x, c, which
    /// pins down the border handling of both.
    #[test]
    fn scatter_is_the_adjoint_of_gather() {
        for (h, w, c, k, s, p) in [
            (5, 4, 2, 3, 1, 1),
            (6, 6, 1, 3, 2, 1),
            (4, 5, 3, 2, 2, 0),
            (3, 3, 2, 3, 1, 0),
        ] {
            let g = Geometry {
                kernel: k,
                stride: s,
                padding: p,
            };
            let pt = Patches {
                h,
                w,
                c,
                oh: g.out_len(h).unwrap(),
                ow: g.out_len(w).unwrap(),
                g,
            };
            let n = 2;
            let x: Vec<f32> = (0..n * h * w * c)
                .map(|i| (i as f32 * 0.37).sin())
                .collect();
            let rows = n * pt.per_image();
            let cols_in: Vec<f32> = (0..rows * pt.width())
                .map(|i| (i as f32 * 0.53).cos())
                .collect();
            let mut cols = vec![0.0; rows * pt.width()];
            pt.gather(&x, 0, rows, &mut cols);
            let mut back = vec![0.0; x.len()];
            // In two chunks, to check the row offset.
            let half = rows / 2;
            pt.scatter_add(&cols_in, 0, half, &mut back);
            pt.scatter_add(&cols_in[half * pt.width()..], half, rows - half, &mut back);
            let lhs: f64 = cols.iter().zip(&cols_in).map(|(a, b)| (a * b) as f64).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| (a * b) as f64).sum();
            assert!(
                (lhs - rhs).abs() < 1e-4,
                "{h}x{w}x{c} k{k} s{s} p{p}: {lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn gather_reads_the_right_pixels_and_pads_with_zeros() {
        // One 3×3 single-channel image with values 1..9, kernel 3, padding 1: the patch of the
        // top-left pixel is its 2×2 neighbourhood with zeros around.
        let g = Geometry {
            kernel: 3,
            stride: 1,
            padding: 1,
        };
        let pt = Patches {
            h: 3,
            w: 3,
            c: 1,
            oh: 3,
            ow: 3,
            g,
        };
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut cols = vec![f32::NAN; 9 * 9];
        pt.gather(&x, 0, 9, &mut cols);
        assert_eq!(&cols[..9], &[0., 0., 0., 0., 1., 2., 0., 4., 5.]);
        assert_eq!(&cols[4 * 9..5 * 9], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    }
}
