//! PNG pictures of images: grids of originals above their reconstructions.
use std::path::Path;

use anyhow::{bail, Result};
use image::{ImageBuffer, Rgb};

/// The value drawn white: 255 for 8-bit data, else 1 (data in [0, 1]).
pub fn pixel_max(source: ae_data::samples::SourceType) -> f32 {
    if source == ae_data::samples::SourceType::U8 {
        255.0
    } else {
        1.0
    }
}

/// Examples per row of a grid.
pub const PER_ROW: usize = 8;

/// Scales each tile of `d` values to its own range [0, 1] (filters, activation maxima: only the
/// pattern matters, not the scale).
pub fn normalize_tiles(values: &[f32], d: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(values.len());
    for row in values.chunks_exact(d) {
        let (lo, hi) = row
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let span = (hi - lo).max(f32::MIN_POSITIVE);
        out.extend(row.iter().map(|&v| (v - lo) / span));
    }
    out
}

/// Writes a grid where each row of `per_row` examples from `layers[0]` (originals) has the same
/// examples of the other layers (reconstructions; or noisy inputs, then reconstructions) directly
/// below.
///
/// `shape` is one example's `[C, H, W]` (C = 1 or 3); values are in the data's units, with
/// `pixel_max` the value drawn white (255 for 8-bit data); values outside are clamped.
pub fn grid(
    path: &Path,
    shape: &[usize],
    layers: &[&[f32]],
    pixel_max: f32,
    per_row: usize,
) -> Result<()> {
    let bytes = grid_png(shape, layers, pixel_max, per_row)?;
    ae_core::run::io::write_atomic(path, &bytes)?;
    Ok(())
}

/// [`grid`] as PNG bytes.
pub fn grid_png(
    shape: &[usize],
    layers: &[&[f32]],
    pixel_max: f32,
    per_row: usize,
) -> Result<Vec<u8>> {
    let side = shape.iter().skip(1).copied().max().unwrap_or(1).max(1);
    // Small images (28×28) are drawn larger so that a grid is readable as it is.
    let zoom = (64 / side).clamp(1, 4) as u32;
    grid_png_zoomed(shape, layers, pixel_max, per_row, zoom)
}

/// [`grid_png`] with each pixel drawn as a `zoom` × `zoom` square.
pub fn grid_png_zoomed(
    shape: &[usize],
    layers: &[&[f32]],
    pixel_max: f32,
    per_row: usize,
    zoom: u32,
) -> Result<Vec<u8>> {
    let per_row = per_row.max(1);
    let originals = layers.first().copied().unwrap_or(&[]);
    let k = layers.len() as u32;
    let [c, h, w] = shape else {
        bail!("a picture needs examples of shape [C, H, W], got {shape:?}")
    };
    let (c, h, w) = (*c, *h, *w);
    if c != 1 && c != 3 {
        bail!("a picture needs 1 or 3 channels, got {c}");
    }
    let d = c * h * w;
    let n = originals.len() / d;
    if n == 0 {
        bail!("no example to draw");
    }
    let zoom = zoom.max(1);
    let cols = n.min(per_row);
    let block_rows = n.div_ceil(per_row);
    let gap = 2u32;
    let cell_w = w as u32 * zoom + gap;
    let cell_h = h as u32 * zoom + gap;
    let width = cols as u32 * cell_w + gap;
    let height = block_rows as u32 * (k * cell_h + gap) + gap;
    let mut img: ImageBuffer<Rgb<u8>, Vec<u8>> =
        ImageBuffer::from_pixel(width, height, Rgb([40, 40, 40]));
    let to_u8 = |v: f32| ((v / pixel_max).clamp(0.0, 1.0) * 255.0).round() as u8;
    for i in 0..n {
        let (br, col) = (i / per_row, i % per_row);
        let x0 = gap + col as u32 * cell_w;
        let y0 = gap + br as u32 * (k * cell_h + gap);
        for (k, src) in layers.iter().enumerate() {
            let ex = &src[i * d..(i + 1) * d];
            let yk = y0 + k as u32 * cell_h;
            for y in 0..h {
                for x in 0..w {
                    let px = |ch: usize| to_u8(ex[ch * h * w + y * w + x]);
                    let rgb = if c == 1 {
                        [px(0); 3]
                    } else {
                        [px(0), px(1), px(2)]
                    };
                    for dy in 0..zoom {
                        for dx in 0..zoom {
                            img.put_pixel(
                                x0 + x as u32 * zoom + dx,
                                yk + y as u32 * zoom + dy,
                                Rgb(rgb),
                            );
                        }
                    }
                }
            }
        }
    }
    png_bytes(&img)
}

/// An RGB image encoded as PNG.
pub fn png_bytes(img: &ImageBuffer<Rgb<u8>, Vec<u8>>) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    Ok(bytes)
}
