//! Models written for other runtimes: ONNX, for ONNX Runtime and everything that serves it, and
//! a PyTorch module definition beside safetensors weights, for going on training with PyTorch.
pub mod onnx;
mod proto;
pub mod pytorch;
