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
//!
//! `TUNE_TRACE=1` also prints every label change, every switch the live
//! benchmark's counter would count (with the speaker's seconds under each
//! label before and after) and each loop's DER.
//!
//! It replays the engine alone: the element's run of the same (`live soak`)
//! adds inference and GStreamer and takes the stream's own time.

#[path = "common/sets.rs"]
mod sets;

use sets::{dominant, relabelled, repeated, within};

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use gstspeakrs::engine::analysis::ChunkAnalysis;
use gstspeakrs::engine::config::{CHUNK_SECONDS, SAMPLE_RATE};
use gstspeakrs::engine::der::{score, Segment};
use gstspeakrs::engine::online::{Online, OnlineConfig};
use gstspeakrs::engine::pipeline::{Pipeline, PipelineConfig};
use gstspeakrs::engine::reconstruct::Turn;
use gstspeakrs::engine::registry::Registry;
use gstspeakrs::engine::workers::{self, ChunkJob, Shared};
use ndarray::{Array3, Axis};
use ndarray_npy::{NpzReader, NpzWriter};

struct Options {
    set: PathBuf,
    hours: f64,
    step: f64,
    interval: f64,
    horizon: f64,
    latency: f64,
}

fn parse() -> Options {
    let mut o = Options {
        set: "../shared/eval/sim-dev".into(),
        hours: 6.0,
        step: 2.0,
        interval: 30.0,
        horizon: 600.0,
        latency: 10.0,
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
            _ => panic!("unknown flag {flag}"),
        }
    }
    o
}

/// One loop's chunks, as they are in every loop but the stream's end: the
/// chunks starting in the second of two concatenated loops.
fn analyse_loop(audio: &[f32], step: usize, pipeline: &Pipeline) -> Vec<ChunkAnalysis> {
    let chunk = (CHUNK_SECONDS * SAMPLE_RATE as f64) as usize;
    let mut twice = audio.to_vec();
    twice.extend_from_slice(audio);
    twice.extend_from_slice(&audio[..chunk.min(audio.len())]);
    let per_loop = audio.len() / step;
    let shared = Arc::new(Shared::default());
    let (jobs, rx) = crossbeam_channel::bounded(16);
    let threads = workers::spawn(
        rx,
        pipeline.segmenter.clone(),
        &pipeline.embedders,
        shared.clone(),
        8,
        16,
    )
    .expect("inference threads");
    for index in per_loop..2 * per_loop {
        let start = index * step;
        let job = ChunkJob {
            index,
            start,
            audio: twice[start..start + chunk].into(),
        };
        jobs.send(job).expect("workers alive");
    }
    drop(jobs);
    threads.into_iter().for_each(|t| t.join().expect("worker"));
    if let Some(e) = shared.error.lock().unwrap().take() {
        panic!("{e}");
    }
    let mut analyses = shared.analyses.lock().unwrap();
    // The reorder buffer hands out chunks from index 0: fill the first loop in.
    for index in 0..per_loop {
        analyses.push(ChunkAnalysis::skipped(index, 0));
    }
    analyses
        .take_ready()
        .into_iter()
        .skip(per_loop)
        .map(|mut a| {
            a.index -= per_loop;
            a
        })
        .collect()
}

fn cached_analyses(
    o: &Options,
    audio: &[f32],
    step: usize,
    pipeline: &Pipeline,
) -> Vec<ChunkAnalysis> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"))
        .join("gst-speakrs");
    let name = o.set.file_name().unwrap().to_string_lossy().to_string();
    let path = cache.join(format!("replay-{name}-{step}.npz"));
    if let Ok(file) = std::fs::File::open(&path) {
        let mut npz = NpzReader::new(file).expect("npz");
        let activity: Array3<f32> = npz.by_name("activity").expect("activity");
        let embeddings: Array3<f32> = npz.by_name("embeddings").expect("embeddings");
        return activity
            .axis_iter(Axis(0))
            .zip(embeddings.axis_iter(Axis(0)))
            .enumerate()
            .map(|(index, (a, e))| ChunkAnalysis {
                index,
                activity: a.to_owned(),
                embeddings: e.to_owned(),
            })
            .collect();
    }
    let started = Instant::now();
    let chunks = analyse_loop(audio, step, pipeline);
    eprintln!(
        "analysed {} chunks in {:.0} s; cached in {}",
        chunks.len(),
        started.elapsed().as_secs_f64(),
        path.display()
    );
    let stack = |f: &dyn Fn(&ChunkAnalysis) -> ndarray::ArrayView2<f32>| {
        let views: Vec<_> = chunks.iter().map(f).collect();
        ndarray::stack(Axis(0), &views).expect("same shapes")
    };
    std::fs::create_dir_all(&cache).expect("cache dir");
    let mut npz = NpzWriter::new(std::fs::File::create(&path).expect("cache file"));
    npz.add_array("activity", &stack(&|c| c.activity.view()))
        .unwrap();
    npz.add_array("embeddings", &stack(&|c| c.embeddings.view()))
        .unwrap();
    npz.finish().unwrap();
    chunks
}

fn segments(turns: &[Turn]) -> Vec<Segment> {
    turns.iter().map(Segment::from).collect()
}

