//! One GPU opened for computing: its context and stream, a cuBLAS handle, and our kernels compiled
//! by NVRTC. Every CUDA library is loaded at run time, so a binary built here runs on machines
//! without CUDA; there, opening a GPU is an error that says what is missing, never a panic.
use std::sync::Arc;

use cudarc::cublas::{sys::cublasOperation_t, CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DeviceRepr,
    LaunchConfig, ValidAsZeroBits,
};
use cudarc::nvrtc::Ptx;

use crate::engine::layers::activation::Activation;
use crate::training::device::Precision;
use crate::{Error, Result};

/// The source of our kernels (element-wise maps, losses, reductions, optimizers).
pub const KERNELS: &str = include_str!("kernels.cu");

/// Threads per block of the kernels (the reductions assume 256).
pub(crate) const THREADS: u32 = 256;
/// Most blocks of a grid-stride kernel; also the length of the reductions' partial sums.
pub(crate) const MAX_BLOCKS: u32 = 1024;

/// The kernels of [`KERNELS`], loaded.
pub(crate) struct Kernels {
    pub gather_rows: CudaFunction,
    pub bias_act: CudaFunction,
    pub act_out: CudaFunction,
    pub permute_chw: CudaFunction,
    pub im2col: CudaFunction,
    pub col2im: CudaFunction,
    pub to_patch_order: CudaFunction,
    pub add_from_patch_order: CudaFunction,
    pub max_pool: CudaFunction,
    pub max_pool_backward: CudaFunction,
    pub upsample: CudaFunction,
    pub upsample_backward: CudaFunction,
    pub reparam: CudaFunction,
    pub reparam_backward: CudaFunction,
    pub kl_gauss_units: CudaFunction,
    pub kl_gauss_total: CudaFunction,
    pub kl_gauss_grad: CudaFunction,
    pub act_backward: CudaFunction,
    pub column_sums_add: CudaFunction,
    pub mse_loss: CudaFunction,
    pub bce_loss: CudaFunction,
    pub sum_partials: CudaFunction,
    pub adam: CudaFunction,
    pub sgd: CudaFunction,
    pub weight_decay: CudaFunction,
    pub l1_code: CudaFunction,
    pub column_means: CudaFunction,
    pub kl_units: CudaFunction,
    pub contractive_units: CudaFunction,
    pub contractive_weight_grad: CudaFunction,
    pub binarize: CudaFunction,
    pub add_rows: CudaFunction,
    pub corrupt: CudaFunction,
}

/// An open GPU: where a [`super::CudaTrainer`] computes.
pub struct Gpu {
    /// The device as the user named it (`cuda:0`), for messages.
    pub(crate) label: String,
    name: String,
    pub(crate) stream: Arc<CudaStream>,
    pub(crate) blas: CudaBlas,
    pub(crate) k: Kernels,
    precision: Precision,
    /// cuBLAS's workspace, ours so that steps recorded as CUDA graphs share it (left to itself,
    /// cuBLAS gives every capture a workspace of its own). Declared after `blas`, so dropped
    /// after the handle that uses it.
    _workspace: CudaSlice<u8>,
}

/// Bytes of cuBLAS's workspace (what PyTorch gives it on Hopper GPUs).
const CUBLAS_WORKSPACE: usize = 32 << 20;

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gpu({})", self.describe())
    }
}

/// Whether NVRTC (CUDA's run-time compiler) can be loaded here.
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to open the shared library.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Our kernels compiled: machine code for one GPU, or PTX that the driver compiles.
#[derive(Clone, Debug)]
pub enum Image {
    /// A CUBIN for one compute capability, loaded as it is.
    Cubin(Vec<u8>),
    /// PTX text, compiled by the driver when loaded (needs a driver at least as new as NVRTC).
    Ptx(String),
}

impl Image {
    fn into_module_source(self) -> Ptx {
        match self {
            Image::Cubin(bytes) => Ptx::from_binary(bytes),
            Image::Ptx(text) => Ptx::from_src(text),
        }
    }
}

