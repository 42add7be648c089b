//! `autoencoder._core`: the Python binding of the library. It only converts: NumPy arrays to
//! examples and back, keyword settings to [`Settings`], library errors to Python exceptions. The
//! estimators users see (scikit-learn and PyOD contracts) are written in Python on top of it
//! (`python/autoencoder`).
use std::path::PathBuf;
use std::sync::Mutex;

use ae_core::ae_data::samples::{Samples, SourceType};
use ae_core::analysis::anomaly::reconstruction_scores;
use ae_core::analysis::inference::{open_gpu, Inference};
use ae_core::cuda::GpuModel;
use ae_core::objective::AutoencoderTask;
use ae_core::run::{Destination, Progress, RunDir, RunMeta, TrainOptions};
use ae_core::training::device::{Device, Precision};
use ae_core::training::fit::{EpochRecord, Outcome};
use ae_core::training::settings::{MissingCells, Settings};
use ae_core::Tensor;
use numpy::{IntoPyArray, PyArray2, PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// A library error as the Python exception a user expects: bad settings or data are a
/// `ValueError`, a file that cannot be read or written an `OSError`.
fn to_py(e: ae_core::Error) -> PyErr {
    match e {
        ae_core::Error::Io { .. } => PyOSError::new_err(e.to_string()),
        ae_core::Error::Collapsed { .. }
        | ae_core::Error::NonFinite { .. }
        | ae_core::Error::Device { .. } => PyRuntimeError::new_err(e.to_string()),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(&other);
            while let Some(s) = source {
                text += &format!(": {s}");
                source = s.source();
            }
            PyValueError::new_err(text)
        }
    }
}

/// Examples from an array of shape (N, D), (N, H, W) or (N, C, H, W); `source` says what the
/// user's array held (`u8`, `f32`, `f64`), which picks the default scaling.
fn samples(x: &PyReadonlyArrayDyn<'_, f32>, source: &str) -> PyResult<Samples> {
    let shape = x.shape();
    let example: Vec<usize> = match shape.len() {
        2 => vec![shape[1]],
        3 => vec![1, shape[1], shape[2]],
        4 => shape[1..].to_vec(),
        n => {
            return Err(PyValueError::new_err(format!(
                "expected an array of shape (N, D), (N, H, W) or (N, C, H, W), got {n} dimensions"
            )))
        }
    };
    if shape[0] == 0 {
        return Err(PyValueError::new_err("the array has no rows"));
    }
    // Row-major and contiguous arrays are read in place; others are copied once into order.
    let data = match x.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => x.as_array().iter().copied().collect(),
    };
    let mut s =
        Samples::from_rows(data, &example).map_err(|e| PyValueError::new_err(e.to_string()))?;
    s.source = match source {
        "u8" => SourceType::U8,
        "f64" => SourceType::F64,
        _ => SourceType::F32,
    };
    Ok(s)
}

/// Prints epochs when asked, and stops training at Ctrl-C.
struct PyProgress {
    verbose: bool,
}

impl Progress for PyProgress {
    fn note(&mut self, text: &str) {
        if self.verbose {
            eprintln!("{text}");
        }
    }
    fn epoch(&mut self, r: &EpochRecord, _: &ae_core::objective::Terms) {
        if self.verbose {
            let val = r
                .val
                .as_ref()
                .map(|v| format!("  val_loss {:.6}", v.total()))
                .unwrap_or_default();
            eprintln!(
                "epoch {:>3}  loss {:.6}{val}  {:.1}s",
                r.epoch,
                r.train.total(),
                r.seconds
            );
        }
    }
    fn stage_epoch(&mut self, stage: usize, r: &EpochRecord) {
        if self.verbose {
            eprintln!(
                "stage {} epoch {:>3}  loss {:.6}",
                stage + 1,
                r.epoch,
                r.train.total()
            );
        }
    }
    fn stop_requested(&self) -> bool {
        // Between steps: a pending Ctrl-C (SIGINT) shows as an error from the signal check.
        Python::attach(|py| py.check_signals().is_err())
    }
}

