//! Each operation of a [`GpuNet`](super::net::GpuNet) on the GPU: its forward pass, and its
//! backward pass into the parameters' gradients and the gradient at its input. Convolutions are
//! patch products as in the CPU engine (`engine::layers::conv`): patches gathered (im2col) in the
//! same `(kernel row, kernel column, channel)` order, one cuBLAS product, and the patch gradients
//! gathered back per pixel (col2im) without atomics, so a step repeats to the bit.
use cudarc::driver::{CudaSlice, PushKernelArg};

use super::gpu::{act_code, grid, Gpu};
use super::net::{ConvNode, ConvTNode, Hwc, Node, Op};
use crate::Result;

/// Buffers of one convolution: its patches (kept from the forward pass for the weight's
/// gradient), its weight in patch order, and that weight's gradient in patch order.
pub(crate) struct ConvBufs {
    pub cols: CudaSlice<f32>,
    pub wmat: CudaSlice<f32>,
    pub dwmat: CudaSlice<f32>,
}

/// What the backward passes share: patch gradients, and ones to sum rows with (a product with a
/// vector of ones: the bias gradient of a convolution sums a row per output pixel).
pub(crate) struct Shared {
    pub dcols: CudaSlice<f32>,
    pub ones: CudaSlice<f32>,
}

/// The parameters as the passes read and write them.
pub(crate) struct Weights<'a> {
    pub values: &'a [CudaSlice<f32>],
    pub grads: &'a mut [CudaSlice<f32>],
    pub frozen: &'a [bool],
}

fn i32s(v: &[usize]) -> Vec<i32> {
    v.iter().map(|&x| x as i32).collect()
}

/// Launches `kernel` over `len` elements with the arguments `push` adds.
macro_rules! launch {
    ($g:expr, $kernel:ident, $len:expr, |$b:ident| $push:block) => {{
        let mut $b = $g.stream.launch_builder(&$g.k.$kernel);
        $push;
        // SAFETY: the buffers hold what the operation's shapes say (the trainer's `reserve`).
        unsafe { $b.launch(grid($len)) }.map_err(|e| $g.err(e))?;
    }};
}

/// y = act(y + b) in place over `rows` rows of `cols` values; `bias` is read only when
/// `has_bias` (any buffer stands in otherwise).
fn bias_act(
    g: &Gpu,
    y: &mut CudaSlice<f32>,
    bias: &CudaSlice<f32>,
    has_bias: bool,
    (rows, cols): (usize, usize),
    act: crate::engine::layers::activation::Activation,
) -> Result<()> {
    let (code, slope) = act_code(act);
    let has_bias = has_bias as i32;
    let (r, c) = (rows as i32, cols as i32);
    launch!(g, bias_act, rows * cols, |b| {
        b.arg(y)
            .arg(bias)
            .arg(&has_bias)
            .arg(&r)
            .arg(&c)
            .arg(&code)
            .arg(&slope);
    });
    Ok(())
}

/// The forward pass of `op` on `n` examples: `x` in, `y` out.
pub(crate) fn forward(
    g: &Gpu,
    op: &Op,
    n: usize,
    x: &CudaSlice<f32>,
    y: &mut CudaSlice<f32>,
    values: &[CudaSlice<f32>],
    conv: Option<&mut ConvBufs>,
) -> Result<()> {
    match op {
        Op::Dense(node) => {
            let w = &values[node.weight];
            g.matmul(
                y,
                (n, node.outputs, node.inputs),
                x,
                false,
                w,
                node.out_in,
                false,
            )?;
            let bias = &values[node.bias.unwrap_or(node.weight)];
            bias_act(g, y, bias, node.bias.is_some(), (n, node.outputs), node.act)
        }
        Op::Conv(c) => {
            let bufs = conv.expect("a convolution has its buffers");
            conv_forward(g, c, n, x, y, values, bufs)
        }
        Op::ConvT(c) => {
            let bufs = conv.expect("a convolution has its buffers");
            conv_t_forward(g, c, n, x, y, values, bufs)
        }
        Op::Pool { input, k } => {
            let a = i32s(&[n, input.h, input.w, input.c, *k]);
            launch!(g, max_pool, n * op.outputs(), |b| {
                b.arg(y)
                    .arg(x)
                    .arg(&a[0])
                    .arg(&a[1])
                    .arg(&a[2])
                    .arg(&a[3])
                    .arg(&a[4]);
            });
            Ok(())
        }
        Op::Up { input, k } => {
            let a = i32s(&[n, input.h, input.w, input.c, *k]);
            launch!(g, upsample, n * op.outputs(), |b| {
                b.arg(y)
                    .arg(x)
                    .arg(&a[0])
                    .arg(&a[1])
                    .arg(&a[2])
                    .arg(&a[3])
                    .arg(&a[4]);
            });
            Ok(())
        }
        Op::Permute { image, to_last } => permute(g, y, x, n, *image, *to_last),
    }
}