/// Compiles [`KERNELS`] with NVRTC (no GPU needed, only the library): to machine code for compute
/// capability `arch` (major, minor), which any driver that runs that GPU loads, or to PTX when
/// `arch` is `None`.
///
/// Multiply-adds are not fused and subnormals are flushed, so the kernels round as the CPU
/// engine does.
pub fn compile_kernels(arch: Option<(i32, i32)>) -> Result<Image> {
    use cudarc::nvrtc::{result, sys};
    use std::ffi::{CStr, CString};
    let fail = |reason: String| Error::device("nvrtc", reason);
    if !nvrtc_available() {
        return Err(fail(
            "NVRTC (libnvrtc.so) was not found: install CUDA 13's NVRTC or add its folder to LD_LIBRARY_PATH".into(),
        ));
    }
    let mut options = vec!["--fmad=false".to_string(), "--ftz=true".to_string()];
    if let Some((major, minor)) = arch {
        options.push(format!("--gpu-architecture=sm_{major}{minor}"));
    }
    let src = CString::new(KERNELS).expect("the kernel source has no NUL");
    let name = CString::new("ae_kernels.cu").expect("no NUL");
    let nvrtc = |e: result::NvrtcError| fail(format!("{e:?}"));
    let prog = result::create_program(&src, Some(&name)).map_err(nvrtc)?;
    // SAFETY: `prog` was created above and is destroyed once, at the end.
    let image = unsafe {
        match result::compile_program(prog, &options) {
            Err(e) => {
                let log = result::get_program_log(prog)
                    .map(|l| CStr::from_ptr(l.as_ptr()).to_string_lossy().into_owned())
                    .unwrap_or_default();
                Err(fail(format!(
                    "our kernels did not compile ({e:?}, options {options:?}): {log}"
                )))
            }
            Ok(()) if arch.is_some() => {
                let mut size = 0usize;
                sys::nvrtcGetCUBINSize(prog, &mut size)
                    .result()
                    .map_err(nvrtc)
                    .and_then(|()| {
                        let mut bytes = vec![0u8; size];
                        sys::nvrtcGetCUBIN(prog, bytes.as_mut_ptr().cast())
                            .result()
                            .map_err(nvrtc)
                            .map(|()| Image::Cubin(bytes))
                    })
            }
            Ok(()) => result::get_ptx(prog)
                .map_err(nvrtc)
                .map(|p| Image::Ptx(CStr::from_ptr(p.as_ptr()).to_string_lossy().into_owned())),
        }
    };
    // SAFETY: as above.
    let _ = unsafe { result::destroy_program(prog) };
    image
}

/// Whether an NVIDIA driver loads here and sees at least one GPU.
pub fn gpu_present() -> bool {
    // SAFETY: only tries to open the shared library. Without this check cudarc panics.
    let driver = unsafe { cudarc::driver::sys::is_culib_present() };
    driver && CudaContext::device_count().is_ok_and(|n| n > 0)
}

