//! `ae report` and the pictures it gathers (`ae visualize --what latent|losses|denoising|samples|
//! interpolation`), and the report opened in a real browser (headless Chromium).
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::{fails, idx_labeled, ok};

/// Trains a small run on labelled 8×8 images; `extra` adds flags.
fn train(dir: &Path, name: &str, spec: &str, extra: &[&str]) -> PathBuf {
    let run = dir.join(name);
    let mut args = vec![
        "train",
        "--data",
        spec,
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--threads",
        "1",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(&args);
    run
}

/// Labelled 8×8 images and a small denoising run trained on them: (data spec, run folder).
fn denoising_run(dir: &Path) -> (String, PathBuf) {
    let spec = idx_labeled(dir, 150);
    let run = train(
        dir,
        "dae",
        &spec,
        &["--hidden", "24,6", "--noise", "gaussian:0.2"],
    );
    (spec, run)
}

/// The PNGs embedded in a report, decoded.
fn embedded_pictures(html: &str) -> Vec<image::RgbImage> {
    html.split("src=\"data:image/png;base64,")
        .skip(1)
        .map(|rest| {
            let b64 = &rest[..rest.find('"').expect("a closing quote")];
            let png = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("base64");
            image::load_from_memory(&png).expect("a PNG").to_rgb8()
        })
        .collect()
}

fn report(run: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "report",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--force",
        "--steps",
        "20",
    ];
    args.extend_from_slice(extra);
    ok(&args);
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn report_of_a_denoising_run_embeds_every_picture_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, run) = denoising_run(dir.path());
    let out = dir.path().join("report.html");
    let html = report(&run, &out, &["--data", &spec]);
    for title in [
        "Metrics",
        "Training curves",
        "Reconstructions",
        "Denoising",
        "Latent space",
        "First-layer filters",
        "Most activating inputs",
        "Activation maximization",
        "Configuration",
        "PCA, 6 components",
        "Compression: the autoencoder against JPEG",
    ] {
        assert!(html.contains(title), "no '{title}' in the report");
    }
    // Nothing is fetched: no address outside the page.
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(!html.contains("Samples from the prior"), "not a VAE");
    let pictures = embedded_pictures(&html);
    assert_eq!(pictures.len(), 8);
    for p in &pictures {
        assert!(p.width() > 20 && p.height() > 20);
    }
    // The configuration is the run's own.
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let line = config.lines().find(|l| l.starts_with("noise")).unwrap();
    assert!(html.contains(&line.replace('"', "&quot;")), "{line}");
    // An existing report is replaced whole; a missing run is an error naming it.
    let again = report(&run, &out, &["--data", &spec, "--no-pca"]);
    assert!(again.contains("left out (--no-pca)") && !again.contains("PCA, 6 components"));
    let missing = dir.path().join("nothing-here");
    let err = fails(&[
        "report",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--force",
    ]);
    assert!(err.contains("nothing-here"), "{err}");
    assert!(
        out.exists(),
        "a failed report must not remove the earlier one"
    );
}

#[test]
fn report_of_a_vae_has_samples_and_an_interpolation() {
    let dir = tempfile::tempdir().unwrap();
    let spec = idx_labeled(dir.path(), 120);
    let run = train(
        dir.path(),
        "vae",
        &spec,
        &["--model", "vae", "--hidden", "16,2", "--loss", "bce"],
    );
    let html = report(&run, &dir.path().join("r.html"), &["--data", &spec]);
    for title in ["Samples from the prior", "Interpolation", "ELBO", "KL term"] {
        assert!(html.contains(title), "no '{title}' in the report");
    }
    // A two-unit code is drawn as it is.
    assert!(html.contains("the code&#39;s two units"), "latent caption");
}

