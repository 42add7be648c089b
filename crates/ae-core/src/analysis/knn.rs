//! k-nearest-neighbour classification (Euclidean distance, a majority vote of the k nearest, ties
//! to the smallest label: scikit-learn's `KNeighborsClassifier` defaults).
//!
//! Distances come from one product per block, ‖a‖² + ‖b‖² − 2a·b, on our GEMM: ten thousand test
//! rows against sixty thousand 784-pixel training rows is about a teraflop, which brute force at
//! GEMM speed does in seconds where a loop per pair takes minutes.
use crate::engine::gemm::matmul;
use crate::engine::tensor::Tensor;

/// Test rows per block (with `TRAIN_BLOCK` training rows this keeps the distance block at 2 MB).
const TEST_BLOCK: usize = 256;
const TRAIN_BLOCK: usize = 2048;

/// The majority label among the `k` training rows nearest to each row of `test`.
///
/// # Panics
/// When `train` and `test` differ in width, `labels` does not have one label per training row, or
/// `k` is 0 (callers check these).
pub fn knn_predict(train: &Tensor, labels: &[u32], test: &Tensor, k: usize) -> Vec<u32> {
    let d = train.cols();
    assert_eq!(d, test.cols(), "train and test widths");
    assert_eq!(labels.len(), train.rows(), "one label per training row");
    assert!(k >= 1, "k must be at least 1");
    let k = k.min(train.rows());
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let sq = |t: &Tensor| -> Vec<f32> {
        t.data()
            .chunks_exact(d)
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect()
    };
    let (train_sq, test_sq) = (sq(train), sq(test));
    let mut out = Vec::with_capacity(test.rows());
    let mut dots = vec![0.0f32; TEST_BLOCK * TRAIN_BLOCK];
    // Per test row of a block: the k best (distance, label) so far, sorted ascending.
    let mut best: Vec<Vec<(f32, u32)>> =
        (0..TEST_BLOCK).map(|_| Vec::with_capacity(k + 1)).collect();
    for t0 in (0..test.rows()).step_by(TEST_BLOCK) {
        let tn = TEST_BLOCK.min(test.rows() - t0);
        best.iter_mut().for_each(Vec::clear);
        for r0 in (0..train.rows()).step_by(TRAIN_BLOCK) {
            let rn = TRAIN_BLOCK.min(train.rows() - r0);
            let dots = &mut dots[..tn * rn];
            matmul(
                dots,
                tn,
                rn,
                d,
                &test.data()[t0 * d..(t0 + tn) * d],
                false,
                &train.data()[r0 * d..(r0 + rn) * d],
                true,
                false,
            );
            for (i, row) in dots.chunks_exact(rn).enumerate() {
                let b = &mut best[i];
                for (j, &dot) in row.iter().enumerate() {
                    let dist = test_sq[t0 + i] + train_sq[r0 + j] - 2.0 * dot;
                    if b.len() == k && dist >= b[k - 1].0 {
                        continue;
                    }
                    let at = b.partition_point(|&(v, _)| v <= dist);
                    b.insert(at, (dist, labels[r0 + j]));
                    b.truncate(k);
                }
            }
        }
        let mut votes = vec![0usize; classes];
        for b in &best[..tn] {
            votes.fill(0);
            for &(_, l) in b {
                votes[l as usize] += 1;
            }
            // The first class with the most votes: ties go to the smallest label.
            let top = votes.iter().copied().max().unwrap_or(0);
            out.push(votes.iter().position(|&v| v == top).unwrap_or(0) as u32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_brute_force_across_block_edges() {
        // More rows than a block on both sides, so block boundaries are crossed.
        let (ntr, nte, d) = (TRAIN_BLOCK + 37, TEST_BLOCK + 5, 3);
        let f = |i: usize| ((i * 2654435761usize) % 1000) as f32 / 1000.0;
        let train = Tensor::from_vec(&[ntr, d], (0..ntr * d).map(f).collect());
        let test = Tensor::from_vec(&[nte, d], (0..nte * d).map(|i| f(i + 77_777)).collect());
        let labels: Vec<u32> = (0..ntr).map(|i| (i % 3) as u32).collect();
        let got = knn_predict(&train, &labels, &test, 1);
        for (t, &g) in got.iter().enumerate() {
            let nearest = (0..ntr)
                .min_by(|&a, &b| {
                    let da: f32 = (0..d)
                        .map(|j| (train.row(a)[j] - test.row(t)[j]).powi(2))
                        .sum();
                    let db: f32 = (0..d)
                        .map(|j| (train.row(b)[j] - test.row(t)[j]).powi(2))
                        .sum();
                    da.total_cmp(&db)
                })
                .unwrap();
            assert_eq!(g, labels[nearest], "test row {t}");
        }
    }
}
