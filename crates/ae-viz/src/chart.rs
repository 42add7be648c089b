//! Charts as PNG bytes: training curves and 2-D scatters of codes, drawn with plotters into an RGB
//! buffer and encoded with `image` (the same encoder as the image grids).
//!
//! Text needs a TrueType font. plotters is built without its system font loader (which pulls in
//! fontconfig and freetype), so the font is read from a file: `AE_FONT` if set, else the usual
//! places of DejaVu Sans or Liberation Sans (Debian: `fonts-dejavu-core`). Without one, charts are
//! drawn without text and a warning says how to get it.
use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

/// Where a sans-serif font is looked for, after `AE_FONT`.
const FONT_PATHS: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Colours of classes and series (the Tableau 10 palette, as matplotlib's default cycle).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of class or series `i`.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// True once a font is registered with plotters; looked for once per process.
fn has_font() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let candidates = std::env::var_os("AE_FONT")
            .map(std::path::PathBuf::from)
            .into_iter()
            .chain(FONT_PATHS.iter().map(std::path::PathBuf::from));
        for path in candidates {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            let ok = [FontStyle::Normal, FontStyle::Bold]
                .into_iter()
                .all(|s| plotters::style::register_font("sans-serif", s, bytes).is_ok());
            if ok {
                return true;
            }
        }
        eprintln!(
            "warning: no TrueType font found (set AE_FONT=FILE.ttf, or install fonts-dejavu-core); \
             charts are drawn without text"
        );
        false
    })
}

/// One line of a chart: its name in the legend and its (x, y) points.
#[derive(Clone, Debug)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// Its points.
    pub points: Vec<(f64, f64)>,
    /// Drawn with dots on each point (validation curves), else a plain line.
    pub marked: bool,
    /// Index into the palette.
    pub colour: usize,
}

/// One panel of a curves chart.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Above the panel.
    pub title: String,
    /// Under the x axis.
    pub x_label: String,
    /// Its lines.
    pub series: Vec<Series>,
}

/// Renders `draw` onto a white `width × height` canvas and returns it as PNG bytes.
fn render(
    width: u32,
    height: u32,
    draw: impl FnOnce(DrawingArea<BitMapBackend, plotters::coord::Shift>, bool) -> Result<()>,
) -> Result<Vec<u8>> {
    let text = has_font();
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        draw(root.clone(), text)?;
        root.present()
            .map_err(|e| anyhow!("cannot draw the chart: {e}"))?;
    }
    let img = image::RgbImage::from_raw(width, height, buf)
        .ok_or_else(|| anyhow!("chart buffer has the wrong size"))?;
    crate::picture::png_bytes(&img)
}

/// The range of `values`, widened a little (and made non-empty) so points are not on the frame.
fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(hi.abs().max(1e-12) * 1e-3);
    (lo - pad)..(hi + pad)
}

/// Panels of curves side by side, two per row (one per logged term, training and validation).
pub fn curves(panels: &[Panel]) -> Result<Vec<u8>> {
    if panels.is_empty() {
        return Err(anyhow!("no curve to draw"));
    }
    let cols = panels.len().min(2);
    let rows = panels.len().div_ceil(cols);
    let (pw, ph) = (520u32, 340u32);
    render(pw * cols as u32, ph * rows as u32, |root, text| {
        let areas = root.split_evenly((rows, cols));
        for (panel, area) in panels.iter().zip(areas) {
            draw_panel(panel, &area, text)?;
        }
        Ok(())
    })
}

fn draw_panel(
    panel: &Panel,
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    text: bool,
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw '{}': {e}", panel.title);
    let points = || panel.series.iter().flat_map(|s| s.points.iter());
    let xr = padded_range(points().map(|p| p.0));
    let yr = padded_range(points().map(|p| p.1));
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        builder
            .caption(&panel.title, ("sans-serif", 18))
            .x_label_area_size(36)
            .y_label_area_size(64);
    }
    let mut chart = builder.build_cartesian_2d(xr, yr).map_err(|e| err(&e))?;
    let whole = |v: &f64| {
        if (v - v.round()).abs() < 1e-9 {
            format!("{v:.0}")
        } else {
            String::new()
        }
    };
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(WHITE);
    if text {
        mesh.x_desc(&panel.x_label)
            .x_label_formatter(&whole)
            .label_style(("sans-serif", 13));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|e| err(&e))?;
    for s in &panel.series {
        let c = colour(s.colour);
        let line = chart
            .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
            .map_err(|e| err(&e))?;
        if text {
            line.label(&s.name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c.stroke_width(2)));
        }
        if s.marked {
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(|e| err(&e))?;
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 13))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| err(&e))?;
    }
    Ok(())
}

