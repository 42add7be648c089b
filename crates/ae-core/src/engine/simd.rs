//! Elementwise loops compiled for the widest vector instructions the CPU has.
//!
//! Rust builds for baseline x86-64 (SSE2) unless told otherwise, which left our elementwise passes
//! (sigmoid, losses, Adam) at a third of a step's time. `pulp` (already here through faer) detects
//! AVX2 or AVX-512 at run time and runs a kernel from a function compiled for them. The loop must
//! sit inside the kernel's `#[inline(always)]` body: a loop inside a closure the kernel calls is
//! compiled separately, for SSE2. Small per-element closures, on the other hand, get inlined.
use pulp::{Simd, WithSimd};

/// Sets this thread's floating-point mode to flush denormal results to zero and to read denormal
/// inputs as zero (x86-64's FTZ and DAZ bits; elsewhere nothing).
///
/// Why: on Intel CPUs an operation on a denormal (a value below 1.2·10⁻³⁸) takes a microcode
/// assist of a hundred cycles or more. Training makes them: gradients and Adam's second moments
/// of weights that barely move decay into that range. Measured: a VAE's epoch grew from 3.6 s to
/// 7.5 s over five epochs without this, and stayed at 4.2 s with it, with the same losses.
/// TensorFlow sets the same mode in its CPU threads; PyTorch offers it (`set_flush_denormal`).
pub fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    #[allow(deprecated)]
    // SAFETY: MXCSR's FTZ (bit 15) and DAZ (bit 6) only change how this thread rounds tiny
    // floats; no memory is touched and every value stays a valid f32.
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040);
    }
}

/// Runs a kernel with the best instruction set available.
#[inline(always)]
pub fn run<K: WithSimd>(k: K) -> K::Output {
    pulp::Arch::new().dispatch(k)
}

/// `out[i] = f(a[i])`.
pub struct Map<'a, F> {
    /// Written.
    pub out: &'a mut [f32],
    /// Read.
    pub a: &'a [f32],
    /// Per element.
    pub f: F,
}

impl<F: Fn(f32) -> f32> WithSimd for Map<'_, F> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        for (o, &a) in self.out.iter_mut().zip(self.a) {
            *o = (self.f)(a);
        }
    }
}

/// Lanes of the partial sums in [`SumMap3`]: one AVX-512 register, or two AVX2 ones.
const LANES: usize = 16;
/// Elements per block of [`SumMap3`]: summed in f32 lanes, then added to an f64 total.
const SUM_BLOCK: usize = 256;

/// `(l, out[i]) = f(a[i], b[i], c[i])` for every i, returning Σ l (a loss and its gradient in
/// one pass). The sum runs in 16 independent f32 lanes per block of 256 elements, then in f64:
/// one running f32 sum would be a serial chain the compiler may not reorder, so the loop would not
/// vectorize at all.
pub struct SumMap3<'a, F> {
    /// Written.
    pub out: &'a mut [f32],
    /// Read.
    pub a: &'a [f32],
    /// Read.
    pub b: &'a [f32],
    /// Read.
    pub c: &'a [f32],
    /// Per element: (summed value, written value).
    pub f: F,
}

impl<F: Fn(f32, f32, f32) -> (f32, f32)> WithSimd for SumMap3<'_, F> {
    type Output = f64;
    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) -> f64 {
        let f = &self.f;
        let mut total = 0.0f64;
        let blocks = self
            .out
            .chunks_mut(SUM_BLOCK)
            .zip(self.a.chunks(SUM_BLOCK))
            .zip(self.b.chunks(SUM_BLOCK))
            .zip(self.c.chunks(SUM_BLOCK));
        for (((out, a), b), c) in blocks {
            let mut acc = [0.0f32; LANES];
            let mut out_lanes = out.chunks_exact_mut(LANES);
            let (mut a_l, mut b_l, mut c_l) = (
                a.chunks_exact(LANES),
                b.chunks_exact(LANES),
                c.chunks_exact(LANES),
            );
            for o in out_lanes.by_ref() {
                let (Some(a), Some(b), Some(c)) = (a_l.next(), b_l.next(), c_l.next()) else {
                    break;
                };
                for k in 0..LANES.min(o.len()).min(a.len()).min(b.len()).min(c.len()) {
                    let (l, g) = f(a[k], b[k], c[k]);
                    acc[k] += l;
                    o[k] = g;
                }
            }
            let mut s: f32 = acc.iter().sum();
            let rest = out_lanes.into_remainder();
            let (a, b, c) = (a_l.remainder(), b_l.remainder(), c_l.remainder());
            for (((o, &a), &b), &c) in rest.iter_mut().zip(a).zip(b).zip(c) {
                let (l, g) = f(a, b, c);
                s += l;
                *o = g;
            }
            total += s as f64;
        }
        total
    }
}