/// A trained model with the scaling of its data.
struct Fitted {
    settings: Settings,
    meta: RunMeta,
    task: AutoencoderTask,
    /// What training found wrong with the model (dead code units), for Python's warnings.
    warnings: Vec<String>,
    /// The model's copy on a GPU, for inference there, with the device it was opened for.
    gpu: Option<(Device, Mutex<GpuModel>)>,
}

/// `model`'s forward passes on `device` (None: the CPU). A GPU's copy of the model is opened
/// once and kept in `kept` for later calls; `auto` stays on the CPU where no GPU computes it.
fn inference<'a>(
    model: &'a ae_core::Autoencoder,
    kept: &'a mut Option<(Device, Mutex<GpuModel>)>,
    device: Option<&str>,
) -> PyResult<Inference<'a>> {
    let on = self::device(device)?;
    if on == Device::Cpu {
        return Ok(Inference::cpu(model));
    }
    if !matches!(kept, Some((d, _)) if *d == on) {
        let (gpu, _why) = open_gpu(on, model).map_err(to_py)?;
        *kept = gpu.map(|g| (on, Mutex::new(g)));
    }
    Ok(match kept {
        Some((_, g)) => Inference::kept(model, g),
        None => Inference::cpu(model),
    })
}

impl Fitted {
    /// `x` in the model's units, checked against its input.
    fn scaled(&self, x: &PyReadonlyArrayDyn<'_, f32>) -> PyResult<Tensor> {
        let s = samples(x, "f32")?;
        let d: usize = self.meta.input_shape.iter().product();
        if s.features() != d {
            return Err(PyValueError::new_err(format!(
                "X has {} features per example, but the model was fitted on {d}",
                s.features()
            )));
        }
        self.meta.prepare(s).map_err(to_py)
    }
}

/// `values` as an (N, `cols`) array, handed to NumPy without another copy.
fn rows<'py>(py: Python<'py>, cols: usize, values: Vec<f32>) -> Bound<'py, PyArray2<f32>> {
    let n = values.len() / cols.max(1);
    numpy::ndarray::Array2::from_shape_vec((n, cols), values)
        .expect("rows × cols values")
        .into_pyarray(py)
}

/// A trained autoencoder (the engine of `autoencoder.Autoencoder`).
#[pyclass(module = "autoencoder._core", frozen)]
struct Model {
    inner: Mutex<Fitted>,
}

impl Model {
    fn with<R>(&self, f: impl FnOnce(&mut Fitted) -> PyResult<R>) -> PyResult<R> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| PyValueError::new_err("the model was poisoned by a panic"))?;
        f(&mut g)
    }
}

/// Settings from a preset (or the defaults), `adjust`ed, then overlaid with the JSON table of
/// keyword settings and checked; the table comes back too.
fn checked(
    settings_json: &str,
    preset: Option<&str>,
    adjust: impl FnOnce(&mut Settings),
) -> PyResult<(ae_core::Checked, toml::Table)> {
    let table: toml::Table = serde_json::from_str(settings_json)
        .map_err(|e| PyValueError::new_err(format!("settings: {e}")))?;
    let mut settings = match preset {
        Some(name) => name
            .parse::<ae_core::training::presets::Preset>()
            .map_err(to_py)?
            .settings(),
        None => Settings::default(),
    };
    adjust(&mut settings);
    let settings = settings
        .overlay(&table)
        .and_then(Settings::check)
        .map_err(to_py)?;
    Ok((settings, table))
}

/// Options of a training run kept in memory, reporting to `progress`.
fn in_memory(progress: &mut PyProgress, device: Device, precision: Precision) -> TrainOptions<'_> {
    TrainOptions {
        destination: Destination::Memory,
        test: None,
        progress: Some(progress),
        device,
        precision,
    }
}

/// The precision named by `precision` (None: fp32).
fn precision(precision: Option<&str>) -> PyResult<Precision> {
    precision.map_or(Ok(Precision::Fp32), |p| p.parse().map_err(to_py))
}