/// A scatter of 2-D points, coloured by class when `classes` is given (with a legend naming each
/// class by `names[c]`, or its number).
pub fn scatter(
    title: &str,
    axes: (&str, &str),
    points: &[(f64, f64)],
    classes: Option<&[u32]>,
    names: &[String],
) -> Result<Vec<u8>> {
    if points.is_empty() {
        return Err(anyhow!("no point to draw"));
    }
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw the scatter: {e}");
    let mut present: Vec<u32> = classes.map(|c| c.to_vec()).unwrap_or_default();
    present.sort_unstable();
    present.dedup();
    let name = |c: u32| {
        names
            .get(c as usize)
            .cloned()
            .unwrap_or_else(|| c.to_string())
    };
    let legend_width = if present.is_empty() { 0 } else { 170 };
    render(640 + legend_width, 600, |root, text| {
        let (plot, legend) = root.split_horizontally(640);
        let xr = padded_range(points.iter().map(|p| p.0));
        let yr = padded_range(points.iter().map(|p| p.1));
        let mut builder = ChartBuilder::on(&plot);
        builder.margin(14);
        if text {
            builder
                .caption(title, ("sans-serif", 20))
                .x_label_area_size(40)
                .y_label_area_size(56);
        }
        let mut chart = builder.build_cartesian_2d(xr, yr).map_err(|e| err(&e))?;
        let mut mesh = chart.configure_mesh();
        mesh.light_line_style(WHITE);
        if text {
            mesh.x_desc(axes.0)
                .y_desc(axes.1)
                .label_style(("sans-serif", 13));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(|e| err(&e))?;
        let Some(classes) = classes else {
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(p, 2, colour(0).filled())),
                )
                .map_err(|e| err(&e))?;
            return Ok(());
        };
        for &c in &present {
            let col = colour(c as usize);
            chart
                .draw_series(
                    points
                        .iter()
                        .zip(classes)
                        .filter(|(_, &k)| k == c)
                        .map(|(&p, _)| Circle::new(p, 2, col.filled())),
                )
                .map_err(|e| err(&e))?;
        }
        // The legend, beside the plot so that it hides no point: a dot and a name per class.
        for (row, &c) in present.iter().enumerate() {
            let y = 60 + 22 * row as i32;
            legend
                .draw(&Circle::new((12, y), 5, colour(c as usize).filled()))
                .map_err(|e| err(&e))?;
            if text {
                legend
                    .draw(&Text::new(name(c), (24, y - 8), ("sans-serif", 14)))
                    .map_err(|e| err(&e))?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory(png).expect("a PNG").to_rgb8()
    }

    /// Share of pixels that are not white.
    fn inked(img: &image::RgbImage) -> f64 {
        let n = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        n as f64 / (img.width() * img.height()) as f64
    }

    #[test]
    fn curves_draw_every_series_in_its_colour() {
        let panel = |name: &str| Panel {
            title: name.into(),
            x_label: "epoch".into(),
            series: vec![
                Series {
                    name: "train".into(),
                    points: (1..=10).map(|e| (e as f64, 1.0 / e as f64)).collect(),
                    marked: false,
                    colour: 0,
                },
                Series {
                    name: "validation".into(),
                    points: (1..=10).map(|e| (e as f64, 1.2 / e as f64)).collect(),
                    marked: true,
                    colour: 1,
                },
            ],
        };
        let img = decode(&curves(&[panel("loss"), panel("mse"), panel("kl")]).unwrap());
        // Three panels: two columns, two rows.
        assert_eq!((img.width(), img.height()), (1040, 680));
        let has = |c: RGBColor| img.pixels().any(|p| p.0 == [c.0, c.1, c.2]);
        assert!(has(colour(0)) && has(colour(1)));
        assert!(inked(&img) > 0.01, "the chart is nearly blank");
        assert!(curves(&[]).is_err());
    }

    /// Text is drawn: two charts that differ only in their titles differ in pixels.
    #[test]
    fn titles_and_labels_are_drawn_as_text() {
        if !has_font() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have a font for chart text (apt-get install fonts-dejavu-core)"
            );
            let why = "no TrueType font here: chart text not checked";
            eprintln!("skipping titles_and_labels_are_drawn_as_text: {why}");
            if let Some(log) = std::env::var_os("AE_SKIP_LOG") {
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                {
                    let _ = writeln!(f, "titles_and_labels_are_drawn_as_text: {why}");
                }
            }
            return;
        }
        let chart = |title: &str| {
            decode(
                &curves(&[Panel {
                    title: title.into(),
                    x_label: "epoch".into(),
                    series: vec![Series {
                        name: "train".into(),
                        points: (1..=5).map(|e| (e as f64, 1.0 / e as f64)).collect(),
                        marked: false,
                        colour: 0,
                    }],
                }])
                .unwrap(),
            )
        };
        let (a, b) = (chart("loss"), chart("reconstruction error per pixel"));
        let differing = a.pixels().zip(b.pixels()).filter(|(p, q)| p != q).count();
        assert!(
            differing > 50,
            "the titles left {differing} pixels different: no text drawn"
        );
    }

    #[test]
    fn scatter_colours_points_by_class() {
        let points: Vec<(f64, f64)> = (0..300)
            .map(|i| {
                (
                    (i % 3) as f64 * 5.0 + (i as f64 * 0.37).sin(),
                    (i as f64 * 0.11).cos(),
                )
            })
            .collect();
        let classes: Vec<u32> = (0..300).map(|i| (i % 3) as u32).collect();
        let names = vec!["a".to_string(), "b".into(), "c".into()];
        let img =
            decode(&scatter("codes", ("pc 1", "pc 2"), &points, Some(&classes), &names).unwrap());
        // The plot and a legend beside it.
        assert_eq!((img.width(), img.height()), (810, 600));
        for c in 0..3 {
            let col = colour(c);
            assert!(
                img.pixels().any(|p| p.0 == [col.0, col.1, col.2]),
                "class {c} is not drawn"
            );
        }
        // Class 3's colour is not used.
        let c3 = colour(3);
        assert!(!img.pixels().any(|p| p.0 == [c3.0, c3.1, c3.2]));
        assert!(scatter("x", ("a", "b"), &[], None, &[]).is_err());
    }
}
