//! Every backward pass against central finite differences of the loss, for each model kind,
//! activation, loss and weight decay.
use ae_core::engine::init::Init;
use ae_core::engine::layers::activation::Activation;
use ae_core::engine::loss::LossKind;
use ae_core::model::{ConvArch, ConvDecoder, ModelConfig};
use ae_core::objective::{AutoencoderTask, Objective, WeightDecay};
use ae_core::training::fit::{Examples, Task};
use ae_core::Tensor;

fn input(n: usize, d: usize) -> Tensor {
    Tensor::from_vec(
        &[n, d],
        (0..n * d)
            .map(|i| (1.0 + (0.61 * i as f32 + 0.4).sin()) / 2.0)
            .collect(),
    )
}

/// Compares analytic parameter gradients with (L(p+h) − L(p−h)) / 2h for every scalar parameter.
fn check(cfg: ModelConfig, objective: Objective, n: usize) {
    let d = cfg.input_features();
    let mut task = AutoencoderTask::new(cfg.build(3).unwrap(), objective).unwrap();
    let mut shape = vec![n];
    shape.extend(&cfg.input_shape);
    let x = Tensor::from_vec(&shape, input(n, d).into_vec());
    task.params_mut().zero_grads();
    task.train_step(Examples::new(&x), 0, 0);
    let analytic: Vec<Vec<f32>> = task
        .params()
        .grads
        .iter()
        .map(|g| g.data().to_vec())
        .collect();
    let h = 1e-3f32;
    #[allow(clippy::needless_range_loop)] // finite differences write into what they index
    for p in 0..task.params().len() {
        for j in 0..task.params().values[p].len() {
            let orig = task.params().values[p].data()[j];
            task.params_mut().values[p].data_mut()[j] = orig + h;
            let up = task.eval_batch(Examples::new(&x)).total();
            task.params_mut().values[p].data_mut()[j] = orig - h;
            let down = task.eval_batch(Examples::new(&x)).total();
            task.params_mut().values[p].data_mut()[j] = orig;
            let fd = (up - down) / (2.0 * h as f64);
            let an = analytic[p][j] as f64;
            let err = (fd - an).abs() / (1e-3 + fd.abs().max(an.abs()));
            // A NaN on either side fails here: every comparison with NaN is false.
            assert!(
                fd.is_finite() && an.is_finite(),
                "{}[{j}]: finite difference {fd} vs backward {an}",
                task.params().names[p]
            );
            assert!(
                err < 2e-2 || (fd - an).abs() < 2e-4,
                "{}[{j}]: finite difference {fd:.6e} vs backward {an:.6e} ({:?})",
                task.params().names[p],
                task.model.config
            );
        }
    }
}

fn cfg(hidden: &[usize], act: Activation, out: Activation, tied: bool) -> ModelConfig {
    ModelConfig {
        input_shape: vec![6],
        hidden: hidden.to_vec(),
        activation: act,
        code_activation: None,
        output_activation: out,
        tied,
        init: Init::GlorotUniform,
        conv: None,
        variational: false,
        missing_indicator: false,
    }
}

const MSE: Objective = Objective {
    loss: LossKind::Mse,
    contractive: None,
    kl: None,
    binarize: false,
    learned_variance: false,
    missing: None,
    noise: None,
    sparsity: None,
    weight_decay: WeightDecay::None,
};

#[test]
fn vanilla_sigmoid_mse() {
    check(
        cfg(&[4], Activation::Sigmoid, Activation::Sigmoid, false),
        MSE,
        3,
    );
}

#[test]
fn deep_tanh_bce() {
    check(
        cfg(&[5, 3], Activation::Tanh, Activation::Sigmoid, false),
        Objective {
            loss: LossKind::Bce,
            ..MSE
        },
        4,
    );
}

#[test]
fn deep_leaky_relu_linear_output() {
    check(
        cfg(
            &[5, 4, 2],
            Activation::LeakyRelu { slope: 0.1 },
            Activation::Linear,
            false,
        ),
        MSE,
        3,
    );
}

#[test]
fn relu_with_l2_weight_decay() {
    check(
        cfg(&[5, 3], Activation::Relu, Activation::Sigmoid, false),
        Objective {
            weight_decay: WeightDecay::L2(0.05),
            ..MSE
        },
        3,
    );
}

#[test]
fn l1_weight_decay() {
    check(
        cfg(&[4], Activation::Tanh, Activation::Sigmoid, false),
        Objective {
            weight_decay: WeightDecay::L1(0.01),
            ..MSE
        },
        3,
    );
}

