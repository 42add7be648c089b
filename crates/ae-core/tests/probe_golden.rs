//! The probe's softmax regression against scikit-learn's LogisticRegression (golden values from
//! `tests/golden/probe_golden.py`, which documents the data rebuilt here): the same objective
//! value at the optimum and the same test accuracy.
use ae_core::analysis::probe::SoftmaxProbe;
use ae_core::Tensor;

fn rows(start: usize, n: usize) -> (Tensor, Vec<u32>) {
    let mut x = Vec::with_capacity(n * 5);
    for i in start..start + n {
        for j in 0..5 {
            let (fi, fj) = (i as f64, j as f64);
            let v = (0.7 * fi + 1.3 * fj).sin()
                + if j == i % 3 { 0.8 } else { 0.0 }
                + 0.3 * (2.1 * fi * fj + 0.5).cos();
            x.push(v as f32);
        }
    }
    (
        Tensor::from_vec(&[n, 5], x),
        (start..start + n).map(|i| (i % 3) as u32).collect(),
    )
}

#[test]
fn softmax_probe_matches_scikit_learn() {
    let g: serde_json::Value =
        serde_json::from_str(include_str!("golden/probe_golden.json")).unwrap();
    let (xtr, ytr) = rows(0, 150);
    let (xte, yte) = rows(150, 60);
    for lam in ["0.0001", "0.01"] {
        let want = &g[lam];
        let r = SoftmaxProbe {
            l2: lam.parse().unwrap(),
            max_iters: 1000,
        }
        .fit_score(xtr.clone(), &ytr, xte.clone(), &yte, 3)
        .unwrap();
        let cost = want["cost"].as_f64().unwrap();
        assert!(r.converged, "λ {lam}: {r:?}");
        assert!(
            (r.cost - cost).abs() < 1e-5 * cost.max(1.0),
            "λ {lam}: cost {} vs scikit-learn {cost}",
            r.cost
        );
        assert_eq!(r.accuracy, want["accuracy"].as_f64().unwrap(), "λ {lam}");
    }
}
