//! `images:DIR[,WxH][,gray|rgb]`: a folder of PNG or JPEG images, like Keras'
//! `image_dataset_from_directory` or torchvision's `ImageFolder`: subfolders (sorted by name) are
//! classes, and their index is the label; images directly in DIR are unlabelled. Images are
//! channels-first (`[C, H, W]`) u8 values as f32.
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, ImageReader, Limits};

use crate::error::{Error, Result};
use crate::samples::{Samples, SourceType};

/// Colour handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    /// One channel.
    Gray,
    /// Three channels.
    Rgb,
}

/// Options of an `images:` spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderOptions {
    /// Resize every image to (width, height); none: all images must share the first one's size.
    pub size: Option<(u32, u32)>,
    /// Channels; none: RGB if any image has colour, else grey.
    pub color: Option<Color>,
}

/// Largest image side we decode, and the most a decoder may allocate for one image.
const MAX_SIDE: u32 = 16384;
const MAX_DECODE_BYTES: u64 = 512 << 20;
/// Largest data set (in f32 values) we build from a folder: 8 GiB.
const MAX_VALUES: u64 = 2 << 30;

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

fn list(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.is_dir() {
            dirs.push(p);
        } else if is_image(&p) {
            files.push(p);
        }
    }
    files.sort();
    dirs.sort();
    Ok((files, dirs))
}

fn format_error(path: &Path, reason: String) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        offset: None,
        reason,
    }
}

fn decode(path: &Path) -> Result<DynamicImage> {
    let mut reader = ImageReader::open(path)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?
        .with_guessed_format()
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader
        .decode()
        .map_err(|e| format_error(path, format!("cannot decode the image: {e}")))
}

/// The image files of `dir` in order, and their labels when it holds class subfolders.
fn files_and_labels(dir: &Path) -> Result<(Vec<PathBuf>, Option<Vec<u32>>)> {
    let (files, dirs) = list(dir)?;
    let (files, labels): (Vec<PathBuf>, Option<Vec<u32>>) = match (files.is_empty(), dirs.len()) {
        (false, 0) => (files, None),
        (true, d) if d > 0 => {
            let mut all = Vec::new();
            let mut labels = Vec::new();
            for (class, sub) in dirs.iter().enumerate() {
                let (f, _) = list(sub)?;
                labels.extend(std::iter::repeat_n(class as u32, f.len()));
                all.extend(f);
            }
            (all, Some(labels))
        }
        (false, _) => {
            return Err(format_error(
                dir,
                "holds both images and subfolders; put every image in a class subfolder, or \
                 none"
                    .into(),
            ))
        }
        _ => return Err(format_error(dir, "holds no PNG or JPEG image".into())),
    };
    if files.is_empty() {
        return Err(format_error(
            dir,
            "its class folders hold no PNG or JPEG image".into(),
        ));
    }
    Ok((files, labels))
}

/// Writes `img`'s pixels into `out` (`C·H·W` values) as channels-first f32 values of `color`.
fn pixels(img: &DynamicImage, color: Color, out: &mut [f32]) {
    match color {
        Color::Gray => {
            for (o, &v) in out.iter_mut().zip(img.to_luma8().as_raw()) {
                *o = v as f32;
            }
        }
        Color::Rgb => {
            let rgb = img.to_rgb8();
            let raw = rgb.as_raw();
            let plane = raw.len() / 3;
            for ch in 0..3 {
                let dst = &mut out[ch * plane..(ch + 1) * plane];
                for (o, &v) in dst.iter_mut().zip(raw.iter().skip(ch).step_by(3)) {
                    *o = v as f32;
                }
            }
        }
    }
}

/// `img` at `size`: resized when `resize`, else an error naming `path` if it differs.
fn sized(
    img: DynamicImage,
    path: &Path,
    dir: &Path,
    (w, h): (u32, u32),
    resize: bool,
) -> Result<DynamicImage> {
    if (img.width(), img.height()) == (w, h) {
        return Ok(img);
    }
    if !resize {
        return Err(format_error(
            path,
            format!(
                "is {}×{} but the first image is {w}×{h}; give a size to resize \
                 every image, e.g. images:{},{w}x{h}",
                img.width(),
                img.height(),
                dir.display()
            ),
        ));
    }
    Ok(img.resize_exact(w, h, FilterType::Triangle))
}

