//! An autoencoder as an image codec, beside JPEG: how many bits per pixel each needs for a given
//! quality (the rate–distortion trade-off). The seeds claim autoencoders compress data like their
//! training set reasonably well and are poor general-purpose compressors; this measures it.
//!
//! The autoencoder's stream: each code unit quantized uniformly over its range on the training
//! codes (2^bits levels), then range-coded (the `constriction` crate) with one categorical model
//! per unit fitted on the training codes. Its size is the coded stream plus the model (every
//! level's probability at the coder's 24-bit precision, and each unit's range); the decoder
//! network itself is not counted, as JPEG's decoder is not. JPEG is the `image` crate's baseline
//! encoder; its size is counted with and without the file's headers. Distortion: PSNR and SSIM
//! (`image-compare`, 8×8 windows) of 8-bit images, mean over examples.
use constriction::stream::model::DefaultContiguousCategoricalEntropyModel;
use constriction::stream::queue::{DefaultRangeDecoder, DefaultRangeEncoder};
use constriction::stream::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::engine::tensor::Tensor;
use crate::model::Autoencoder;
use crate::{Error, Result};

/// Bits of the coder's fixed-point probabilities (constriction's default models).
const PRECISION_BITS: usize = 24;

/// Uniform quantization of each code unit over its range on the training codes.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantizer {
    /// Bits per code value: 2^bits levels.
    pub bits: u32,
    /// Each unit's smallest training value.
    pub lo: Vec<f32>,
    /// Each unit's largest training value.
    pub hi: Vec<f32>,
}

impl Quantizer {
    /// Fits the ranges of `codes` (`[N, K]`).
    pub fn fit(codes: &Tensor, bits: u32) -> Result<Self> {
        if !(1..=16).contains(&bits) {
            return Err(Error::config(
                "bits",
                format!("must be 1 to 16, got {bits}"),
            ));
        }
        let k = codes.cols();
        let (mut lo, mut hi) = (vec![f32::INFINITY; k], vec![f32::NEG_INFINITY; k]);
        for row in codes.data().chunks_exact(k.max(1)) {
            for (j, &v) in row.iter().enumerate() {
                lo[j] = lo[j].min(v);
                hi[j] = hi[j].max(v);
            }
        }
        for (l, h) in lo.iter_mut().zip(hi.iter_mut()) {
            if !l.is_finite() || !h.is_finite() {
                (*l, *h) = (0.0, 0.0);
            }
        }
        Ok(Quantizer { bits, lo, hi })
    }

    /// Levels per unit.
    pub fn levels(&self) -> usize {
        1 << self.bits
    }

    /// The level of each value of `codes` (clamped into the fitted range), row-major.
    pub fn quantize(&self, codes: &Tensor) -> Vec<u32> {
        let top = (self.levels() - 1) as f32;
        let k = self.lo.len();
        codes
            .data()
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let (l, h) = (self.lo[i % k], self.hi[i % k]);
                if h <= l {
                    return 0;
                }
                (((v - l) / (h - l)).clamp(0.0, 1.0) * top).round() as u32
            })
            .collect()
    }

    /// The code values levels `q` stand for, `[N, K]`.
    pub fn dequantize(&self, q: &[u32]) -> Tensor {
        let top = (self.levels() - 1) as f32;
        let k = self.lo.len();
        let data = q
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let (l, h) = (self.lo[i % k], self.hi[i % k]);
                l + (h - l) * v as f32 / top.max(1.0)
            })
            .collect::<Vec<f32>>();
        Tensor::from_vec(&[q.len() / k.max(1), k], data)
    }

    /// Bytes to send the ranges (two f32 per unit).
    pub fn bytes(&self) -> usize {
        8 * self.lo.len()
    }
}

/// One categorical distribution over the levels per code unit, for the range coder.
#[derive(Clone, Debug)]
pub struct CodeModel {
    /// Per unit, the probability of each level.
    pub probs: Vec<Vec<f64>>,
    models: Vec<DefaultContiguousCategoricalEntropyModel>,
}