fn permute(
    g: &Gpu,
    dst: &mut CudaSlice<f32>,
    src: &CudaSlice<f32>,
    n: usize,
    image: Hwc,
    to_last: bool,
) -> Result<()> {
    let a = i32s(&[n, image.c, image.h, image.w, to_last as usize]);
    launch!(g, permute_chw, n * image.len(), |b| {
        b.arg(dst)
            .arg(src)
            .arg(&a[0])
            .arg(&a[1])
            .arg(&a[2])
            .arg(&a[3])
            .arg(&a[4]);
    });
    Ok(())
}

/// The patch geometry arguments of im2col and col2im: n, h, w, c, oh, ow, k, stride, padding.
fn patch_args(c: &ConvNode, n: usize) -> Vec<i32> {
    let g = c.geometry;
    i32s(&[
        n, c.input.h, c.input.w, c.input.c, c.output.h, c.output.w, g.kernel, g.stride, g.padding,
    ])
}

fn conv_forward(
    g: &Gpu,
    c: &ConvNode,
    n: usize,
    x: &CudaSlice<f32>,
    y: &mut CudaSlice<f32>,
    values: &[CudaSlice<f32>],
    bufs: &mut ConvBufs,
) -> Result<()> {
    let (co, ci, kk) = (c.output.c, c.input.c, c.geometry.kernel * c.geometry.kernel);
    let w = i32s(&[co, ci, kk]);
    launch!(g, to_patch_order, co * ci * kk, |b| {
        b.arg(&mut bufs.wmat)
            .arg(&values[c.weight])
            .arg(&w[0])
            .arg(&w[1])
            .arg(&w[2]);
    });
    let a = patch_args(c, n);
    let rows = n * c.pixels();
    launch!(g, im2col, rows * c.width(), |b| {
        b.arg(&mut bufs.cols).arg(x);
        for v in &a {
            b.arg(v);
        }
    });
    // y[rows, out] = patches[rows, width] · wmatᵀ[width, out]
    g.matmul(
        y,
        (rows, co, c.width()),
        &bufs.cols,
        false,
        &bufs.wmat,
        true,
        false,
    )?;
    let bias = &values[c.bias.unwrap_or(c.weight)];
    bias_act(g, y, bias, c.bias.is_some(), (rows, co), c.act)
}

/// The backward pass of `op` on `n` examples, given `d`, the gradient at its output before its
/// activation: gradients of its unfrozen parameters added to theirs, and when `dx` is given the
/// gradient at its input written there. `x` and `y` are its input and output of the forward pass.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    g: &Gpu,
    op: &Op,
    n: usize,
    x: &CudaSlice<f32>,
    y: &CudaSlice<f32>,
    d: &CudaSlice<f32>,
    dx: Option<&mut CudaSlice<f32>>,
    p: &mut Weights<'_>,
    conv: Option<&mut ConvBufs>,
    shared: &mut Shared,
) -> Result<()> {
    match op {
        Op::Dense(node) => dense_backward(g, node, n, x, d, dx, p),
        Op::Conv(c) => {
            let bufs = conv.expect("a convolution has its buffers");
            conv_backward(g, c, n, d, dx, p, bufs, shared)
        }
        Op::ConvT(c) => {
            let bufs = conv.expect("a convolution has its buffers");
            conv_t_backward(g, c, n, x, d, dx, p, bufs, shared)
        }
        Op::Pool { input, k } => {
            let Some(dx) = dx else { return Ok(()) };
            let a = i32s(&[n, input.h, input.w, input.c, *k]);
            launch!(g, max_pool_backward, n * input.len(), |b| {
                b.arg(dx).arg(d).arg(x).arg(y);
                for v in &a {
                    b.arg(v);
                }
            });
            Ok(())
        }
        Op::Up { input, k } => {
            let Some(dx) = dx else { return Ok(()) };
            let a = i32s(&[n, input.h, input.w, input.c, *k]);
            launch!(g, upsample_backward, n * input.len(), |b| {
                b.arg(dx).arg(d);
                for v in &a {
                    b.arg(v);
                }
            });
            Ok(())
        }
        Op::Permute { image, to_last } => match dx {
            Some(dx) => permute(g, dx, d, n, *image, !to_last),
            None => Ok(()),
        },
    }
}

