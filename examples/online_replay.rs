//! Hours of a live stream's labelling in minutes: analyses one loop of an
//! eval set once (segmentation + embeddings, cached), then replays the loop
//! through the live state (`engine::online`) for as many hours as asked,
//! without inference. Prints, per hour, the DER of the final turns and of
//! the live turns (what a buffer held `--latency` seconds was labelled
//! with) against the looped reference, the labels in use and the label
//! switches of each reference speaker from loop to loop.
//!
//!     cargo run --release --example online_replay -- --set ../shared/eval/sim-dev
//!         [--hours 6] [--step 2] [--interval 30] [--horizon 600] [--latency 10]
//!         [--analysed-every N] [--batch N]
//!
//! `--analysed-every N`: only every Nth chunk is analysed, the others are
//! skipped, as a live stream does while its inference lags.
//! `--batch N`: N chunks per update, as the element hands over its
//! analysis batch (8) when the analysis runs ahead of real time (`live
//! soak`, `live der`); default 1, a live stream that keeps up.
//!
//! The analyses are cached per set, step and models (in
//! `$XDG_CACHE_HOME/gst-speakrs`, else `~/.cache/gst-speakrs`).
//!
//! `TUNE_TRACE=1` also prints every label change, every switch the live
//! benchmark's counter would count and every relabel (with the speaker's
//! seconds under each label before and after, and for relabels each of
//! the speaker's reference turns with its labels), and each loop's DER.
//!
//! `REPLAY_DUMP=DIR` writes the live, EOS and reference turns there
//! (`live.txt`, `eos.txt`, `truth.txt`: label, start, end per line).
//!
//! It replays the engine alone: the element's run of the same (`live soak`)
//! adds inference and GStreamer and takes the stream's own time.

#[path = "online_replay/cache.rs"]
mod cache;
#[path = "common/der.rs"]
mod der;
#[path = "common/sets.rs"]
mod sets;
#[path = "online_replay/switches.rs"]
mod switches;

use sets::{parts, repeated, within};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::der::{score, Segment};
use gstspeakrs::engine::config::{CHUNK_SECONDS, SAMPLE_RATE};
use gstspeakrs::engine::frontend::chunks::ChunkAnalysis;
use gstspeakrs::engine::loaded::{EngineConfig, LoadedModels};
use gstspeakrs::engine::online::{Online, OnlineConfig};
use gstspeakrs::engine::output::reconstruct::Turn;
use gstspeakrs::engine::registry::{LabelChange, Registry};

struct Options {
    set: PathBuf,
    hours: f64,
    step: f64,
    interval: f64,
    horizon: f64,
    latency: f64,
    /// Only every this many chunks is analysed (a lagging live stream).
    analysed_every: usize,
    /// Chunks handed over per update (the element's analysis batch).
    batch: usize,
}

fn parse() -> Options {
    let mut o = Options {
        set: "../shared/eval/sim-dev".into(),
        hours: 6.0,
        step: 2.0,
        interval: 30.0,
        horizon: 600.0,
        latency: 10.0,
        analysed_every: 1,
        batch: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let number = || {
            v.parse::<f64>()
                .unwrap_or_else(|_| panic!("{flag}: a number"))
        };
        match flag.as_str() {
            "--set" => o.set = v.clone().into(),
            "--hours" => o.hours = number(),
            "--step" => o.step = number(),
            "--interval" => o.interval = number(),
            "--horizon" => o.horizon = number(),
            "--latency" => o.latency = number(),
            "--analysed-every" => o.analysed_every = (number() as usize).max(1),
            "--batch" => o.batch = (number() as usize).max(1),
            _ => panic!("unknown flag {flag}"),
        }
    }
    o
}

fn segments(turns: &[Turn]) -> Vec<Segment> {
    turns.iter().map(Segment::from).collect()
}