impl CodeModel {
    /// Fits each unit's level frequencies on training levels `q` (`[N, units]` row-major), each
    /// count plus ½ (the Krichevsky–Trofimov estimate: a level never seen in training still gets
    /// a code).
    pub fn fit(q: &[u32], units: usize, levels: usize) -> Result<Self> {
        let mut counts = vec![vec![0.5f64; levels]; units];
        for (i, &v) in q.iter().enumerate() {
            counts[i % units][(v as usize).min(levels - 1)] += 1.0;
        }
        let probs: Vec<Vec<f64>> = counts
            .into_iter()
            .map(|c| {
                let total: f64 = c.iter().sum();
                c.into_iter().map(|v| v / total).collect()
            })
            .collect();
        let models = probs
            .iter()
            .map(|p| {
                DefaultContiguousCategoricalEntropyModel::from_floating_point_probabilities_perfect(
                    p,
                )
                .map_err(|()| Error::config("bits", "too many levels for the coder's precision"))
            })
            .collect::<Result<_>>()?;
        Ok(CodeModel { probs, models })
    }

    /// Bytes to send the model: every level's probability at the coder's precision.
    pub fn bytes(&self) -> usize {
        self.probs.iter().map(|p| p.len()).sum::<usize>() * PRECISION_BITS / 8
    }

    /// The information content of `q` under the model, in bits: the bound a perfect entropy coder
    /// reaches.
    pub fn ideal_bits(&self, q: &[u32]) -> f64 {
        let k = self.probs.len();
        q.iter()
            .enumerate()
            .map(|(i, &v)| -self.probs[i % k][v as usize].log2())
            .sum()
    }

    /// Range-codes levels `q` (`[N, units]` row-major).
    pub fn encode(&self, q: &[u32]) -> Result<Vec<u32>> {
        let k = self.models.len();
        let mut enc = DefaultRangeEncoder::new();
        for (i, &v) in q.iter().enumerate() {
            enc.encode_symbol(v as usize, &self.models[i % k])
                .map_err(|e| Error::config("bits", format!("cannot code level {v}: {e:?}")))?;
        }
        enc.into_compressed()
            .map_err(|e| Error::config("bits", format!("cannot finish the stream: {e:?}")))
    }

    /// Decodes `n` rows of levels from `words`.
    pub fn decode(&self, words: Vec<u32>, n: usize) -> Result<Vec<u32>> {
        let k = self.models.len();
        let mut dec = DefaultRangeDecoder::from_compressed(words)
            .map_err(|e| Error::config("bits", format!("cannot read the stream: {e:?}")))?;
        (0..n * k)
            .map(|i| {
                dec.decode_symbol(&self.models[i % k])
                    .map(|s| s as u32)
                    .map_err(|e| Error::config("bits", format!("corrupt stream: {e:?}")))
            })
            .collect()
    }
}

/// One setting of a codec measured on a set of images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    /// `ae` or `jpeg`.
    pub codec: String,
    /// Bits per code value (ae) or quality (jpeg).
    pub setting: u32,
    /// Bits per pixel of the payload: the coded codes (ae), the entropy-coded scan (jpeg).
    pub bpp: f64,
    /// Bits per pixel with what a receiver also needs: the model amortized over the images (ae),
    /// every file's headers (jpeg).
    pub bpp_total: f64,
    /// Mean PSNR over the images, in dB (8-bit pixels; capped at 100 for exact copies).
    pub psnr_db: f64,
    /// Mean SSIM over the images.
    pub ssim: f64,
}

/// 8-bit images: `n` of `channels × height × width` (channels-first, as the data).
#[derive(Clone, Debug)]
pub struct Images {
    /// The pixels, image after image.
    pub pixels: Vec<u8>,
    /// Channels (1 or 3), height, width.
    pub shape: [usize; 3],
}

