//! `sim --report` in a real browser: headless Chromium loads the report of a bundled failover
//! scenario, runs its script without an error, draws every lane and every bar of the run, and
//! takes a PNG screenshot (the one README.md shows comes from the same command).
//!
//! Needs Chromium (Debian's `chromium-headless-shell` or `chromium`; `.ci/run` installs the
//! first when missing and runs this test with `--ignored`), or `CHROMIUM=/path/to/binary`.

use std::path::PathBuf;
use std::process::Command;

use dispatcher_core::sim::report::{html, model};
use dispatcher_core::sim::run::run;
use dispatcher_core::sim::scenario::parse;
use dispatcher_core::sim::trace::Trace;
use dispatcher_core::sim::world::SimOptions;

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in ["chromium-headless-shell", "chromium"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!("no headless Chromium on PATH (apt-get install chromium-headless-shell, or set CHROMIUM)");
}

#[test]
#[ignore = "needs headless Chromium: .ci/run installs it and runs this with --ignored"]
fn report_loads_in_headless_chromium_and_draws_the_run() {
    let name = "s5-merge-interrupted-before-commit";
    let path = format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let scenario = parse(&text, &path).unwrap();
    let mut trace = Trace::new();
    let report = run(&scenario, "", SimOptions::default(), Some(&mut trace));
    let dir = std::env::temp_dir().join(format!("dispatcher-core-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join(format!("{name}.html"));
    std::fs::write(&page, html(&trace, &scenario.name, &text, &report.line())).unwrap();
    let url = format!("file://{}", page.display());
    let browser = chromium();
    let common =
        ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1600,900", "--hide-scrollbars"];

    let dom = Command::new(&browser).args(common).args(["--dump-dom", &url]).output().unwrap();
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8(dom.stdout).unwrap();
    let attr = |name: &str| {
        let key = format!("data-{name}=\"");
        dom.find(&key).map(|i| dom[i + key.len()..].split('"').next().unwrap_or("").to_string())
    };
    assert_eq!(attr("error"), None, "the page's script failed");
    let m = model(&trace);
    assert_eq!(attr("lanes"), Some(m.lanes.len().to_string()), "every lane is drawn");
    assert_eq!(attr("bars"), Some(m.bars.len().to_string()), "every bar is drawn at the first view");
    for lane in ["d6d74000000000001.4 default", "operators 3", "network"] {
        assert!(dom.contains(&format!(">{lane}<")), "lane {lane} is labelled");
    }
    assert!(dom.contains("data-label=\"merge-ready\"") && dom.contains("data-label=\"waiting-merge\""));

    let png = dir.join(format!("{name}.png"));
    let shot = Command::new(&browser)
        .args(common)
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 20_000,
        "a real screenshot: {} bytes",
        bytes.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
