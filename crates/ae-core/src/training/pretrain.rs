//! Greedy layer-wise pretraining (Bengio et al., 2007; Hinton & Salakhutdinov, 2006): train a
//! one-layer autoencoder on the data, freeze it, encode the data with it, train the next on those
//! codes, and so on; then copy every layer into the deep autoencoder, which is fine-tuned end to end
//! by the ordinary training loop. Each stage runs through that same loop.
use crate::engine::loss::LossKind;
use crate::engine::optim::{Optimizer, OptimizerKind};
use crate::engine::tensor::Tensor;
use crate::model::{Autoencoder, ModelConfig};
use crate::objective::{AutoencoderTask, Objective};
use crate::training::fit::{fit, fit_with, Examples, LoopConfig, Observer, TrainState};
use crate::training::trainer::Trainer as _;
use crate::{Error, Result};

/// `--pretrain greedy[:EPOCHS]`: greedy layer-wise pretraining, with EPOCHS per stage (default:
/// the run's `--epochs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pretrain {
    /// Epochs per stage; `None` means the run's `--epochs`.
    pub epochs: Option<usize>,
}

impl std::fmt::Display for Pretrain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.epochs {
            Some(e) => write!(f, "greedy:{e}"),
            None => f.write_str("greedy"),
        }
    }
}

