//! The GPU backend against the CPU engine. Tests that need a GPU say that they did not run when
//! the machine has none (no driver, or a driver that sees no GPU), on stderr and in
//! `$AE_SKIP_LOG`, and pass: CI has no GPU. With `AE_REQUIRE_GPU` set (bench/gpu.sh sets it) a
//! missing GPU fails them instead. Where a GPU is present, any failure to use it fails them. The
//! kernels' compilation needs only NVRTC's library.
use ae_core::cuda::{
    compile_kernels, corrupted_on, gpu_present, nvrtc_available, CudaTrainer, Gpu, Image,
};
use ae_core::engine::layers::activation::Activation;
use ae_core::engine::loss::LossKind;
use ae_core::engine::optim::{Optimizer, OptimizerKind, Schedule};
use ae_core::engine::tensor::Tensor;
use ae_core::model::vae::KlTerm;
use ae_core::model::{ConvArch, ConvDecoder, ModelConfig};
use ae_core::objective::noise::Noise;
use ae_core::objective::sparsity::Sparsity;
use ae_core::objective::{AutoencoderTask, Examples, Objective, WeightDecay};
use ae_core::training::device::Precision;
use ae_core::training::fit::{fit_with, LoopConfig, TrainState};
use ae_core::training::trainer::{CpuTrainer, Trainer};

/// Records that a check did not run and why.
fn skip(test: &str, reason: &str) {
    eprintln!("skipping {test}: {reason}");
    if let Some(path) = std::env::var_os("AE_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{test}: {reason}");
        }
    }
}

/// The first GPU, or `None` (recorded as a skip of `test`) on a machine without one.
fn gpu(test: &str) -> Option<Gpu> {
    if !gpu_present() {
        let why = Gpu::open(0)
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string());
        assert!(
            std::env::var_os("AE_REQUIRE_GPU").is_none(),
            "AE_REQUIRE_GPU is set but there is no GPU: {why}"
        );
        skip(test, &format!("no GPU here ({why})"));
        return None;
    }
    let g = Gpu::open(0).unwrap_or_else(|e| panic!("a GPU is present but did not open: {e}"));
    eprintln!("{test}: on {}", g.describe());
    Some(g)
}

/// Smooth data in [0, 1] that every loss accepts.
fn data(rows: usize, cols: usize) -> Tensor {
    Tensor::from_vec(
        &[rows, cols],
        (0..rows * cols)
            .map(|i| 0.5 + 0.45 * ((i * 37 % 101) as f32 * 0.173).sin())
            .collect(),
    )
}

/// One configuration of model, loss and optimizer, built the same way for both devices.
#[derive(Clone)]
struct Case {
    name: &'static str,
    hidden: Vec<usize>,
    activation: Activation,
    code: Activation,
    output: Activation,
    loss: LossKind,
    tied: bool,
    optimizer: OptimizerKind,
    schedule: bool,
    freeze_first: bool,
    weight_decay: WeightDecay,
    sparsity: Option<Sparsity>,
    noise: Option<Noise>,
    /// A convolutional model of this image shape (16 values) instead of a dense one.
    conv: Option<([usize; 3], ConvArch)>,
    /// A VAE with this KL term.
    vae: Option<KlTerm>,
    /// λ of the contractive penalty (a one-layer encoder).
    contractive: Option<f32>,
    /// Dynamic binarization of every batch.
    binarize: bool,
}

impl Case {
    fn base(name: &'static str) -> Case {
        Case {
            name,
            hidden: vec![12, 5],
            activation: Activation::Relu,
            code: Activation::Linear,
            output: Activation::Linear,
            loss: LossKind::Mse,
            tied: false,
            optimizer: OptimizerKind::ADAM,
            schedule: false,
            freeze_first: false,
            weight_decay: WeightDecay::None,
            sparsity: None,
            noise: None,
            conv: None,
            vae: None,
            contractive: None,
            binarize: false,
        }
    }