#[test]
fn visualize_latent_losses_denoising_samples_and_interpolation() {
    let dir = tempfile::tempdir().unwrap();
    let spec = idx_labeled(dir.path(), 150);
    let run = train(dir.path(), "ae", &spec, &["--hidden", "24,6"]);
    let r = run.to_str().unwrap();
    let draw = |what: &str, extra: &[&str]| -> image::RgbImage {
        let out = dir.path().join(format!("{what}.png"));
        let mut args = vec![
            "visualize",
            r,
            "--data",
            &spec,
            "--what",
            what,
            "--out",
            out.to_str().unwrap(),
            "--force",
        ];
        args.extend_from_slice(extra);
        ok(&args);
        image::open(&out).unwrap().to_rgb8()
    };
    // Latent: points in the first three palette colours (one per class), none in the fourth.
    let latent = draw("latent", &[]);
    let has = |img: &image::RgbImage, c: [u8; 3]| img.pixels().any(|p| p.0 == c);
    let palette = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40]];
    for c in &palette[..3] {
        assert!(has(&latent, *c), "class colour {c:?} missing");
    }
    assert!(!has(&latent, palette[3]));
    // Losses: the training curve (first colour) and the validation curve (second).
    let losses = draw("losses", &[]);
    assert!(has(&losses, palette[0]) && has(&losses, palette[1]));
    // Denoising needs a noise: the run has none, so --noise is asked for.
    let err = fails(&[
        "visualize",
        r,
        "--data",
        &spec,
        "--what",
        "denoising",
        "--out",
        dir.path().join("d.png").to_str().unwrap(),
        "--force",
    ]);
    assert!(err.contains("--noise"), "{err}");
    // Rows of three 8×8 images zoomed 4× (clean, noisy, denoised): 4 examples, one block.
    let den = draw("denoising", &["--noise", "mask:0.5", "--n", "4"]);
    assert_eq!((den.width(), den.height()), (4 * 34 + 2, 3 * 34 + 4));
    // Samples are a VAE's: refused for this run.
    let err = fails(&[
        "visualize",
        r,
        "--data",
        &spec,
        "--what",
        "samples",
        "--out",
        dir.path().join("s.png").to_str().unwrap(),
        "--force",
    ]);
    assert!(err.contains("not a VAE"), "{err}");
    // Interpolation of a plain autoencoder's codes works too: 2 ends + 5 steps in one row.
    let strip = draw(
        "interpolation",
        &["--from", "3", "--to", "4", "--steps", "5"],
    );
    assert_eq!((strip.width(), strip.height()), (7 * 34 + 2, 34 + 4));
}

#[test]
fn losses_of_a_stacked_run_add_a_panel_of_its_pretraining_stages() {
    let dir = tempfile::tempdir().unwrap();
    let spec = idx_labeled(dir.path(), 120);
    let plain = train(dir.path(), "plain", &spec, &["--hidden", "16,4"]);
    let stacked = train(
        dir.path(),
        "stacked",
        &spec,
        &["--hidden", "16,8,4", "--pretrain", "greedy:2"],
    );
    let draw = |run: &Path| -> image::RgbImage {
        let out = run.join("losses.png");
        ok(&[
            "visualize",
            run.to_str().unwrap(),
            "--what",
            "losses",
            "--out",
            out.to_str().unwrap(),
            "--force",
        ]);
        image::open(&out).unwrap().to_rgb8()
    };
    // loss and mse: one row of two panels; with pretraining a third panel opens a second row,
    // with a curve per stage (three stages: the third colour is used).
    assert_eq!(draw(&plain).height(), 340);
    let img = draw(&stacked);
    assert_eq!((img.width(), img.height()), (1040, 680));
    let third = [44u8, 160, 44];
    let lower_half = (0..1040).flat_map(|x| (340..680).map(move |y| (x, y)));
    assert!(lower_half
        .into_iter()
        .any(|(x, y)| img.get_pixel(x, y).0 == third));
}

/// Chromium, if this machine has it (`AE_CHROMIUM` names another browser binary).
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

fn headless(browser: &Path, profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("the browser runs")
}

/// The report opened in headless Chromium: every picture loads (the page's own count, read from
/// the DOM after load) and a screenshot of the page is not blank. CI installs Chromium
/// (`.ci/run`); elsewhere the test says it did not run unless CI is set, when it fails.
#[test]
fn report_opens_in_a_real_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have Chromium (apt-get install chromium) for the browser test"
        );
        common::skip(
            "report_opens_in_a_real_browser",
            "no Chromium here (install chromium)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (spec, run) = denoising_run(dir.path());
    let page = dir.path().join("report.html");
    report(&run, &page, &["--data", &spec]);
    let url = format!("file://{}", page.display());
    let profile = dir.path().join("profile");
    let dom = headless(&browser, &profile, &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    let attr = |name: &str| -> usize {
        let key = format!("{name}=\"");
        let at = dom
            .find(&key)
            .unwrap_or_else(|| panic!("no {name} in the DOM:\n{dom:.2000}"));
        let rest = &dom[at + key.len()..];
        rest[..rest.find('"').unwrap()].parse().unwrap()
    };
    let (images, loaded) = (attr("data-images"), attr("data-images-loaded"));
    assert_eq!(images, 8);
    assert_eq!(loaded, images, "pictures that did not load");

    let shot = dir.path().join("shot.png");
    let out = headless(
        &browser,
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,2400",
            "--hide-scrollbars",
            &url,
        ],
    );
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = image::open(&shot).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (1200, 2400));
    // Not blank: text and pictures ink a good share of the page, in many shades.
    let inked = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    let share = inked as f64 / (1200.0 * 2400.0);
    let mut shades: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    shades.sort_unstable();
    shades.dedup();
    assert!(
        share > 0.05,
        "only {:.1}% of the screenshot is not white",
        100.0 * share
    );
    assert!(shades.len() > 50, "{} colours", shades.len());
}
