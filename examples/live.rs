//! The live benchmark: the element on live (or accelerated) streams.
//!
//!     cargo run --release --example live -- der --set ../shared/eval/sim-dev [--latency 10]
//!     cargo run --release --example live -- streams --set DIR --streams 1,2,4 --minutes 2
//!     cargo run --release --example live -- soak --set DIR --hours 6 [--step 1]
//!
//! `--buffer-ms N` sets the size of the buffers pushed (default: 5 for
//! `der`, 20 for `streams` and `soak`, what audio sources deliver). A
//! buffer's `speakers` name everyone speaking anywhere inside it, so live
//! turns built from them are stretched by up to a buffer at each end:
//! 100 ms buffers added ~3 points of false alarm to the live figure.
//! `--precision int8` runs the element with the int8 CAM++.
//!
//! - `der`: each file as its own stream, accelerated (non-live source:
//!   buffers wait for the analysis, which is what a live stream that keeps
//!   up shows). The live output is the `speakers` on each buffer's meta
//!   with `latency`; scored against the reference and against the EOS
//!   output, both clipped to end `latency` before the file does (the
//!   held tail gets the final turns, which a live viewer never sees).
//!   Buffers are 5 ms, so that labelling whole buffers costs little.
//! - `streams`: N live pipelines (`appsrc is-live=true` paced by the wall
//!   clock) in one process, looping the set; per-stream CPU, skipped chunks
//!   (degradation), peak RSS, live-vs-EOS DER and label switches, for each
//!   N in a process of its own.
//! - `soak`: one accelerated stream of many hours (the set looped): RSS and
//!   re-clustering time over stream time.

#[path = "common/der.rs"]
mod der;
#[path = "common/process.rs"]
mod process;
#[path = "common/sets.rs"]
mod sets;
#[path = "live/stream.rs"]
mod stream;

use gstspeakrs::engine::profile::{Profile, Stage};
use process::{cpu_seconds, rss_mib};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::der::{score, DerComponents, Segment};
use sets::{looped, parts, pct, read_set, repeated, within};
use stream::{Outcome, Spec};

struct Options {
    command: String,
    set: PathBuf,
    latency: f64,
    streams: Vec<usize>,
    minutes: f64,
    hours: f64,
    step: f64,
    threads: usize,
    interval: f64,
    horizon: f64,
    buffer_ms: Option<u64>,
    precision: String,
}

fn parse() -> Options {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        command: args.next().unwrap_or_else(|| "der".into()),
        set: "../shared/eval/sim-dev".into(),
        latency: 10.0,
        streams: vec![1],
        minutes: 2.0,
        hours: 6.0,
        step: 1.0,
        threads: 0,
        interval: 30.0,
        horizon: 600.0,
        buffer_ms: None,
        precision: "fp32".into(),
    };
    while let Some(flag) = args.next() {
        let v = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        let num = |v: &str| {
            v.parse::<f64>()
                .unwrap_or_else(|_| panic!("{flag}: a number"))
        };
        match flag.as_str() {
            "--set" => o.set = v.into(),
            "--latency" => o.latency = num(&v),
            "--streams" => {
                o.streams = v
                    .split(',')
                    .map(|n| n.parse().expect("--streams: 1,2,4"))
                    .collect()
            }
            "--minutes" => o.minutes = num(&v),
            "--hours" => o.hours = num(&v),
            "--step" => o.step = num(&v),
            "--threads" => o.threads = num(&v) as usize,
            "--cluster-interval" => o.interval = num(&v),
            "--horizon" => o.horizon = num(&v),
            "--buffer-ms" => o.buffer_ms = Some(num(&v) as u64),
            "--precision" => o.precision = v,
            other => panic!("unknown flag {other}"),
        }
    }
    o
}

fn clip(segments: &[Segment], until: f64) -> Vec<Segment> {
    within(segments, f64::NEG_INFINITY, until)
}

fn properties(o: &Options, threads: usize) -> String {
    let ns = |s: f64| (s * 1e9) as u64;
    format!(
        "latency={} cluster-interval={} horizon={} step={} threads={} precision={}",
        ns(o.latency),
        ns(o.interval),
        ns(o.horizon),
        o.step,
        threads,
        o.precision
    )
}

