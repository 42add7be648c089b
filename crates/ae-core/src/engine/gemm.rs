//! Matrix multiplication for the layer engine, on faer's matmul.
//!
//! Why faer: `bench/gemm-choice` times the shapes a dense autoencoder step uses on `matrixmultiply`,
//! `gemm` and faer (results in BENCHMARKS.md); faer is fastest on most of them (it uses AVX-512 where
//! the CPU has it), and like `gemm` it takes its parallelism per call, on rayon, the pool our
//! elementwise kernels use, so `--threads` governs everything and results are deterministic for a
//! given thread count.
use std::sync::atomic::{AtomicUsize, Ordering};

/// The process-wide thread count; 0 means every core.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Below this many multiply-adds a product runs on one thread: spawning costs more than it saves.
const PARALLEL_MIN_WORK: usize = 64 * 64 * 64;

/// Sets the number of threads products may use everywhere (the CLI's `--threads`); 0 means every
/// core, the default.
pub fn set_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

thread_local! {
    /// Set while a data-parallel replica runs: its products and passes stay on its own thread.
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Set inside [`with_threads`]: the thread count of that call.
    static LOCAL: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The number of threads products and elementwise passes may use from the calling thread:
/// one inside a replica, the count of an enclosing [`with_threads`], else the process-wide count
/// (every core unless [`set_threads`] said otherwise).
pub fn threads() -> usize {
    if SERIAL.with(|s| s.get()) {
        return 1;
    }
    let local = LOCAL.with(|l| l.get());
    if local > 0 {
        return local;
    }
    match THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Runs `f` with `n` threads for its products and passes (a pool of its own), whatever the
/// process-wide count: a thread count per call.
pub fn with_threads<R: Send>(n: usize, f: impl FnOnce() -> R + Send) -> R {
    let n = n.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .start_handler(|_| crate::engine::simd::flush_denormals())
        .build()
        .expect("a thread pool can be built");
    pool.install(|| {
        crate::engine::simd::flush_denormals();
        let before = LOCAL.with(|l| l.replace(n));
        let r = f();
        LOCAL.with(|l| l.set(before));
        r
    })
}

/// Runs `f` with every product and pass on the calling thread.
pub fn serial<R>(f: impl FnOnce() -> R) -> R {
    let before = SERIAL.with(|s| s.replace(true));
    let r = f();
    SERIAL.with(|s| s.set(before));
    r
}

/// `c = op(a) · op(b)` (or `c += ...` when `accumulate`), all row-major.
///
/// `op(a)` is `m × k`: `a` is stored `m × k`, or `k × m` when `a_t` (then it is transposed).
/// `op(b)` is `k × n`: `b` is stored `k × n`, or `n × k` when `b_t`. `c` is `m × n`.
///
/// # Panics
/// When a slice is shorter than its dimensions say (a programmer's mistake).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    c: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_t: bool,
    b: &[f32],
    b_t: bool,
    accumulate: bool,
) {
    assert!(
        c.len() >= m * n && a.len() >= m * k && b.len() >= k * n,
        "matmul operands too short"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // (row stride, column stride) of op(a) and op(b) as stored.
    let (a_rs, a_cs) = if a_t {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (b_rs, b_cs) = if b_t {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    let t = threads();
    let par = if t > 1 && m * n * k >= PARALLEL_MIN_WORK {
        faer::Par::rayon(t)
    } else {
        faer::Par::Seq
    };
    // SAFETY: the assert above guarantees every index the strides reach lies inside its slice, and `c`
    // does not alias `a` or `b` (it is borrowed mutably).
    let (lhs, rhs, dst) = unsafe {
        (
            faer::MatRef::<f32>::from_raw_parts(a.as_ptr(), m, k, a_rs, a_cs),
            faer::MatRef::<f32>::from_raw_parts(b.as_ptr(), k, n, b_rs, b_cs),
            faer::MatMut::<f32>::from_raw_parts_mut(c.as_mut_ptr(), m, n, n as isize, 1),
        )
    };
    let accum = if accumulate {
        faer::Accum::Add
    } else {
        faer::Accum::Replace
    };
    faer::linalg::matmul::matmul(dst, accum, lhs, rhs, 1.0f32, par);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_gets_its_own_thread_count_and_replicas_get_one() {
        assert_eq!(with_threads(3, threads), 3);
        assert_eq!(with_threads(1, || serial(threads)), 1);
        assert_eq!(with_threads(2, || with_threads(1, threads)), 1);
        // Products agree whatever the count.
        let (m, n, k) = (70, 80, 90);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.2).collect();
        let run = |t| {
            with_threads(t, || {
                let mut c = vec![0.0; m * n];
                matmul(&mut c, m, n, k, &a, false, &b, false, false);
                c
            })
        };
        let (one, two) = (run(1), run(2));
        for (x, y) in one.iter().zip(&two) {
            assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0), "{x} vs {y}");
        }
    }

    fn naive(m: usize, n: usize, k: usize, a: &[f32], a_t: bool, b: &[f32], b_t: bool) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for l in 0..k {
                    let av = if a_t { a[l * m + i] } else { a[i * k + l] };
                    let bv = if b_t { b[j * k + l] } else { b[l * n + j] };
                    s += av * bv;
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    #[test]
    fn all_transpose_combinations_match_naive() {
        let (m, n, k) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.53).cos()).collect();
        for a_t in [false, true] {
            for b_t in [false, true] {
                let want = naive(m, n, k, &a, a_t, &b, b_t);
                let mut c = vec![1.0; m * n];
                matmul(&mut c, m, n, k, &a, a_t, &b, b_t, false);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-4, "a_t={a_t} b_t={b_t}: {x} vs {y}");
                }
                matmul(&mut c, m, n, k, &a, a_t, &b, b_t, true);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - 2.0 * y).abs() < 1e-4);
                }
            }
        }
    }
}