/// Reads the folder.
pub fn read(dir: &Path, opts: &FolderOptions) -> Result<Samples> {
    let (files, labels) = files_and_labels(dir)?;
    let mut images = Vec::with_capacity(files.len());
    let mut size = opts.size;
    // Decoded images are held until all are read: bound what they take as they come, so that a
    // folder of small files that decode to huge images fails before memory runs out.
    let mut held = 0u64;
    for f in &files {
        let img = decode(f)?;
        let img = match size {
            Some(wh) => sized(img, f, dir, wh, opts.size.is_some())?,
            None => {
                size = Some((img.width(), img.height()));
                img
            }
        };
        held += img.as_bytes().len() as u64;
        if held > MAX_VALUES * 4 {
            return Err(format_error(
                dir,
                format!(
                    "its images take more than 8 GiB decoded (reached at {}); resize them smaller",
                    f.display()
                ),
            ));
        }
        images.push(img);
    }
    let (w, h) = size.expect("at least one image");
    let color = opts.color.unwrap_or_else(|| {
        if images.iter().any(|i| i.color().has_color()) {
            Color::Rgb
        } else {
            Color::Gray
        }
    });
    let c = match color {
        Color::Gray => 1,
        Color::Rgb => 3,
    };
    let per = c as u64 * w as u64 * h as u64;
    if per * images.len() as u64 > MAX_VALUES {
        return Err(format_error(
            dir,
            format!(
                "{} images of {c}×{h}×{w} would take more than 8 GiB; resize them smaller",
                images.len()
            ),
        ));
    }
    let mut data = Vec::with_capacity((per as usize) * images.len());
    for img in &images {
        let start = data.len();
        data.resize(start + per as usize, 0.0);
        pixels(img, color, &mut data[start..]);
    }
    Ok(Samples {
        data,
        n: images.len(),
        shape: vec![c, h as usize, w as usize],
        labels,
        source: SourceType::U8,
    })
}

/// A folder's images listed, not decoded: what streaming reads, an image at a time, on the
/// threads of rayon's pool. Size and colour are settled when it is opened (from the options, or
/// from the files' headers: the first image's size, RGB if any image has colour), so every read
/// gives rows of one shape, as [`read`] would.
#[derive(Clone, Debug)]
pub struct Listing {
    dir: PathBuf,
    files: Vec<PathBuf>,
    labels: Option<Vec<u32>>,
    size: (u32, u32),
    resize: bool,
    color: Color,
}

/// The size and colour of `path`'s image, from its header.
fn header(path: &Path) -> Result<((u32, u32), bool)> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let decoder = ImageReader::open(path)
        .map_err(io)?
        .with_guessed_format()
        .map_err(io)?
        .into_decoder()
        .map_err(|e| format_error(path, format!("cannot read the image's header: {e}")))?;
    use image::ImageDecoder;
    Ok((decoder.dimensions(), decoder.color_type().has_color()))
}

