//! Losses, gradients and optimizer steps against PyTorch (float64) golden values.
//! The values come from `tests/golden/golden.py` (kept beside this file), which documents the
//! input formulas rebuilt here.
use ae_core::engine::init::Init;
use ae_core::engine::layers::activation::{sigmoid, Activation};
use ae_core::engine::loss::LossKind;
use ae_core::engine::optim::{Optimizer, OptimizerKind};
use ae_core::engine::params::{ParamKind, Params};
use ae_core::model::ModelConfig;
use ae_core::objective::{AutoencoderTask, Objective, WeightDecay};
use ae_core::training::fit::{Examples, Task};
use ae_core::Tensor;
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/golden.json")).expect("golden.json parses")
}

fn fill(shape: &[usize], f: impl Fn(f64) -> f64) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| f(i as f64) as f32).collect())
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, PyTorch {w}"
        );
    }
}

fn close1(what: &str, got: f64, want: &Value, tol: f64) {
    let w = want.as_f64().unwrap();
    assert!(
        (got - w).abs() <= tol * (1.0 + w.abs()),
        "{what}: got {got}, PyTorch {w}"
    );
}

fn target() -> Tensor {
    fill(&[3, 4], |i| ((0.91 * i).cos() + 1.0) / 2.0)
}

#[test]
fn mse_loss_and_gradient() {
    let g = golden();
    let pred = fill(&[3, 4], |i| 0.8 * (0.37 * i + 0.1).sin() + 0.5);
    let mut d = Tensor::default();
    let loss = LossKind::Mse.loss_and_grad(Activation::Linear, &pred, &pred, &target(), &mut d);
    close1("mse", loss, &g["mse"]["loss"], 1e-6);
    close("mse grad", d.data(), &floats(&g["mse"]["grad"]), 1e-6);
}

fn bce(z: &Tensor, t: &Tensor) -> (f64, Tensor) {
    let out = Tensor::from_vec(z.shape(), z.data().iter().map(|&v| sigmoid(v)).collect());
    let mut d = Tensor::default();
    let loss = LossKind::Bce.loss_and_grad(Activation::Sigmoid, z, &out, t, &mut d);
    (loss, d)
}

#[test]
fn bce_from_logits_loss_and_gradient() {
    let g = golden();
    let z = fill(&[3, 4], |i| 3.0 * (0.53 * i + 0.2).sin());
    let (loss, d) = bce(&z, &target());
    close1("bce", loss, &g["bce_logits"]["loss"], 1e-6);
    close(
        "bce grad",
        d.data(),
        &floats(&g["bce_logits"]["grad"]),
        1e-6,
    );

    let e = &g["bce_logits_extreme"];
    let z = Tensor::from_vec(
        &[6],
        floats(&e["logits"]).iter().map(|&v| v as f32).collect(),
    );
    let t = Tensor::from_vec(
        &[6],
        floats(&e["target"]).iter().map(|&v| v as f32).collect(),
    );
    let (loss, d) = bce(&z, &t);
    assert!(loss.is_finite());
    close1("bce extreme", loss, &e["loss"], 1e-6);
    close("bce extreme grad", d.data(), &floats(&e["grad"]), 1e-6);
}

/// The tiny 5-4-5 autoencoder of golden.py, with its weights set by the formulas.
fn tiny(tied: bool, loss: LossKind, weight_decay: WeightDecay) -> AutoencoderTask {
    tiny_with(
        tied,
        Activation::Relu,
        Objective {
            loss,
            weight_decay,
            contractive: None,
            kl: None,
            binarize: false,
            learned_variance: false,
            missing: None,
            noise: None,
            sparsity: None,
        },
    )
}

fn tiny_with(tied: bool, code_activation: Activation, objective: Objective) -> AutoencoderTask {
    let cfg = ModelConfig {
        input_shape: vec![5],
        hidden: vec![4],
        activation: Activation::Relu,
        code_activation: Some(code_activation),
        output_activation: Activation::Sigmoid,
        tied,
        init: Init::GlorotUniform,
        conv: None,
        variational: false,
        missing_indicator: false,
    };
    let mut model = cfg.build(0).unwrap();
    let set = |p: &mut Params, name: &str, t: Tensor| {
        let id = p
            .find(name)
            .unwrap_or_else(|| panic!("no parameter {name}"));
        assert_eq!(p.values[id.0].shape(), t.shape(), "{name}");
        p.values[id.0] = t;
    };
    set(
        &mut model.params,
        "encoder.0.weight",
        fill(&[4, 5], |i| 0.3 * (0.7 * i + 0.3).sin()),
    );
    set(
        &mut model.params,
        "encoder.0.bias",
        fill(&[4], |i| 0.1 * (1.3 * i).cos()),
    );
    if !tied {
        set(
            &mut model.params,
            "decoder.0.weight",
            fill(&[5, 4], |i| 0.25 * (0.45 * i - 0.2).cos()),
        );
    }
    set(
        &mut model.params,
        "decoder.0.bias",
        fill(&[5], |i| 0.05 * (2.1 * i).sin()),
    );
    AutoencoderTask::new(model, objective).unwrap()
}

