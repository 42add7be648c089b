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
    /// Fits `kind` on `s`; NaN cells (missing values) are ignored. A constant feature (or one with
    /// no values) gets scale 1, so nothing is divided by zero.
    pub fn fit(kind: ScalingKind, s: &Samples) -> Result<Scaler> {
        let mut fit = ScalerFit::new(kind, s.source, s.features())?;
        for pass in 0..fit.passes() {
            if pass > 0 {
                fit.next_pass();
            }
            fit.add(&s.data);
        }
        Ok(fit.finish())
    }

    /// Scales `s` in place; its feature count must match the fitted one. NaN cells stay NaN.
    pub fn transform(&self, s: &mut Samples) -> Result<()> {
        if self.kind == ScalingKind::None {
            return Ok(());
        }
        let d = s.features();
        if self.scale.len() != self.offset.len() {
            return Err(Error::Scaling {
                reason: format!(
                    "a saved scaling has {} offsets but {} scales",
                    self.offset.len(),
                    self.scale.len()
                ),
            });
        }
        if d != self.offset.len() || d == 0 {
            return Err(Error::Shape {
                what: "data for this scaling".into(),
                expected: format!("{} features", self.offset.len()),
                got: d.to_string(),
            });
        }
        self.apply(&mut s.data);
        Ok(())
    }

    /// Scales rows of values in place (row after row of the fitted feature count; a trailing
    /// partial row is left as it is): what [`Scaler::transform`] does once it has checked shapes.
    pub fn apply(&self, data: &mut [f32]) {
        if self.kind == ScalingKind::None || self.offset.is_empty() {
            return;
        }
        for r in data.chunks_exact_mut(self.offset.len()) {
            for ((x, o), k) in r.iter_mut().zip(&self.offset).zip(&self.scale) {
                *x = (*x - o) * k;
            }
        }
    }

    /// Undoes the scaling on rows of values (back to the data's own units), row after row of the
    /// fitted feature count; a trailing partial row is left as it is.
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

/// A scaling fitted on rows that arrive in chunks, for data that does not fit in memory: pass
/// every row to [`ScalerFit::add`] once per [`ScalerFit::passes`] (calling
/// [`ScalerFit::next_pass`] between passes), then [`ScalerFit::finish`]. Rows in the same order
/// give the same scaling as [`Scaler::fit`] on all of them at once, bit for bit: it is the same
/// code, and the sums run row after row either way.
#[derive(Clone, Debug)]
pub struct ScalerFit {
    kind: ScalingKind,
    d: usize,
    pass: usize,
    lo: Vec<f32>,
    hi: Vec<f32>,
    sum: Vec<f64>,
    cnt: Vec<usize>,
    mean: Vec<f64>,
    sq: Vec<f64>,
}

impl ScalerFit {
    /// Starts fitting `kind` on data of `source` type with `d` features per row.
    pub fn new(kind: ScalingKind, source: SourceType, d: usize) -> Result<ScalerFit> {
        if d == 0 && kind != ScalingKind::None {
            return Err(Error::Shape {
                what: "data to scale".into(),
                expected: "at least 1 feature".into(),
                got: "0".into(),
            });
        }
        if kind == ScalingKind::Unit && source != SourceType::U8 {
            return Err(Error::Scaling {
                reason: "unit scaling divides by 255 and is meant for 8-bit data; use minmax or standardize".into(),
            });
        }
        Ok(ScalerFit {
            kind,
            d,
            pass: 0,
            lo: vec![f32::INFINITY; d],
            hi: vec![f32::NEG_INFINITY; d],
            sum: vec![0.0; d],
            cnt: vec![0; d],
            mean: Vec::new(),
            sq: vec![0.0; d],
        })
    }

    /// How many times every row must be seen: two for standardization (mean, then squared
    /// deviations in f64: the one-pass E[x²] − E[x]² loses every digit when a feature's mean is
    /// large against its spread), else one.
    pub fn passes(&self) -> usize {
        match self.kind {
            ScalingKind::Standardize => 2,
            _ => 1,
        }
    }

    /// Takes whole rows (a multiple of the feature count; a trailing partial row is ignored).
    pub fn add(&mut self, rows: &[f32]) {
        let d = self.d.max(1);
        if self.pass == 0 {
            for r in rows.chunks_exact(d) {
                for (j, &x) in r.iter().enumerate().filter(|(_, x)| !x.is_nan()) {
                    self.lo[j] = self.lo[j].min(x);
                    self.hi[j] = self.hi[j].max(x);
                    self.sum[j] += x as f64;
                    self.cnt[j] += 1;
                }
            }
        } else {
            for r in rows.chunks_exact(d) {
                for (j, &x) in r.iter().enumerate().filter(|(_, x)| !x.is_nan()) {
                    self.sq[j] += (x as f64 - self.mean[j]).powi(2);
                }
            }
        }
    }

