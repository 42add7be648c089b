//! Principal angles between the subspaces two linear maps project onto (a linear autoencoder's
//! encoder against PCA's components), via orthonormal bases (QR) and the singular values of their
//! cross product, which are the angles' cosines (Björck & Golub, 1973).
use faer::Mat;

use crate::engine::layers::activation::Activation;
use crate::model::Autoencoder;
use crate::{Error, Result};

/// The principal angles, in degrees, smallest first, between the row spaces of `a` (`ka × d`) and
/// `b` (`kb × d`), both row-major.
pub fn principal_angles(a: &[f32], ka: usize, b: &[f32], kb: usize, d: usize) -> Result<Vec<f64>> {
    if a.len() != ka * d || b.len() != kb * d || ka == 0 || kb == 0 || ka > d || kb > d {
        return Err(Error::config(
            "compare",
            format!(
                "principal angles need two maps onto at most {d} dimensions, got {ka} and {kb}"
            ),
        ));
    }
    let basis = |w: &[f32], k: usize| {
        let t = Mat::<f64>::from_fn(d, k, |i, j| w[j * d + i] as f64);
        t.qr().compute_thin_Q()
    };
    let (qa, qb) = (basis(a, ka), basis(b, kb));
    let cross = qa.transpose() * &qb;
    let cosines = cross
        .singular_values()
        .map_err(|e| Error::config("compare", format!("the SVD failed: {e:?}")))?;
    let mut angles: Vec<f64> = cosines
        .iter()
        .map(|&c| c.clamp(-1.0, 1.0).acos().to_degrees())
        .collect();
    angles.sort_by(|x, y| x.total_cmp(y));
    Ok(angles)
}

/// The `k` directions (rows of a `k × d` matrix) spanning what a one-layer linear autoencoder
/// reconstructs: its decoder's columns, or with tied weights its encoder's rows. The decoder is the
/// one to compare with PCA: an encoder keeps whatever it started with along directions the data
/// never varies in (a border pixel that is always 0 gives its weights no gradient), while the
/// reconstruction error drives the decoder's components there to zero.
pub fn linear_map(model: &Autoencoder) -> Option<(Vec<f32>, usize)> {
    let c = &model.config;
    let linear = c.conv.is_none()
        && c.hidden.len() == 1
        && c.activation == Activation::Linear
        && c.code_activation() == Activation::Linear
        && c.output_activation == Activation::Linear;
    if !linear {
        return None;
    }
    let (k, d) = (c.hidden[0], c.input_features());
    match model.params.find("decoder.0.weight") {
        // (d, k) row-major: column j is direction j.
        Some(id) => {
            let w = model.params.values[id.0].data();
            Some(((0..k * d).map(|i| w[(i % d) * k + i / d]).collect(), k))
        }
        None => {
            let id = model.params.find("encoder.0.weight")?;
            Some((model.params.values[id.0].data().to_vec(), k))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles_of_known_planes() {
        // The x-y plane against itself under a change of basis: all angles 0. Against the plane
        // spanned by x and (y + z)/√2: 0° and 45°. Against the z axis alone: 90°.
        let xy = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let mixed = [2.0, 3.0, 0.0, -1.0, 1.0, 0.0];
        let tilted = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0];
        let a = principal_angles(&xy, 2, &mixed, 2, 3).unwrap();
        assert!(a.iter().all(|x| x.abs() < 1e-4), "{a:?}");
        let a = principal_angles(&xy, 2, &tilted, 2, 3).unwrap();
        assert!(a[0].abs() < 1e-4 && (a[1] - 45.0).abs() < 1e-4, "{a:?}");
        let a = principal_angles(&xy, 2, &[0.0, 0.0, 2.0], 1, 3).unwrap();
        assert!((a[0] - 90.0).abs() < 1e-6, "{a:?}");
        assert!(principal_angles(&xy, 2, &xy, 3, 3).is_err());
    }
}