/// The device named by `device` (None: the CPU).
fn device(device: Option<&str>) -> PyResult<Device> {
    device.map_or(Ok(Device::Cpu), |d| d.parse().map_err(to_py))
}

impl Model {
    /// The model a training run gave, or `KeyboardInterrupt` if it was stopped.
    fn of(trained: ae_core::Trained, settings: &ae_core::Checked) -> PyResult<Model> {
        if trained.outcome == Outcome::Interrupted {
            return Err(PyKeyboardInterrupt::new_err(format!(
                "training stopped at epoch {}, step {}",
                trained.state.epoch + 1,
                trained.state.step
            )));
        }
        Ok(Model {
            inner: Mutex::new(Fitted {
                gpu: None,
                settings: settings.resolved_for(&trained.meta.input_shape),
                meta: trained.meta,
                task: trained.task,
                warnings: trained
                    .code_health
                    .and_then(|h| h.describe())
                    .into_iter()
                    .collect(),
            }),
        })
    }
}

#[pymethods]
impl Model {
    /// Trains a model on `x` with the settings in `settings_json` (keys as `ae train`'s flags,
    /// kebab-case); `source` is what the user's array held (`u8`, `f32`, `f64`).
    #[staticmethod]
    #[pyo3(signature = (x, settings_json, source, preset=None, verbose=false, device=None, precision=None))]
    // One argument per keyword of the Python call, as pyo3 maps them.
    #[allow(clippy::too_many_arguments)]
    fn fit(
        py: Python<'_>,
        x: PyReadonlyArrayDyn<'_, f32>,
        settings_json: &str,
        source: &str,
        preset: Option<&str>,
        verbose: bool,
        device: Option<&str>,
        precision: Option<&str>,
    ) -> PyResult<Model> {
        let on = self::device(device)?;
        let precision = self::precision(precision)?;
        let (settings, table) = checked(settings_json, preset, |s| s.data = "array".into())?;
        let data = samples(&x, source)?;
        let settings = if settings.missing == MissingCells::Allow && !table.contains_key("epochs") {
            let mut s = settings.into_inner();
            s.epochs = s.epochs_for_incomplete(data.n);
            s.check().map_err(to_py)?
        } else {
            settings
        };
        let trained = py
            .detach(|| {
                ae_core::train(
                    &settings,
                    data,
                    in_memory(&mut PyProgress { verbose }, on, precision),
                )
            })
            .map_err(to_py)?;
        Model::of(trained, &settings)
    }

    /// Trains a model on data read from its files as training goes (`ae train --stream`), so
    /// memory stays constant in the data's size: `data` is a spec (`npy:FILE`, `npy:FOLDER` of
    /// shards, `idx:IMAGES`, `parquet:PATH`, `images:DIR`); settings as for `fit`.
    #[staticmethod]
    #[pyo3(signature = (data, settings_json, preset=None, verbose=false, device=None, precision=None))]
    fn fit_stream(
        py: Python<'_>,
        data: &str,
        settings_json: &str,
        preset: Option<&str>,
        verbose: bool,
        device: Option<&str>,
        precision: Option<&str>,
    ) -> PyResult<Model> {
        let on = self::device(device)?;
        let precision = self::precision(precision)?;
        let (settings, _) = checked(settings_json, preset, |s| {
            s.data = data.into();
            s.stream = true;
        })?;
        let read = |e: ae_core::ae_data::Error| {
            to_py(ae_core::Error::Data {
                context: format!("cannot read {data}: {e}"),
                source: e,
            })
        };
        let spec: ae_core::ae_data::spec::DataSpec = data.parse().map_err(read)?;
        let source = spec
            .stream(&settings.csv_options().map_err(to_py)?)
            .map_err(read)?;
        let trained = py
            .detach(|| {
                ae_core::run::train_streamed(
                    &settings,
                    source,
                    in_memory(&mut PyProgress { verbose }, on, precision),
                )
            })
            .map_err(to_py)?;
        Model::of(trained, &settings)
    }

