//! Filling missing cells. A model with missing-cell indicators fills them in one pass; one without
//! by iterated reconstruction: start each hole at its column's mean over the observed cells,
//! reconstruct, put the reconstruction into the holes only, repeat.
use crate::analysis::inference::Inference;
use crate::engine::tensor::Tensor;
use crate::objective::missing::{column_means, fill_in_place};
use crate::{Error, Result};

/// `x` (`[N, D]` rows in the model's scaled units, NaN where a cell is missing) with its holes
/// filled after `iterations` rounds (one for a model with indicators); observed cells are kept as
/// they are.
pub fn impute(inference: &Inference<'_>, x: &Tensor, iterations: usize) -> Result<Tensor> {
    let model = inference.model();
    let d = model.config.input_features();
    if x.cols() != d {
        return Err(Error::Shape {
            what: "rows to impute".into(),
            expected: vec![d],
            got: vec![x.cols()],
        });
    }
    let missing: Vec<bool> = x.data().iter().map(|v| v.is_nan()).collect();
    let mut filled = x.clone();
    let iterations = if model.config.missing_indicator {
        // The model sees which cells are missing (NaN) and was trained to fill them from the
        // rest: one pass (feeding its own values back would present them as observed).
        1
    } else {
        // A column with no observed cell starts at 0.
        fill_in_place(filled.data_mut(), &column_means(x.data(), d));
        iterations
    };
    for _ in 0..iterations {
        let rec = inference.reconstruct(&filled)?;
        for ((v, r), &m) in filled.data_mut().iter_mut().zip(rec.data()).zip(&missing) {
            if m {
                *v = *r;
            }
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    #[test]
    fn holes_start_at_column_means_and_only_holes_change() {
        let model = ModelConfig::dense(&[3], &[2]).build(0).unwrap();
        let nan = f32::NAN;
        let x = Tensor::from_vec(&[3, 3], vec![0.2, nan, 0.4, 0.6, 0.5, nan, nan, 0.7, 0.8]);
        let zero = impute(&Inference::cpu(&model), &x, 0).unwrap();
        assert_eq!(zero.data(), [0.2, 0.6, 0.4, 0.6, 0.5, 0.6, 0.4, 0.7, 0.8]);
        let three = impute(&Inference::cpu(&model), &x, 3).unwrap();
        for (i, (&a, &b)) in three.data().iter().zip(x.data()).enumerate() {
            if b.is_nan() {
                assert!(
                    a.is_finite() && a != zero.data()[i],
                    "cell {i} was not refilled"
                );
            } else {
                assert_eq!(a, b);
            }
        }
    }
}
