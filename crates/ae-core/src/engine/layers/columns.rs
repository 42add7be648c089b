//! The first columns of each row: a variational encoder's output is `[μ | log σ²]`, and a
//! classifier on that encoder reads the mean alone (the M1 route of Kingma et al., 2014).
use crate::engine::layers::{Grads, Layer, Mode};
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// Keeps the first `keep` of each row's values; the rest get a zero gradient.
#[derive(Clone, Debug)]
pub struct FirstColumns {
    /// Values kept per row.
    pub keep: usize,
}

impl Layer for FirstColumns {
    fn kind(&self) -> &'static str {
        "first-columns"
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        match input {
            [d] if *d >= self.keep => Ok(vec![self.keep]),
            _ => Err(Error::Shape {
                what: "first-columns input".into(),
                expected: vec![self.keep],
                got: input.to_vec(),
            }),
        }
    }

    fn forward(&mut self, _values: &[Tensor], x: &Tensor, y: &mut Tensor, _mode: Mode) {
        let (n, c) = (x.rows(), x.cols());
        y.resize(&[n, self.keep]);
        for (out, row) in y
            .data_mut()
            .chunks_exact_mut(self.keep)
            .zip(x.data().chunks_exact(c))
        {
            out.copy_from_slice(&row[..self.keep]);
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
        let c = x.cols();
        dx.resize(x.shape());
        for (d, g) in dx
            .data_mut()
            .chunks_exact_mut(c)
            .zip(dy.data().chunks_exact(self.keep))
        {
            d[..self.keep].copy_from_slice(g);
            d[self.keep..].fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_columns_and_routes_their_gradient_back() {
        let mut l = FirstColumns { keep: 2 };
        assert_eq!(l.output_shape(&[4]).unwrap(), vec![2]);
        assert!(l.output_shape(&[1]).is_err());
        let x = Tensor::from_vec(&[2, 4], vec![1., 2., 3., 4., 5., 6., 7., 8.]);
        let mut y = Tensor::default();
        l.forward(&[], &x, &mut y, Mode::Eval);
        assert_eq!(y.data(), &[1., 2., 5., 6.]);
        let dy = Tensor::from_vec(&[2, 2], vec![0.5, -1., 2., 3.]);
        let mut dx = Tensor::default();
        let mut g = Grads {
            values: &[],
            grads: &mut [],
            frozen: &[],
        };
        l.backward(&mut g, &x, &y, &dy, Some(&mut dx));
        assert_eq!(dx.data(), &[0.5, -1., 0., 0., 2., 3., 0., 0.]);
    }
}
