//! One self-contained HTML page about a run: pictures embedded as PNG data URLs, inline style,
//! nothing fetched; a short script only counts the pictures that loaded (shown on the page, and
//! read by the browser test).
use std::fmt::Write as _;

use ae_core::analysis::metrics::{Metrics, VaeFigures};
use ae_core::run::RunMeta;
use anyhow::Result;
use base64::Engine as _;

use crate::figures::Figure;

/// PCA with as many components as the run's code, fitted on the run's training data with the
/// run's scaling, measured on the same data as the run.
pub struct Baseline {
    /// Components.
    pub k: usize,
    /// PCA's metrics on the run's data.
    pub metrics: Metrics,
    /// Principal angles (degrees) between PCA's subspace and a linear run's.
    pub angles: Option<Vec<f64>>,
}

/// The page being written: sections in the order they are added.
#[derive(Default)]
pub struct Page {
    body: String,
    /// Pictures on the page.
    pub figures: usize,
    /// Pictures that could not be drawn, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// `s` with the five characters HTML gives meaning to escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Page {
    /// A section with a picture, or a line under "Not drawn" when it could not be drawn.
    pub fn figure(&mut self, title: &str, fig: Result<Figure>) {
        match fig {
            Ok(f) => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(&f.png);
                let _ = writeln!(
                    self.body,
                    "<section><h2>{}</h2><figure><img alt=\"{}\" src=\"data:image/png;base64,{b64}\">\
                     <figcaption>{}</figcaption></figure></section>",
                    escape(title),
                    escape(title),
                    escape(&f.caption)
                );
                self.figures += 1;
            }
            Err(e) => self.skipped.push((title.to_string(), format!("{e:#}"))),
        }
    }

    /// The metrics table: this run beside its PCA baseline (or why there is none), a VAE's ELBO.
    pub fn metrics(
        &mut self,
        meta: &RunMeta,
        ours: &Metrics,
        vae: Option<&VaeFigures>,
        baseline: &std::result::Result<Baseline, String>,
    ) {
        let pca = baseline.as_ref().ok();
        let head = match pca {
            Some(b) => format!("<th>PCA, {} components</th>", b.k),
            None => String::new(),
        };
        let mut rows = String::new();
        let mut row = |name: &str, a: f64, b: Option<f64>, digits: usize| {
            let b = b
                .map(|v| format!("<td>{v:.digits$}</td>"))
                .unwrap_or_default();
            let _ = write!(rows, "<tr><th>{name}</th><td>{a:.digits$}</td>{b}</tr>");
        };
        let m = |f: fn(&Metrics) -> f64| pca.map(|b| f(&b.metrics));
        row("MSE", ours.mse, m(|x| x.mse), 6);
        row(
            "sum of squared errors per example",
            ours.sse_per_example,
            m(|x| x.sse_per_example),
            3,
        );
        row("binary cross-entropy", ours.bce, m(|x| x.bce), 5);
        row("PSNR (dB)", ours.psnr_db, m(|x| x.psnr_db), 2);
        row(
            "mean ‖J‖<sub>F</sub> of the encoder",
            ours.mean_jacobian_norm,
            m(|x| x.mean_jacobian_norm),
            3,
        );
        if let Some(v) = vae {
            row("ELBO (nats per example)", v.elbo, None, 3);
            row("reconstruction term (nats)", v.reconstruction, None, 3);
            row("KL term (nats)", v.kl, None, 3);
        }
        let mut notes = String::new();
        match baseline {
            Ok(b) => {
                if let Some(t) = &b.angles {
                    let largest = t.iter().cloned().fold(0.0f64, f64::max);
                    let mean = t.iter().sum::<f64>() / t.len().max(1) as f64;
                    let _ = write!(
                        notes,
                        "<p>Principal angles between this linear map's subspace and PCA's: \
                         largest {largest:.2}°, mean {mean:.2}°.</p>"
                    );
                }
            }
            Err(why) => {
                let _ = write!(notes, "<p>PCA baseline: {}</p>", escape(why));
            }
        }
        let _ = writeln!(
            self.body,
            "<section><h2>Metrics</h2><p>On {} examples (the run's flavor: {}; {} parameters; \
             best monitored loss {} at epoch {}).</p><table><tr><th></th><th>this run</th>{head}</tr>\
             {rows}</table>{notes}</section>",
            ours.n,
            escape(meta.flavor.name()),
            meta.parameters,
            meta.best_loss
                .map(|v| format!("{v:.6}"))
                .unwrap_or_else(|| "—".into()),
            meta.best_epoch
        );
    }

    /// A paragraph of plain text (escaped here); a `warning` stands out.
    pub fn notice(&mut self, text: &str, warning: bool) {
        let class = if warning { " class=\"warning\"" } else { "" };
        let _ = writeln!(self.body, "<p{class}>{}</p>", escape(text));
    }

    /// The whole page: `run` and `data` name what was measured, `config` is the run's
    /// config.toml.
    pub fn finish(&self, run: &str, data: &str, meta: &RunMeta, config: &str) -> String {
        let mut skipped = String::new();
        if !self.skipped.is_empty() {
            skipped.push_str("<section><h2>Not drawn</h2><ul>");
            for (what, why) in &self.skipped {
                let _ = write!(skipped, "<li><b>{}</b>: {}</li>", escape(what), escape(why));
            }
            skipped.push_str("</ul></section>");
        }
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>ae report: {run_e}</title><style>{STYLE}</style></head>\n\
             <body><h1>{run_e}</h1><p>{flavor} autoencoder, {epochs} epochs, measured on \
             <code>{data_e}</code>; written by {by}. <span id=\"status\"></span></p>\n\
             {body}{skipped}<section><h2>Configuration</h2><pre>{config_e}</pre></section>\n\
             <script>{SCRIPT}</script></body></html>\n",
            run_e = escape(run),
            flavor = escape(meta.flavor.name()),
            epochs = meta.epoch,
            data_e = escape(data),
            by = escape(&meta.written_by),
            body = self.body,
            config_e = escape(config),
        )
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;\
padding:0 1em;color:#222}h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ddd;\
padding-bottom:.2em;margin-top:1.6em}table{border-collapse:collapse}td,th{padding:.25em .8em;\
border-bottom:1px solid #eee;text-align:right}th{text-align:left;font-weight:500}\
.warning{background:#fff3cd;border-left:4px solid #e0a800;padding:.4em .8em}\
figure{margin:0}img{max-width:100%;image-rendering:pixelated}figcaption{color:#555;\
font-size:.9em;margin-top:.3em}pre{background:#f6f6f6;padding:.8em;overflow:auto}";

/// Counts the pictures that loaded once the page has: on the body's `data-images` and
/// `data-images-loaded`, and as a line on the page when some did not.
const SCRIPT: &str = "window.addEventListener('load',function(){var a=document.images,n=0;\
for(var i=0;i<a.length;i++){if(a[i].complete&&a[i].naturalWidth>0)n++;}\
document.body.setAttribute('data-images',a.length);\
document.body.setAttribute('data-images-loaded',n);\
if(n<a.length){document.getElementById('status').textContent=(a.length-n)+' of '+a.length+\
' pictures did not load.';}});";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }
}