    /// Ends a pass over the rows.
    pub fn next_pass(&mut self) {
        if self.pass == 0 {
            self.mean = self
                .sum
                .iter()
                .zip(&self.cnt)
                .map(|(&t, &c)| if c > 0 { t / c as f64 } else { 0.0 })
                .collect();
        }
        self.pass += 1;
    }

    /// Each feature's smallest and largest value seen (∞ and −∞ where a feature had none).
    pub fn range(&self) -> (&[f32], &[f32]) {
        (&self.lo, &self.hi)
    }

    /// The fitted scaling.
    pub fn finish(mut self) -> Scaler {
        if self.pass == 0 {
            self.next_pass();
        }
        let d = self.d;
        let (offset, scale) = match self.kind {
            ScalingKind::None => (Vec::new(), Vec::new()),
            ScalingKind::Unit => (vec![0.0; d], vec![1.0 / 255.0; d]),
            ScalingKind::MinMax => {
                let offset = self
                    .lo
                    .iter()
                    .map(|&l| if l.is_finite() { l } else { 0.0 })
                    .collect();
                let scale = self
                    .lo
                    .iter()
                    .zip(&self.hi)
                    .map(|(&l, &h)| reciprocal_or_one(h as f64 - l as f64))
                    .collect();
                (offset, scale)
            }
            ScalingKind::Standardize => {
                let scale = (0..d)
                    .map(|j| {
                        // Constant is told by min == max: a computed variance of a constant
                        // column can be a rounding crumb whose reciprocal is huge.
                        if self.cnt[j] == 0 || self.lo[j] == self.hi[j] {
                            1.0
                        } else {
                            // Population variance (divide by n), as NumPy's std and scikit-learn.
                            reciprocal_or_one((self.sq[j] / self.cnt[j] as f64).sqrt())
                        }
                    })
                    .collect();
                (self.mean.iter().map(|&m| m as f32).collect(), scale)
            }
        };
        Scaler {
            kind: self.kind,
            offset,
            scale,
        }
    }
}

