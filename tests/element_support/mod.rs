//! Helpers of tests/element.rs: plugin set-up, running launch lines,
//! RTTM comparison, the offline reference and thread counting.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Once};

use gst::glib;
use gst::prelude::*;
use gstspeakrs::engine::{loaded, stream};

static LOCK: Mutex<()> = Mutex::new(());

pub fn init() -> MutexGuard<'static, ()> {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstspeakrs::plugin_register_static().unwrap();
    });
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn sample_wav() -> PathBuf {
    super::common::shared().join("eval/real/wav/sample.wav")
}

/// 16 kHz mono S16LE `pcm` as buffers of `bytes` each, timestamped from
/// `start` by their sample count; also returns the PTS after the last.
pub fn pcm_buffers(
    pcm: &[u8],
    start: gst::ClockTime,
    bytes: usize,
) -> (Vec<gst::Buffer>, gst::ClockTime) {
    let mut pts = start;
    let buffers = pcm
        .chunks(bytes)
        .map(|piece| {
            let duration = gst::ClockTime::from_nseconds(piece.len() as u64 / 2 * 62_500);
            let mut buffer = gst::Buffer::from_mut_slice(piece.to_vec());
            let b = buffer.get_mut().unwrap();
            b.set_pts(pts);
            b.set_duration(duration);
            pts += duration;
            buffer
        })
        .collect();
    (buffers, pts)
}

pub fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("speakrs-test-{}-{name}", std::process::id()))
}

/// Runs a launch line to EOS or error; returns (element messages, errors, warnings).
pub struct Outcome {
    pub messages: Vec<gst::Structure>,
    pub errors: Vec<(glib::Error, String)>,
    pub final_before_eos: bool,
}

/// Runs a launch line whose `{rttm}` stands for a fresh temporary RTTM
/// path; returns the outcome and the RTTM written there (empty if none).
pub fn run_with_rttm(name: &str, description: &str) -> (Outcome, String) {
    let rttm = tmp(name);
    let out = run(&description.replace("{rttm}", &rttm.display().to_string()));
    let written = std::fs::read_to_string(&rttm).unwrap_or_default();
    let _ = std::fs::remove_file(&rttm);
    (out, written)
}

pub fn run(description: &str) -> Outcome {
    let pipeline = gst::parse::launch(description).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut out = Outcome {
        messages: vec![],
        errors: vec![],
        final_before_eos: false,
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        // The error message is still on the bus.
    }
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(600)) {
        use gst::MessageView;
        match msg.view() {
            MessageView::Element(e) => {
                let s = e.structure().unwrap().to_owned();
                if s.name() == "speakrs-diarization" {
                    out.messages.push(s);
                }
            }
            MessageView::Error(e) => {
                out.errors
                    .push((e.error(), e.error().message().to_string()));
                break;
            }
            MessageView::Eos(_) => {
                out.final_before_eos = out
                    .messages
                    .last()
                    .is_some_and(|s| s.get::<bool>("final").unwrap());
                break;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

pub type Rttm = Vec<(f64, f64, String)>;

pub fn parse_rttm(text: &str) -> Rttm {
    text.lines()
        .filter(|l| l.starts_with("SPEAKER"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let start: f64 = f[3].parse().unwrap();
            (
                start,
                start + f[4].parse::<f64>().unwrap(),
                f[7].to_string(),
            )
        })
        .collect()
}

/// Fraction of 10 ms frames (speech in either) where both agree on the set
/// of active speakers, after a greedy one-to-one label mapping.
pub fn agreement(a: &Rttm, b: &Rttm) -> f64 {
    let end = a.iter().chain(b).map(|t| t.1).fold(0.0, f64::max);
    let frames = (end * 100.0).ceil() as usize;
    let (sa, sb) = (frame_sets(a, frames), frame_sets(b, frames));
    let mut pairs: Vec<((&str, &str), usize)> = vec![];
    for (x, y) in sa.iter().zip(&sb) {
        for la in x {
            for lb in y {
                match pairs.iter_mut().find(|p| p.0 == (*la, *lb)) {
                    Some(p) => p.1 += 1,
                    None => pairs.push(((la, lb), 1)),
                }
            }
        }
    }
    pairs.sort_by_key(|p| std::cmp::Reverse(p.1));
    let mut map: Vec<(&str, &str)> = vec![];
    for ((la, lb), _) in pairs {
        if !map.iter().any(|m| m.0 == la || m.1 == lb) {
            map.push((la, lb));
        }
    }
    let (mut same, mut speech) = (0, 0);
    for (x, y) in sa.iter().zip(&sb) {
        if x.is_empty() && y.is_empty() {
            continue;
        }
        speech += 1;
        let mut mapped: Vec<&str> = x
            .iter()
            .filter_map(|l| map.iter().find(|m| m.0 == *l).map(|m| m.1))
            .collect();
        let mut y = y.clone();
        mapped.sort();
        y.sort();
        same += (mapped == y) as usize;
    }
    same as f64 / speech.max(1) as f64
}

/// Fraction of 10 ms frames where both agree on speech vs non-speech.
pub fn speech_agreement(a: &Rttm, b: &Rttm) -> f64 {
    let end = a.iter().chain(b).map(|t| t.1).fold(0.0, f64::max);
    let frames = (end * 100.0).ceil() as usize;
    let (sa, sb) = (frame_sets(a, frames), frame_sets(b, frames));
    sa.iter()
        .zip(&sb)
        .filter(|(x, y)| x.is_empty() == y.is_empty())
        .count() as f64
        / frames.max(1) as f64
}

pub fn frame_sets(r: &Rttm, frames: usize) -> Vec<Vec<&str>> {
    (0..frames)
        .map(|i| {
            let t = (i as f64 + 0.5) / 100.0;
            r.iter()
                .filter(|x| x.0 <= t && t < x.1)
                .map(|x| x.2.as_str())
                .collect()
        })
        .collect()
}

pub fn offline_rttm(path: &Path) -> String {
    let reader = hound::WavReader::open(path).unwrap();
    let samples: Vec<f32> = reader
        .into_samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect();
    let p = loaded::LoadedModels::load(&Default::default()).unwrap();
    stream::diarize(p, &stream::StreamConfig::default(), &samples)
        .unwrap()
        .to_rttm("sample")
}

/// (all threads of the process, threads named speakrs-*)
pub fn threads() -> (usize, usize) {
    let mut total = 0;
    let mut ours = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        total += 1;
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        ours += comm.starts_with("speakrs") as usize;
    }
    (total, ours)
}