#[test]
fn tied_weights_accumulate_both_uses() {
    check(
        cfg(&[5, 3], Activation::Tanh, Activation::Sigmoid, true),
        MSE,
        3,
    );
    check(
        cfg(&[4], Activation::Sigmoid, Activation::Linear, true),
        Objective {
            loss: LossKind::Mse,
            contractive: None,
            kl: None,
            binarize: false,
            learned_variance: false,
            missing: None,
            noise: None,
            sparsity: None,
            weight_decay: WeightDecay::L2(0.1),
        },
        2,
    );
}

#[test]
fn linear_autoencoder() {
    check(
        cfg(&[3], Activation::Linear, Activation::Linear, false),
        MSE,
        5,
    );
}

#[test]
fn overcomplete_code() {
    check(
        cfg(&[9], Activation::Sigmoid, Activation::Sigmoid, false),
        Objective {
            loss: LossKind::Bce,
            ..MSE
        },
        2,
    );
}

/// d(sum of the code)/d(input), the gradient activation maximization needs, against central
/// finite differences.
fn check_input_gradient(model: &mut ae_core::model::Autoencoder, x: &Tensor) {
    let code_sum = |m: &mut ae_core::model::Autoencoder, x: &Tensor| {
        m.encode(x);
        m.code().data().iter().map(|&v| v as f64).sum::<f64>()
    };
    model.encode(x);
    let mut dx = Tensor::default();
    model.backward_from_code(x, Some(&mut dx), &mut |_, dcode| dcode.fill(1.0));
    assert_eq!(dx.len(), x.len());
    let h = 1e-3;
    for j in 0..x.len() {
        let mut xp = x.clone();
        xp.data_mut()[j] += h;
        let mut xm = x.clone();
        xm.data_mut()[j] -= h;
        let fd = (code_sum(model, &xp) - code_sum(model, &xm)) / (2.0 * h as f64);
        assert!(
            (fd - dx.data()[j] as f64).abs() < 2e-3,
            "x[{j}]: {fd} vs {}",
            dx.data()[j]
        );
    }
}

#[test]
fn input_gradient_matches_finite_differences() {
    let c = cfg(&[5, 3], Activation::Tanh, Activation::Sigmoid, false);
    check_input_gradient(&mut c.build(5).unwrap(), &input(2, 6));
}

#[test]
fn l1_activity_sparsity() {
    check(
        cfg(&[5, 3], Activation::Relu, Activation::Sigmoid, false),
        Objective {
            sparsity: Some(ae_core::objective::sparsity::Sparsity::L1 { lambda: 0.2 }),
            ..MSE
        },
        4,
    );
}

#[test]
fn kl_sparsity_on_a_sigmoid_code_overcomplete() {
    let mut c = cfg(&[9], Activation::Sigmoid, Activation::Sigmoid, false);
    c.code_activation = Some(Activation::Sigmoid);
    check(
        c,
        Objective {
            sparsity: Some(ae_core::objective::sparsity::Sparsity::Kl {
                rho: 0.05,
                beta: 3.0,
            }),
            ..MSE
        },
        4,
    );
}

#[test]
fn contractive_penalty_gradients() {
    for act in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
        check(
            cfg(&[4], act, Activation::Sigmoid, false),
            Objective {
                contractive: Some(0.3),
                ..MSE
            },
            3,
        );
    }
}

/// The closed-form ‖J‖²_F of a one-layer encoder against a finite-difference Jacobian.
#[test]
fn contractive_norm_matches_a_finite_difference_jacobian() {
    use ae_core::objective::contractive::Contractive;
    for act in [Activation::Sigmoid, Activation::Tanh] {
        let c = cfg(&[4], act, Activation::Sigmoid, false);
        let mut model = c.build(7).unwrap();
        let x = input(3, 6);
        model.encode(&x);
        let a = model.net.encoder.layer_output(0).clone();
        let pen = Contractive {
            lambda: 1.0,
            weight: model.params.find("encoder.0.weight").unwrap(),
            activation: act,
        };
        let closed = pen.squared_norms(&model.params, &a);
        for (n, want) in closed.iter().enumerate() {
            let mut fd = 0.0f64;
            for i in 0..6 {
                let h = 1e-3f32;
                let code_at = |delta: f32, m: &mut ae_core::model::Autoencoder| {
                    let mut xi = Tensor::from_vec(&[1, 6], x.row(n).to_vec());
                    xi.data_mut()[i] += delta;
                    m.encode(&xi);
                    m.code().data().to_vec()
                };
                let up = code_at(h, &mut model);
                let down = code_at(-h, &mut model);
                fd += up
                    .iter()
                    .zip(&down)
                    .map(|(u, d)| (((u - d) / (2.0 * h)) as f64).powi(2))
                    .sum::<f64>();
            }
            assert!(
                (fd - want).abs() < 1e-3 * (1.0 + want),
                "{act} example {n}: fd {fd} vs closed form {want}"
            );
        }
    }
}