fn x() -> Tensor {
    fill(&[3, 5], |i| (1.0 + (0.61 * i + 0.4).sin()) / 2.0)
}

const NAMES: [(&str, &str); 4] = [
    ("w1", "encoder.0.weight"),
    ("b1", "encoder.0.bias"),
    ("w2", "decoder.0.weight"),
    ("b2", "decoder.0.bias"),
];

fn check_grads(case: &str, tied: bool, loss: LossKind) {
    let g = &golden()[case];
    let mut task = tiny(tied, loss, WeightDecay::None);
    task.params_mut().zero_grads();
    let terms = task.train_step(Examples::new(&x()), 0, 0);
    close1(&format!("{case} loss"), terms.total(), &g["loss"], 1e-5);
    close(
        &format!("{case} code"),
        task.model.code().data(),
        &floats(&g["code"]),
        1e-5,
    );
    close(
        &format!("{case} output"),
        task.model.reconstruction().data(),
        &floats(&g["output"]),
        1e-5,
    );
    for (short, name) in NAMES {
        if tied && short == "w2" {
            continue;
        }
        let id = task.params().find(name).unwrap();
        close(
            &format!("{case} grad {name}"),
            task.params().grads[id.0].data(),
            &floats(&g["grads"][short]),
            1e-5,
        );
    }
}

#[test]
fn dense_autoencoder_forward_and_backward() {
    check_grads("dense_ae_mse", false, LossKind::Mse);
    check_grads("dense_ae_bce", false, LossKind::Bce);
}

#[test]
fn tied_autoencoder_accumulates_both_uses() {
    check_grads("tied_ae_mse", true, LossKind::Mse);
}

fn check_steps(case: &str, kind: OptimizerKind, lr: f32, wd: WeightDecay) -> Vec<f64> {
    let g = &golden()[case];
    let mut task = tiny(false, LossKind::Mse, wd);
    let mut opt = Optimizer::new(kind, lr, task.params());
    let mut penalties = Vec::new();
    for (s, want) in g["steps"].as_array().unwrap().iter().enumerate() {
        task.params_mut().zero_grads();
        let terms = task.train_step(Examples::new(&x()), 0, s);
        penalties.push(terms.get("weight_decay").unwrap_or(0.0));
        opt.apply(task.params_mut());
        for (short, name) in NAMES {
            let id = task.params().find(name).unwrap();
            close(
                &format!("{case} step {} {name}", s + 1),
                task.params().values[id.0].data(),
                &floats(&want[short]),
                2e-5,
            );
        }
    }
    penalties
}

#[test]
fn adam_steps_match_torch_optim() {
    check_steps("adam", OptimizerKind::ADAM, 1e-2, WeightDecay::None);
}

#[test]
fn adam_with_l2_weight_decay_on_weights_only() {
    let pen = check_steps("adam_l2", OptimizerKind::ADAM, 1e-2, WeightDecay::L2(0.1));
    close1("l2 penalty", pen[0], &golden()["adam_l2"]["penalty"], 1e-6);
}

#[test]
fn sgd_momentum_steps_match_torch_optim() {
    check_steps(
        "sgd_momentum",
        OptimizerKind::Sgd { momentum: 0.9 },
        0.1,
        WeightDecay::None,
    );
}

#[test]
fn l1_penalty_value_and_gradient() {
    let g = &golden()["l1"];
    let mut p = Params::default();
    p.add(
        "w1",
        ParamKind::Weight,
        fill(&[4, 5], |i| 0.3 * (0.7 * i + 0.3).sin()),
    );
    p.add("b", ParamKind::Bias, fill(&[4], |_| 1.0));
    let v = WeightDecay::L1(0.01).apply(&mut p);
    close1("l1 value", v, &g["value"], 1e-6);
    close("l1 grad", p.grads[0].data(), &floats(&g["grad"]), 1e-7);
    assert!(
        p.grads[1].data().iter().all(|&x| x == 0.0),
        "biases must not be decayed"
    );
}

