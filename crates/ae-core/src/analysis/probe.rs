//! How much of the labels some features carry: softmax (multinomial logistic) regression on
//! standardized features, scored by test accuracy.
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// The share of `pred` that equals `labels`.
pub fn accuracy(pred: &[u32], labels: &[u32]) -> f64 {
    let right = pred.iter().zip(labels).filter(|(p, y)| p == y).count();
    right as f64 / labels.len().max(1) as f64
}

/// Centres and scales every feature of `train` and `test` by the mean and deviation of `train`
/// (`[N, D]` each); a constant feature (a border pixel) is centred and left at zero.
pub fn standardize(train: &mut Tensor, test: &mut Tensor) {
    let d = train.cols();
    let n = train.rows().max(1) as f64;
    let mut mean = vec![0.0f64; d];
    let mut sq = vec![0.0f64; d];
    for r in train.data().chunks_exact(d) {
        for ((m, q), &v) in mean.iter_mut().zip(&mut sq).zip(r) {
            *m += v as f64;
            *q += (v as f64) * (v as f64);
        }
    }
    let (mean, inv): (Vec<f32>, Vec<f32>) = mean
        .iter()
        .zip(&sq)
        .map(|(&m, &q)| {
            let mu = m / n;
            let sd = (q / n - mu * mu).max(0.0).sqrt();
            (mu as f32, if sd > 1e-8 { (1.0 / sd) as f32 } else { 0.0 })
        })
        .unzip();
    for t in [train, test] {
        for r in t.data_mut().chunks_exact_mut(d) {
            for ((v, m), i) in r.iter_mut().zip(&mean).zip(&inv) {
                *v = (*v - m) * i;
            }
        }
    }
}

/// Softmax (multinomial logistic) regression as a probe, fitted to convergence: full-batch
/// L-BFGS (argmin's, with a Moré–Thuente line search) on standardized features, minimizing the
/// mean cross-entropy plus (λ/2)·‖W‖², as scikit-learn's `LogisticRegression` does with
/// `C = 1 / (λ·N)`.
#[derive(Clone, Debug)]
pub struct SoftmaxProbe {
    /// λ of the L2 penalty on the weights (not the biases).
    pub l2: f64,
    /// Most L-BFGS iterations.
    pub max_iters: u64,
}

/// A fitted probe's test accuracy and whether the solver converged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeResult {
    /// Share of test examples classified right.
    pub accuracy: f64,
    /// True when L-BFGS met its tolerance before `max_iters`.
    pub converged: bool,
    /// Iterations it took.
    pub iterations: u64,
    /// The objective at the solution: mean cross-entropy + (λ/2)·‖W‖² on the training features.
    pub cost: f64,
}

/// A point, its cost and its gradient.
type Evaluated = (Vec<f64>, f64, Vec<f64>);

/// The regression's objective on `[N, D]` features (f32 products, f64 sums): parameters are
/// `W` (`D × K`, row-major) then `b` (`K`).
struct Regression<'a> {
    x: &'a Tensor,
    labels: &'a [u32],
    classes: usize,
    l2: f64,
    /// The last point evaluated, with its cost and gradient (argmin asks for both separately).
    last: std::cell::RefCell<Option<Evaluated>>,
}

impl Regression<'_> {
    fn logits(&self, p: &[f64]) -> Vec<f32> {
        let (n, d, k) = (self.x.rows(), self.x.cols(), self.classes);
        let w: Vec<f32> = p[..d * k].iter().map(|&v| v as f32).collect();
        let mut z = vec![0.0f32; n * k];
        crate::engine::gemm::matmul(&mut z, n, k, d, self.x.data(), false, &w, false, false);
        for row in z.chunks_exact_mut(k) {
            for (v, &b) in row.iter_mut().zip(&p[d * k..]) {
                *v += b as f32;
            }
        }
        z
    }

    fn evaluate(&self, p: &[f64]) -> (f64, Vec<f64>) {
        if let Some((q, c, g)) = self.last.borrow().as_ref() {
            if q.as_slice() == p {
                return (*c, g.clone());
            }
        }
        let (n, d, k) = (self.x.rows(), self.x.cols(), self.classes);
        let mut z = self.logits(p);
        let mut cost = 0.0f64;
        // z becomes (softmax − one-hot) / N, the gradient at the logits.
        for (row, &y) in z.chunks_exact_mut(k).zip(self.labels) {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let sum: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            cost += m + sum.ln() - row[y as usize] as f64;
            for (j, v) in row.iter_mut().enumerate() {
                let prob = ((*v as f64 - m).exp() / sum) - if j == y as usize { 1.0 } else { 0.0 };
                *v = (prob / n as f64) as f32;
            }
        }
        let mut dw = vec![0.0f32; d * k];
        crate::engine::gemm::matmul(&mut dw, d, k, n, self.x.data(), true, &z, false, false);
        let mut grad: Vec<f64> = dw.iter().map(|&v| v as f64).collect();
        let mut penalty = 0.0;
        for (g, &w) in grad.iter_mut().zip(&p[..d * k]) {
            *g += self.l2 * w;
            penalty += w * w;
        }
        let mut db = vec![0.0f64; k];
        for row in z.chunks_exact(k) {
            for (s, &v) in db.iter_mut().zip(row) {
                *s += v as f64;
            }
        }
        grad.extend(db);
        let cost = cost / n as f64 + 0.5 * self.l2 * penalty;
        *self.last.borrow_mut() = Some((p.to_vec(), cost, grad.clone()));
        (cost, grad)
    }
}