    fn build(&self, features: usize) -> (AutoencoderTask, Optimizer) {
        let mut config = match &self.conv {
            Some((shape, arch)) => {
                assert_eq!(shape.iter().product::<usize>(), features);
                ModelConfig::conv(shape, arch.clone())
            }
            None => ModelConfig::dense(&[features], &self.hidden),
        };
        config.activation = self.activation;
        config.code_activation = Some(self.code);
        config.output_activation = self.output;
        config.tied = self.tied;
        config.variational = self.vae.is_some();
        let objective = Objective {
            kl: self.vae,
            loss: self.loss,
            weight_decay: self.weight_decay,
            sparsity: self.sparsity,
            noise: self.noise,
            contractive: self.contractive,
            binarize: self.binarize,
            ..Objective::default()
        };
        let mut task = AutoencoderTask::new(config.build(7).unwrap(), objective).unwrap();
        if self.freeze_first {
            task.model.params.frozen[0] = true;
        }
        let mut opt = Optimizer::new(self.optimizer, 0.01, &task.model.params);
        opt.lr_scale[1] = 0.5;
        if self.schedule {
            opt.schedule = Some(Schedule {
                warmup: 2,
                total: 6,
            });
        }
        (task, opt)
    }
}

fn cases() -> Vec<Case> {
    let mut out = vec![Case::base("relu, linear code, mse, adam")];
    for (name, a) in [
        ("leaky relu", Activation::LeakyRelu { slope: 0.1 }),
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
    ] {
        out.push(Case {
            activation: a,
            code: a,
            ..Case::base(name)
        });
    }
    out.push(Case {
        output: Activation::Sigmoid,
        loss: LossKind::Bce,
        ..Case::base("sigmoid output, bce")
    });
    out.push(Case {
        output: Activation::Sigmoid,
        ..Case::base("sigmoid output, mse")
    });
    out.push(Case {
        tied: true,
        hidden: vec![9, 6, 3],
        ..Case::base("tied, deeper")
    });
    out.push(Case {
        optimizer: OptimizerKind::Sgd { momentum: 0.9 },
        schedule: true,
        ..Case::base("sgd, warm-up and cosine")
    });
    out.push(Case {
        freeze_first: true,
        schedule: true,
        ..Case::base("frozen first weight, schedule")
    });
    for (name, wd) in [
        ("weight decay l2", WeightDecay::L2(0.01)),
        ("weight decay l1", WeightDecay::L1(0.001)),
    ] {
        out.push(Case {
            weight_decay: wd,
            freeze_first: true,
            ..Case::base(name)
        });
    }
    out.push(Case {
        code: Activation::Relu,
        sparsity: Some(Sparsity::L1 { lambda: 0.05 }),
        ..Case::base("l1 sparsity on a relu code")
    });
    out.push(Case {
        code: Activation::Sigmoid,
        sparsity: Some(Sparsity::Kl {
            rho: 0.05,
            beta: 0.5,
        }),
        hidden: vec![12, 7],
        ..Case::base("kl sparsity on a sigmoid code")
    });
    // Convolutional models: patch products, pooling (ReLU's zeros make ties, which go to the
    // window's first pixel), upsampling, channels-first/last changes, a dense code or none.
    let arch = |channels: Vec<usize>, kernel, code| ConvArch {
        channels,
        kernel,
        decoder: ConvDecoder::Upsample,
        code,
    };
    out.push(Case {
        conv: Some(([1, 4, 4], arch(vec![3], 3, Some(5)))),
        output: Activation::Sigmoid,
        ..Case::base("conv 1×4×4, dense code")
    });
    out.push(Case {
        conv: Some(([2, 4, 2], arch(vec![3], 3, None))),
        ..Case::base("conv 2×4×2, the feature map as code")
    });
    out.push(Case {
        conv: Some(([1, 4, 4], arch(vec![2, 3], 5, None))),
        output: Activation::Sigmoid,
        loss: LossKind::Bce,
        schedule: true,
        ..Case::base("conv two stages, kernel 5, bce")
    });
    out.push(Case {
        conv: Some(([4, 2, 2], arch(vec![3], 3, Some(4)))),
        code: Activation::Relu,
        sparsity: Some(Sparsity::L1 { lambda: 0.05 }),
        weight_decay: WeightDecay::L2(0.01),
        ..Case::base("conv 4×2×2, sparse relu code, weight decay")
    });
    out.push(Case {
        conv: Some(([2, 4, 2], arch(vec![3], 3, None))),
        sparsity: Some(Sparsity::L1 { lambda: 0.05 }),
        noise: Some(Noise::Mask { p: 0.0 }),
        ..Case::base("conv, sparse feature map, noise path")
    });
    out.push(Case {
        conv: Some((
            [1, 4, 4],
            ConvArch {
                decoder: ConvDecoder::Transpose,
                ..arch(vec![2, 3], 3, Some(3))
            },
        )),
        output: Activation::Sigmoid,
        ..Case::base("conv, transposed decoder")
    });
    out.push(Case {
        conv: Some((
            [2, 4, 2],
            ConvArch {
                decoder: ConvDecoder::Transpose,
                ..arch(vec![3], 5, None)
            },
        )),
        freeze_first: true,
        ..Case::base("conv, transposed decoder, kernel 5, frozen first weight")
    });
    // Corruption that changes nothing follows the denoising path exactly like the CPU.
    for (name, noise) in [
        ("mask noise of 0", Noise::Mask { p: 0.0 }),
        ("gaussian noise of 0", Noise::Gaussian { std: 0.0 }),
    ] {
        out.push(Case {
            noise: Some(noise),
            ..Case::base(name)
        });
    }
    // The contractive penalty on one-layer encoders, every code activation's slope and curvature.
    out.push(Case {
        hidden: vec![6],
        activation: Activation::Sigmoid,
        code: Activation::Sigmoid,
        output: Activation::Sigmoid,
        contractive: Some(0.1),
        ..Case::base("contractive, sigmoid")
    });
    out.push(Case {
        hidden: vec![6],
        code: Activation::Tanh,
        output: Activation::Sigmoid,
        loss: LossKind::Bce,
        contractive: Some(0.5),
        sparsity: Some(Sparsity::L1 { lambda: 0.01 }),
        ..Case::base("contractive, tanh, bce, L1 sparsity")
    });
    out.push(Case {
        hidden: vec![6],
        code: Activation::LeakyRelu { slope: 0.1 },
        contractive: Some(0.2),
        freeze_first: true,
        weight_decay: WeightDecay::L2(0.01),
        ..Case::base("contractive, leaky relu, frozen encoder weight, weight decay")
    });
    out.push(Case {
        hidden: vec![6],
        code: Activation::Relu,
        contractive: Some(0.2),
        ..Case::base("contractive, relu")
    });
    out
}

