//! Elementwise loops compiled for the widest vector instructions the CPU has.
//!
//! Rust builds for baseline x86-64 (SSE2) unless told otherwise, which left our elementwise passes
//! (sigmoid, losses, Adam) at a third of a step's time. `pulp` (already here through faer) detects
//! AVX2 or AVX-512 at run time and runs a kernel from a function compiled for them. The loop must
//! sit inside the kernel's `#[inline(always)]` body: a loop inside a closure the kernel calls is
//! compiled separately, for SSE2. Small per-element closures, on the other hand, get inlined.
use pulp::{Simd, WithSimd};

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

/// Adapts a closure to a kernel. Whether the closure's body is compiled with the wider
/// instructions depends on the compiler inlining it; it does for the loss loops (checked with
/// `perf annotate`), which is where this is used.
struct Closure<F>(F);

impl<R, F: FnOnce() -> R> WithSimd for Closure<F> {
    type Output = R;
    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) -> R {
        (self.0)()
    }
}

/// Runs `f` through [`Closure`].
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    run(Closure(f))
}