impl Images {
    /// Images from values in [0, 255] of examples shaped `shape` (`[C, H, W]` or `[H, W]`),
    /// rounded; anything else is refused.
    pub fn from_values(values: &[f32], shape: &[usize]) -> Result<Images> {
        let shape = match *shape {
            [c @ (1 | 3), h, w] => [c, h, w],
            [h, w] => [1, h, w],
            _ => {
                return Err(Error::config(
                    "data",
                    format!("compression compares with JPEG on images of 1 or 3 channels; examples of shape {shape:?} are not"),
                ))
            }
        };
        if let Some(v) = values.iter().find(|v| !(0.0..=255.0).contains(*v)) {
            return Err(Error::config(
                "data",
                format!("compression compares with JPEG on 8-bit images (values 0 to 255); the data holds {v}"),
            ));
        }
        Ok(Images {
            pixels: values.iter().map(|v| v.round() as u8).collect(),
            shape,
        })
    }

    /// Images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.shape.iter().product::<usize>().max(1)
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn pixels_per_image(&self) -> usize {
        self.shape[1] * self.shape[2]
    }

    /// Image `i` as interleaved 8-bit rows (gray, or RGB).
    fn interleaved(&self, i: usize) -> Vec<u8> {
        let [c, h, w] = self.shape;
        let img = &self.pixels[i * c * h * w..(i + 1) * c * h * w];
        (0..h * w)
            .flat_map(|p| (0..c).map(move |ch| img[ch * h * w + p]))
            .collect()
    }

    /// Mean PSNR and SSIM of `other` against these images.
    pub fn distortion(&self, other: &Images) -> Result<(f64, f64)> {
        let [c, h, w] = self.shape;
        let (mut psnr, mut ssim) = (0.0, 0.0);
        for i in 0..self.len() {
            let (a, b) = (self.interleaved(i), other.interleaved(i));
            let mse = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
                .sum::<f64>()
                / a.len() as f64;
            psnr += if mse == 0.0 {
                100.0
            } else {
                (10.0 * (255.0f64 * 255.0 / mse).log10()).min(100.0)
            };
            let score = if c == 1 {
                let (x, y) = (
                    image::GrayImage::from_raw(w as u32, h as u32, a).expect("sizes match"),
                    image::GrayImage::from_raw(w as u32, h as u32, b).expect("sizes match"),
                );
                image_compare::gray_similarity_structure(
                    &image_compare::Algorithm::MSSIMSimple,
                    &x,
                    &y,
                )
            } else {
                let (x, y) = (
                    image::RgbImage::from_raw(w as u32, h as u32, a).expect("sizes match"),
                    image::RgbImage::from_raw(w as u32, h as u32, b).expect("sizes match"),
                );
                image_compare::rgb_similarity_structure(
                    &image_compare::Algorithm::MSSIMSimple,
                    &x,
                    &y,
                )
            }
            .map_err(|e| Error::config("data", format!("SSIM: {e}")))?;
            ssim += score.score;
        }
        let n = self.len().max(1) as f64;
        Ok((psnr / n, ssim / n))
    }
}

