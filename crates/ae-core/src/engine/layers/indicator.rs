//! Missing-value indicators in front of a dense encoder: a row of `D` values, `NaN` where a cell
//! is missing, becomes `2·D` values, the row with its missing cells set to 0 followed by one
//! indicator per cell (1 missing, 0 observed), as scikit-learn's `add_indicator` and GAIN
//! (Yoon et al., 2018) give their models. A model that sees which cells are missing learns what to
//! make of each pattern; one that sees only a filled-in value cannot tell a filled cell from an
//! observed one of the same value (RMSE of `ae impute` on breast cancer at 10% missing, 3 seeds:
//! 0.0571 with mean-filled input, 0.0489 with indicators; BENCHMARKS.md).
//!
//! The fill is 0 because the indicator's weights in the first layer add any constant the model
//! wants for a missing cell: `W·x + U·m` can express every mean-fill `W·(x + f·m)`.
use crate::engine::layers::{Grads, Layer, Mode};
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// `[N, D]` rows with NaN for missing cells → `[N, 2·D]`: values (NaN as 0), then indicators.
#[derive(Clone, Debug)]
pub struct MissingIndicator {
    /// Features per row, `D`.
    pub features: usize,
}

impl Layer for MissingIndicator {
    fn kind(&self) -> &'static str {
        "missing-indicator"
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        if input.iter().product::<usize>() == self.features {
            Ok(vec![2 * self.features])
        } else {
            Err(Error::Shape {
                what: "missing-indicator input".into(),
                expected: vec![self.features],
                got: input.to_vec(),
            })
        }
    }

    fn forward(&mut self, _values: &[Tensor], x: &Tensor, y: &mut Tensor, _mode: Mode) {
        let d = self.features;
        let n = x.len() / d.max(1);
        y.resize(&[n, 2 * d]);
        for (out, row) in y
            .data_mut()
            .chunks_exact_mut(2 * d)
            .zip(x.data().chunks_exact(d))
        {
            let (values, flags) = out.split_at_mut(d);
            for ((v, f), &x) in values.iter_mut().zip(flags).zip(row) {
                let missing = x.is_nan();
                *v = if missing { 0.0 } else { x };
                *f = if missing { 1.0 } else { 0.0 };
            }
        }
    }

    fn backward(
        &mut self,
        _g: &mut Grads<'_>,
        x: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
        dx: Option<&mut Tensor>,
    ) {
        let Some(dx) = dx else { return };
        let d = self.features;
        dx.resize(x.shape());
        // A missing cell reaches the output only through its constant indicator: no gradient.
        for ((g, row), up) in dx
            .data_mut()
            .chunks_exact_mut(d)
            .zip(x.data().chunks_exact(d))
            .zip(dy.data().chunks_exact(2 * d))
        {
            for ((g, &x), &u) in g.iter_mut().zip(row).zip(&up[..d]) {
                *g = if x.is_nan() { 0.0 } else { u };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_cells_become_zero_with_a_flag_and_pass_no_gradient() {
        let nan = f32::NAN;
        let mut l = MissingIndicator { features: 3 };
        assert_eq!(l.output_shape(&[3]).unwrap(), vec![6]);
        assert!(l.output_shape(&[4]).is_err());
        let x = Tensor::from_vec(&[2, 3], vec![0.5, nan, 2.0, nan, nan, -1.0]);
        let mut y = Tensor::default();
        l.forward(&[], &x, &mut y, Mode::Eval);
        assert_eq!(y.shape(), &[2, 6]);
        assert_eq!(
            y.data(),
            &[0.5, 0.0, 2.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 1.0, 1.0, 0.0]
        );
        let dy = Tensor::from_vec(&[2, 6], (1..=12).map(|v| v as f32).collect());
        let mut dx = Tensor::default();
        let mut g = Grads {
            values: &[],
            grads: &mut [],
            frozen: &[],
        };
        l.backward(&mut g, &x, &y, &dy, Some(&mut dx));
        assert_eq!(dx.data(), &[1.0, 0.0, 3.0, 0.0, 0.0, 9.0]);
    }
}
