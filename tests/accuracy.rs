//! Accuracy guard: the element, through a real pipeline
//! (`filesrc ! decodebin ! audioconvert ! speakrsdiarize ! fakesink`, default
//! settings and `precision=int8`), on every file of the shared evaluation sets, scored against
//! the reference RTTMs (collar 0, overlap scored, optimal mapping).
//!
//! The bound is the DER the README's *Accuracy* table states for the set,
//! read from README.md itself, plus `MARGIN_POINTS`: the table and this
//! test cannot drift apart, and a change that costs accuracy on every
//! input alike fails here even though element and engine still agree.
//! A measured DER more than the margin *below* the table also fails, so
//! an improvement cannot leave a stale figure in the README.

mod common;

use std::path::Path;

use common::der::{score, DerComponents, Segment};
use gst::prelude::*;
use gstspeakrs::engine::output::rttm::parse_rttm;

/// Allowed rise over the README figure, in DER points. Runs are
/// deterministic on one machine; the margin absorbs f32 rounding of other
/// CPUs' ONNX Runtime kernels, which can move a frame or two.
const MARGIN_POINTS: f64 = 0.3;

/// The Accuracy table's column for `precision=int8`.
const INT8_COLUMN: &str = "DER, precision=int8";

fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstspeakrs::plugin_register_static().unwrap();
    });
}

/// The DER (in %) the README's *Accuracy* table gives for `set` in the
/// column headed `column` (`DER`, or `DER, precision=int8`), from its row
/// `| set (minutes) | **DER %** | …`.
fn readme_der(set: &str, column: &str) -> f64 {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Accuracy")
        .nth(1)
        .expect("README has an Accuracy section");
    let cells =
        |line: &str| -> Vec<String> { line.split('|').map(|c| c.trim().to_string()).collect() };
    let header = section
        .lines()
        .find(|l| l.starts_with("| set (minutes) |"))
        .expect("README's Accuracy table has a header");
    let index = cells(header)
        .iter()
        .position(|c| c == column)
        .unwrap_or_else(|| panic!("README's Accuracy table has no column {column:?}"));
    let prefix = format!("| {set} (");
    let row = section
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("README's Accuracy table has no row for {set}"));
    let cell = cells(row)
        .get(index)
        .cloned()
        .unwrap_or_else(|| panic!("README's {set} row has no {column:?} cell"));
    cell.trim_matches('*')
        .trim_end_matches('%')
        .trim()
        .trim_matches('*')
        .parse()
        .unwrap_or_else(|e| panic!("README {column} cell {cell:?} for {set}: {e}"))
}

fn segments(rttm: &str) -> Vec<Segment> {
    parse_rttm(rttm)
        .expect("valid RTTM")
        .iter()
        .map(Segment::from)
        .collect()
}

/// Runs the element (with `properties` beyond the defaults) on one file
/// to EOS and returns the RTTM it wrote.
fn diarize_file(wav: &Path, uri: &str, properties: &str) -> String {
    let rttm = std::env::temp_dir().join(format!(
        "speakrs-accuracy-{}-{uri}.rttm",
        std::process::id()
    ));
    let description = format!(
        "filesrc location=\"{}\" ! decodebin ! audioconvert ! speakrsdiarize rttm-location=\"{}\" {properties} ! fakesink",
        wav.display(),
        rttm.display()
    );
    let pipeline = gst::parse::launch(&description).expect("pipeline");
    pipeline.set_state(gst::State::Playing).expect("PLAYING");
    let bus = pipeline.bus().expect("bus");
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            gst::MessageView::Error(err) => {
                panic!("{uri}: {} ({:?})", err.error(), err.debug())
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).expect("NULL");
    let text = std::fs::read_to_string(&rttm)
        .unwrap_or_else(|e| panic!("{uri}: no RTTM at {}: {e}", rttm.display()));
    let _ = std::fs::remove_file(&rttm);
    text
}

/// Scores the element on every file of `set` against the README's figure
/// in `column`; `properties` are the element's beyond the defaults.
fn check_set(set: &str, column: &str, properties: &str) {
    init();
    common::model_set();
    let dir = common::shared().join("eval").join(set);
    let index = std::fs::read_to_string(dir.join("index.tsv"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut lines = index.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (uri_col, wav_col, rttm_col) = (col("uri"), col("wav"), col("rttm"));
    let mut total = DerComponents::default();
    let mut files = 0;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split('\t').collect();
        let uri = cells[uri_col];
        let reference =
            segments(&std::fs::read_to_string(dir.join(cells[rttm_col])).expect("reference"));
        let c = score(
            &reference,
            &segments(&diarize_file(&dir.join(cells[wav_col]), uri, properties)),
        );
        total.missed += c.missed;
        total.false_alarm += c.false_alarm;
        total.confusion += c.confusion;
        total.total += c.total;
        files += 1;
    }
    let pct = |v: f64| 100.0 * v / total.total;
    let der = pct(total.error());
    let stated = readme_der(set, column);
    let set = format!("{set} {properties}");
    let set = set.trim_end();
    println!(
        "accuracy {set} ({files} files): DER {der:.2} % (missed {:.2}, false alarm {:.2}, confusion {:.2}); README {stated:.2} %, bound {:.2} %",
        pct(total.missed),
        pct(total.false_alarm),
        pct(total.confusion),
        stated + MARGIN_POINTS
    );
    assert!(files > 0, "{set}: no files");
    assert!(
        der <= stated + MARGIN_POINTS,
        "{set}: DER {der:.2} % is more than {MARGIN_POINTS} points above the README's {stated:.2} %"
    );
    // A README figure far above what is measured is no longer true either.
    assert!(
        der >= stated - MARGIN_POINTS,
        "{set}: DER {der:.2} % is more than {MARGIN_POINTS} points below the README's {stated:.2} %: update the README's Accuracy table"
    );
}

#[test]
fn element_der_on_real_is_within_the_readme_figure() {
    check_set("real", "DER", "");
}

#[test]
fn element_der_on_sim_dev_is_within_the_readme_figure() {
    check_set("sim-dev", "DER", "");
}

#[test]
fn element_der_on_sim_dev_noisy_is_within_the_readme_figure() {
    check_set("sim-dev-noisy", "DER", "");
}

// The int8 CAM++ (`precision=int8`): its figures are the README's too.

#[test]
fn int8_element_der_on_real_is_within_the_readme_figure() {
    check_set("real", INT8_COLUMN, "precision=int8");
}

#[test]
fn int8_element_der_on_sim_dev_is_within_the_readme_figure() {
    check_set("sim-dev", INT8_COLUMN, "precision=int8");
}

#[test]
fn int8_element_der_on_sim_dev_noisy_is_within_the_readme_figure() {
    check_set("sim-dev-noisy", INT8_COLUMN, "precision=int8");
}
