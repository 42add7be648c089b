//! Input scaling, fitted on training data and saved with the model so that new data is scaled the
//! same way: x' = (x − offset) · scale, per feature.
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::samples::{Samples, SourceType};

/// How inputs are scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScalingKind {
    /// Leave values as they are.
    None,
    /// Divide by 255: 8-bit data into [0, 1].
    Unit,
    /// Per feature, the training minimum to 0 and maximum to 1.
    MinMax,
    /// Per feature, zero mean and unit variance on the training data.
    Standardize,
}

impl ScalingKind {
    /// The default for data of this type: `Unit` for 8-bit data, `MinMax` otherwise.
    pub fn default_for(source: SourceType) -> ScalingKind {
        match source {
            SourceType::U8 => ScalingKind::Unit,
            _ => ScalingKind::MinMax,
        }
    }
}

impl FromStr for ScalingKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "none" => ScalingKind::None,
            "unit" => ScalingKind::Unit,
            "minmax" | "min-max" => ScalingKind::MinMax,
            "standardize" | "standard" | "zscore" => ScalingKind::Standardize,
            _ => {
                return Err(Error::Scaling {
                    reason: format!(
                        "unknown scaling `{s}`; expected none, unit, minmax or standardize"
                    ),
                })
            }
        })
    }
}

/// A fitted scaling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Which scaling.
    pub kind: ScalingKind,
    /// Subtracted from each feature (empty for `None`).
    pub offset: Vec<f32>,
    /// Then multiplied into each feature (empty for `None`).
    pub scale: Vec<f32>,
}

impl Scaler {
    /// Fits `kind` on `s`; NaN cells (missing values) are ignored.
    pub fn fit(kind: ScalingKind, s: &Samples) -> Result<Scaler> {
        let d = s.features();
        let (offset, scale) = match kind {
            ScalingKind::None => (Vec::new(), Vec::new()),
            ScalingKind::Unit => {
                if s.source != SourceType::U8 {
                    return Err(Error::Scaling {
                        reason: "unit scaling divides by 255 and is meant for 8-bit data; use minmax or standardize".into(),
                    });
                }
                (vec![0.0; d], vec![1.0 / 255.0; d])
            }
            ScalingKind::MinMax => {
                let mut lo = vec![f32::INFINITY; d];
                let mut hi = vec![f32::NEG_INFINITY; d];
                for r in s.data.chunks_exact(d) {
                    for j in 0..d {
                        if !r[j].is_nan() {
                            lo[j] = lo[j].min(r[j]);
                            hi[j] = hi[j].max(r[j]);
                        }
                    }
                }
                let scale = lo
                    .iter()
                    .zip(&hi)
                    .map(|(l, h)| if h > l { 1.0 / (h - l) } else { 1.0 })
                    .collect();
                let offset = lo
                    .into_iter()
                    .map(|l| if l.is_finite() { l } else { 0.0 })
                    .collect();
                (offset, scale)
            }
            ScalingKind::Standardize => {
                let mut sum = vec![0.0f64; d];
                let mut sq = vec![0.0f64; d];
                let mut cnt = vec![0usize; d];
                for r in s.data.chunks_exact(d) {
                    for j in 0..d {
                        if !r[j].is_nan() {
                            sum[j] += r[j] as f64;
                            sq[j] += (r[j] as f64).powi(2);
                            cnt[j] += 1;
                        }
                    }
                }
                let mut offset = vec![0.0; d];
                let mut scale = vec![1.0; d];
                for j in 0..d {
                    if cnt[j] > 0 {
                        let mean = sum[j] / cnt[j] as f64;
                        let var = (sq[j] / cnt[j] as f64 - mean * mean).max(0.0);
                        offset[j] = mean as f32;
                        if var > 1e-12 {
                            scale[j] = (1.0 / var.sqrt()) as f32;
                        }
                    }
                }
                (offset, scale)
            }
        };
        Ok(Scaler {
            kind,
            offset,
            scale,
        })
    }

    /// Scales `s` in place; its feature count must match the fitted one.
    pub fn transform(&self, s: &mut Samples) -> Result<()> {
        if self.kind == ScalingKind::None {
            return Ok(());
        }
        let d = s.features();
        if d != self.offset.len() {
            return Err(Error::Shape {
                what: "data for this scaling".into(),
                expected: format!("{} features", self.offset.len()),
                got: d.to_string(),
            });
        }
        for r in s.data.chunks_exact_mut(d) {
            for ((x, o), k) in r.iter_mut().zip(&self.offset).zip(&self.scale) {
                *x = (*x - o) * k;
            }
        }
        Ok(())
    }

    /// Undoes the scaling on rows of values (back to the data's own units).
    pub fn inverse(&self, data: &mut [f32]) {
        if self.kind == ScalingKind::None || self.offset.is_empty() {
            return;
        }
        let d = self.offset.len();
        for r in data.chunks_exact_mut(d) {
            for ((x, o), k) in r.iter_mut().zip(&self.offset).zip(&self.scale) {
                *x = *x / k + o;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(data: Vec<f32>, d: usize, source: SourceType) -> Samples {
        Samples {
            n: data.len() / d,
            data,
            shape: vec![d],
            labels: None,
            source,
        }
    }

    #[test]
    fn minmax_and_inverse() {
        let s = table(vec![1.0, 5.0, 3.0, 5.0, 2.0, f32::NAN], 2, SourceType::Text);
        let sc = Scaler::fit(ScalingKind::MinMax, &s).unwrap();
        assert_eq!(sc.offset, vec![1.0, 5.0]);
        assert_eq!(sc.scale, vec![0.5, 1.0]); // constant column: scale 1, no division by zero
        let mut t = s.clone();
        sc.transform(&mut t).unwrap();
        assert_eq!(&t.data[..4], &[0.0, 0.0, 1.0, 0.0]);
        sc.inverse(&mut t.data);
        assert_eq!(&t.data[..4], &s.data[..4]);
    }

    #[test]
    fn standardize_numbers() {
        let s = table(vec![1.0, 2.0, 3.0, 4.0], 1, SourceType::F32);
        let sc = Scaler::fit(ScalingKind::Standardize, &s).unwrap();
        assert!((sc.offset[0] - 2.5).abs() < 1e-6);
        assert!((sc.scale[0] - 1.0 / 1.25f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn unit_needs_bytes_and_features_must_match() {
        let s = table(vec![0.5, 1.0], 2, SourceType::F32);
        assert!(Scaler::fit(ScalingKind::Unit, &s)
            .unwrap_err()
            .to_string()
            .contains("8-bit"));
        let b = table(vec![0.0, 255.0], 2, SourceType::U8);
        let sc = Scaler::fit(ScalingKind::Unit, &b).unwrap();
        let mut t = b.clone();
        sc.transform(&mut t).unwrap();
        assert_eq!(t.data, vec![0.0, 1.0]);
        let mut wrong = table(vec![1.0; 3], 3, SourceType::U8);
        assert!(sc
            .transform(&mut wrong)
            .unwrap_err()
            .to_string()
            .contains("expected 2 features, got 3"));
        assert_eq!(ScalingKind::default_for(SourceType::U8), ScalingKind::Unit);
        assert_eq!(
            "min-max".parse::<ScalingKind>().unwrap(),
            ScalingKind::MinMax
        );
    }
}
