//! Models written for other runtimes: ONNX, for ONNX Runtime and everything that serves it.
pub mod onnx;
mod proto;