/// `1 / spread` as f32, or 1 where that is not a positive finite number (constant or empty
/// feature), so that scaling never divides by zero.
fn reciprocal_or_one(spread: f64) -> f32 {
    let k = (1.0 / spread) as f32;
    if spread > 0.0 && k.is_finite() && k > 0.0 {
        k
    } else {
        1.0
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

    /// Four rows, three features: a NaN (missing) cell in the second, the third constant.
    fn golden_table() -> Samples {
        #[rustfmt::skip]
        let data = vec![
            1.0, 10.0, 7.0,
            2.0, 20.0, 7.0,
            4.0, f32::NAN, 7.0,
            9.0, 40.0, 7.0,
        ];
        table(data, 3, SourceType::Text)
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-6 * y.abs().max(1.0)
            })
    }

    // Golden numbers from NumPy 2.4 (population std, NaN ignored, constant column scale 1):
    //   x = np.array([[1,10,7],[2,20,7],[4,np.nan,7],[9,40,7]], dtype=np.float64)
    //   lo, hi = np.nanmin(x, 0), np.nanmax(x, 0)
    //   mm = (x - lo) * np.where(hi > lo, 1 / np.where(hi > lo, hi - lo, 1), 1)
    //   mean, std = np.nanmean(x, 0), np.nanstd(x, 0)
    //   z = (x - mean) * np.where(std > 0, 1 / np.where(std > 0, std, 1), 1)
    #[test]
    fn minmax_matches_numpy_and_inverts() {
        let s = golden_table();
        let sc = Scaler::fit(ScalingKind::MinMax, &s).unwrap();
        assert_eq!(sc.offset, vec![1.0, 10.0, 7.0]);
        assert!(
            close(&sc.scale, &[0.125, 1.0 / 30.0, 1.0]),
            "{:?}",
            sc.scale
        );
        let mut t = s.clone();
        sc.transform(&mut t).unwrap();
        #[rustfmt::skip]
        let want = [
            0.0, 0.0, 0.0,
            0.125, 0.333_333_34, 0.0,
            0.375, f32::NAN, 0.0,
            1.0, 1.0, 0.0,
        ];
        assert!(close(&t.data, &want), "{:?}", t.data);
        sc.inverse(&mut t.data);
        assert!(close(&t.data, &s.data), "{:?}", t.data);
    }

    #[test]
    fn standardize_matches_numpy_and_inverts() {
        let s = golden_table();
        let sc = Scaler::fit(ScalingKind::Standardize, &s).unwrap();
        assert!(
            close(&sc.offset, &[4.0, 23.333_334, 7.0]),
            "{:?}",
            sc.offset
        );
        assert!(
            close(&sc.scale, &[1.0 / 3.082_207, 1.0 / 12.472_191, 1.0]),
            "{:?}",
            sc.scale
        );
        let mut t = s.clone();
        sc.transform(&mut t).unwrap();
        #[rustfmt::skip]
        let want = [
            -0.973_328_5, -1.069_045, 0.0,
            -0.648_885_7, -0.267_261_24, 0.0,
            0.0, f32::NAN, 0.0,
            1.622_214_2, 1.336_306_2, 0.0,
        ];
        assert!(close(&t.data, &want), "{:?}", t.data);
        sc.inverse(&mut t.data);
        assert!(close(&t.data, &s.data), "{:?}", t.data);
    }

    #[test]
    fn standardize_keeps_digits_far_from_zero() {
        // Mean 1e6, spread 1: the one-pass formula would round the variance to nothing.
        let s = table(vec![1e6 - 1.0, 1e6 + 1.0], 1, SourceType::F32);
        let sc = Scaler::fit(ScalingKind::Standardize, &s).unwrap();
        assert_eq!((sc.offset[0], sc.scale[0]), (1e6, 1.0));
        // A constant column whose mean rounds off is still constant.
        let s = table(vec![0.1; 3], 1, SourceType::F32);
        let sc = Scaler::fit(ScalingKind::Standardize, &s).unwrap();
        assert_eq!(sc.scale[0], 1.0);
    }

    #[test]
    fn unit_needs_bytes_and_features_must_match() {
        let s = table(vec![0.5, 1.0], 2, SourceType::F32);
        assert_eq!(
            Scaler::fit(ScalingKind::Unit, &s).unwrap_err().to_string(),
            "scaling: unit scaling divides by 255 and is meant for 8-bit data; use minmax or standardize"
        );
        let b = table(vec![0.0, 255.0], 2, SourceType::U8);
        let sc = Scaler::fit(ScalingKind::Unit, &b).unwrap();
        let mut t = b.clone();
        sc.transform(&mut t).unwrap();
        assert_eq!(t.data, vec![0.0, 1.0]);
        let mut wrong = table(vec![1.0; 3], 3, SourceType::U8);
        assert_eq!(
            sc.transform(&mut wrong).unwrap_err().to_string(),
            "data for this scaling: expected 2 features, got 3"
        );
        let none = Scaler::fit(ScalingKind::None, &b).unwrap();
        assert!(none.offset.is_empty() && none.scale.is_empty());
        none.transform(&mut wrong).unwrap();
        assert_eq!(wrong.data, vec![1.0; 3]);
        let empty = Samples {
            data: vec![],
            n: 2,
            shape: vec![0],
            labels: None,
            source: SourceType::F32,
        };
        assert!(Scaler::fit(ScalingKind::MinMax, &empty).is_err());
        let damaged = Scaler {
            kind: ScalingKind::MinMax,
            offset: vec![0.0; 2],
            scale: vec![1.0],
        };
        assert!(damaged
            .transform(&mut t)
            .unwrap_err()
            .to_string()
            .contains("2 offsets but 1 scales"));
    }

    #[test]
    fn names_and_defaults() {
        for (s, k) in [
            ("none", ScalingKind::None),
            ("unit", ScalingKind::Unit),
            ("minmax", ScalingKind::MinMax),
            ("min-max", ScalingKind::MinMax),
            ("standardize", ScalingKind::Standardize),
        ] {
            assert_eq!(s.parse::<ScalingKind>().unwrap(), k);
        }
        let e = "zscale".parse::<ScalingKind>().unwrap_err().to_string();
        assert!(e.contains("unknown scaling `zscale`"), "{e}");
        // Saved settings spell kinds the way the command line does.
        let json = serde_json::to_string(&ScalingKind::MinMax).unwrap();
        assert_eq!(json, "\"min-max\"");
        assert_eq!(
            serde_json::from_str::<ScalingKind>(&json).unwrap(),
            ScalingKind::MinMax
        );
        assert_eq!(ScalingKind::default_for(SourceType::U8), ScalingKind::Unit);
        for other in [
            SourceType::Int,
            SourceType::F32,
            SourceType::F64,
            SourceType::Text,
        ] {
            assert_eq!(ScalingKind::default_for(other), ScalingKind::MinMax);
        }
    }

    #[test]
    fn fitting_in_chunks_equals_fitting_at_once() {
        let data: Vec<f32> = (0..600)
            .map(|i| ((i * 37 % 101) as f32) * 1e3 + 5e6)
            .collect();
        let s = table(data.clone(), 6, SourceType::F32);
        for kind in [
            ScalingKind::MinMax,
            ScalingKind::Standardize,
            ScalingKind::None,
        ] {
            let mut fit = ScalerFit::new(kind, SourceType::F32, 6).unwrap();
            for pass in 0..fit.passes() {
                if pass > 0 {
                    fit.next_pass();
                }
                for chunk in data.chunks(6 * 7) {
                    fit.add(chunk);
                }
            }
            assert_eq!(fit.finish(), Scaler::fit(kind, &s).unwrap(), "{kind:?}");
        }
        assert!(ScalerFit::new(ScalingKind::Unit, SourceType::F32, 6).is_err());
    }
}