impl argmin::core::CostFunction for Regression<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.evaluate(p).0)
    }
}

impl argmin::core::Gradient for Regression<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        Ok(self.evaluate(p).1)
    }
}

impl SoftmaxProbe {
    /// Fits on `train` (`[N, D]`) with `train_labels` of `classes` classes and scores `test`.
    pub fn fit_score(
        &self,
        mut train: Tensor,
        train_labels: &[u32],
        mut test: Tensor,
        test_labels: &[u32],
        classes: usize,
    ) -> Result<ProbeResult> {
        use argmin::core::{Executor, State, TerminationReason, TerminationStatus};
        use argmin::solver::linesearch::MoreThuenteLineSearch;
        use argmin::solver::quasinewton::LBFGS;
        let fail = |e: argmin::core::Error| Error::config("probe", e.to_string());
        if train.rows() != train_labels.len() || train.rows() == 0 {
            return Err(Error::config(
                "probe",
                "needs one label per training example",
            ));
        }
        standardize(&mut train, &mut test);
        let d = train.cols();
        let problem = Regression {
            x: &train,
            labels: train_labels,
            classes,
            l2: self.l2,
            last: Default::default(),
        };
        let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
            .with_tolerance_grad(1e-6)
            .map_err(fail)?
            .with_tolerance_cost(1e-10)
            .map_err(fail)?;
        let start = vec![0.0f64; d * classes + classes];
        let res = Executor::new(problem, solver)
            .configure(|s| s.param(start).max_iters(self.max_iters))
            .run()
            .map_err(fail)?;
        let state = res.state();
        let converged = matches!(
            state.get_termination_status(),
            TerminationStatus::Terminated(TerminationReason::SolverConverged)
        );
        let iterations = state.get_iter();
        let cost = state.get_best_cost();
        let best = state
            .get_best_param()
            .cloned()
            .ok_or_else(|| Error::config("probe", "the solver returned no parameters"))?;
        let scorer = Regression {
            x: &test,
            labels: test_labels,
            classes,
            l2: 0.0,
            last: Default::default(),
        };
        let z = scorer.logits(&best);
        let pred: Vec<u32> = z
            .chunks_exact(classes)
            .map(|r| {
                (0..classes)
                    .max_by(|&a, &b| r[a].total_cmp(&r[b]))
                    .unwrap_or(0) as u32
            })
            .collect();
        Ok(ProbeResult {
            accuracy: accuracy(&pred, test_labels),
            converged,
            iterations,
            cost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardized_features_have_zero_mean_and_unit_deviation_on_train() {
        let mut train = Tensor::from_vec(&[4, 2], vec![1.0, 5.0, 3.0, 5.0, 5.0, 5.0, 7.0, 5.0]);
        let mut test = Tensor::from_vec(&[1, 2], vec![6.0, 9.0]);
        standardize(&mut train, &mut test);
        let col: Vec<f32> = train.data().iter().step_by(2).copied().collect();
        let mean = col.iter().sum::<f32>() / 4.0;
        let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 4.0;
        assert!(
            mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
            "{mean} {var}"
        );
        // The constant column is centred and left at zero, in test too.
        assert!(train.data().iter().skip(1).step_by(2).all(|&v| v == 0.0));
        assert_eq!(test.data()[1], 0.0);
        assert!((test.data()[0] - 2.0 / 5f32.sqrt()).abs() < 1e-5);
    }

    #[test]
    fn separable_classes_are_learned() {
        let x: Vec<f32> = (0..200)
            .flat_map(|i| [(i % 2) as f32 + 0.1 * (i as f32 / 200.0), 0.3])
            .collect();
        let y: Vec<u32> = (0..100).map(|i| (i % 2) as u32).collect();
        let train = Tensor::from_vec(&[100, 2], x[..200].to_vec());
        let test = train.clone();
        let probe = SoftmaxProbe {
            l2: 1e-4,
            max_iters: 500,
        };
        let r = probe.fit_score(train, &y, test, &y, 2).unwrap();
        assert!(r.accuracy > 0.99 && r.converged, "{r:?}");
        // A cap of one iteration stops short, and says so.
        let short = SoftmaxProbe {
            max_iters: 1,
            ..probe
        };
        let (train, test) = (
            Tensor::from_vec(&[100, 2], x[..200].to_vec()),
            Tensor::from_vec(&[100, 2], x[..200].to_vec()),
        );
        assert!(!short.fit_score(train, &y, test, &y, 2).unwrap().converged);
        assert_eq!(accuracy(&[0, 1, 1], &[0, 1, 0]), 2.0 / 3.0);
    }
}