fn der(o: &Options) {
    let files = read_set(&o.set);
    let (mut live, mut eos, mut between) = (
        DerComponents::default(),
        DerComponents::default(),
        DerComponents::default(),
    );
    let (mut switches, mut relabels) = (0, 0);
    for f in &files {
        let seconds = f.audio.len() as f64 / 16_000.0;
        let spec = Spec {
            audio: Arc::new(f.audio.clone()),
            reference: Arc::new(f.reference.clone()),
            seconds,
            live: false,
            // Each buffer's speakers cover the whole buffer: small buffers
            // keep that rounding (≈ half a buffer per turn end) out of the DER.
            buffer_ms: o.buffer_ms.unwrap_or(5),
            properties: properties(o, if o.threads == 0 { 2 } else { o.threads }),
            progress: Arc::default(),
        };
        let out = stream::run(&spec);
        let until = seconds - o.latency;
        if until <= 0.0 {
            continue;
        }
        let (reference, l, e) = (
            clip(&f.reference, until),
            clip(&out.live, until),
            clip(&out.eos, until),
        );
        let (cl, ce) = (score(&reference, &l), score(&reference, &e));
        println!(
            "{:<24} live {:>7}  EOS {:>7}  scored {:.0} s",
            f.uri,
            pct(&cl),
            pct(&ce),
            until
        );
        live += cl;
        eos += ce;
        between += score(&e, &l);
        switches += out.label_switches;
        relabels += out.relabels;
    }
    println!(
        "| set | latency | live DER | EOS DER | live vs EOS | label switches | relabels of the same speech |"
    );
    println!("|---|---|---|---|---|---|---|");
    let name = o
        .set
        .file_name()
        .map_or("?".into(), |n| n.to_string_lossy().to_string());
    println!(
        "| {name} | {} s | {} | {} | {} | {switches} | {relabels} |",
        o.latency,
        pct(&live),
        pct(&eos),
        pct(&between)
    );
}

fn looped_reference(one: &[Segment], loop_len: f64, until: f64) -> Vec<Segment> {
    let loops = (until / loop_len).ceil() as usize;
    clip(&repeated(one, loop_len, 0..loops), until)
}

fn streams(o: &Options) {
    println!("| streams | per-stream CPU | of which segmentation / embedding | frames embedded / audio s | skipped chunks | peak RSS | live vs EOS DER | label switches | real time |");
    println!("|---|---|---|---|---|---|---|---|---|");
    match o.streams[..] {
        [n] => streams_row(o, n),
        // One process per count: peak RSS is then that count's alone, not
        // whatever the counts before it left in the allocator.
        _ => o.streams.iter().for_each(|&n| streams_in_child(n)),
    }
}

/// `n` live streams in this process: prints their row of the table.
fn streams_row(o: &Options, n: usize) {
    let (audio, reference) = looped(&read_set(&o.set));
    let (audio, reference) = (Arc::new(audio), Arc::new(reference));
    let (cpu0, wall0, profile0) = (cpu_seconds(), Instant::now(), Profile::now());
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let monitor = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_mib() as u64, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        })
    };
    let runs: Vec<_> = (0..n)
        .map(|_| {
            let spec = Spec {
                audio: audio.clone(),
                reference: reference.clone(),
                seconds: o.minutes * 60.0,
                live: true,
                buffer_ms: o.buffer_ms.unwrap_or(20),
                properties: properties(o, if o.threads == 0 { 1 } else { o.threads }),
                progress: Arc::default(),
            };
            std::thread::spawn(move || stream::run(&spec))
        })
        .collect();
    let outcomes: Vec<Outcome> = runs
        .into_iter()
        .map(|r| r.join().expect("stream"))
        .collect();
    done.store(true, Ordering::Relaxed);
    let _ = monitor.join();
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = (cpu_seconds() - cpu0) / wall / n as f64;
    let skipped: u64 = outcomes.iter().map(|x| x.skipped_chunks).sum();
    let mut between = DerComponents::default();
    for x in &outcomes {
        let until = x.pushed_seconds - o.latency;
        between += score(&clip(&x.eos, until), &clip(&x.live, until));
    }
    let switches: usize = outcomes.iter().map(|x| x.label_switches).sum();
    // Where each stream's CPU goes (the stages' thread CPU time), and how
    // much CAM++ work a second of its audio costs.
    let spent = Profile::now().since(&profile0);
    let audio_seconds: f64 = outcomes.iter().map(|x| x.pushed_seconds).sum();
    let per_stream = |stage: Stage| 100.0 * spent.stage(stage) / wall / n as f64;
    println!(
        "| {n} | {:.1} % of a core | {:.1} / {:.1} % | {:.0} | {skipped} | {} MiB | {} | {switches} | {} |",
        100.0 * cpu,
        per_stream(Stage::Segmentation),
        per_stream(Stage::Embedding),
        spent.embedded_frames as f64 / audio_seconds.max(1e-9),
        peak.load(Ordering::Relaxed),
        pct(&between),
        if skipped == 0 { "yes" } else { "no (degraded)" }
    );
}