/// VAEs: the GPU draws its own ε, so these are compared with the CPU in distribution
/// (`a_vae_on_the_gpu_learns_as_on_the_cpu`) and with themselves step by step.
fn vae_cases() -> Vec<Case> {
    let kl = |beta, warmup, free_bits| KlTerm {
        beta,
        warmup,
        free_bits,
    };
    vec![
        Case {
            vae: Some(kl(1.0, 0, None)),
            output: Activation::Sigmoid,
            loss: LossKind::Bce,
            ..Case::base("vae, bce")
        },
        Case {
            vae: Some(kl(1.0, 0, None)),
            output: Activation::Sigmoid,
            loss: LossKind::Bce,
            binarize: true,
            ..Case::base("vae, bce, dynamic binarization")
        },
        Case {
            vae: Some(kl(0.5, 3, Some(0.05))),
            output: Activation::Sigmoid,
            noise: Some(Noise::Gaussian { std: 0.1 }),
            weight_decay: WeightDecay::L2(0.01),
            ..Case::base("vae, mse, warm-up, free bits, noise, weight decay")
        },
        Case {
            vae: Some(kl(1.0, 0, None)),
            conv: Some((
                [1, 4, 4],
                ConvArch {
                    channels: vec![3],
                    kernel: 3,
                    decoder: ConvDecoder::Upsample,
                    code: Some(3),
                },
            )),
            output: Activation::Sigmoid,
            loss: LossKind::Bce,
            ..Case::base("conv vae")
        },
    ]
}

/// |a − b| within fp32 rounding of the larger, with a floor for values near zero.
fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) + 1e-6
}

#[test]
fn opening_a_gpu_that_is_not_there_is_an_error_not_a_panic() {
    // With a GPU, ask for one past the last; without, for the first.
    let e = match Gpu::open(0) {
        Ok(_) => Gpu::open(4096).unwrap_err().to_string(),
        Err(e) => e.to_string(),
    };
    assert!(e.starts_with("cuda:"), "{e}");
    assert!(
        e.contains("GPU") || e.contains("driver") || e.contains("not found"),
        "{e}"
    );
}

