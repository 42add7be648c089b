//! A dense row-major f32 tensor: the one buffer type the layer engine passes between layers.
//!
//! The first axis is always the batch. Dense layers see a tensor as a matrix of `rows()` examples by
//! `cols()` features; convolution layers read the remaining axes as (C, H, W).

/// A row-major f32 tensor whose first axis is the batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Tensor {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    /// Wraps `data` with `shape`.
    ///
    /// # Panics
    /// When `data.len()` is not the product of `shape` (a programmer's mistake).
    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "tensor data does not fit shape {shape:?}"
        );
        Tensor {
            shape: shape.to_vec(),
            data,
        }
    }

    /// The shape, batch first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements, row-major, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Size of the first (batch) axis.
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Elements per example: the product of every axis after the first.
    pub fn cols(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Row `i` as a slice of `cols()` elements.
    pub fn row(&self, i: usize) -> &[f32] {
        let c = self.cols();
        &self.data[i * c..(i + 1) * c]
    }

    /// Gives the tensor a new shape, keeping its allocation when it is large enough.
    ///
    /// This is how buffers are reused from step to step: the last, smaller batch of an epoch shrinks
    /// the length without freeing, and the next full batch grows it back without allocating.
    /// Contents are unspecified afterwards unless the length was unchanged.
    pub fn resize(&mut self, shape: &[usize]) {
        if self.shape != shape {
            self.shape.clear();
            self.shape.extend_from_slice(shape);
        }
        let n = shape.iter().product();
        self.data.resize(n, 0.0);
    }

    /// Sets every element to `v`.
    pub fn fill(&mut self, v: f32) {
        self.data.fill(v);
    }

    /// Copies `other`'s shape and contents into this tensor, reusing its allocation.
    pub fn copy_from(&mut self, other: &Tensor) {
        self.resize(other.shape());
        self.data.copy_from_slice(other.data());
    }

    /// Calls `f(rows, batch)` on consecutive batches of at most `size` rows (the last may be
    /// shorter), copied into one reused buffer: how inference walks a data set without holding a
    /// whole data set's activations (a conv model's for 1,024 examples take over 300 MB).
    pub fn for_batches(&self, size: usize, mut f: impl FnMut(std::ops::Range<usize>, &Tensor)) {
        let done = self.try_for_batches(size, |rows, batch| {
            f(rows, batch);
            Ok::<(), std::convert::Infallible>(())
        });
        match done {
            Ok(()) => {}
            Err(never) => match never {},
        }
    }

    /// [`Tensor::for_batches`] with an `f` that can fail: stops at its first error and gives it.
    pub fn try_for_batches<E>(
        &self,
        size: usize,
        mut f: impl FnMut(std::ops::Range<usize>, &Tensor) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let (n, c) = (self.rows(), self.cols());
        let mut shape = self.shape.clone();
        let mut batch = Tensor::default();
        for start in (0..n).step_by(size.max(1)) {
            let end = (start + size.max(1)).min(n);
            shape[0] = end - start;
            batch.resize(&shape);
            batch.data.copy_from_slice(&self.data[start * c..end * c]);
            f(start..end, &batch)?;
        }
        Ok(())
    }

    /// A copy of the first `n` rows (all of them when there are fewer).
    pub fn first_rows(&self, n: usize) -> Tensor {
        let n = n.min(self.rows());
        let mut shape = self.shape.clone();
        shape[0] = n;
        Tensor::from_vec(&shape, self.data[..n * self.cols()].to_vec())
    }

    /// Consumes the tensor and returns its elements.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_keeps_capacity_when_shrinking() {
        let mut t = Tensor::zeros(&[4, 3]);
        let cap = t.data.capacity();
        t.resize(&[2, 3]);
        assert_eq!(t.len(), 6);
        assert_eq!(t.rows(), 2);
        assert_eq!(t.cols(), 3);
        t.resize(&[4, 3]);
        assert_eq!(t.data.capacity(), cap);
    }

    #[test]
    fn batches_cover_every_row_once_in_order() {
        let t = Tensor::from_vec(&[7, 2], (0..14).map(|v| v as f32).collect());
        let mut seen = Vec::new();
        t.for_batches(3, |rows, b| {
            assert_eq!(b.rows(), rows.len());
            assert_eq!(b.shape()[1..], [2]);
            seen.extend_from_slice(b.data());
        });
        assert_eq!(seen, t.data());
        // A failing batch ends the walk with its error.
        let mut calls = 0;
        let err = t.try_for_batches(3, |rows, _| {
            calls += 1;
            if rows.start == 3 {
                Err(rows.start)
            } else {
                Ok(())
            }
        });
        assert_eq!((err, calls), (Err(3), 2));
    }

    #[test]
    fn rows_and_cols_of_image_batch() {
        let t = Tensor::zeros(&[5, 1, 28, 28]);
        assert_eq!(t.rows(), 5);
        assert_eq!(t.cols(), 784);
        assert_eq!(t.row(4).len(), 784);
    }
}
