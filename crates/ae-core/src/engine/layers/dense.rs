//! The fully connected layer, y = x·Wᵀ + b, optionally reading a weight shared with another layer.
use super::{Grads, Layer, Mode};
use crate::engine::gemm::matmul;
use crate::engine::params::ParamId;
use crate::engine::tensor::Tensor;
use crate::{Error, Result};

/// How the weight tensor is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightLayout {
    /// `(out, in)`, PyTorch's `nn.Linear` convention: y = x·Wᵀ.
    OutIn,
    /// `(in, out)`: y = x·W. A tied decoder reads its encoder's `(out, in)` weight this way, which is
    /// the encoder weight transposed without copying it.
    InOut,
}

/// A fully connected layer.
#[derive(Clone, Debug)]
pub struct Dense {
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
    /// The weight parameter.
    pub weight: ParamId,
    /// The bias parameter, if any.
    pub bias: Option<ParamId>,
    /// How `weight` is stored.
    pub layout: WeightLayout,
}

impl Layer for Dense {
    fn kind(&self) -> &'static str {
        "dense"
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let features: usize = input.iter().product();
        if features != self.inputs {
            return Err(Error::Shape {
                what: "dense layer input".into(),
                expected: vec![self.inputs],
                got: input.to_vec(),
            });
        }
        Ok(vec![self.outputs])
    }

    /// # Shapes
    /// `x`: `[N, ..]` with `inputs` features per example; `y`: `[N, outputs]`.
    fn forward(&mut self, values: &[Tensor], x: &Tensor, y: &mut Tensor, _mode: Mode) {
        let n = x.rows();
        debug_assert_eq!(x.cols(), self.inputs);
        y.resize(&[n, self.outputs]);
        let out = y.data_mut();
        match self.bias {
            Some(b) => {
                let b = values[b.0].data();
                for row in out.chunks_exact_mut(self.outputs) {
                    row.copy_from_slice(b);
                }
            }
            None => out.fill(0.0),
        }
        let w = values[self.weight.0].data();
        // y[N,out] += x[N,in] · op(W)[in,out]
        matmul(
            out,
            n,
            self.outputs,
            self.inputs,
            x.data(),
            false,
            w,
            self.layout == WeightLayout::OutIn,
            true,
        );
    }

    fn backward(
        &mut self,
        g: &mut Grads<'_>,
        x: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
        dx: Option<&mut Tensor>,
    ) {
        let n = x.rows();
        let dyd = dy.data();
        if !g.frozen[self.weight.0] {
            let gw = g.grads[self.weight.0].data_mut();
            match self.layout {
                // dW[out,in] += dyᵀ[out,N] · x[N,in]
                WeightLayout::OutIn => matmul(
                    gw,
                    self.outputs,
                    self.inputs,
                    n,
                    dyd,
                    true,
                    x.data(),
                    false,
                    true,
                ),
                // dW[in,out] += xᵀ[in,N] · dy[N,out]
                WeightLayout::InOut => matmul(
                    gw,
                    self.inputs,
                    self.outputs,
                    n,
                    x.data(),
                    true,
                    dyd,
                    false,
                    true,
                ),
            }
        }
        if let Some(b) = self.bias.filter(|b| !g.frozen[b.0]) {
            let gb = g.grads[b.0].data_mut();
            for row in dyd.chunks_exact(self.outputs) {
                for (g, &d) in gb.iter_mut().zip(row) {
                    *g += d;
                }
            }
        }
        if let Some(dx) = dx {
            dx.resize(x.shape());
            let w = g.values[self.weight.0].data();
            // dx[N,in] = dy[N,out] · op(W)ᵀ[out,in]
            matmul(
                dx.data_mut(),
                n,
                self.inputs,
                self.outputs,
                dyd,
                false,
                w,
                self.layout == WeightLayout::InOut,
                false,
            );
        }
    }

    fn params(&self) -> Vec<ParamId> {
        std::iter::once(self.weight).chain(self.bias).collect()
    }

    fn flops_per_example(&self, _input: &[usize]) -> u64 {
        6 * (self.inputs * self.outputs) as u64
    }
}