    /// Reads a run folder written by `ae train` (or by `save`).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Model> {
        let (settings, meta, task) = RunDir::open(&path).and_then(|r| r.load()).map_err(to_py)?;
        Ok(Model {
            inner: Mutex::new(Fitted {
                gpu: None,
                settings,
                meta,
                task,
                warnings: Vec::new(),
            }),
        })
    }

    /// Writes a run folder that `ae eval`, `ae report` and the other commands read; `force`
    /// replaces a run already there.
    #[pyo3(signature = (path, force=false))]
    fn save(&self, path: PathBuf, force: bool) -> PyResult<()> {
        self.with(|f| {
            let run = RunDir::create(&path, force).map_err(to_py)?;
            run.write_settings(&f.settings).map_err(to_py)?;
            run.write_meta(&f.meta).map_err(to_py)?;
            run.save_model(&f.task.model.params).map_err(to_py)
        })
    }

    /// What training found wrong with the model (dead or constant code units), in words.
    fn warnings(&self) -> PyResult<Vec<String>> {
        self.with(|f| Ok(f.warnings.clone()))
    }

    /// The settings, as `config.toml` holds them.
    fn settings_toml(&self) -> PyResult<String> {
        self.with(|f| Ok(f.settings.to_toml()))
    }

    /// The shape of one example.
    fn input_shape(&self) -> PyResult<Vec<usize>> {
        self.with(|f| Ok(f.meta.input_shape.clone()))
    }

    /// Values per code.
    fn code_size(&self) -> PyResult<usize> {
        self.with(|f| Ok(f.task.model.config.code_size()))
    }

    /// True for a variational autoencoder.
    fn variational(&self) -> PyResult<bool> {
        self.with(|f| Ok(f.task.model.config.variational))
    }

    /// Threads the model computes with.
    fn threads(&self) -> PyResult<usize> {
        self.with(|f| Ok(f.settings.threads))
    }

    /// The model as an ONNX graph (`part`: encoder, decoder or autoencoder), with the data's
    /// scaling built in when `with_scaling`.
    fn onnx<'py>(
        &self,
        py: Python<'py>,
        part: &str,
        with_scaling: bool,
    ) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        self.with(|f| {
            let part = part.parse().map_err(to_py)?;
            let scaler = with_scaling.then_some(&f.meta.scaler);
            let bytes =
                ae_core::export::onnx::export(&f.task.model, scaler, part).map_err(to_py)?;
            Ok(pyo3::types::PyBytes::new(py, &bytes))
        })
    }

    /// The model as a PyTorch module: (Python source, safetensors bytes of its weights), the
    /// module named `name`, with the data's scaling built in when `with_scaling`.
    fn pytorch<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        with_scaling: bool,
    ) -> PyResult<(String, Bound<'py, pyo3::types::PyBytes>)> {
        self.with(|f| {
            let scaler = with_scaling.then_some(&f.meta.scaler);
            let e = ae_core::export::pytorch::export(
                &f.task.model,
                scaler,
                "a model trained with the autoencoder package",
                name,
            )
            .map_err(to_py)?;
            let named: Vec<_> = e.tensors.iter().map(|(n, t)| (n.clone(), t)).collect();
            let bytes =
                ae_core::run::io::to_safetensors(&named, Default::default()).map_err(to_py)?;
            Ok((e.source, pyo3::types::PyBytes::new(py, &bytes)))
        })
    }

    /// Codes of `x`, (N, code), computed on `device` (None: the CPU).
    #[pyo3(signature = (x, device=None))]
    fn transform<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
        device: Option<&str>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        self.with(|f| {
            let x = f.scaled(&x)?;
            let on = inference(&f.task.model, &mut f.gpu, device)?;
            let codes = py.detach(|| on.codes(&x)).map_err(to_py)?;
            Ok(rows(py, codes.cols(), codes.into_vec()))
        })
    }

    /// Reconstructions of `x` in the data's units, (N, features), computed on `device`.
    #[pyo3(signature = (x, device=None))]
    fn reconstruct<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
        device: Option<&str>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        self.with(|f| {
            let x = f.scaled(&x)?;
            let on = inference(&f.task.model, &mut f.gpu, device)?;
            let out = py
                .detach(|| ae_core::analysis::metrics::reconstructed(&on, &f.meta.scaler, &x))
                .map_err(to_py)?;
            Ok(rows(py, x.cols(), out))
        })
    }

    /// Decodings of codes `z` (N, code) in the data's units, (N, features), computed on
    /// `device`.
    #[pyo3(signature = (z, device=None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        z: PyReadonlyArrayDyn<'py, f32>,
        device: Option<&str>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        self.with(|f| {
            let k = f.task.model.config.code_size();
            let shape = z.shape().to_vec();
            if shape.len() != 2 || shape[1] != k {
                return Err(PyValueError::new_err(format!(
                    "codes must have shape (N, {k}), got {shape:?}"
                )));
            }
            let z = Tensor::from_vec(&shape, z.as_array().iter().copied().collect());
            let on = inference(&f.task.model, &mut f.gpu, device)?;
            let mut out = py.detach(|| on.decode_codes(&z)).map_err(to_py)?.into_vec();
            f.meta.scaler.inverse(&mut out);
            let d = f.task.model.config.input_features();
            Ok(rows(py, d, out))
        })
    }

    /// Each example's mean squared reconstruction error in the model's units (higher is more
    /// anomalous).
    #[pyo3(signature = (x, device=None))]
    fn scores<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
        device: Option<&str>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        self.with(|f| {
            let x = f.scaled(&x)?;
            let on = inference(&f.task.model, &mut f.gpu, device)?;
            let (s, _) = py
                .detach(|| reconstruction_scores(&on, &x, false))
                .map_err(to_py)?;
            Ok(numpy::ndarray::ArrayD::from_shape_vec(vec![s.len()], s)
                .expect("one score per row")
                .into_pyarray(py))
        })
    }

    /// `n` draws from a VAE's prior, decoded, in the data's units.
    #[pyo3(signature = (n, seed=0, device=None))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        seed: u64,
        device: Option<&str>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        self.with(|f| {
            let on = inference(&f.task.model, &mut f.gpu, device)?;
            let draws = py
                .detach(|| ae_core::analysis::generate::prior_draws(&on, n, seed))
                .map_err(to_py)?;
            let cols = draws.cols();
            let mut out = draws.into_vec();
            f.meta.scaler.inverse(&mut out);
            Ok(rows(py, cols, out))
        })
    }

    /// A VAE's importance-weighted estimate of log p(x) per example, in nats (`samples` draws
    /// each).
    #[pyo3(signature = (x, samples=1000, seed=0))]
    fn log_likelihood<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
        samples: usize,
        seed: u64,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        self.with(|f| {
            if !f.task.model.config.variational {
                return Err(PyValueError::new_err(
                    "log_likelihood needs a variational autoencoder (model=\"vae\")",
                ));
            }
            let x = f.scaled(&x)?;
            let (loss, logvar) = (f.task.objective.loss, f.task.log_variance());
            let model = &mut f.task.model;
            let nll = py.detach(|| {
                ae_core::model::vae::importance_weighted_nll(model, loss, logvar, &x, samples, seed)
            });
            let ll: Vec<f64> = nll.iter().map(|v| -v).collect();
            Ok(numpy::ndarray::ArrayD::from_shape_vec(vec![ll.len()], ll)
                .expect("one value per row")
                .into_pyarray(py))
        })
    }
}

/// The names and defaults of every setting, as `config.toml` writes them (TOML text).
#[pyfunction]
fn default_settings() -> String {
    Settings::default().to_toml()
}

/// The settings of a preset (TOML text).
#[pyfunction]
fn preset_settings(name: &str) -> PyResult<String> {
    let p: ae_core::training::presets::Preset = name.parse().map_err(to_py)?;
    Ok(p.settings().to_toml())
}

/// The Python module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(default_settings, m)?)?;
    m.add_function(wrap_pyfunction!(preset_settings, m)?)?;
    Ok(())
}
