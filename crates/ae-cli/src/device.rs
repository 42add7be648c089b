//! `--device` on the commands that use a trained model: where its forward passes run.
use ae_core::analysis::inference::Inference;
use ae_core::training::device::Device;
use ae_core::Autoencoder;
use anyhow::Result;

use crate::args::OnDevice;

/// `model`'s forward passes where `on` says; says on stderr where they run when that is not
/// the CPU by default (`auto` that stays on the CPU says why).
pub fn inference<'m>(on: &OnDevice, model: &'m Autoencoder) -> Result<Inference<'m>> {
    let (inference, why) = Inference::on(on.device, model)?;
    match why {
        Some(why) => note!("{why}"),
        None if on.device != Device::Cpu => note!("computing on {}", inference.device()),
        None => {}
    }
    Ok(inference)
}
