//! Convolutional autoencoders against PyTorch (float64) golden values: parameter names and shapes
//! (so `model.safetensors` loads into the same `nn.Sequential`), loss, every parameter gradient,
//! the code and the input gradient. Values from `tests/golden/conv_golden.py`, which documents the
//! input formulas rebuilt here.
use ae_core::engine::init::Init;
use ae_core::engine::layers::activation::Activation;
use ae_core::engine::layers::Mode;
use ae_core::engine::loss::LossKind;
use ae_core::model::{ConvArch, ConvDecoder, ModelConfig};
use ae_core::Tensor;
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/conv_golden.json")).expect("conv_golden.json parses")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// `got` matches `want`, and neither is all zeros (a dead path would compare zeros with zeros).
fn close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    assert!(
        want.iter().any(|&w| w != 0.0),
        "{what}: PyTorch's values are all zero"
    );
    assert!(got.iter().any(|&g| g != 0.0), "{what}: ours are all zero");
    let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= tol * (scale + w.abs()) + 1e-9,
            "{what}[{i}]: got {g}, PyTorch {w}"
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn case(
    name: &str,
    chw: [usize; 3],
    channels: &[usize],
    kernel: usize,
    decoder: ConvDecoder,
    code: Option<usize>,
    act: Activation,
    bias: f64,
) {
    let g = &golden()[name];
    let cfg = ModelConfig {
        input_shape: chw.to_vec(),
        hidden: vec![],
        activation: act,
        // PyTorch's reference applies the hidden activation to the code too.
        code_activation: Some(act),
        output_activation: Activation::Sigmoid,
        tied: false,
        init: Init::Auto,
        conv: Some(ConvArch {
            channels: channels.to_vec(),
            kernel,
            decoder,
            code,
        }),
        variational: false,
        missing_indicator: false,
    };
    let mut model = cfg.build(0).unwrap();
    // Names and shapes, in state_dict order.
    let want: Vec<(String, Vec<usize>)> = g["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let shape = p[1].as_array().unwrap().iter();
            let shape = shape.map(|d| d.as_u64().unwrap() as usize).collect();
            (p[0].as_str().unwrap().to_string(), shape)
        })
        .collect();
    assert_eq!(cfg.param_shapes().unwrap(), want, "{name}: parameter names");
    for (j, t) in model.params.values.iter_mut().enumerate() {
        let scale = 1.0 / ((t.len() / t.shape()[0]) as f64).sqrt();
        let shift = if model.params.names[j].ends_with("bias") {
            bias
        } else {
            0.0
        };
        for (i, v) in t.data_mut().iter_mut().enumerate() {
            *v = (0.5 * (0.37 * i as f64 + 0.91 * j as f64 + 0.2).sin() * scale + shift) as f32;
        }
    }
    let n = 2 * chw.iter().product::<usize>();
    let data = (0..n)
        .map(|i| ((1.0 + (0.61 * i as f64 + 0.4).sin()) / 2.0) as f32)
        .collect();
    let x = Tensor::from_vec(&[2, chw[0], chw[1], chw[2]], data);
    model.forward(&x, Mode::Train);
    close(
        &format!("{name} code"),
        model.code().data(),
        &floats(&g["code"]),
        1e-5,
    );
    let loss = model.reconstruction_loss(LossKind::Mse, &x);
    let want_loss = g["loss"].as_f64().unwrap();
    assert!(
        (loss - want_loss).abs() < 1e-6 * want_loss,
        "{name}: loss {loss} vs {want_loss}"
    );
    model.params.zero_grads();
    let mut dx = Tensor::default();
    model.backward(&x, Some(&mut dx), &mut |_, _| {});
    for (p, (pname, _)) in want.iter().enumerate() {
        close(
            &format!("{name} grad {pname}"),
            model.params.grads[p].data(),
            &floats(&g["grads"][pname]),
            2e-5,
        );
    }
    close(
        &format!("{name} x grad"),
        dx.data(),
        &floats(&g["x_grad"]),
        2e-5,
    );
}

#[test]
fn upsample_decoder_two_channels() {
    case(
        "upsample_2ch",
        [2, 8, 8],
        &[3, 4],
        3,
        ConvDecoder::Upsample,
        None,
        Activation::Tanh,
        0.0,
    );
}

#[test]
fn transpose_decoder_with_dense_code() {
    case(
        "transpose_code",
        [1, 8, 8],
        &[2, 3],
        3,
        ConvDecoder::Transpose,
        Some(5),
        Activation::Relu,
        0.3,
    );
}

#[test]
fn kernel_five_three_channels_rectangular() {
    case(
        "kernel5_3ch",
        [3, 4, 8],
        &[2],
        5,
        ConvDecoder::Upsample,
        None,
        Activation::Sigmoid,
        0.0,
    );
}

/// Wide enough (more than 4 output channels, more than 27 values per patch) for the patch-product
/// path; the thin first and last layers take the direct loops.
#[test]
fn wide_layers_take_the_patch_path() {
    case(
        "wide_patches",
        [1, 8, 8],
        &[6, 5],
        3,
        ConvDecoder::Transpose,
        None,
        Activation::Tanh,
        0.0,
    );
}
