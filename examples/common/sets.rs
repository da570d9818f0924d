//! The eval sets (`index.tsv` with uri, wav, rttm, duration_s columns), as
//! the benchmarks read them. Each benchmark uses a part of this.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::der::{DerComponents, Segment};
use gstspeakrs::engine::output::rttm::parse_rttm;

pub struct Entry {
    pub uri: String,
    pub wav: PathBuf,
    pub rttm: PathBuf,
    pub duration: f64,
}

/// The set's index; an error names what is wrong with it.
pub fn try_read_index(set: &Path) -> Result<Vec<Entry>, String> {
    let index = set.join("index.tsv");
    let text = std::fs::read_to_string(&index).map_err(|e| format!("{}: {e}", index.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("{}: no `{name}` column", index.display()))
    };
    let (u, w, r, d) = (col("uri")?, col("wav")?, col("rttm")?, col("duration_s")?);
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            if c.len() < header.len() {
                return Err(format!("{}: short line `{l}`", index.display()));
            }
            Ok(Entry {
                uri: c[u].into(),
                wav: set.join(c[w]),
                rttm: set.join(c[r]),
                duration: c[d].parse().unwrap_or(0.0),
            })
        })
        .collect()
}

pub fn read_index(set: &Path) -> Vec<Entry> {
    try_read_index(set).unwrap_or_else(|e| panic!("{e}"))
}

pub fn try_segments(rttm_text: &str) -> Result<Vec<Segment>, String> {
    Ok(parse_rttm(rttm_text)
        .map_err(|e| e.to_string())?
        .iter()
        .map(Segment::from)
        .collect())
}

pub fn segments(rttm_text: &str) -> Vec<Segment> {
    try_segments(rttm_text).unwrap_or_else(|e| panic!("valid RTTM: {e}"))
}

/// One file of a set, loaded.
pub struct File {
    pub uri: String,
    pub audio: Vec<i16>,
    pub reference: Vec<Segment>,
}

pub fn read_set(set: &Path) -> Vec<File> {
    read_index(set)
        .into_iter()
        .map(|e| {
            let mut wav = hound::WavReader::open(&e.wav).expect("16 kHz WAV");
            assert_eq!(wav.spec().sample_rate, 16_000, "the eval sets are 16 kHz");
            let audio = wav.samples::<i16>().map(|s| s.expect("sample")).collect();
            let rttm = std::fs::read_to_string(&e.rttm).expect("RTTM");
            File {
                uri: e.uri,
                audio,
                reference: segments(&rttm),
            }
        })
        .collect()
}

/// The files one after another: one loop of a looped stream.
pub fn looped(files: &[File]) -> (Vec<i16>, Vec<Segment>) {
    let (mut audio, mut reference) = (Vec::new(), Vec::new());
    for f in files {
        let offset = audio.len() as f64 / 16_000.0;
        reference.extend(f.reference.iter().map(|s| Segment {
            start: s.start + offset,
            end: s.end + offset,
            ..s.clone()
        }));
        audio.extend_from_slice(&f.audio);
    }
    (audio, reference)
}

/// The reference of one loop, repeated for loops `loops` (loop k shifted by
/// `k · loop_len`).
pub fn repeated(one: &[Segment], loop_len: f64, loops: Range<usize>) -> Vec<Segment> {
    loops
        .flat_map(|k| {
            one.iter().map(move |s| Segment {
                start: s.start + k as f64 * loop_len,
                end: s.end + k as f64 * loop_len,
                ..s.clone()
            })
        })
        .collect()
}

/// The parts of `segments` within `[from, until)`.
pub fn within(segments: &[Segment], from: f64, until: f64) -> Vec<Segment> {
    segments
        .iter()
        .filter(|x| x.end > from && x.start < until)
        .map(|x| Segment {
            start: x.start.max(from),
            end: x.end.min(until),
            ..x.clone()
        })
        .collect()
}

/// For each reference speaker with at least `min_speech` s labelled in
/// `hyp`, the label covering most of its speech.
pub fn dominant(truth: &[Segment], hyp: &[Segment], min_speech: f64) -> HashMap<String, String> {
    let mut by: HashMap<&str, HashMap<&str, f64>> = HashMap::new();
    for r in truth {
        for x in hyp {
            let o = r.end.min(x.end) - r.start.max(x.start);
            if o > 0.0 {
                *by.entry(&r.label).or_default().entry(&x.label).or_default() += o;
            }
        }
    }
    by.into_iter()
        .filter_map(|(r, labels)| {
            if labels.values().sum::<f64>() < min_speech {
                return None;
            }
            let best = labels.into_iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
            Some((r.to_string(), best.0.to_string()))
        })
        .collect()
}

/// From the earliest start to the latest end of `segments`.
pub fn span(segments: &[Segment]) -> Option<(f64, f64)> {
    let from = segments.iter().map(|t| t.start).reduce(f64::min)?;
    let to = segments.iter().map(|t| t.end).reduce(f64::max)?;
    Some((from, to))
}

/// Reference speakers whose most-used label changed between two reports
/// of the same speech: both are cut to the span they share, and a speaker
/// needs `min_speech` s labelled there in each to be judged.
pub fn relabelled(
    truth: &[Segment],
    before: &[Segment],
    after: &[Segment],
    min_speech: f64,
) -> Vec<String> {
    let (Some((b0, b1)), Some((a0, a1))) = (span(before), span(after)) else {
        return Vec::new();
    };
    let (from, to) = (b0.max(a0), b1.min(a1));
    if to <= from {
        return Vec::new();
    }
    let truth = within(truth, from, to);
    let was = dominant(&truth, &within(before, from, to), min_speech);
    let now = dominant(&truth, &within(after, from, to), min_speech);
    let mut out: Vec<String> = now
        .into_iter()
        .filter(|(speaker, label)| was.get(speaker).is_some_and(|w| w != label))
        .map(|(speaker, _)| speaker)
        .collect();
    out.sort();
    out
}

pub fn pct(c: &DerComponents) -> String {
    format!("{:.2} %", 100.0 * c.der())
}

/// DER with its parts: missed / false alarm / confusion.
pub fn parts(c: &DerComponents) -> String {
    let p = |v: f64| 100.0 * v / c.total.max(1e-9);
    format!(
        "{} (missed {:.1}, false alarm {:.1}, confusion {:.1})",
        pct(c),
        p(c.missed),
        p(c.false_alarm),
        p(c.confusion)
    )
}