/// Σ f(a[i], b[i]), summed like [`SumMap3`] (16 f32 lanes per block of 256, then f64).
pub struct SumZip<'a, F> {
    /// Read.
    pub a: &'a [f32],
    /// Read.
    pub b: &'a [f32],
    /// Per element.
    pub f: F,
}

impl<F: Fn(f32, f32) -> f32> WithSimd for SumZip<'_, F> {
    type Output = f64;
    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) -> f64 {
        let f = &self.f;
        let mut total = 0.0f64;
        for (a, b) in self.a.chunks(SUM_BLOCK).zip(self.b.chunks(SUM_BLOCK)) {
            let mut acc = [0.0f32; LANES];
            let (mut a_l, mut b_l) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
            for (a, b) in a_l.by_ref().zip(b_l.by_ref()) {
                for k in 0..LANES.min(a.len()).min(b.len()) {
                    acc[k] += f(a[k], b[k]);
                }
            }
            let mut s: f32 = acc.iter().sum();
            for (&a, &b) in a_l.remainder().iter().zip(b_l.remainder()) {
                s += f(a, b);
            }
            total += s as f64;
        }
        total
    }
}

/// `out[i] = f(out[i])`.
pub struct MapInPlace<'a, F> {
    /// Read and written.
    pub out: &'a mut [f32],
    /// Per element.
    pub f: F,
}

impl<F: Fn(f32) -> f32> WithSimd for MapInPlace<'_, F> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        for o in self.out.iter_mut() {
            *o = (self.f)(*o);
        }
    }
}

/// `out[i] = f(out[i], a[i])`.
pub struct Update<'a, F> {
    /// Read and written.
    pub out: &'a mut [f32],
    /// Read.
    pub a: &'a [f32],
    /// Per element.
    pub f: F,
}

impl<F: Fn(f32, f32) -> f32> WithSimd for Update<'_, F> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        for (o, &a) in self.out.iter_mut().zip(self.a) {
            *o = (self.f)(*o, a);
        }
    }
}

/// `out[i] = f(a[i], b[i])`.
pub struct Map2<'a, F> {
    /// Written.
    pub out: &'a mut [f32],
    /// Read.
    pub a: &'a [f32],
    /// Read.
    pub b: &'a [f32],
    /// Per element.
    pub f: F,
}

impl<F: Fn(f32, f32) -> f32> WithSimd for Map2<'_, F> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        for ((o, &a), &b) in self.out.iter_mut().zip(self.a).zip(self.b) {
            *o = (self.f)(a, b);
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    /// After the call a result below the smallest normal float is zero, and so is a denormal
    /// input; on a fresh thread (the default mode) neither is.
    #[test]
    fn flushing_denormals_zeroes_tiny_results_on_this_thread_only() {
        use std::hint::black_box;
        let tiny = f32::MIN_POSITIVE;
        let denormal = f32::from_bits(1);
        std::thread::spawn(move || {
            assert!(black_box(tiny) * black_box(0.5) > 0.0);
            assert!(black_box(denormal) + black_box(0.0) > 0.0);
        })
        .join()
        .unwrap();
        std::thread::spawn(move || {
            super::flush_denormals();
            assert_eq!(black_box(tiny) * black_box(0.5), 0.0);
            assert_eq!(black_box(denormal) + black_box(0.0), 0.0);
            // Normal numbers are untouched.
            assert_eq!(black_box(tiny) * black_box(2.0), 2.0 * f32::MIN_POSITIVE);
        })
        .join()
        .unwrap();
    }
}