impl Listing {
    /// Lists `dir` and settles the images' size and colour.
    pub fn open(dir: &Path, opts: &FolderOptions) -> Result<Listing> {
        use rayon::prelude::*;
        let (files, labels) = files_and_labels(dir)?;
        let size = match opts.size {
            Some(s) => s,
            None => header(&files[0])?.0,
        };
        let color = match opts.color {
            Some(c) => c,
            None => {
                let colours = files
                    .par_iter()
                    .map(|f| header(f).map(|(_, colour)| colour))
                    .collect::<Result<Vec<bool>>>()?;
                if colours.contains(&true) {
                    Color::Rgb
                } else {
                    Color::Gray
                }
            }
        };
        let per = match color {
            Color::Gray => 1,
            Color::Rgb => 3,
        } * size.0 as u64
            * size.1 as u64;
        if per > MAX_VALUES {
            return Err(format_error(
                dir,
                format!("one image of {}×{} is too large", size.0, size.1),
            ));
        }
        Ok(Listing {
            dir: dir.to_path_buf(),
            files,
            labels,
            size,
            resize: opts.size.is_some(),
            color,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Images in all.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the folder holds no image (never, once opened).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// `[C, H, W]` of every row.
    pub fn shape(&self) -> Vec<usize> {
        let c = match self.color {
            Color::Gray => 1,
            Color::Rgb => 3,
        };
        vec![c, self.size.1 as usize, self.size.0 as usize]
    }

    /// The labels of images `rows`, when the folder has class subfolders.
    pub fn labels(&self, rows: std::ops::Range<usize>) -> Option<Vec<u32>> {
        self.labels.as_ref().map(|l| l[rows].to_vec())
    }

    /// Decodes image `i` into `out` (`C·H·W` values): an image that cannot be read, or of another
    /// size when no size was given, is an error naming its file.
    pub fn fill(&self, i: usize, out: &mut [f32]) -> Result<()> {
        let path = &self.files[i];
        let img = sized(decode(path)?, path, &self.dir, self.size, self.resize)?;
        pixels(&img, self.color, out);
        Ok(())
    }
}

/// Parses the options after `images:DIR`: `WxH` and `gray` / `rgb`, comma-separated, any order.
pub fn parse_options(parts: &[&str]) -> std::result::Result<FolderOptions, String> {
    let mut o = FolderOptions::default();
    for p in parts {
        match *p {
            "gray" | "grey" => o.color = Some(Color::Gray),
            "rgb" => o.color = Some(Color::Rgb),
            s => {
                let (w, h) = s
                    .split_once('x')
                    .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
                    .filter(|&(w, h)| (1..=MAX_SIDE).contains(&w) && (1..=MAX_SIDE).contains(&h))
                    .ok_or_else(|| {
                        format!(
                            "unknown image option `{s}`; expected WxH (e.g. 28x28), gray or rgb"
                        )
                    })?;
                o.size = Some((w, h));
            }
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    fn gray(path: &Path, w: u32, h: u32, v: u8) {
        GrayImage::from_fn(w, h, |x, y| Luma([v.wrapping_add((x + y) as u8)]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn class_folders_give_labels_and_channels_first_pixels() {
        let d = tempfile::tempdir().unwrap();
        for (class, v) in [("b_shirt", 100u8), ("a_boot", 10)] {
            std::fs::create_dir(d.path().join(class)).unwrap();
            gray(&d.path().join(class).join("1.png"), 3, 2, v);
        }
        let sub = d.path().join("a_boot");
        RgbImage::from_pixel(3, 2, Rgb([1, 2, 3]))
            .save(sub.join("2.jpg"))
            .unwrap();
        std::fs::write(sub.join("notes.txt"), "not an image").unwrap();
        let s = read(d.path(), &FolderOptions::default()).unwrap();
        // A colour image makes the set RGB; classes are sorted: a_boot = 0, b_shirt = 1.
        assert_eq!((s.n, s.shape.clone()), (3, vec![3, 2, 3]));
        assert_eq!(s.labels, Some(vec![0, 0, 1]));
        // First image: grey ramp 10 + x + y repeated in each plane.
        assert_eq!(&s.row(0)[..6], &[10., 11., 12., 11., 12., 13.]);
        assert_eq!(&s.row(0)[6..9], &[10., 11., 12.]);
        // The JPEG is near (1, 2, 3) in its planes.
        let r = s.row(1);
        assert!((r[0] - 1.0).abs() < 4.0 && (r[6] - 2.0).abs() < 4.0 && (r[12] - 3.0).abs() < 4.0);
        let g = read(
            d.path(),
            &FolderOptions {
                size: Some((6, 4)),
                color: Some(Color::Gray),
            },
        )
        .unwrap();
        assert_eq!(g.shape, vec![1, 4, 6]);
    }

    #[test]
    fn flat_folder_size_mismatch_and_bad_files_are_named() {
        let d = tempfile::tempdir().unwrap();
        gray(&d.path().join("a.png"), 4, 4, 0);
        gray(&d.path().join("b.png"), 5, 4, 0);
        let e = read(d.path(), &FolderOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b.png") && e.contains("5×4") && e.contains("4x4"),
            "{e}"
        );
        let s = read(
            d.path(),
            &FolderOptions {
                size: Some((4, 4)),
                color: None,
            },
        )
        .unwrap();
        assert_eq!(
            (s.n, s.shape.clone(), s.labels.clone()),
            (2, vec![1, 4, 4], None)
        );
        std::fs::write(d.path().join("c.png"), b"\x89PNG\r\n\x1a\nbroken").unwrap();
        let sized = FolderOptions {
            size: Some((4, 4)),
            color: None,
        };
        let e = read(d.path(), &sized).unwrap_err().to_string();
        assert!(e.contains("c.png") && e.contains("decode"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let e = read(empty.path(), &FolderOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no PNG or JPEG"), "{e}");
    }

    #[test]
    fn options_parse() {
        assert_eq!(
            parse_options(&["32x16", "rgb"]).unwrap(),
            FolderOptions {
                size: Some((32, 16)),
                color: Some(Color::Rgb)
            }
        );
        assert!(parse_options(&["0x5"]).unwrap_err().contains("WxH"));
        assert!(parse_options(&["big"]).is_err());
    }
}