#[test]
fn our_kernels_compile_with_nvrtc_to_ptx_and_to_machine_code() {
    if !nvrtc_available() {
        assert!(
            std::env::var_os("AE_REQUIRE_GPU").is_none(),
            "AE_REQUIRE_GPU is set but NVRTC is missing"
        );
        skip(
            "our_kernels_compile_with_nvrtc",
            "NVRTC (libnvrtc.so) not found; test.sh puts the Python environment's on LD_LIBRARY_PATH",
        );
        return;
    }
    let Image::Ptx(ptx) = compile_kernels(None).unwrap() else {
        panic!("no architecture asks for PTX");
    };
    for kernel in [
        "gather_rows",
        "bias_act",
        "act_out",
        "im2col",
        "col2im",
        "max_pool_backward",
        "upsample_backward",
        "act_backward",
        "column_sums_add",
        "mse_loss",
        "bce_loss",
        "sum_partials",
        "adam",
        "sgd",
    ] {
        assert!(
            ptx.contains(&format!(".entry {kernel}(")),
            "{kernel} missing from the PTX"
        );
    }
    // Machine code for an H200 (compute capability 9.0) and an A100 (8.0): ELF images.
    for arch in [(9, 0), (8, 0)] {
        let Image::Cubin(bin) = compile_kernels(Some(arch)).unwrap() else {
            panic!("sm_{}{} asks for machine code", arch.0, arch.1);
        };
        assert_eq!(&bin[..4], b"\x7fELF", "sm_{}{}", arch.0, arch.1);
    }
}

#[test]
fn gpu_steps_match_the_cpu_engine_for_every_supported_configuration() {
    let Some(gpu) = gpu("gpu_steps_match_the_cpu_engine") else {
        return;
    };
    let x = data(40, 16);
    let batches: [Vec<usize>; 4] = [
        (0..16).collect(),
        (10..40).rev().collect(),
        vec![3, 1, 4, 1, 5, 9, 2, 6],
        (0..40).step_by(3).collect(),
    ];
    for case in cases() {
        let (mut ct, mut co) = case.build(16);
        let (mut gt, mut go) = case.build(16);
        let mut cpu = CpuTrainer::new(&mut ct, &mut co);
        let mut gpu_t = CudaTrainer::new(&gpu, &mut gt, &mut go, &[&x]).unwrap();
        for (s, idx) in batches.iter().enumerate() {
            let a = cpu.step(Examples::new(&x), idx, 0, s).unwrap();
            let b = gpu_t.step(Examples::new(&x), idx, 0, s).unwrap();
            assert_eq!(a.0.len(), b.0.len(), "{}: {a:?} {b:?}", case.name);
            for ((na, va), (nb, vb)) in a.0.iter().zip(&b.0) {
                assert_eq!(na, nb, "{}", case.name);
                assert!(
                    close(*va, *vb, 1e-5),
                    "{} step {s}: cpu {na} {va} gpu {vb}",
                    case.name
                );
            }
        }
        // The first step of each shape was recorded as a graph on a fresh cuBLAS handle.
        assert_eq!(gpu_t.graph_failure(), None, "{}", case.name);
        let (ea, eb) = (
            cpu.evaluate(Examples::new(&x), 7).unwrap(),
            gpu_t.evaluate(Examples::new(&x), 7).unwrap(),
        );
        assert!(
            close(ea.total(), eb.total(), 1e-5),
            "{}: evaluate",
            case.name
        );
        let (cp, copt) = cpu.host().unwrap();
        let (cp, copt) = (cp.clone(), copt.clone());
        let (gp, gopt) = gpu_t.host().unwrap();
        assert_eq!(copt.step, gopt.step);
        for i in 0..cp.len() {
            for (what, a, b) in [
                ("value", &cp.values[i], &gp.values[i]),
                ("m", &copt.m[i], &gopt.m[i]),
                ("v", &copt.v[i], &gopt.v[i]),
            ] {
                for (j, (&p, &q)) in a.data().iter().zip(b.data()).enumerate() {
                    assert!(
                        close(p as f64, q as f64, 1e-4),
                        "{}: {what} of {} [{j}]: cpu {p} gpu {q}",
                        case.name,
                        cp.names[i]
                    );
                }
            }
        }
        if case.freeze_first {
            let fresh = case.build(16).0;
            assert_eq!(gp.values[0], fresh.model.params.values[0]);
        }
    }
}