/// The autoencoder's rate–distortion points: for each of `bits`, the codes of `x` (scaled as the
/// model takes them; `originals` the same images in 8 bits) quantized with ranges and a model
/// fitted on `train_codes`, range-coded, decoded, checked to round-trip, reconstructed and
/// measured. `to_pixels` turns the model's outputs back into the data's 0–255 units.
pub fn autoencoder_points(
    model: &Autoencoder,
    train_codes: &Tensor,
    x: &Tensor,
    originals: &Images,
    bits: &[u32],
    to_pixels: &dyn Fn(&mut [f32]),
) -> Result<Vec<RatePoint>> {
    let codes = model.codes(x);
    let k = codes.cols();
    let pixels = (originals.len() * originals.pixels_per_image()) as f64;
    let mut out = Vec::new();
    for &b in bits {
        let quant = Quantizer::fit(train_codes, b)?;
        let coder = CodeModel::fit(&quant.quantize(train_codes), k, quant.levels())?;
        let q = quant.quantize(&codes);
        let words = coder.encode(&q)?;
        let payload = 32.0 * words.len() as f64;
        let back = coder.decode(words, codes.rows())?;
        if back != q {
            return Err(Error::config("bits", "the range coder did not round-trip"));
        }
        let mut recon = model.decode_codes(&quant.dequantize(&back)).into_vec();
        to_pixels(&mut recon);
        for v in recon.iter_mut() {
            *v = v.clamp(0.0, 255.0);
        }
        let decoded = Images::from_values(&recon, &originals.shape)?;
        let (psnr_db, ssim) = originals.distortion(&decoded)?;
        let side = 8.0 * (coder.bytes() + quant.bytes()) as f64;
        out.push(RatePoint {
            codec: "ae".into(),
            setting: b,
            bpp: payload / pixels,
            bpp_total: (payload + side) / pixels,
            psnr_db,
            ssim,
        });
    }
    Ok(out)
}

/// JPEG's rate–distortion points: every image encoded at each of `qualities` (1–100) and decoded.
pub fn jpeg_points(originals: &Images, qualities: &[u8]) -> Result<Vec<RatePoint>> {
    use image::ImageEncoder;
    let [c, h, w] = originals.shape;
    let colour = if c == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    let pixels = (originals.len() * originals.pixels_per_image()) as f64;
    let mut out = Vec::new();
    for &quality in qualities {
        let (mut total, mut payload) = (0usize, 0usize);
        let mut decoded = Vec::with_capacity(originals.pixels.len());
        for i in 0..originals.len() {
            let mut file = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut file, quality)
                .write_image(&originals.interleaved(i), w as u32, h as u32, colour)
                .map_err(|e| Error::config("quality", format!("JPEG: {e}")))?;
            total += file.len();
            payload += scan_bytes(&file);
            let img = image::load_from_memory_with_format(&file, image::ImageFormat::Jpeg)
                .map_err(|e| Error::config("quality", format!("JPEG: {e}")))?;
            let raw = if c == 1 {
                img.into_luma8().into_raw()
            } else {
                img.into_rgb8().into_raw()
            };
            // Back to channels-first.
            for ch in 0..c {
                decoded.extend((0..h * w).map(|p| raw[p * c + ch] as f32));
            }
        }
        let back = Images::from_values(&decoded, &originals.shape)?;
        let (psnr_db, ssim) = originals.distortion(&back)?;
        out.push(RatePoint {
            codec: "jpeg".into(),
            setting: quality as u32,
            bpp: 8.0 * payload as f64 / pixels,
            bpp_total: 8.0 * total as f64 / pixels,
            psnr_db,
            ssim,
        });
    }
    Ok(out)
}

/// Both codecs on the same images: `raw` holds them in the data's units (0–255, examples of
/// `shape`), `x` the same scaled as `model` takes them, `scaler` the run's scaling, and
/// `train_codes` the training codes the quantizer and the coder's model are fitted on.
#[allow(clippy::too_many_arguments)]
pub fn rate_distortion(
    model: &Autoencoder,
    scaler: &ae_data::scaling::Scaler,
    train_codes: &Tensor,
    x: &Tensor,
    raw: &[f32],
    shape: &[usize],
    bits: &[u32],
    qualities: &[u8],
) -> Result<Vec<RatePoint>> {
    let originals = Images::from_values(raw, shape)?;
    let mut points = autoencoder_points(model, train_codes, x, &originals, bits, &|v| {
        scaler.inverse(v)
    })?;
    points.extend(jpeg_points(&originals, qualities)?);
    Ok(points)
}