impl std::str::FromStr for Pretrain {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::config(
                "pretrain",
                format!("expected greedy or greedy:EPOCHS (EPOCHS ≥ 1), got `{s}`"),
            )
        };
        match s.split_once(':') {
            None if s == "greedy" => Ok(Pretrain { epochs: None }),
            Some(("greedy", e)) => e
                .parse()
                .ok()
                .filter(|&e: &usize| e > 0)
                .map(|e| Pretrain { epochs: Some(e) })
                .ok_or_else(bad),
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for Pretrain {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Pretrain> for String {
    fn from(p: Pretrain) -> String {
        p.to_string()
    }
}

/// How each stage trains.
#[derive(Clone, Debug)]
pub struct StageSettings {
    /// Epochs per stage.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Seed (each stage draws from its own offset of it).
    pub seed: u64,
    /// Optimizer and learning rate.
    pub optimizer: OptimizerKind,
    /// Learning rate.
    pub lr: f32,
    /// The deep model's objective; stage 0 uses its loss, later stages reconstruct codes with MSE.
    /// Noise and weight decay apply at every stage (stacked denoising); code penalties are left to
    /// fine-tuning.
    pub objective: Objective,
}

/// Pretrains `deep`'s layers in place on `data` (`[N, ..input]`), each stage on `gpu` when given
/// (with its examples kept there) or on the CPU; `observer(stage)` receives each stage's epochs.
/// Returns what the stages' trainers had to say (a GPU stage whose steps could not be recorded as
/// CUDA graphs, say).
pub fn greedy<'a>(
    deep: &mut Autoencoder,
    data: &Tensor,
    s: &StageSettings,
    gpu: Option<&crate::cuda::Gpu>,
    observer: &mut dyn FnMut(usize) -> Box<dyn Observer + 'a>,
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let cfg = deep.config.clone();
    let enc: Vec<String> = deep
        .params
        .names
        .iter()
        .filter(|n| n.starts_with("encoder.") && n.ends_with(".weight"))
        .cloned()
        .collect();
    let mut dec: Vec<String> = deep
        .params
        .names
        .iter()
        .filter(|n| n.starts_with("decoder.") && n.ends_with(".bias"))
        .cloned()
        .collect();
    dec.reverse(); // dec[l] mirrors encoder layer l
    let layers = cfg.hidden.len();
    let mut current = data.clone();
    let mut in_shape = cfg.input_shape.clone();
    for l in 0..layers {
        let last = l + 1 == layers;
        let act = if last {
            cfg.code_activation()
        } else {
            cfg.activation
        };
        // What this stage reconstructs: the data at stage 0, else the previous layer's codes.
        let out_act = if l == 0 {
            cfg.output_activation
        } else {
            cfg.activation
        };
        let stage_cfg = ModelConfig {
            input_shape: in_shape.clone(),
            hidden: vec![cfg.hidden[l]],
            activation: act,
            code_activation: Some(act),
            output_activation: out_act,
            tied: cfg.tied,
            init: cfg.init,
            conv: None,
            variational: false,
            missing_indicator: false,
        };
        let loss = if l == 0 {
            s.objective.loss
        } else {
            LossKind::Mse
        };
        let objective = Objective {
            loss,
            sparsity: None,
            contractive: None,
            ..s.objective.clone()
        };
        let seed = s.seed.wrapping_add(1000 * (l as u64 + 1));
        let mut task = AutoencoderTask::new(stage_cfg.build(seed)?, objective)?;
        task.seed = seed;
        let mut opt = Optimizer::new(s.optimizer, s.lr, &task.model.params);
        let lc = LoopConfig {
            epochs: s.epochs,
            batch_size: s.batch_size,
            seed,
            early_stopping: None,
        };
        let mut obs = observer(l);
        let mut state = TrainState::default();
        let examples = Examples::new(&current);
        match gpu {
            // The loop leaves the trained weights on the host (it reads them back every epoch).
            Some(g) => {
                let mut t = crate::cuda::CudaTrainer::new(g, &mut task, &mut opt, &[&current])?;
                fit_with(&mut t, &mut state, &lc, examples, None, obs.as_mut())?;
                let stage = l + 1;
                notes.extend(t.notes().into_iter().map(|n| format!("stage {stage}: {n}")));
            }
            None => {
                fit(
                    &mut task,
                    &mut opt,
                    &mut state,
                    &lc,
                    examples,
                    None,
                    obs.as_mut(),
                )?;
            }
        }
        drop(obs);
        // Copy the stage into the deep model.
        let copy = |deep: &mut Autoencoder, to: &str, from: &str| -> Result<()> {
            let (Some(t), Some(f)) = (deep.params.find(to), task.model.params.find(from)) else {
                return Err(Error::config(
                    "pretrain",
                    format!("no parameter {to} or {from}"),
                ));
            };
            if deep.params.values[t.0].shape() != task.model.params.values[f.0].shape() {
                return Err(Error::config(
                    "pretrain",
                    format!("{to} and {from} differ in shape"),
                ));
            }
            deep.params.values[t.0] = task.model.params.values[f.0].clone();
            Ok(())
        };
        copy(deep, &enc[l], "encoder.0.weight")?;
        copy(deep, &enc[l].replace(".weight", ".bias"), "encoder.0.bias")?;
        copy(deep, &dec[l], "decoder.0.bias")?;
        if !cfg.tied {
            copy(
                deep,
                &dec[l].replace(".bias", ".weight"),
                "decoder.0.weight",
            )?;
        }
        if !last {
            current = task.model.encode_rows(&current, usize::MAX);
            in_shape = vec![cfg.hidden[l]];
        }
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::init::Init;
    use crate::engine::layers::activation::Activation;
    use crate::engine::params::Params;
    use crate::objective::WeightDecay;
    use crate::training::fit::EpochRecord;

    struct Quiet;
    impl Observer for Quiet {
        fn on_epoch(
            &mut self,
            _: &EpochRecord,
            _: &Params,
            _: &Optimizer,
            _: &TrainState,
        ) -> Result<()> {
            Ok(())
        }
        fn on_interrupt(&mut self, _: &Params, _: &Optimizer, _: &TrainState) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn pretrained_layers_land_in_the_deep_model_and_help() {
        let x = Tensor::from_vec(
            &[400, 12],
            (0..4800)
                .map(|i| (1.0 + ((i % 12) as f32 * 0.7 + (i / 12) as f32 * 0.13).sin()) / 2.0)
                .collect(),
        );
        for tied in [false, true] {
            let cfg = ModelConfig {
                input_shape: vec![12],
                hidden: vec![8, 4],
                activation: Activation::Tanh,
                code_activation: None,
                output_activation: Activation::Sigmoid,
                tied,
                init: Init::GlorotUniform,
                conv: None,
                variational: false,
                missing_indicator: false,
            };
            let objective = Objective {
                loss: LossKind::Mse,
                weight_decay: WeightDecay::None,
                sparsity: None,
                noise: None,
                contractive: None,
                kl: None,
                binarize: false,
                learned_variance: false,
                missing: None,
            };
            let mut deep = cfg.build(1).unwrap();
            let before = deep.params.values.clone();
            let mut stages = Vec::new();
            let s = StageSettings {
                epochs: 30,
                batch_size: 20,
                seed: 1,
                optimizer: OptimizerKind::ADAM,
                lr: 0.01,
                objective: objective.clone(),
            };
            greedy(&mut deep, &x, &s, None, &mut |l| {
                stages.push(l);
                Box::new(Quiet)
            })
            .unwrap();
            assert_eq!(stages, vec![0, 1]);
            assert!(
                deep.params.values.iter().zip(&before).all(|(a, b)| a != b),
                "every parameter should be pretrained (tied={tied})"
            );
            let mut fresh = AutoencoderTask::new(cfg.build(1).unwrap(), objective.clone()).unwrap();
            let mut pre = AutoencoderTask::new(deep, objective).unwrap();
            use crate::training::fit::Task;
            let (e_fresh, e_pre) = (
                fresh.eval_batch(Examples::new(&x)).total(),
                pre.eval_batch(Examples::new(&x)).total(),
            );
            assert!(
                e_pre < e_fresh,
                "pretrained {e_pre} should reconstruct better than random {e_fresh}"
            );
        }
    }
}
