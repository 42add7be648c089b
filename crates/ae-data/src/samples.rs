//! A set of examples in memory: f32 values, the shape of one example, optional labels.

/// What a file held before it became f32 (scaling picks its default from it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceType {
    /// 8-bit unsigned integers (images).
    U8,
    /// Other integers (IDX i8, i16, i32).
    Int,
    /// 32-bit floats.
    F32,
    /// 64-bit floats.
    F64,
    /// Numbers written as text (CSV).
    Text,
}

/// Examples stored row-major as f32; the first axis is the example.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    /// `n * prod(shape)` values.
    pub data: Vec<f32>,
    /// Number of examples.
    pub n: usize,
    /// Shape of one example: `[C, H, W]` for images (IDX images are `[1, H, W]`), `[D]` for tables.
    pub shape: Vec<usize>,
    /// One label per example, when the data has them.
    pub labels: Option<Vec<u32>>,
    /// What the file held.
    pub source: SourceType,
}

impl Samples {
    /// Examples of `shape` (`[D]` for table rows, `[C, H, W]` for images) from values laid out
    /// row-major, one example after another, as a NumPy array of shape `[N, ..shape]` is.
    pub fn from_rows(data: Vec<f32>, shape: &[usize]) -> crate::Result<Samples> {
        let d: usize = shape.iter().product();
        if d == 0 || !data.len().is_multiple_of(d) {
            return Err(crate::Error::Shape {
                what: "rows".into(),
                expected: format!("a multiple of {d} values (examples of shape {shape:?})"),
                got: data.len().to_string(),
            });
        }
        Ok(Samples {
            n: data.len() / d,
            data,
            shape: shape.to_vec(),
            labels: None,
            source: SourceType::F32,
        })
    }

    /// Only the examples whose label is one of `classes` (labels kept as they are); all of them
    /// when `classes` is empty. Data without labels, or a filter that keeps nothing, is an error.
    pub fn only_classes(self, classes: &[u32]) -> crate::Result<Samples> {
        if classes.is_empty() {
            return Ok(self);
        }
        let Some(labels) = &self.labels else {
            return Err(crate::Error::Shape {
                what: "a class filter (classes)".into(),
                expected: "labelled data (IDX with labels, a named data set, an image folder of classes, or a CSV label column)".into(),
                got: "data without labels".into(),
            });
        };
        let keep: Vec<usize> = (0..self.n)
            .filter(|&i| classes.contains(&labels[i]))
            .collect();
        if keep.is_empty() {
            let mut seen: Vec<u32> = labels.clone();
            seen.sort_unstable();
            seen.dedup();
            return Err(crate::Error::Shape {
                what: "a class filter (classes)".into(),
                expected: format!("some examples of classes {classes:?}"),
                got: format!("none; the data's classes are {seen:?}"),
            });
        }
        Ok(self.subset(&keep))
    }

    /// Values per example.
    pub fn features(&self) -> usize {
        self.shape.iter().product()
    }

    /// Example `i`: its `features()` values.
    ///
    /// # Panics
    /// If `i >= n` (a programmer's mistake: indices come from the code, not from files).
    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.features();
        &self.data[i * d..(i + 1) * d]
    }

    /// True for image-shaped examples (`[C, H, W]`).
    pub fn is_image(&self) -> bool {
        self.shape.len() == 3
    }

    /// The examples at `idx`, in that order, with their labels.
    ///
    /// # Panics
    /// If an index is `>= n`.
    pub fn subset(&self, idx: &[usize]) -> Samples {
        let mut data = Vec::with_capacity(idx.len() * self.features());
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Samples {
            data,
            n: idx.len(),
            shape: self.shape.clone(),
            labels: self
                .labels
                .as_ref()
                .map(|l| idx.iter().map(|&i| l[i]).collect()),
            source: self.source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_subsets_keep_labels() {
        let s = Samples {
            data: (0..12).map(|v| v as f32).collect(),
            n: 3,
            shape: vec![1, 2, 2],
            labels: Some(vec![5, 6, 7]),
            source: SourceType::U8,
        };
        assert!(s.is_image());
        assert_eq!(s.features(), 4);
        assert_eq!(s.row(2), &[8.0, 9.0, 10.0, 11.0]);
        let t = s.subset(&[2, 0]);
        assert_eq!(t.n, 2);
        assert_eq!(t.data, vec![8.0, 9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 3.0]);
        assert_eq!(t.labels, Some(vec![7, 5]));
        assert_eq!((t.shape, t.source), (vec![1, 2, 2], SourceType::U8));
    }
}
