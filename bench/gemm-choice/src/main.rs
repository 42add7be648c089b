//! Times the GEMM shapes a dense autoencoder step uses, on `matrixmultiply` and on `gemm`, so that the
//! choice of GEMM crate behind ae-core rests on a measurement kept in the repo.
//!
//! Run: `cargo run --release --manifest-path bench/gemm-choice/Cargo.toml` (MATMUL_NUM_THREADS and
//! RAYON_NUM_THREADS set the thread counts; both default to 2 here).
use std::time::Instant;

/// (m, k, n, transpose a, transpose b): C[m,n] = op(A)[m,k] * op(B)[k,n]
const SHAPES: &[(usize, usize, usize, bool, bool, &str)] = &[
    (256, 784, 256, false, true, "fwd  256x784 * W^T(784x256)"),
    (256, 256, 784, false, false, "dX   256x256 * W(256x784)"),
    (256, 256, 784, true, false, "dW   dY^T(256x256) * X(256x784)"),
    (256, 784, 1000, false, true, "fwd  256x784 * W^T(784x1000)"),
    (1000, 256, 784, true, false, "dW   dY^T(1000x256) * X(256x784)"),
    (256, 1000, 500, false, true, "fwd  256x1000 * W^T(1000x500)"),
    (2048, 2048, 2048, false, false, "ceiling 2048^3"),
];

fn main() {
    let threads: usize = std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    if std::env::var("MATMUL_NUM_THREADS").is_err() {
        std::env::set_var("MATMUL_NUM_THREADS", threads.to_string());
    }
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().unwrap();
    println!("{:<36} {:>12} {:>12} {:>12}", "shape", "mm GFLOP/s", "gemm GFLOP/s", "faer GFLOP/s");
    for &(m, k, n, ta, tb, name) in SHAPES {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32) * 0.01).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32) * 0.01).collect();
        let mut c = vec![0f32; m * n];
        // strides: A is stored m x k row-major unless transposed (then stored k x m).
        let (rsa, csa) = if ta { (1isize, m as isize) } else { (k as isize, 1) };
        let (rsb, csb) = if tb { (1isize, k as isize) } else { (n as isize, 1) };
        let flops = 2.0 * (m * k * n) as f64;
        let reps = ((2e10 / flops) as usize).clamp(3, 2000);
        let time = |f: &mut dyn FnMut()| {
            f();
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9
        };
        let mm = time(&mut || unsafe {
            matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, 0.0, c.as_mut_ptr(), n as isize, 1);
        });
        let par = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        let gm = time(&mut || unsafe {
            gemm::gemm(m, n, k, c.as_mut_ptr(), 1, n as isize, false, a.as_ptr(), csa, rsa, b.as_ptr(), csb, rsb, 0.0, 1.0, false, false, false, par);
        });
        let fpar = if threads > 1 { faer::Par::rayon(threads) } else { faer::Par::Seq };
        let fa = time(&mut || unsafe {
            let lhs = faer::MatRef::<f32>::from_raw_parts(a.as_ptr(), m, k, rsa, csa);
            let rhs = faer::MatRef::<f32>::from_raw_parts(b.as_ptr(), k, n, rsb, csb);
            let dst = faer::MatMut::<f32>::from_raw_parts_mut(c.as_mut_ptr(), m, n, n as isize, 1);
            faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, 1.0f32, fpar);
        });
        println!("{:<36} {:>12.1} {:>12.1} {:>12.1}", name, mm, gm, fa);
    }
}
