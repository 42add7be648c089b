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

/// How a GPU computes its matrix products (`--precision`). The CPU engine always computes in fp32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// IEEE fp32 throughout (cuBLAS's default math): a GPU step matches the CPU's to rounding.
    #[default]
    Fp32,
    /// Matrix products on tensor cores with TF32 inputs (10-bit mantissa, fp32 accumulation and
    /// storage), as PyTorch's `torch.backends.cuda.matmul.allow_tf32 = True`; every other kernel,
    /// the weights and the optimizer stay fp32.
    Tf32,
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
        })
    }
}

impl FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fp32" | "float32" => Ok(Precision::Fp32),
            "tf32" => Ok(Precision::Tf32),
            "bf16" | "bfloat16" => Err(Error::config(
                "precision",
                "bf16 is not computed yet; use fp32 (the default) or tf32".to_string(),
            )),
            _ => Err(Error::config(
                "precision",
                format!("unknown precision `{s}`; expected fp32 or tf32"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions_parse_print_back_and_bf16_is_refused_by_name() {
        for p in [Precision::Fp32, Precision::Tf32] {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
        }
        let e = "bf16".parse::<Precision>().unwrap_err().to_string();
        assert!(e.contains("bf16 is not computed yet"), "{e}");
        let e = "fp8".parse::<Precision>().unwrap_err().to_string();
        assert!(e.contains("expected fp32 or tf32"), "{e}");
    }

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