fn conv_cfg(
    input: [usize; 3],
    channels: &[usize],
    kernel: usize,
    decoder: ae_core::model::ConvDecoder,
    code: Option<usize>,
    act: Activation,
) -> ModelConfig {
    ModelConfig {
        input_shape: input.to_vec(),
        hidden: vec![],
        activation: act,
        code_activation: None,
        output_activation: Activation::Sigmoid,
        tied: false,
        init: Init::GlorotUniform,
        conv: Some(ae_core::model::ConvArch {
            channels: channels.to_vec(),
            kernel,
            decoder,
            code,
        }),
        variational: false,
        missing_indicator: false,
    }
}

#[test]
fn conv_upsample_decoder_multichannel() {
    use ae_core::model::ConvDecoder::Upsample;
    // Two input channels exercise the layout changes; two stages pool 4×4 down to 1×1.
    check(
        conv_cfg([2, 4, 4], &[3, 2], 3, Upsample, None, Activation::Tanh),
        MSE,
        2,
    );
}

#[test]
fn conv_transpose_decoder_with_dense_code() {
    use ae_core::model::ConvDecoder::Transpose;
    check(
        conv_cfg([1, 4, 4], &[2], 3, Transpose, Some(3), Activation::Sigmoid),
        Objective {
            loss: LossKind::Bce,
            ..MSE
        },
        2,
    );
    check(
        conv_cfg(
            [3, 4, 6],
            &[2],
            5,
            Transpose,
            None,
            Activation::LeakyRelu { slope: 0.1 },
        ),
        MSE,
        2,
    );
}

#[test]
fn conv_input_gradient_matches_finite_differences() {
    use ae_core::model::ConvDecoder::Upsample;
    let c = conv_cfg([2, 4, 4], &[3], 3, Upsample, Some(2), Activation::Tanh);
    check_input_gradient(&mut c.build(5).unwrap(), &input(2, 32));
}

fn conv(channels: &[usize], code: Option<usize>, decoder: ConvDecoder) -> ModelConfig {
    ModelConfig {
        activation: Activation::Tanh,
        ..ModelConfig::conv(
            &[1, 8, 8],
            ConvArch {
                channels: channels.to_vec(),
                kernel: 3,
                decoder,
                code,
            },
        )
    }
}

/// Layers wide enough (more than 4 output channels, more than 27 values per patch) for the
/// patch-product path of convolutions and transposed convolutions, with a dense code.
#[test]
fn conv_patch_path_with_transposed_decoder_and_dense_code() {
    check(
        conv(&[6, 5], Some(4), ConvDecoder::Transpose),
        Objective::default(),
        2,
    );
}

#[test]
fn conv_upsampling_decoder() {
    check(
        conv(&[6, 5], None, ConvDecoder::Upsample),
        Objective::default(),
        2,
    );
}

/// A conv step split across two threads (a replica per part) equals the whole batch's step.
#[test]
fn a_conv_step_split_across_threads_equals_the_whole_batch() {
    let cfg = conv(&[6, 5], Some(4), ConvDecoder::Transpose);
    let x = Tensor::from_vec(&[64, 1, 8, 8], input(64, 64).into_vec());
    let step = |threads: usize| {
        ae_core::engine::gemm::with_threads(threads, || {
            let mut t = AutoencoderTask::new(cfg.build(3).unwrap(), Objective::default()).unwrap();
            t.params_mut().zero_grads();
            let loss = t.train_step(Examples::new(&x), 0, 0).total();
            (loss, t.model.params.grads.clone())
        })
    };
    let (whole, split) = (step(1), step(2));
    assert!(
        (whole.0 - split.0).abs() < 1e-6 * whole.0,
        "{} vs {}",
        whole.0,
        split.0
    );
    let mut differs = false;
    for (a, b) in whole.1.iter().zip(&split.1) {
        for (x, y) in a.data().iter().zip(b.data()) {
            assert!((x - y).abs() <= 1e-5 * (1.0 + x.abs()), "{x} vs {y}");
            differs |= x != y;
        }
    }
    // The sums are grouped differently, so some last bits differ: proof the split path ran.
    assert!(differs, "two threads took the whole-batch path");
}