fn dense_backward(
    g: &Gpu,
    node: &Node,
    n: usize,
    x: &CudaSlice<f32>,
    d: &CudaSlice<f32>,
    dx: Option<&mut CudaSlice<f32>>,
    p: &mut Weights<'_>,
) -> Result<()> {
    let (o, k) = (node.outputs, node.inputs);
    if !p.frozen[node.weight] {
        let gw = &mut p.grads[node.weight];
        if node.out_in {
            // dW[out, in] += dᵀ · x
            g.matmul(gw, (o, k, n), d, true, x, false, true)?;
        } else {
            // dW[in, out] += xᵀ · d
            g.matmul(gw, (k, o, n), x, true, d, false, true)?;
        }
    }
    if let Some(bias) = node.bias.filter(|&b| !p.frozen[b]) {
        let (rows, cols) = (n as i32, o as i32);
        let mut b = g.stream.launch_builder(&g.k.column_sums_add);
        b.arg(&mut p.grads[bias]).arg(d).arg(&rows).arg(&cols);
        // SAFETY: d holds n rows of o columns; the bias gradient has o.
        unsafe { b.launch(super::trainer::per_column(o)) }.map_err(|e| g.err(e))?;
    }
    if let Some(dx) = dx {
        // dx[N, in] = d · op(W)ᵀ
        let w = &p.values[node.weight];
        g.matmul(dx, (n, k, o), d, false, w, !node.out_in, false)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn conv_backward(
    g: &Gpu,
    c: &ConvNode,
    n: usize,
    d: &CudaSlice<f32>,
    dx: Option<&mut CudaSlice<f32>>,
    p: &mut Weights<'_>,
    bufs: &mut ConvBufs,
    shared: &mut Shared,
) -> Result<()> {
    let (co, ci, kk) = (c.output.c, c.input.c, c.geometry.kernel * c.geometry.kernel);
    let (rows, width) = (n * c.pixels(), c.width());
    if let Some(bias) = c.bias.filter(|&b| !p.frozen[b]) {
        // gb[1, out] += ones[1, rows] · d[rows, out]
        g.matmul(
            &mut p.grads[bias],
            (1, co, rows),
            &shared.ones,
            false,
            d,
            false,
            true,
        )?;
    }
    if !p.frozen[c.weight] {
        // dW[out, width] = dᵀ[out, rows] · patches[rows, width], then into PyTorch's layout.
        g.matmul(
            &mut bufs.dwmat,
            (co, width, rows),
            d,
            true,
            &bufs.cols,
            false,
            false,
        )?;
        let w = i32s(&[co, ci, kk]);
        launch!(g, add_from_patch_order, co * ci * kk, |b| {
            b.arg(&mut p.grads[c.weight])
                .arg(&bufs.dwmat)
                .arg(&w[0])
                .arg(&w[1])
                .arg(&w[2]);
        });
    }
    if let Some(dx) = dx {
        // dpatches[rows, width] = d[rows, out] · wmat[out, width], gathered back per pixel.
        g.matmul(
            &mut shared.dcols,
            (rows, width, co),
            d,
            false,
            &bufs.wmat,
            false,
            false,
        )?;
        let a = patch_args(c, n);
        launch!(g, col2im, n * c.input.len(), |b| {
            b.arg(dx).arg(&shared.dcols);
            for v in &a {
                b.arg(v);
            }
        });
    }
    Ok(())
}

/// A transposed convolution's patch geometry as col2im and im2col read it: the output is the
/// image, the input's pixels the patch grid.
fn conv_t_args(c: &ConvTNode, n: usize) -> Vec<i32> {
    let g = c.geometry;
    i32s(&[
        n, c.output.h, c.output.w, c.output.c, c.input.h, c.input.w, g.kernel, g.stride, g.padding,
    ])
}

fn conv_t_forward(
    g: &Gpu,
    c: &ConvTNode,
    n: usize,
    x: &CudaSlice<f32>,
    y: &mut CudaSlice<f32>,
    values: &[CudaSlice<f32>],
    bufs: &mut ConvBufs,
) -> Result<()> {
    let (ci, co, kk) = (c.input.c, c.output.c, c.geometry.kernel * c.geometry.kernel);
    let w = i32s(&[ci, co, kk]);
    launch!(g, to_patch_order, ci * co * kk, |b| {
        b.arg(&mut bufs.wmat)
            .arg(&values[c.weight])
            .arg(&w[0])
            .arg(&w[1])
            .arg(&w[2]);
    });
    let rows = n * c.pixels();
    // patches[rows, width] = x[rows, in] · wmat[in, width], summed into the output.
    g.matmul(
        &mut bufs.cols,
        (rows, c.width(), ci),
        x,
        false,
        &bufs.wmat,
        false,
        false,
    )?;
    let a = conv_t_args(c, n);
    launch!(g, col2im, n * c.output.len(), |b| {
        b.arg(&mut *y).arg(&bufs.cols);
        for v in &a {
            b.arg(v);
        }
    });
    let bias = &values[c.bias.unwrap_or(c.weight)];
    let out_rows = n * c.output.h * c.output.w;
    bias_act(g, y, bias, c.bias.is_some(), (out_rows, co), c.act)
}

#[allow(clippy::too_many_arguments)]
fn conv_t_backward(
    g: &Gpu,
    c: &ConvTNode,
    n: usize,
    x: &CudaSlice<f32>,
    d: &CudaSlice<f32>,
    dx: Option<&mut CudaSlice<f32>>,
    p: &mut Weights<'_>,
    bufs: &mut ConvBufs,
    shared: &mut Shared,
) -> Result<()> {
    let (ci, co, kk) = (c.input.c, c.output.c, c.geometry.kernel * c.geometry.kernel);
    let (rows, width) = (n * c.pixels(), c.width());
    if let Some(bias) = c.bias.filter(|&b| !p.frozen[b]) {
        let out_rows = n * c.output.h * c.output.w;
        g.matmul(
            &mut p.grads[bias],
            (1, co, out_rows),
            &shared.ones,
            false,
            d,
            false,
            true,
        )?;
    }
    let want_w = !p.frozen[c.weight];
    if !want_w && dx.is_none() {
        return Ok(());
    }
    // The output gradient's patches at the input's pixels (the forward pass's patches are spent).
    let a = conv_t_args(c, n);
    launch!(g, im2col, rows * width, |b| {
        b.arg(&mut bufs.cols).arg(d);
        for v in &a {
            b.arg(v);
        }
    });
    if want_w {
        // dW[in, width] = xᵀ[in, rows] · dpatches[rows, width], then into PyTorch's layout.
        g.matmul(
            &mut bufs.dwmat,
            (ci, width, rows),
            x,
            true,
            &bufs.cols,
            false,
            false,
        )?;
        let w = i32s(&[ci, co, kk]);
        launch!(g, add_from_patch_order, ci * co * kk, |b| {
            b.arg(&mut p.grads[c.weight])
                .arg(&bufs.dwmat)
                .arg(&w[0])
                .arg(&w[1])
                .arg(&w[2]);
        });
    }
    if let Some(dx) = dx {
        // dx[rows, in] = dpatches[rows, width] · wmatᵀ[width, in]
        g.matmul(
            dx,
            (rows, ci, width),
            &bufs.cols,
            false,
            &bufs.wmat,
            true,
            false,
        )?;
    }
    Ok(())
}
