//! Diarization error rate, the strict setting: collar 0,
//! overlapped speech scored, optimal one-to-one label mapping (Hungarian on
//! co-occurrence durations). Computed exactly on the union of segment
//! boundaries, not on sampled frames, like pyannote.metrics. Shared by the
//! benchmarks and the tests; not part of the plugin.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ops::AddAssign;

use pathfinding::prelude::{kuhn_munkres, Matrix};

use gstspeakrs::engine::output::reconstruct::Turn;
use gstspeakrs::engine::output::rttm::RttmSegment;

/// A labelled time span in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub label: String,
    pub start: f64,
    pub end: f64,
}

impl From<&RttmSegment> for Segment {
    fn from(s: &RttmSegment) -> Self {
        Segment {
            label: s.speaker.clone(),
            start: s.start,
            end: s.end(),
        }
    }
}

impl From<&Turn> for Segment {
    fn from(t: &Turn) -> Self {
        Segment {
            label: format!("spk{}", t.speaker),
            start: t.start,
            end: t.end,
        }
    }
}

/// Error durations in seconds; add them up over files, then call `der`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DerComponents {
    pub missed: f64,
    pub false_alarm: f64,
    pub confusion: f64,
    /// Total reference speech (overlap counted once per speaker).
    pub total: f64,
}

impl DerComponents {
    pub fn error(&self) -> f64 {
        self.missed + self.false_alarm + self.confusion
    }
    /// DER as a fraction (0.1 = 10 %). With no reference speech: 0 when
    /// there is no error either, else infinity.
    pub fn der(&self) -> f64 {
        if self.total > 0.0 {
            self.error() / self.total
        } else if self.error() > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    }
}

impl AddAssign for DerComponents {
    fn add_assign(&mut self, o: Self) {
        self.missed += o.missed;
        self.false_alarm += o.false_alarm;
        self.confusion += o.confusion;
        self.total += o.total;
    }
}

/// Label → index, and per-interval active counts.
fn index_labels(segs: &[Segment]) -> (Vec<usize>, usize) {
    let mut map: HashMap<&str, usize> = HashMap::new();
    let ids = segs
        .iter()
        .map(|s| {
            let n = map.len();
            *map.entry(s.label.as_str()).or_insert(n)
        })
        .collect();
    (ids, map.len())
}

/// Per elementary interval: (duration, ref counts, hyp counts).
fn intervals(
    r: &[Segment],
    h: &[Segment],
    rid: &[usize],
    hid: &[usize],
    nr: usize,
    nh: usize,
) -> Vec<(f64, Vec<u32>, Vec<u32>)> {
    let valid = |s: &&Segment| s.start.is_finite() && s.end.is_finite() && s.end > s.start;
    let mut bounds: Vec<f64> = r
        .iter()
        .chain(h)
        .filter(valid)
        .flat_map(|s| [s.start, s.end])
        .collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    let mut out: Vec<(f64, Vec<u32>, Vec<u32>)> = bounds
        .windows(2)
        .map(|w| (w[1] - w[0], vec![0; nr], vec![0; nh]))
        .collect();
    let mut add = |segs: &[Segment], ids: &[usize], is_ref: bool| {
        for (s, &id) in segs.iter().zip(ids).filter(|(s, _)| valid(s)) {
            let a = bounds.partition_point(|&b| b < s.start);
            let b = bounds.partition_point(|&b| b < s.end);
            for iv in &mut out[a..b] {
                if is_ref {
                    iv.1[id] += 1
                } else {
                    iv.2[id] += 1
                }
            }
        }
    };
    add(r, rid, true);
    add(h, hid, false);
    out
}

/// Optimal one-to-one mapping hyp label → ref label maximising the total
/// co-occurrence (nanosecond integers for the exact Kuhn–Munkres solver).
fn optimal_mapping(cooc: &[Vec<f64>], nr: usize, nh: usize) -> Vec<Option<usize>> {
    let mut map = vec![None; nh];
    if nr == 0 || nh == 0 {
        return map;
    }
    let w = |i: usize, j: usize| (cooc[i][j] * 1e9).round() as i64;
    if nr <= nh {
        let (_, a) = kuhn_munkres(&Matrix::from_fn(nr, nh, |(i, j)| w(i, j)));
        for (i, j) in a.into_iter().enumerate() {
            map[j] = (cooc[i][j] > 0.0).then_some(i);
        }
    } else {
        let (_, a) = kuhn_munkres(&Matrix::from_fn(nh, nr, |(j, i)| w(i, j)));
        for (j, i) in a.into_iter().enumerate() {
            map[j] = (cooc[i][j] > 0.0).then_some(i);
        }
    }
    map
}

