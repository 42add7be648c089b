//! Seconds per epoch of the engine alone on synthetic 784-feature data (no I/O), for profiling:
//! `cargo run --release -p ae-core --example speed -- 256,64 2` (hidden sizes, threads), or
//! `-- conv 2 1 [N] [transpose]` for the classic conv autoencoder on N images (default 60,000).
use std::time::Instant;

use ae_core::engine::init::Init;
use ae_core::engine::layers::activation::Activation;
use ae_core::engine::loss::LossKind;
use ae_core::engine::optim::{Optimizer, OptimizerKind};
use ae_core::model::ModelConfig;
use ae_core::objective::{AutoencoderTask, Objective, WeightDecay};
use ae_core::training::fit::{fit, EpochRecord, LoopConfig, Observer, TrainState};
use ae_core::{engine::params::Params, Tensor};

struct Quiet;
impl Observer for Quiet {
    fn on_epoch(
        &mut self,
        r: &EpochRecord,
        _: &Params,
        _: &Optimizer,
        _: &TrainState,
    ) -> ae_core::Result<()> {
        println!(
            "epoch {} loss {:.5} {:.3} s ({:.0} img/s)",
            r.epoch,
            r.train.total(),
            r.seconds,
            r.examples_per_second
        );
        Ok(())
    }
    fn on_interrupt(&mut self, _: &Params, _: &Optimizer, _: &TrainState) -> ae_core::Result<()> {
        Ok(())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let conv = args.get(1).is_some_and(|a| a == "conv");
    let hidden: Vec<usize> = if conv {
        vec![]
    } else {
        args.get(1)
            .map_or("256,64", |s| s.as_str())
            .split(',')
            .map(|s| s.parse().unwrap())
            .collect()
    };
    let threads: usize = args.get(2).map_or(2, |s| s.parse().unwrap());
    let epochs: usize = args.get(3).map_or(2, |s| s.parse().unwrap());
    ae_core::engine::gemm::set_threads(threads);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let n: usize = args.get(4).map_or(60000, |s| s.parse().unwrap());
    let decoder = match args.get(5).map(|s| s.as_str()) {
        Some("transpose") => ae_core::model::ConvDecoder::Transpose,
        _ => ae_core::model::ConvDecoder::Upsample,
    };
    let x = Tensor::from_vec(
        &[n, 784],
        (0..n * 784)
            .map(|i| ((i * 2654435761usize) % 1000) as f32 / 1000.0)
            .collect(),
    );
    let cfg = ModelConfig {
        input_shape: if conv { vec![1, 28, 28] } else { vec![784] },
        hidden,
        activation: Activation::Relu,
        code_activation: None,
        output_activation: Activation::Sigmoid,
        tied: false,
        init: Init::Auto,
        conv: conv.then(|| ae_core::model::ConvArch {
            channels: vec![32, 32],
            kernel: 3,
            decoder,
            code: None,
        }),
        variational: false,
        missing_indicator: false,
    };
    let model = cfg.build(0).unwrap();
    let mut task = AutoencoderTask::new(
        model,
        Objective {
            loss: LossKind::Mse,
            contractive: None,
            kl: None,
            binarize: false,
            learned_variance: false,
            missing: None,
            noise: None,
            sparsity: None,
            weight_decay: WeightDecay::None,
        },
    )
    .unwrap();
    let mut opt = Optimizer::new(OptimizerKind::ADAM, 1e-3, &task.model.params);
    let mut state = TrainState::default();
    let lc = LoopConfig {
        epochs,
        batch_size: 256,
        seed: 0,
        early_stopping: None,
    };
    let t = Instant::now();
    fit(
        &mut task,
        &mut opt,
        &mut state,
        &lc,
        ae_core::training::fit::Examples::new(&x),
        None,
        &mut Quiet,
    )
    .unwrap();
    println!(
        "total {:.2} s; {:.1} GFLOP/s",
        t.elapsed().as_secs_f64(),
        task.model.flops_per_example() as f64 * (n * epochs) as f64
            / t.elapsed().as_secs_f64()
            / 1e9
    );
}
