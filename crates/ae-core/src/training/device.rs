//! Where a run computes: the CPU engine, an NVIDIA GPU, or the GPU when one is usable.
use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The device a command computes on, as the user names it (`--device`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// This crate's CPU engine.
    #[default]
    Cpu,
    /// The CUDA GPU with this ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
    /// The first CUDA GPU when a driver and a GPU are found and the run is one the GPU backend
    /// computes; the CPU otherwise.
    Auto,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
            Device::Auto => f.write_str("auto"),
        }
    }
}

impl FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::config(
                "device",
                format!(
                    "unknown device `{s}`; expected cpu, cuda, cuda:N (N a GPU's number) or auto"
                ),
            )
        };
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            "auto" => Ok(Device::Auto),
            _ => match s.strip_prefix("cuda:") {
                Some(n) => n.parse().map(Device::Cuda).map_err(|_| bad()),
                None => Err(bad()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_print_back() {
        for (text, device) in [
            ("cpu", Device::Cpu),
            ("cuda", Device::Cuda(0)),
            ("cuda:3", Device::Cuda(3)),
            ("auto", Device::Auto),
        ] {
            let parsed: Device = text.parse().unwrap();
            assert_eq!(parsed, device);
            assert_eq!(parsed.to_string().parse::<Device>().unwrap(), device);
        }
        for bad in ["", "cuda:", "cuda:x", "tpu", "cuda:-1"] {
            let e = bad.parse::<Device>().unwrap_err().to_string();
            assert!(e.contains("expected cpu, cuda"), "{bad}: {e}");
        }
    }
}