/// The two label sets on the union of their segment boundaries: each
/// label's text, and per elementary interval (duration, reference counts,
/// hypothesis counts), counts indexed like the labels. For scorers that
/// need more than DER (e.g. identification rates).
pub struct Timeline {
    pub reference_labels: Vec<String>,
    pub hypothesis_labels: Vec<String>,
    pub intervals: Vec<(f64, Vec<u32>, Vec<u32>)>,
}

fn label_texts(segs: &[Segment], ids: &[usize], n: usize) -> Vec<String> {
    let mut out = vec![String::new(); n];
    for (s, &i) in segs.iter().zip(ids) {
        out[i].clone_from(&s.label);
    }
    out
}

pub fn timeline(reference: &[Segment], hypothesis: &[Segment]) -> Timeline {
    let (rid, nr) = index_labels(reference);
    let (hid, nh) = index_labels(hypothesis);
    Timeline {
        reference_labels: label_texts(reference, &rid, nr),
        hypothesis_labels: label_texts(hypothesis, &hid, nh),
        intervals: intervals(reference, hypothesis, &rid, &hid, nr, nh),
    }
}

/// Co-occurrence durations `[reference][hypothesis]`.
fn cooccurrence(t: &Timeline) -> Vec<Vec<f64>> {
    let (nr, nh) = (t.reference_labels.len(), t.hypothesis_labels.len());
    let mut cooc = vec![vec![0.0f64; nh]; nr];
    for (d, rc, hc) in &t.intervals {
        for (i, &a) in rc.iter().enumerate().filter(|(_, &a)| a > 0) {
            for (j, &b) in hc.iter().enumerate().filter(|(_, &b)| b > 0) {
                cooc[i][j] += d * a.min(b) as f64;
            }
        }
    }
    cooc
}

/// The error durations under `map` (hypothesis label → reference label).
fn tally(t: &Timeline, map: &[Option<usize>]) -> DerComponents {
    let mut out = DerComponents::default();
    for (d, rc, hc) in &t.intervals {
        let n_ref: u32 = rc.iter().sum();
        let n_hyp: u32 = hc.iter().sum();
        let correct: u32 = hc
            .iter()
            .zip(map)
            .map(|(&b, m)| m.map_or(0, |i| b.min(rc[i])))
            .sum();
        out.total += d * n_ref as f64;
        out.missed += d * n_ref.saturating_sub(n_hyp) as f64;
        out.false_alarm += d * n_hyp.saturating_sub(n_ref) as f64;
        out.confusion += d * (n_ref.min(n_hyp) - correct) as f64;
    }
    out
}

/// Scores `hypothesis` against `reference`. Segments with non-finite or
/// non-positive extent are ignored.
pub fn score(reference: &[Segment], hypothesis: &[Segment]) -> DerComponents {
    let t = timeline(reference, hypothesis);
    let map = optimal_mapping(
        &cooccurrence(&t),
        t.reference_labels.len(),
        t.hypothesis_labels.len(),
    );
    tally(&t, &map)
}

/// DER of a hypothesis whose labels may be names of reference speakers
/// (identification): a hypothesis label in `names` is mapped to the
/// reference speaker of that name, or to no one if that speaker does not
/// speak here; the other hypothesis labels get the optimal one-to-one
/// mapping onto the reference speakers no name took. Otherwise the rules
/// of `score` (collar 0, overlap scored); with no names it equals `score`.
pub fn score_named(
    reference: &[Segment],
    hypothesis: &[Segment],
    names: &std::collections::HashSet<String>,
) -> DerComponents {
    let t = timeline(reference, hypothesis);
    let cooc = cooccurrence(&t);
    let mut map = vec![None; t.hypothesis_labels.len()];
    let mut taken = vec![false; t.reference_labels.len()];
    let mut free_hyp = Vec::new();
    for (j, label) in t.hypothesis_labels.iter().enumerate() {
        if names.contains(label) {
            map[j] = t.reference_labels.iter().position(|r| r == label);
            if let Some(i) = map[j] {
                taken[i] = true;
            }
        } else {
            free_hyp.push(j);
        }
    }
    let free_ref: Vec<usize> = (0..taken.len()).filter(|&i| !taken[i]).collect();
    let sub: Vec<Vec<f64>> = free_ref
        .iter()
        .map(|&i| free_hyp.iter().map(|&j| cooc[i][j]).collect())
        .collect();
    let sub_map = optimal_mapping(&sub, free_ref.len(), free_hyp.len());
    for (k, m) in sub_map.into_iter().enumerate() {
        map[free_hyp[k]] = m.map(|i| free_ref[i]);
    }
    tally(&t, &map)
}