#[test]
fn sparsity_penalties_match_torch() {
    use ae_core::objective::sparsity::Sparsity;
    for (case, act, sparsity) in [
        ("sparse_l1", Activation::Relu, Sparsity::L1 { lambda: 0.1 }),
        (
            "sparse_kl",
            Activation::Sigmoid,
            Sparsity::Kl {
                rho: 0.05,
                beta: 3.0,
            },
        ),
    ] {
        let g = &golden()[case];
        let objective = Objective {
            loss: LossKind::Mse,
            weight_decay: WeightDecay::None,
            contractive: None,
            kl: None,
            binarize: false,
            learned_variance: false,
            missing: None,
            noise: None,
            sparsity: Some(sparsity),
        };
        let mut task = tiny_with(false, act, objective);
        task.params_mut().zero_grads();
        let terms = task.train_step(Examples::new(&x()), 0, 0);
        close1(
            &format!("{case} mse"),
            terms.get("mse").unwrap(),
            &g["mse"],
            1e-5,
        );
        close1(
            &format!("{case} penalty"),
            terms.get(sparsity.name()).unwrap(),
            &g["penalty"],
            1e-5,
        );
        for (short, name) in NAMES {
            let id = task.params().find(name).unwrap();
            close(
                &format!("{case} grad {name}"),
                task.params().grads[id.0].data(),
                &floats(&g["grads"][short]),
                1e-5,
            );
        }
    }
}

#[test]
fn contractive_penalty_matches_torch_autograd_jacobian() {
    let g = &golden()["contractive"];
    let objective = Objective {
        loss: LossKind::Mse,
        weight_decay: WeightDecay::None,
        sparsity: None,
        noise: None,
        contractive: Some(0.3),
        kl: None,
        binarize: false,
        learned_variance: false,
        missing: None,
    };
    let mut task = tiny_with(false, Activation::Sigmoid, objective);
    task.params_mut().zero_grads();
    let terms = task.train_step(Examples::new(&x()), 0, 0);
    close1(
        "contractive mse",
        terms.get("mse").unwrap(),
        &g["mse"],
        1e-5,
    );
    close1(
        "contractive penalty",
        terms.get("contractive").unwrap(),
        &g["penalty"],
        1e-5,
    );
    for (short, name) in NAMES {
        let id = task.params().find(name).unwrap();
        close(
            &format!("contractive grad {name}"),
            task.params().grads[id.0].data(),
            &floats(&g["grads"][short]),
            1e-5,
        );
    }
}

#[test]
fn activations_and_their_gradients_match_torch() {
    let g = &golden()["activations"];
    let x: Vec<f32> = floats(&g["x"]).iter().map(|&v| v as f32).collect();
    let w: Vec<f32> = floats(&g["w"]).iter().map(|&v| v as f32).collect();
    for (name, act) in [
        ("relu", Activation::Relu),
        ("leaky_relu", Activation::LeakyRelu { slope: 0.01 }),
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
    ] {
        let mut y = vec![0.0; x.len()];
        act.apply(&x, &mut y);
        close(
            &format!("{name} output"),
            &y,
            &floats(&g[name]["output"]),
            1e-6,
        );
        // d sum(f(x)·w)/dx from the output, as the layers compute it.
        let mut dx = vec![0.0; x.len()];
        act.backward(&y, &w, &mut dx);
        close(
            &format!("{name} grad"),
            &dx,
            &floats(&g[name]["grad"]),
            1e-6,
        );
    }
}

#[test]
fn dense_input_gradients_match_torch() {
    for (case, tied, loss) in [
        ("dense_ae_mse", false, LossKind::Mse),
        ("dense_ae_bce", false, LossKind::Bce),
        ("tied_ae_mse", true, LossKind::Mse),
    ] {
        let mut task = tiny(tied, loss, WeightDecay::None);
        let x = x();
        task.model.forward(&x, ae_core::engine::layers::Mode::Train);
        task.model.reconstruction_loss(loss, &x);
        task.model.params.zero_grads();
        let mut dx = Tensor::default();
        task.model.backward(&x, Some(&mut dx), &mut |_, _| {});
        close(
            &format!("{case} x grad"),
            dx.data(),
            &floats(&golden()[case]["x_grad"]),
            1e-5,
        );
    }
}