/// Seconds of `speaker`'s reference speech under each label of `hyp`.
fn label_spread(truth: &[Segment], speaker: &str, hyp: &[Segment]) -> String {
    let mut by: BTreeMap<&str, f64> = BTreeMap::new();
    for r in truth.iter().filter(|r| r.label == speaker) {
        for x in hyp {
            let o = r.end.min(x.end) - r.start.max(x.start);
            if o > 0.0 {
                *by.entry(&x.label).or_default() += o;
            }
        }
    }
    by.into_iter()
        .map(|(l, t)| format!("{l}:{t:.0}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `dominant` for each loop; a change from one loop to the next is a label switch.
fn dominant_labels(
    truth: &[Segment],
    hyp: &[Segment],
    loop_len: f64,
    loops: usize,
) -> Vec<HashMap<String, String>> {
    (0..loops)
        .map(|k| {
            let (from, until) = (k as f64 * loop_len, (k + 1) as f64 * loop_len);
            dominant(&within(truth, from, until), &within(hyp, from, until), 0.0)
        })
        .collect()
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
    let pipeline = Pipeline::load(&PipelineConfig {
        threads: 2,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let chunks = cached_analyses(&o, &audio, step, &pipeline);
    let per_loop = chunks.len();
    let loops = (o.hours * 3600.0 / loop_len).ceil() as usize;
    let config = OnlineConfig {
        cluster_interval: o.interval,
        horizon: o.horizon,
    };
    let step_s = o.step;
    let mut online = Online::new(step_s, config, &pipeline, Registry::default());
    let (mut live, mut emitted) = (Vec::<Turn>::new(), 0.0f64);
    let mut clusterings: BTreeMap<usize, (usize, f64, f64)> = BTreeMap::new();
    let (mut merges, mut splits) = (0usize, 0usize);
    let (mut window_dominant, mut window_switches) = (HashMap::<String, String>::new(), 0usize);
    let truth = repeated(&reference, loop_len, 0..loops);
    let trace = std::env::var_os("TUNE_TRACE").is_some();
    let started = Instant::now();
    let mut last_reported: Vec<Segment> = Vec::new();
    let mut relabels = 0usize;
    for k in 0..loops {
        for c in &chunks {
            let index = k * per_loop + c.index;
            let until = index as f64 * step_s + CHUNK_SECONDS;
            let mut a = c.clone();
            a.index = index;
            let Some(u) = online.add(vec![a], until, &pipeline).expect("add") else {
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
                    gstspeakrs::engine::registry::LabelChange::Merged { .. } => merges += 1,
                    gstspeakrs::engine::registry::LabelChange::Split { .. } => splits += 1,
                }
            }
            if u.reclustered {
                // The live benchmark's counter: each reference speaker's
                // most-used label within the reported turns (the horizon).
                let reported: Vec<Segment> = u
                    .finalized
                    .iter()
                    .chain(&u.provisional)
                    .map(Segment::from)
                    .collect();
                if let (Some(from), Some(to)) = (
                    reported.iter().map(|t| t.start).reduce(f64::min),
                    reported.iter().map(|t| t.end).reduce(f64::max),
                ) {
                    let now = dominant(&within(&truth, from, to), &reported, 5.0);
                    for (speaker, label) in &now {
                        let before = window_dominant.insert(speaker.clone(), label.clone());
                        if until > 60.0 && before.as_ref().is_some_and(|b| b != label) {
                            window_switches += 1;
                            if trace {
                                let truth = within(&truth, from, to);
                                eprintln!(
                                    "wswitch {until:.0} {speaker}: {before:?} -> {label} {:?} now [{}] before [{}]",
                                    u.changes,
                                    label_spread(&truth, speaker, &reported),
                                    label_spread(&truth, speaker, &last_reported)
                                );
                            }
                        }
                    }
                }
                if until > 60.0 {
                    let moved = relabelled(&truth, &last_reported, &reported, 5.0);
                    if trace {
                        for speaker in &moved {
                            eprintln!(
                                "relabel {until:.0} {speaker}: now [{}] before [{}]",
                                label_spread(&truth, speaker, &reported),
                                label_spread(&truth, speaker, &last_reported)
                            );
                            // Each of the speaker's reference turns in the horizon, with the labels on it before and after.
                            let from = reported.iter().map(|t| t.start).fold(f64::MAX, f64::min);
                            for r in truth
                                .iter()
                                .filter(|r| &r.label == speaker && r.end > from && r.start < until)
                            {
                                let on = |h: &[Segment]| {
                                    h.iter()
                                        .filter(|x| x.end > r.start && x.start < r.end)
                                        .map(|x| {
                                            format!("{}[{:.1}-{:.1}]", x.label, x.start, x.end)
                                        })
                                        .collect::<Vec<_>>()
                                        .join(",")
                                };
                                eprintln!(
                                    "   {:.1}-{:.1}: before {} | now {}",
                                    r.start,
                                    r.end,
                                    on(&last_reported),
                                    on(&reported)
                                );
                            }
                        }
                    }
                    relabels += moved.len();
                }
                last_reported = reported;
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
    println!("label changes reported: {merges} merges, {splits} splits; switches of the most-used label within the horizon (the live benchmark's counter): {window_switches}; speakers whose shared speech a re-clustering relabelled: {relabels}");
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
    let per_loop_labels = dominant_labels(&truth, &eos, loop_len, loops);
    let mut switches = 0;
    for pair in per_loop_labels.windows(2) {
        for (speaker, label) in &pair[1] {
            if let Some(old) = pair[0].get(speaker).filter(|l| *l != label) {
                switches += 1;
                if trace {
                    let owners: Vec<&String> = pair[0]
                        .iter()
                        .filter(|(_, l)| *l == label)
                        .map(|(s, _)| s)
                        .collect();
                    eprintln!(
                        "switch {speaker}: {old} -> {label} (last loop {label} was {owners:?})"
                    );
                }
            }
        }
    }
    println!(
        "whole stream: live DER {:.2} %, EOS DER {:.2} %; reference speakers whose main label changed from one loop to the next: {switches} (of {} speaker-loops)",
        100.0 * whole_live.der(),
        100.0 * whole_eos.der(),
        per_loop_labels.iter().skip(1).map(|m| m.len()).sum::<usize>()
    );
}