/// Runs this benchmark again for `n` streams alone and prints its row.
fn streams_in_child(n: usize) {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--streams") {
        args[i + 1] = n.to_string();
    }
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let out = std::process::Command::new(exe)
        .args(&args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run the benchmark for one count");
    let text = String::from_utf8_lossy(&out.stdout);
    match text.lines().find(|l| l.starts_with(&format!("| {n} |"))) {
        Some(row) => println!("{row}"),
        None => println!("| {n} | failed: {} |", out.status),
    }
}

fn soak(o: &Options) {
    let (audio, reference) = looped(&read_set(&o.set));
    let loop_len = audio.len() as f64 / 16_000.0;
    let seconds = o.hours * 3600.0;
    let progress = Arc::new(AtomicU64::new(0));
    let spec = Spec {
        audio: Arc::new(audio),
        reference: Arc::new(reference.clone()),
        seconds,
        live: false,
        buffer_ms: o.buffer_ms.unwrap_or(20),
        properties: properties(o, if o.threads == 0 { 2 } else { o.threads }),
        progress: progress.clone(),
    };
    let started = Instant::now();
    let run = std::thread::spawn(move || stream::run(&spec));
    println!("| stream time | wall | RSS |");
    println!("|---|---|---|");
    let mut next_report = 0.0;
    while !run.is_finished() {
        let at = progress.load(Ordering::Relaxed) as f64 / 16_000.0;
        if at >= next_report {
            println!(
                "| {:.2} h | {:.0} s | {:.0} MiB |",
                at / 3600.0,
                started.elapsed().as_secs_f64(),
                rss_mib()
            );
            next_report += (seconds / 24.0).max(60.0);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = run.join().expect("soak stream");
    println!(
        "| {:.2} h (end) | {:.0} s | {:.0} MiB |",
        out.pushed_seconds / 3600.0,
        started.elapsed().as_secs_f64(),
        rss_mib()
    );
    println!("\nre-clustering time by hour of stream:");
    println!("| hour | re-clusterings | mean | max |");
    println!("|---|---|---|---|");
    for h in 0..o.hours.ceil() as usize {
        let times: Vec<f64> = out
            .clusterings
            .iter()
            .filter(|(t, _)| (*t / 3600.0) as usize == h)
            .map(|&(_, c)| c)
            .collect();
        if times.is_empty() {
            continue;
        }
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let max = times.iter().copied().fold(0.0, f64::max);
        println!(
            "| {h}–{} | {} | {:.0} ms | {:.0} ms |",
            h + 1,
            times.len(),
            1e3 * mean,
            1e3 * max
        );
    }
    let until = out.pushed_seconds - o.latency;
    let truth = looped_reference(&reference, loop_len, until);
    let (l, e) = (clip(&out.live, until), clip(&out.eos, until));
    println!(
        "\nDER over {:.1} h ({} ms buffers): live {}  EOS {}  live vs EOS {}  label switches after the first minute: {} (relabels of the same speech: {})  xRT {:.1}",
        until / 3600.0,
        o.buffer_ms.unwrap_or(20),
        parts(&score(&truth, &l)),
        parts(&score(&truth, &e)),
        pct(&score(&e, &l)),
        out.label_switches,
        out.relabels,
        out.pushed_seconds / started.elapsed().as_secs_f64()
    );
}

fn main() {
    gst::init().expect("GStreamer init");
    gstspeakrs::plugin_register_static().expect("register speakrs plugin");
    let o = parse();
    match o.command.as_str() {
        "der" => der(&o),
        "streams" => streams(&o),
        "soak" => soak(&o),
        other => panic!("unknown command {other}: der | streams | soak"),
    }
}