#[test]
fn steps_replayed_from_cuda_graphs_equal_steps_launched_kernel_by_kernel() {
    let Some(gpu) = gpu("steps_replayed_from_cuda_graphs") else {
        return;
    };
    let x = data(40, 16);
    // Two shapes, each replayed with new rows, rates and noise keys; an evaluation with a larger
    // batch in between grows the buffers, which must drop and re-record the graphs.
    let batches: Vec<Vec<usize>> = vec![
        (0..16).collect(),
        (20..36).rev().collect(),
        vec![3, 1, 4, 1, 5, 9, 2, 6],
        (24..40).collect(),
        vec![7, 7, 8, 0, 39, 38, 1, 2],
        (0..40).step_by(5).collect(),
    ];
    let mut cases = cases();
    cases.push(Case {
        noise: Some(Noise::Mask { p: 0.3 }),
        schedule: true,
        ..Case::base("mask noise, schedule")
    });
    cases.extend(vae_cases());
    for case in cases {
        let run = |graphs: bool, resident: bool| {
            let (mut t, mut o) = case.build(16);
            let keep: Vec<&Tensor> = if resident { vec![&x] } else { vec![] };
            let mut g = CudaTrainer::new(&gpu, &mut t, &mut o, &keep).unwrap();
            g.use_graphs(graphs);
            let mut seen = Vec::new();
            for (s, idx) in batches.iter().enumerate() {
                seen.push(g.step(Examples::new(&x), idx, 1, s).unwrap());
                if s == 1 {
                    seen.push(g.evaluate(Examples::new(&x), 32).unwrap());
                }
            }
            assert_eq!(g.graph_failure(), None, "{}", case.name);
            assert_eq!(g.graphs_recorded() > 0, graphs, "{}", case.name);
            let (p, opt) = g.host().unwrap();
            (seen, p.values.clone(), opt.m.clone(), opt.v.clone())
        };
        let eager = run(false, true);
        assert_eq!(run(true, true), eager, "{}: resident", case.name);
        assert_eq!(run(true, false), eager, "{}: host batches", case.name);
    }
}

#[test]
fn repeated_gpu_runs_give_identical_weights() {
    let Some(gpu) = gpu("repeated_gpu_runs_give_identical_weights") else {
        return;
    };
    // No atomics anywhere (reductions in a fixed order, col2im gathered per pixel): a GPU run
    // repeats to the bit, noise included, whatever `--deterministic` says.
    let (train, val) = (data(200, 16), data(40, 16));
    let cfg = LoopConfig {
        epochs: 2,
        batch_size: 32,
        seed: 9,
        early_stopping: None,
    };
    let arch = ConvArch {
        channels: vec![3],
        kernel: 3,
        decoder: ConvDecoder::Upsample,
        code: Some(4),
    };
    for case in [
        Case {
            noise: Some(Noise::Gaussian { std: 0.2 }),
            ..Case::base("dense, gaussian noise")
        },
        Case {
            conv: Some(([1, 4, 4], arch)),
            noise: Some(Noise::Mask { p: 0.3 }),
            ..Case::base("conv, masking noise")
        },
    ] {
        let run = || {
            let (mut t, mut o) = case.build(16);
            let mut state = TrainState::default();
            let mut g = CudaTrainer::new(&gpu, &mut t, &mut o, &[&train, &val]).unwrap();
            let (tr, va) = (Examples::new(&train), Some(Examples::new(&val)));
            fit_with(&mut g, &mut state, &cfg, tr, va, &mut Recorder(Vec::new())).unwrap();
            g.host().unwrap().0.values.clone()
        };
        assert_eq!(run(), run(), "{}", case.name);
    }
}

#[test]
fn a_vae_on_the_gpu_learns_as_on_the_cpu() {
    let Some(gpu) = gpu("a_vae_on_the_gpu_learns_as_on_the_cpu") else {
        return;
    };
    // Different draws of ε, the same distribution: the GPU's ELBO lies in the CPU's spread.
    for case in vae_cases() {
        let last_val = |on_gpu: bool, seed: u64| first_and_last_val(&gpu, &case, on_gpu, seed);
        let cpu: Vec<f64> = (0..5).map(|s| last_val(false, s).1).collect();
        let (lo, hi) = cpu
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let spread = (hi - lo).max(0.02 * hi.abs());
        let g = last_val(true, 0);
        assert!(g.1 < g.0, "{}: the GPU run learned: {g:?}", case.name);
        assert!(
            (lo - spread..hi + spread).contains(&g.1),
            "{}: gpu {g:?} outside the CPU's spread {cpu:?}",
            case.name
        );
    }
}