/// Bytes of a JPEG file's entropy-coded scan: after the start-of-scan header, before the end
/// marker (the whole file when the markers are not found).
pub fn scan_bytes(file: &[u8]) -> usize {
    let Some(sos) = file.windows(2).position(|m| m == [0xFF, 0xDA]) else {
        return file.len();
    };
    let Some(len) = file.get(sos + 2..sos + 4) else {
        return file.len();
    };
    let start = sos + 2 + u16::from_be_bytes([len[0], len[1]]) as usize;
    let end = if file.ends_with(&[0xFF, 0xD9]) {
        file.len() - 2
    } else {
        file.len()
    };
    end.saturating_sub(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::{stream, Purpose};
    use rand::Rng as _;

    #[test]
    fn the_range_coder_round_trips_and_stays_within_a_percent_of_the_entropy_bound() {
        // 200,000 values of 4 units from skewed distributions over 16 levels.
        let mut rng = stream(7, Purpose::Step, 0, 0);
        let (n, k, levels) = (50_000usize, 4usize, 16usize);
        let q: Vec<u32> = (0..n * k)
            .map(|i| {
                let u: f64 = rng.random();
                let skew = 1.0 + (i % k) as f64;
                ((u.powf(skew)) * levels as f64).min(levels as f64 - 1.0) as u32
            })
            .collect();
        let model = CodeModel::fit(&q, k, levels).unwrap();
        let words = model.encode(&q).unwrap();
        assert_eq!(model.decode(words.clone(), n).unwrap(), q);
        let coded = 32.0 * words.len() as f64;
        let bound = model.ideal_bits(&q);
        assert!(
            coded <= 1.01 * bound + 64.0 && coded >= bound,
            "coded {coded} bits, entropy bound {bound}"
        );
        // With the model's own size, still within 1% of the bound plus that size.
        let side = 8.0 * model.bytes() as f64;
        assert!(coded + side <= 1.01 * (bound + side) + 64.0);
    }

    #[test]
    fn quantization_spans_each_units_training_range() {
        let codes = Tensor::from_vec(&[3, 2], vec![-1.0, 5.0, 0.0, 5.0, 1.0, 5.0]);
        let q = Quantizer::fit(&codes, 2).unwrap();
        assert_eq!(q.quantize(&codes), vec![0, 0, 2, 0, 3, 0]);
        let back = q.dequantize(&q.quantize(&codes));
        for (g, w) in back
            .data()
            .iter()
            .zip([-1.0, 5.0, 1.0 / 3.0, 5.0, 1.0, 5.0])
        {
            assert!((g - w).abs() < 1e-6, "{:?}", back.data());
        }
        // Outside the training range: clamped to its ends.
        let far = Tensor::from_vec(&[1, 2], vec![9.0, -9.0]);
        assert_eq!(q.quantize(&far), vec![3, 0]);
    }

    #[test]
    fn jpeg_is_measured_with_and_without_headers_and_gets_better_with_quality() {
        // 8 smooth 16×16 gray images.
        let values: Vec<f32> = (0..8 * 256)
            .map(|i| {
                let (n, p) = (i / 256, i % 256);
                (128.0
                    + 100.0
                        * ((p / 16) as f32 * 0.3 + n as f32).sin()
                        * ((p % 16) as f32 * 0.2).cos())
                .round()
            })
            .collect();
        let images = Images::from_values(&values, &[1, 16, 16]).unwrap();
        let pts = jpeg_points(&images, &[10, 90]).unwrap();
        assert!(
            pts[0].bpp < pts[1].bpp && pts[0].psnr_db < pts[1].psnr_db,
            "{pts:?}"
        );
        assert!(pts
            .iter()
            .all(|p| p.bpp_total > p.bpp && p.ssim > 0.0 && p.ssim <= 1.0));
        let (same, _) = images.distortion(&images).unwrap();
        assert_eq!(same, 100.0);
    }
}
