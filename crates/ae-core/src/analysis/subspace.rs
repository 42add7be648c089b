//! Principal angles between the subspaces two linear maps project onto (a linear autoencoder's
//! encoder against PCA's components), via orthonormal bases (QR) and the singular values of their
//! cross product, which are the angles' cosines (Björck & Golub, 1973).
use faer::Mat;

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
