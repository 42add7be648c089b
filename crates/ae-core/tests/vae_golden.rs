//! The VAE's KL term and reparameterized sample against PyTorch autograd
//! (golden/vae_golden.py → golden/vae_golden.json).
use ae_core::model::vae::{Gaussian, KlTerm};
use ae_core::Tensor;
use serde_json::Value;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn kl_and_sampling_match_pytorch() {
    let cases: Value = serde_json::from_str(include_str!("golden/vae_golden.json")).unwrap();
    for c in cases.as_array().unwrap() {
        let (n, k) = (
            c["n"].as_u64().unwrap() as usize,
            c["k"].as_u64().unwrap() as usize,
        );
        let h = Tensor::from_vec(&[n, 2 * k], floats(&c["h"]));
        let kl = KlTerm {
            beta: 1.0,
            warmup: 0,
            free_bits: None,
        };
        let mut dh = Tensor::zeros(h.shape());
        let value = kl.apply(&h, 1.0, Some(&mut dh));
        let want = c["kl"].as_f64().unwrap();
        assert!(
            (value - want).abs() < 1e-5 * want.abs().max(1.0),
            "{value} vs {want}"
        );
        for (g, w) in dh.data().iter().zip(floats(&c["kl_grad"])) {
            assert!((g - w).abs() < 1e-5 * w.abs().max(1.0), "{g} vs {w}");
        }
        // The library's sample with PyTorch's ε, and its gradient for loss = Σ c·z.
        let mut g = Gaussian::new(k);
        g.forward(&h, true);
        g.eps = Tensor::from_vec(&[n, k], floats(&c["eps"]));
        g.reparameterize(&h);
        assert_eq!(g.z.shape(), [n, k]);
        for (a, b) in g.z.data().iter().zip(floats(&c["z"])) {
            assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "z {a} vs {b}");
        }
        g.dz = Tensor::from_vec(&[n, k], floats(&c["c"]));
        let mut dh = Tensor::default();
        g.backward(&h, &mut dh);
        for (a, b) in dh.data().iter().zip(floats(&c["z_grad"])) {
            assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "dz/dh {a} vs {b}");
        }
    }
}