#[test]
fn examples_not_resident_on_the_gpu_train_the_same() {
    let Some(gpu) = gpu("examples_not_resident_on_the_gpu_train_the_same") else {
        return;
    };
    let x = data(30, 16);
    let case = Case::base("host batches");
    let run = |resident: bool| {
        let (mut t, mut o) = case.build(16);
        let keep: Vec<&Tensor> = if resident { vec![&x] } else { vec![] };
        let mut g = CudaTrainer::new(&gpu, &mut t, &mut o, &keep).unwrap();
        assert_eq!(g.resident_sets(), keep.len());
        for s in 0..3 {
            let idx: Vec<usize> = (s..30).step_by(2).collect();
            g.step(Examples::new(&x), &idx, 0, s).unwrap();
        }
        g.host().unwrap().0.values.clone()
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn a_diverging_gpu_step_reports_it_and_leaves_the_weights_alone() {
    let Some(gpu) = gpu("a_diverging_gpu_step_reports_it") else {
        return;
    };
    let mut x = data(8, 16);
    x.data_mut()[5] = f32::INFINITY;
    let (mut t, mut o) = Case::base("diverging").build(16);
    let before = t.model.params.values.clone();
    let mut g = CudaTrainer::new(&gpu, &mut t, &mut o, &[&x]).unwrap();
    let terms = g.step(Examples::new(&x), &[0, 1, 2], 0, 0).unwrap();
    assert!(terms.non_finite().is_some(), "{terms:?}");
    let (p, opt) = g.host().unwrap();
    assert_eq!(p.values, before);
    assert_eq!(opt.step, 0);
}

#[test]
fn the_loop_on_the_gpu_matches_the_cpu_epoch_by_epoch() {
    let Some(gpu) = gpu("the_loop_on_the_gpu_matches_the_cpu") else {
        return;
    };
    let (train, val) = (data(100, 16), data(30, 16));
    let cfg = LoopConfig {
        epochs: 3,
        batch_size: 16,
        seed: 3,
        early_stopping: None,
    };
    let case = Case::base("loop");
    let history = |on_gpu: bool| {
        let (mut t, mut o) = case.build(16);
        let mut state = TrainState::default();
        let mut rec = Recorder(Vec::new());
        if on_gpu {
            let mut g = CudaTrainer::new(&gpu, &mut t, &mut o, &[&train, &val]).unwrap();
            fit_with(
                &mut g,
                &mut state,
                &cfg,
                Examples::new(&train),
                Some(Examples::new(&val)),
                &mut rec,
            )
            .unwrap();
        } else {
            fit_with(
                &mut CpuTrainer::new(&mut t, &mut o),
                &mut state,
                &cfg,
                Examples::new(&train),
                Some(Examples::new(&val)),
                &mut rec,
            )
            .unwrap();
        }
        rec.0
    };
    let (c, g) = (history(false), history(true));
    assert_eq!((c.len(), g.len()), (3, 3));
    for (a, b) in c.iter().zip(&g) {
        assert!(
            close(a.0, b.0, 1e-4) && close(a.1, b.1, 1e-4),
            "{c:?} {g:?}"
        );
    }
}

/// Keeps (train, validation) loss per epoch.
/// The first and last epochs' validation losses of `case` trained 20 epochs on 400 rows (100 for
/// validation) with the task's random draws seeded by `seed`, on the GPU or on the CPU: for the
/// flavors whose draws differ between devices, compared in distribution.
fn first_and_last_val(gpu: &Gpu, case: &Case, on_gpu: bool, seed: u64) -> (f64, f64) {
    let (train, val) = (data(400, 16), data(100, 16));
    let cfg = LoopConfig {
        epochs: 20,
        batch_size: 32,
        seed: 5,
        early_stopping: None,
    };
    let (mut t, mut o) = case.build(16);
    t.seed = seed;
    let mut state = TrainState::default();
    let mut rec = Recorder(Vec::new());
    let (tr, va) = (Examples::new(&train), Some(Examples::new(&val)));
    if on_gpu {
        let mut g = CudaTrainer::new(gpu, &mut t, &mut o, &[&train, &val]).unwrap();
        fit_with(&mut g, &mut state, &cfg, tr, va, &mut rec).unwrap();
    } else {
        let mut c = CpuTrainer::new(&mut t, &mut o);
        fit_with(&mut c, &mut state, &cfg, tr, va, &mut rec).unwrap();
    }
    (rec.0[0].1, rec.0.last().unwrap().1)
}

struct Recorder(Vec<(f64, f64)>);

impl ae_core::training::fit::Observer for Recorder {
    fn on_epoch(
        &mut self,
        r: &ae_core::training::fit::EpochRecord,
        _: &ae_core::engine::params::Params,
        _: &Optimizer,
        _: &TrainState,
    ) -> ae_core::Result<()> {
        self.0
            .push((r.train.total(), r.val.as_ref().map_or(0.0, |v| v.total())));
        Ok(())
    }

    fn on_interrupt(
        &mut self,
        _: &ae_core::engine::params::Params,
        _: &Optimizer,
        _: &TrainState,
    ) -> ae_core::Result<()> {
        Ok(())
    }
}

#[test]
fn noise_drawn_on_the_gpu_has_the_asked_distribution_and_repeats_with_the_seed() {
    let Some(gpu) = gpu("noise_drawn_on_the_gpu") else {
        return;
    };
    let n = 200_000;
    let half = vec![0.5f32; n];
    let draw = |noise: Noise, step: usize| corrupted_on(&gpu, noise, &half, 3, 1, step).unwrap();
    let share = |v: &[f32], x: f32| v.iter().filter(|&&y| y == x).count() as f64 / n as f64;

    let masked = draw(Noise::Mask { p: 0.3 }, 0);
    assert!(
        (share(&masked, 0.0) - 0.3).abs() < 0.005,
        "{}",
        share(&masked, 0.0)
    );
    assert!((share(&masked, 0.5) - 0.7).abs() < 0.005);
    assert_eq!(
        masked,
        draw(Noise::Mask { p: 0.3 }, 0),
        "same seed, epoch and step"
    );
    assert_ne!(masked, draw(Noise::Mask { p: 0.3 }, 1), "another step");

    let sp = draw(Noise::SaltPepper { p: 0.2 }, 0);
    for (v, want) in [(0.0, 0.1), (1.0, 0.1), (0.5, 0.8)] {
        assert!(
            (share(&sp, v) - want).abs() < 0.005,
            "{v}: {}",
            share(&sp, v)
        );
    }

    let g = draw(Noise::Gaussian { std: 0.25 }, 0);
    let mean = g.iter().map(|&v| v as f64 - 0.5).sum::<f64>() / n as f64;
    let var = g
        .iter()
        .map(|&v| (v as f64 - 0.5 - mean).powi(2))
        .sum::<f64>()
        / n as f64;
    assert!(mean.abs() < 0.002, "mean {mean}");
    assert!((var.sqrt() - 0.25).abs() < 0.002, "std {}", var.sqrt());
    let beyond = g.iter().filter(|&&v| (v - 0.5).abs() > 0.5).count() as f64 / n as f64;
    assert!((beyond - 0.0455).abs() < 0.003, "share beyond 2σ {beyond}");
}

#[test]
fn denoising_on_the_gpu_learns_as_on_the_cpu() {
    let Some(gpu) = gpu("denoising_on_the_gpu_learns_as_on_the_cpu") else {
        return;
    };
    // Different random draws, the same distribution: the GPU's result lies in the CPU's spread.
    let case = Case {
        noise: Some(Noise::Mask { p: 0.25 }),
        ..Case::base("denoising")
    };
    let last_val =
        |on_gpu: bool, noise_seed: u64| first_and_last_val(&gpu, &case, on_gpu, noise_seed);
    // The CPU's spread over five noise streams (seed 0: 0.021, seed 99: 0.016 when written).
    let cpu: Vec<f64> = (0..5).map(|s| last_val(false, s).1).collect();
    let (lo, hi) = cpu
        .iter()
        .fold((f64::MAX, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
    let g = last_val(true, 0);
    assert!(g.1 < 0.5 * g.0, "the GPU run learned: {g:?}");
    assert!(
        (0.7 * lo..1.3 * hi).contains(&g.1),
        "gpu {g:?} outside the CPU's spread {cpu:?}"
    );
}

#[test]
fn tf32_matrix_products_train_as_fp32_does_within_tf32_rounding() {
    let Some(mut gpu) = gpu("tf32_matrix_products_train_as_fp32_does") else {
        return;
    };
    let x = data(64, 16);
    let idx: Vec<usize> = (0..64).collect();
    let mut losses = Vec::new();
    for p in [Precision::Fp32, Precision::Tf32] {
        gpu.set_precision(p).unwrap();
        assert_eq!(gpu.describe().contains("tf32"), p == Precision::Tf32);
        let case = Case::base("tf32");
        let (mut t, mut o) = case.build(16);
        let mut g = CudaTrainer::new(&gpu, &mut t, &mut o, &[&x]).unwrap();
        let mut l = Vec::new();
        for s in 0..20 {
            l.push(g.step(Examples::new(&x), &idx, 0, s).unwrap().total());
        }
        losses.push(l);
    }
    // TF32 keeps 10 bits of mantissa: the losses agree to about 1e-3, and the run still learns.
    for (s, (a, b)) in losses[0].iter().zip(&losses[1]).enumerate() {
        assert!(close(*a, *b, 1e-2), "step {s}: fp32 {a} tf32 {b}");
    }
    assert!(losses[1][19] < losses[1][0], "{:?}", losses[1]);
}

#[test]
fn greedy_pretraining_on_the_gpu_gives_the_cpu_stages_weights() {
    use ae_core::training::pretrain::{greedy, StageSettings};
    let Some(gpu) = gpu("greedy_pretraining_on_the_gpu") else {
        return;
    };
    let x = data(120, 16);
    for tied in [false, true] {
        let case = Case {
            tied,
            output: Activation::Sigmoid,
            ..Case::base("greedy")
        };
        let stages = StageSettings {
            epochs: 2,
            batch_size: 32,
            seed: 3,
            optimizer: OptimizerKind::ADAM,
            lr: 0.01,
            objective: case.build(16).0.objective.clone(),
        };
        let pretrained = |on: Option<&Gpu>| {
            let mut deep = case.build(16).0.model;
            greedy(&mut deep, &x, &stages, on, &mut |_| {
                Box::new(Recorder(Vec::new()))
            })
            .unwrap();
            deep.params
        };
        let (cpu, on_gpu) = (pretrained(None), pretrained(Some(&gpu)));
        let fresh = case.build(16).0.model.params;
        // Two stages of 8 Adam steps each: the GPU's fp32 rounding moves a weight by far less
        // than training does.
        for i in 0..cpu.len() {
            assert_ne!(cpu.values[i], fresh.values[i], "{} trained", cpu.names[i]);
            for (&a, &b) in cpu.values[i].data().iter().zip(on_gpu.values[i].data()) {
                assert!(
                    (a - b).abs() <= 1e-3 * a.abs().max(1.0),
                    "tied {tied}, {}: cpu {a} gpu {b}",
                    cpu.names[i]
                );
            }
        }
    }
}

/// The largest difference between two tensors of one shape, relative to the larger magnitude.
fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| ((x - y).abs() / (1.0 + x.abs().max(y.abs()))) as f64)
        .fold(0.0, f64::max)
}

#[test]
fn a_trained_models_passes_on_the_gpu_match_the_cpu_engine() {
    let Some(gpu) = gpu("a_trained_models_passes_on_the_gpu_match_the_cpu_engine") else {
        return;
    };
    drop(gpu);
    use ae_core::analysis::inference::Inference;
    use ae_core::training::device::Device;
    let x = data(300, 16);
    for case in cases().into_iter().chain(vae_cases()) {
        let (mut task, mut optimizer) = case.build(16);
        // A few CPU steps, so the weights are not the initial ones.
        let mut cpu = CpuTrainer::new(&mut task, &mut optimizer);
        for step in 0..3 {
            let idx: Vec<usize> = (step * 32..step * 32 + 32).collect();
            cpu.step(Examples::new(&x), &idx, 0, step).unwrap();
        }
        drop(cpu);
        let model = &task.model;
        let on_cpu = Inference::cpu(model);
        let (on_gpu, note) = Inference::on(Device::Cuda(0), model).unwrap();
        assert!(note.is_none());
        assert_ne!(on_gpu.device(), "cpu");
        let codes = on_cpu.codes(&x).unwrap();
        let pairs = [
            ("codes", codes.clone(), on_gpu.codes(&x).unwrap()),
            (
                "encoder outputs",
                on_cpu.encoder_outputs(&x).unwrap(),
                on_gpu.encoder_outputs(&x).unwrap(),
            ),
            (
                "reconstructions",
                on_cpu.reconstruct(&x).unwrap(),
                on_gpu.reconstruct(&x).unwrap(),
            ),
            (
                "decodings",
                on_cpu.decode_codes(&codes).unwrap(),
                on_gpu.decode_codes(&codes).unwrap(),
            ),
            (
                "logits",
                on_cpu.logits_and_reconstructions(&x).unwrap().0,
                on_gpu.logits_and_reconstructions(&x).unwrap().0,
            ),
        ];
        for (what, c, g) in pairs {
            let d = max_rel_diff(&c, &g);
            assert!(d < 1e-5, "{}: {what} differ by {d:e}", case.name);
        }
    }
}