impl Gpu {
    /// Opens GPU `ordinal`: checks that the driver, cuBLAS and NVRTC load and that the GPU exists,
    /// then compiles and loads our kernels. Each failure is an error naming what is missing.
    pub fn open(ordinal: usize) -> Result<Gpu> {
        let label = format!("cuda:{ordinal}");
        let fail = |reason: String| Error::device(label.clone(), reason);
        // SAFETY: only tries to open the shared libraries. Without this check cudarc panics.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(fail(
                "no NVIDIA driver was found (libcuda.so did not load); use the CPU (--device cpu)"
                    .into(),
            ));
        }
        let count = match CudaContext::device_count() {
            Ok(n) => n.max(0) as usize,
            Err(e) if e.0 == cudarc::driver::sys::CUresult::CUDA_ERROR_NO_DEVICE => 0,
            Err(e) => {
                return Err(fail(format!(
                    "the NVIDIA driver did not start ({e}); use the CPU (--device cpu)"
                )))
            }
        };
        if ordinal >= count {
            return Err(fail(match count {
                0 => "the driver sees no GPU; use the CPU (--device cpu)".into(),
                n => format!("this machine has {n} GPU(s), numbered from 0"),
            }));
        }
        // SAFETY: as above.
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err(fail(
                "cuBLAS (libcublas.so.13) was not found: install CUDA 13's cuBLAS or add its folder to LD_LIBRARY_PATH".into(),
            ));
        }
        if !nvrtc_available() {
            return Err(fail(
                "NVRTC (libnvrtc.so.13) was not found: install CUDA 13's NVRTC or add its folder to LD_LIBRARY_PATH".into(),
            ));
        }
        let driver = |e: cudarc::driver::DriverError| fail(format!("CUDA driver error {e}"));
        let ctx = CudaContext::new(ordinal).map_err(driver)?;
        let name = ctx.name().unwrap_or_else(|_| "unnamed GPU".into());
        // Machine code for this GPU; PTX for the driver to compile when NVRTC does not know it.
        let cc = ctx.compute_capability().map_err(driver)?;
        let image = compile_kernels(Some(cc)).or_else(|cubin| {
            compile_kernels(None).map_err(|ptx| match (cubin, ptx) {
                (Error::Device { reason: a, .. }, Error::Device { reason: b, .. }) => {
                    fail(format!("{a}; as PTX: {b}"))
                }
                (_, other) => other,
            })
        })?;
        // Everything runs on this one stream, in order, so buffers need no events to order their
        // uses across streams (cudarc records two per kernel argument otherwise).
        // SAFETY: no buffer of this context is ever used on another stream.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(driver)?;
        let blas = CudaBlas::new(stream.clone()).map_err(|e| fail(format!("cuBLAS: {e}")))?;
        let mut workspace = stream.alloc_zeros::<u8>(CUBLAS_WORKSPACE).map_err(driver)?;
        {
            let (ptr, _sync) = workspace.device_ptr_mut(&stream);
            // SAFETY: the buffer outlives the handle (field order in `Gpu`), and the handle's
            // stream, set by CudaBlas::new, is the only one that uses it.
            unsafe {
                cudarc::cublas::sys::cublasSetWorkspace_v2(
                    *blas.handle(),
                    ptr as *mut std::ffi::c_void,
                    CUBLAS_WORKSPACE,
                )
            }
            .result()
            .map_err(|e| fail(format!("cuBLAS workspace: {e:?}")))?;
        }
        let module = ctx.load_module(image.into_module_source()).map_err(|e| {
            fail(format!(
                "CUDA driver error {e} loading our kernels compiled for sm_{}{}",
                cc.0, cc.1
            ))
        })?;
        let f = |name: &str| module.load_function(name).map_err(driver);
        let k = Kernels {
            gather_rows: f("gather_rows")?,
            bias_act: f("bias_act")?,
            act_out: f("act_out")?,
            permute_chw: f("permute_chw")?,
            im2col: f("im2col")?,
            col2im: f("col2im")?,
            to_patch_order: f("to_patch_order")?,
            add_from_patch_order: f("add_from_patch_order")?,
            max_pool: f("max_pool")?,
            max_pool_backward: f("max_pool_backward")?,
            upsample: f("upsample")?,
            upsample_backward: f("upsample_backward")?,
            reparam: f("reparam")?,
            reparam_backward: f("reparam_backward")?,
            kl_gauss_units: f("kl_gauss_units")?,
            kl_gauss_total: f("kl_gauss_total")?,
            kl_gauss_grad: f("kl_gauss_grad")?,
            act_backward: f("act_backward")?,
            column_sums_add: f("column_sums_add")?,
            mse_loss: f("mse_loss")?,
            bce_loss: f("bce_loss")?,
            sum_partials: f("sum_partials")?,
            adam: f("adam")?,
            sgd: f("sgd")?,
            weight_decay: f("weight_decay")?,
            l1_code: f("l1_code")?,
            column_means: f("column_means")?,
            kl_units: f("kl_units")?,
            contractive_units: f("contractive_units")?,
            contractive_weight_grad: f("contractive_weight_grad")?,
            binarize: f("binarize")?,
            add_rows: f("add_rows")?,
            corrupt: f("corrupt")?,
        };
        Ok(Gpu {
            label,
            name,
            stream,
            blas,
            k,
            precision: Precision::Fp32,
            _workspace: workspace,
        })
    }

    /// `cuda:0 (NVIDIA H200)`, with `, tf32 matrix products` when so set.
    pub fn describe(&self) -> String {
        match self.precision {
            Precision::Fp32 => format!("{} ({})", self.label, self.name),
            p => format!("{} ({}), {p} matrix products", self.label, self.name),
        }
    }

    /// How cuBLAS computes the matrix products from now on: fp32 (its default math) or on tensor
    /// cores with TF32 inputs. Every other kernel computes in fp32 either way.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        let mode = match precision {
            Precision::Fp32 => cudarc::cublas::sys::cublasMath_t::CUBLAS_DEFAULT_MATH,
            Precision::Tf32 => cudarc::cublas::sys::cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH,
        };
        // SAFETY: the handle is live while `self` is; setting its math mode has no other effect.
        let status = unsafe { cudarc::cublas::sys::cublasSetMathMode(*self.blas.handle(), mode) };
        if status != cudarc::cublas::sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
            return Err(self.err(format!("cuBLAS math mode {precision}: {status:?}")));
        }
        self.precision = precision;
        Ok(())
    }

    /// Free and total memory in bytes.
    pub fn memory(&self) -> Result<(usize, usize)> {
        self.stream
            .context()
            .mem_get_info()
            .map_err(|e| self.err(e))
    }

    /// A driver error as ours.
    pub(crate) fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::device(self.label.clone(), format!("CUDA error {e}"))
    }

    /// A buffer of `len` zeros; out of memory is an error saying how much was asked.
    pub(crate) fn zeros<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        len: usize,
    ) -> Result<CudaSlice<T>> {
        self.stream.alloc_zeros::<T>(len.max(1)).map_err(|e| {
            Error::device(
                self.label.clone(),
                format!(
                    "could not allocate {:.1} MB on the GPU ({e}); try a smaller --batch-size",
                    (len * std::mem::size_of::<T>()) as f64 / 1e6
                ),
            )
        })
    }

    /// Grows `buf` to hold at least `len` elements (contents are lost when it grows).
    pub(crate) fn ensure<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        buf: &mut CudaSlice<T>,
        len: usize,
    ) -> Result<()> {
        if buf.len() < len {
            *buf = self.zeros(len)?;
        }
        Ok(())
    }

    /// Copies `host` into a new device buffer.
    pub(crate) fn upload(&self, host: &[f32]) -> Result<CudaSlice<f32>> {
        let mut d = self.zeros::<f32>(host.len())?;
        if !host.is_empty() {
            self.stream
                .memcpy_htod(host, &mut d)
                .map_err(|e| self.err(e))?;
        }
        Ok(d)
    }

    /// Row-major `c[m, n] (+)= op(a)[m, k] · op(b)[k, n]`, the CPU engine's `matmul` contract:
    /// `a` is stored `[m, k]` (or `[k, m]` when `ta`), `b` `[k, n]` (or `[n, k]` when `tb`).
    ///
    /// cuBLAS is column-major: a row-major matrix is its transpose there, so this computes
    /// `cᵀ = op(b)ᵀ · op(a)ᵀ` with the operands swapped.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn matmul<A: DevicePtr<f32>, B: DevicePtr<f32>, C: DevicePtrMut<f32>>(
        &self,
        c: &mut C,
        (m, n, k): (usize, usize, usize),
        a: &A,
        ta: bool,
        b: &B,
        tb: bool,
        accumulate: bool,
    ) -> Result<()> {
        debug_assert!(c.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
        let op = |t: bool| {
            if t {
                cublasOperation_t::CUBLAS_OP_T
            } else {
                cublasOperation_t::CUBLAS_OP_N
            }
        };
        let cfg = GemmConfig {
            transa: op(tb),
            transb: op(ta),
            m: n as i32,
            n: m as i32,
            k: k as i32,
            alpha: 1.0f32,
            lda: (if tb { k } else { n }) as i32,
            ldb: (if ta { m } else { k }) as i32,
            beta: if accumulate { 1.0 } else { 0.0 },
            ldc: n as i32,
        };
        // SAFETY: the shapes above fit the buffers (checked in debug builds).
        unsafe { self.blas.gemm(cfg, b, a, c) }.map_err(|e| self.err(format!("cuBLAS {e}")))
    }
}

/// A grid-stride launch over `n` elements.
pub(crate) fn grid(n: usize) -> LaunchConfig {
    let blocks = (n as u64)
        .div_ceil(THREADS as u64)
        .clamp(1, MAX_BLOCKS as u64) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The kernels' code for an activation, and its slope (leaky ReLU).
pub(crate) fn act_code(a: Activation) -> (i32, f32) {
    match a {
        Activation::Relu => (0, 0.0),
        Activation::LeakyRelu { slope } => (1, slope),
        Activation::Sigmoid => (2, 0.0),
        Activation::Tanh => (3, 0.0),
        Activation::Linear => (4, 0.0),
    }
}