fn main() {
    let o = parse();
    let files = sets::read_set(&o.set);
    let step = (o.step * SAMPLE_RATE as f64).round() as usize;
    // Each loop a whole number of steps, so that every loop's chunks are alike.
    let mut audio: Vec<f32> = files
        .iter()
        .flat_map(|f| f.audio.iter().map(|&s| s as f32 / 32768.0))
        .collect();
    audio.resize(audio.len().div_ceil(step) * step, 0.0);
    let loop_len = audio.len() as f64 / SAMPLE_RATE as f64;
    let (_, reference) = sets::looped(&files);
    let pipeline = LoadedModels::load(&EngineConfig {
        threads: 2,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let chunks = cache::cached_analyses(&o.set, &audio, step, &pipeline);
    let per_loop = chunks.len();
    let loops = (o.hours * 3600.0 / loop_len).ceil() as usize;
    let config = OnlineConfig {
        cluster_interval: o.interval,
        horizon: o.horizon,
        ..Default::default()
    };
    let step_s = o.step;
    let mut online = Online::new(step_s, config, &pipeline, Registry::default());
    let (mut live, mut emitted) = (Vec::<Turn>::new(), 0.0f64);
    let mut clusterings: BTreeMap<usize, (usize, f64, f64)> = BTreeMap::new();
    let (mut merges, mut splits) = (0usize, 0usize);
    let mut counter = switches::Counter::default();
    let truth = repeated(&reference, loop_len, 0..loops);
    let trace = std::env::var_os("TUNE_TRACE").is_some();
    let started = Instant::now();
    let mut pending = Vec::new();
    for k in 0..loops {
        for c in &chunks {
            let index = k * per_loop + c.index;
            let until = index as f64 * step_s + CHUNK_SECONDS;
            let mut a = c.clone();
            a.index = index;
            if index % o.analysed_every != 0 {
                a = ChunkAnalysis::skipped(index, a.embeddings.ncols());
            }
            pending.push(a);
            let last = k + 1 == loops && c.index + 1 == per_loop;
            if pending.len() < o.batch && !last {
                continue;
            }
            let batch = std::mem::take(&mut pending);
            let Some(u) = online.add(batch, until, &pipeline).expect("add") else {
                continue;
            };
            if trace && !u.changes.is_empty() {
                eprintln!(
                    "{until:.0} kept-speakers {} {:?}",
                    u.active_speakers, u.changes
                );
            }
            for ch in &u.changes {
                match ch {
                    LabelChange::Merged { .. } => merges += 1,
                    LabelChange::Split { .. } => splits += 1,
                }
            }
            if u.reclustered {
                let reported: Vec<Segment> = u
                    .finalized
                    .iter()
                    .chain(&u.provisional)
                    .map(Segment::from)
                    .collect();
                counter.observe(&truth, reported, until, trace);
                let e = clusterings.entry((until / 3600.0) as usize).or_default();
                e.0 += 1;
                e.1 += u.clustering_seconds;
                e.2 = e.2.max(u.clustering_seconds);
            }
            // What buffers up to `until - latency` were released with.
            let release = until - o.latency;
            if release > emitted {
                let mut all = u.finalized.clone();
                all.extend(u.provisional.iter().copied());
                live.extend(all.iter().filter_map(|t| {
                    let (s, e) = (t.start.max(emitted), t.end.min(release));
                    (e > s).then_some(Turn {
                        start: s,
                        end: e,
                        ..*t
                    })
                }));
                emitted = release;
            }
        }
    }
    let duration = loops as f64 * loop_len;
    let finished = online.finish(duration, &pipeline).expect("finish");
    let wall = started.elapsed().as_secs_f64();
    println!("label changes reported: {merges} merges, {splits} splits; switches of the most-used label within the horizon (the live benchmark's counter): {}; speakers whose shared speech a re-clustering relabelled: {}", counter.switches, counter.relabels);
    if let Some(dir) = std::env::var_os("REPLAY_DUMP") {
        let dir = PathBuf::from(dir);
        let write = |name: &str, segs: &[Segment]| {
            let text: String = segs
                .iter()
                .map(|s| format!("{} {:.3} {:.3}\n", s.label, s.start, s.end))
                .collect();
            std::fs::write(dir.join(name), text).expect("dump");
        };
        write("live.txt", &segments(&live));
        write("eos.txt", &segments(&finished));
        write("truth.txt", &truth);
    }
    let (live, eos) = (segments(&live), segments(&finished));
    println!(
        "replayed {:.1} h ({loops} loops of {:.0} s, step {} s, interval {} s, horizon {} s) in {wall:.0} s",
        duration / 3600.0,
        loop_len,
        o.step,
        o.interval,
        o.horizon
    );
    println!("| hour | live DER | EOS DER | labels (EOS) | re-clusterings | mean | max |");
    println!("|---|---|---|---|---|---|---|");
    let hours = (duration / 3600.0).ceil() as usize;
    for h in 0..hours {
        let (from, until) = (h as f64 * 3600.0, ((h + 1) as f64 * 3600.0).min(emitted));
        if until <= from {
            break;
        }
        let t = within(&truth, from, until);
        let l = score(&t, &within(&live, from, until));
        let e_seg = within(&eos, from, until);
        let e = score(&t, &e_seg);
        let mut labels: Vec<&str> = e_seg.iter().map(|s| s.label.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        let (n, sum, max) = clusterings.get(&h).copied().unwrap_or_default();
        println!(
            "| {h}–{} | {:.2} % | {:.2} % | {} | {n} | {:.0} ms | {:.0} ms |",
            h + 1,
            100.0 * l.der(),
            100.0 * e.der(),
            labels.len(),
            1e3 * sum / n.max(1) as f64,
            1e3 * max
        );
    }
    if trace {
        for k in 0..loops {
            let (from, until) = (k as f64 * loop_len, (k + 1) as f64 * loop_len);
            let t = within(&truth, from, until);
            eprintln!(
                "loop {k}: EOS {:.2} %",
                100.0 * score(&t, &within(&eos, from, until)).der()
            );
        }
    }
    let whole_live = score(&within(&truth, 0.0, emitted), &within(&live, 0.0, emitted));
    let whole_eos = score(&truth, &eos);
    if trace {
        eprintln!("live {}; EOS {}", parts(&whole_live), parts(&whole_eos));
    }
    let (switches, judged) = switches::from_loop_to_loop(&truth, &eos, loop_len, loops, trace);
    println!(
        "whole stream: live DER {:.2} %, EOS DER {:.2} %; reference speakers whose main label changed from one loop to the next: {switches} (of {} speaker-loops)",
        100.0 * whole_live.der(),
        100.0 * whole_eos.der(),
        judged
    );
}
