//! The device check: DER, speed, time to first turn and memory of one
//! execution provider on an eval set, engine only (no GStreamer), so that
//! the binary runs on a machine without GStreamer (the lent GPU machine).
//!
//!     cargo run --release [--features cuda] --example gpu_check -- --set DIR
//!         [--mode cpu|cuda|migraphx] [--device-id N] [--threads N]
//!         [--streams 1,4,16] [--stream-files K | --streams-budget S]
//!         [--files N] [--models DIR] [--step 1.0]
//!
//! Steps, all on one `LoadedModels` (the same ONNX Runtime sessions):
//! 1. model loading, timed on its own;
//! 2. time to first turn: the set's first file through a `StreamingDiarizer`
//!    (live re-clustering as the element does by default) at full speed in
//!    0.5 s pieces, wall time until `poll()` first yields an update with a
//!    turn. It comes right after loading, so it includes the first
//!    inferences' warm-up;
//! 3. the set, file after file (`diarize`): DER (collar 0, overlap scored)
//!    with missed / false alarm / confusion, xRT = audio s / wall s;
//! 4. for each N of `--streams`: N threads, each diarizing the (sub)set on
//!    its own, all sharing the sessions: aggregate xRT, per-stream DER, and
//!    whether every file's DER matches the single-stream run's.
//!
//! Peak RSS is reset before each run where the kernel allows it. For GPU
//! modes `nvidia-smi` (if present) is sampled every 200 ms: the table shows
//! the peak device memory used minus what was used before loading.
//! Expected failures (a missing provider, library, model or set) are
//! printed as `error: …` with exit status 1.

#[path = "common/der.rs"]
mod der;
#[path = "common/process.rs"]
mod process;
#[path = "common/sets.rs"]
mod sets;
#[path = "common/wav.rs"]
mod wav;

use process::{peak_rss_mib, reset_peak_rss};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::der::{score, DerComponents, Segment};
use gstspeakrs::engine::config::SAMPLE_RATE;
use gstspeakrs::engine::loaded::{EngineConfig, LoadedModels};
use gstspeakrs::engine::online::OnlineConfig;
use gstspeakrs::engine::stream::{diarize, StreamConfig, StreamingDiarizer};
use gstspeakrs::models::provider::{Mode, ProviderOptions};

const USAGE: &str = "usage: gpu_check --set DIR [--mode cpu|cuda|migraphx] [--device-id N] \
[--threads N] [--streams N[,N…]] [--stream-files K | --streams-budget SECONDS] [--files N] \
[--models DIR] [--step SECONDS]";

struct Options {
    set: PathBuf,
    mode: Mode,
    device_id: u32,
    threads: usize,
    streams: Vec<usize>,
    stream_files: Option<usize>,
    streams_budget: Option<f64>,
    files: Option<usize>,
    models: Option<PathBuf>,
    step: f64,
}

fn parse() -> Result<Options, String> {
    let mut set = None;
    let mut o = Options {
        set: PathBuf::new(),
        mode: Mode::Cpu,
        device_id: 0,
        threads: 0,
        streams: Vec::new(),
        stream_files: None,
        streams_budget: None,
        files: None,
        models: None,
        step: 1.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let v = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let int = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: `{v}` is not a whole number"))
        };
        match flag.as_str() {
            "--set" => set = Some(PathBuf::from(v)),
            "--mode" => {
                o.mode = match v.as_str() {
                    "cpu" => Mode::Cpu,
                    "cuda" => Mode::Cuda,
                    "migraphx" => Mode::MiGraphX,
                    "coreml" => Mode::CoreMl,
                    _ => return Err(format!("--mode: `{v}` is not one of cpu, cuda, migraphx")),
                }
            }
            "--device-id" => {
                o.device_id = v
                    .parse()
                    .map_err(|_| format!("--device-id: `{v}` is not a device number"))?
            }
            "--threads" => o.threads = int(&v)?,
            "--streams" => {
                o.streams = v
                    .split(',')
                    .map(|n| int(n.trim()))
                    .collect::<Result<_, _>>()?;
                if o.streams.contains(&0) {
                    return Err("--streams: counts start at 1".into());
                }
            }
            "--stream-files" => o.stream_files = Some(int(&v)?.max(1)),
            "--streams-budget" => {
                o.streams_budget = Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|s| *s > 0.0)
                        .ok_or_else(|| format!("--streams-budget: `{v}` is not seconds"))?,
                )
            }
            "--files" => o.files = Some(int(&v)?.max(1)),
            "--models" => o.models = Some(v.into()),
            "--step" => {
                o.step = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0)
                    .ok_or_else(|| format!("--step: `{v}` is not seconds"))?
            }
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    o.set = set.ok_or_else(|| format!("--set DIR is required\n{USAGE}"))?;
    Ok(o)
}

/// One file of the set, read before any timing starts.
struct File {
    uri: String,
    samples: Arc<Vec<f32>>,
    reference: Vec<Segment>,
}

impl File {
    fn seconds(&self) -> f64 {
        self.samples.len() as f64 / SAMPLE_RATE as f64
    }
}

/// The set's files, read and checked here (no panics on a bad index).
fn read_set(set: &Path, limit: Option<usize>) -> Result<Vec<File>, String> {
    let mut entries = sets::try_read_index(set)?;
    if let Some(n) = limit {
        entries.truncate(n);
    }
    if entries.is_empty() {
        return Err(format!("{}: no files", set.join("index.tsv").display()));
    }
    entries
        .into_iter()
        .map(|e| {
            let samples = wav::read_wav_16k(&e.wav)?;
            let rttm = std::fs::read_to_string(&e.rttm)
                .map_err(|err| format!("{}: {err}", e.rttm.display()))?;
            Ok(File {
                reference: sets::try_segments(&rttm)
                    .map_err(|err| format!("{}: {err}", e.rttm.display()))?,
                uri: e.uri,
                samples: Arc::new(samples),
            })
        })
        .collect()
}

/// `nvidia-smi` sampled every 200 ms: the peak memory used on one GPU.
struct GpuSampler {
    device: u32,
    baseline: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn gpu_memory_used(device: u32) -> Option<u64> {
    let out = Command::new("nvidia-smi")
        .args([
            &format!("--id={device}"),
            "--query-gpu=memory.used",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

impl GpuSampler {
    /// `None` without a working nvidia-smi.
    fn start(device: u32) -> Option<Self> {
        let baseline = gpu_memory_used(device)?;
        let peak = Arc::new(AtomicU64::new(baseline));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("gpu-mem".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    if let Some(used) = gpu_memory_used(device) {
                        p.fetch_max(used, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
            .ok()?;
        Some(Self {
            device,
            baseline,
            peak,
            stop,
            thread: Some(thread),
        })
    }

    /// Starts a new peak (at the current use).
    fn reset(&self) {
        let now = gpu_memory_used(self.device).unwrap_or(self.baseline);
        self.peak.store(now, Ordering::Relaxed);
    }

    /// Peak used since the last reset, above the use before loading (MiB).
    fn cell(&self) -> String {
        if let Some(used) = gpu_memory_used(self.device) {
            self.peak.fetch_max(used, Ordering::Relaxed);
        }
        let peak = self.peak.load(Ordering::Relaxed);
        format!("{} MiB", peak.saturating_sub(self.baseline))
    }
}

impl Drop for GpuSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn gpu_cell(gpu: &Option<GpuSampler>) -> String {
    gpu.as_ref().map_or_else(|| "–".into(), GpuSampler::cell)
}

fn pct(v: f64, total: f64) -> String {
    format!("{:.2} %", 100.0 * v / total.max(1e-9))
}

/// One file diarized offline and scored, through RTTM text as `evaluate` does.
fn run_file(
    models: &LoadedModels,
    stream: &StreamConfig,
    f: &File,
) -> Result<DerComponents, String> {
    let d = diarize(models.clone(), stream, &f.samples).map_err(|e| format!("{}: {e}", f.uri))?;
    let hyp = sets::try_segments(&d.to_rttm(&f.uri)).map_err(|e| format!("{}: {e}", f.uri))?;
    Ok(score(&f.reference, &hyp))
}

/// Wall seconds until the first update with a turn, the first file pushed
/// at full speed in 0.5 s pieces; `None` if no turn came before the end.
fn time_to_first_turn(models: &LoadedModels, step: f64, f: &File) -> Result<Option<f64>, String> {
    let config = StreamConfig {
        step_seconds: step,
        online: OnlineConfig {
            cluster_interval: 30.0,
            horizon: 600.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let fail = |e: gstspeakrs::models::ModelError| format!("{} (streaming): {e}", f.uri);
    let t0 = Instant::now();
    let mut stream = StreamingDiarizer::new(models.clone(), &config).map_err(fail)?;
    let has_turn = |u: &gstspeakrs::engine::online::Update| {
        !u.provisional.is_empty() || !u.finalized.is_empty()
    };
    for piece in f.samples.chunks(SAMPLE_RATE as usize / 2) {
        stream.push(piece).map_err(fail)?;
        if stream.poll().map_err(fail)?.is_some_and(|u| has_turn(&u)) {
            return Ok(Some(t0.elapsed().as_secs_f64()));
        }
    }
    // Everything is pushed: wait for the analysis of what is queued.
    let give_up = Instant::now() + Duration::from_secs(120);
    while Instant::now() < give_up {
        if stream.poll().map_err(fail)?.is_some_and(|u| has_turn(&u)) {
            return Ok(Some(t0.elapsed().as_secs_f64()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(None)
}

fn run() -> Result<(), String> {
    let o = parse()?;
    let set_name = o
        .set
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let files = read_set(&o.set, o.files)?;
    let audio: f64 = files.iter().map(File::seconds).sum();
    let threads = if o.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        o.threads
    };
    let mode = o.mode.name();
    println!(
        "gpu_check: mode={mode} device-id={} threads={threads} step={} set={set_name} ({} files, {audio:.1} s audio), host cores {}",
        o.device_id,
        o.step,
        files.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "ONNX Runtime library: {}",
        gstspeakrs::models::paths::ort_library().display()
    );
    let gpu = if o.mode == Mode::Cpu {
        None
    } else {
        let g = GpuSampler::start(o.device_id);
        match &g {
            Some(g) => println!(
                "GPU {}: {} MiB used before loading (nvidia-smi, sampled every 200 ms)",
                o.device_id, g.baseline
            ),
            None => println!("GPU memory: nvidia-smi not available, not measured"),
        }
        g
    };

    let mut config = EngineConfig {
        threads,
        provider: ProviderOptions {
            mode: o.mode,
            device_id: o.device_id,
            cache_dir: None,
        },
        ..Default::default()
    };
    config.models.dir = o.models.clone();
    let t0 = Instant::now();
    let models = LoadedModels::load(&config).map_err(|e| format!("mode {mode}: {e}"))?;
    let load = t0.elapsed().as_secs_f64();
    let library = gstspeakrs::models::paths::ort_library();
    let library = std::fs::canonicalize(&library).unwrap_or(library);
    let version = library
        .file_name()
        .and_then(|n| n.to_str()?.strip_prefix("libonnxruntime.so."))
        .unwrap_or("unknown (not in the file name)");
    println!(
        "ONNX Runtime {version} loaded; build: {}",
        ort::info().trim()
    );
    println!(
        "model load: {load:.2} s ({} + {} × {}, mode {mode})",
        models.models.segmentation.display(),
        models.embedders.len(),
        models.models.embedding.display()
    );
    let stream = StreamConfig {
        step_seconds: o.step,
        ..Default::default()
    };

    // Time to first turn (right after loading: includes warm-up).
    let ttft = time_to_first_turn(&models, o.step, &files[0])?;
    let ttft = ttft.map_or_else(|| "none".into(), |s| format!("{s:.2} s"));

    // The single-stream run over the set.
    let resettable = reset_peak_rss();
    if let Some(g) = &gpu {
        g.reset();
    }
    let mut per_file: HashMap<String, DerComponents> = HashMap::new();
    let mut total = DerComponents::default();
    let t0 = Instant::now();
    for f in &files {
        let c = run_file(&models, &stream, f)?;
        eprintln!("{:<24} DER {:6.2} %", f.uri, 100.0 * c.der());
        total += c;
        per_file.insert(f.uri.clone(), c);
    }
    let wall = t0.elapsed().as_secs_f64();
    let xrt_single = audio / wall.max(1e-9);
    println!();
    println!("| mode | threads | streams | files | audio | DER | missed | false alarm | confusion | xRT | wall | model load | first turn | peak RSS | GPU mem |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {mode} | {threads} | 1 | {} | {audio:.0} s | {} | {} | {} | {} | {xrt_single:.1}× | {wall:.1} s | {load:.2} s | {ttft} | {:.0} MiB{} | {} |",
        files.len(),
        pct(total.error(), total.total),
        pct(total.missed, total.total),
        pct(total.false_alarm, total.total),
        pct(total.confusion, total.total),
        peak_rss_mib(),
        if resettable { "" } else { " (since start)" },
        gpu_cell(&gpu),
    );

    if o.streams.is_empty() {
        return Ok(());
    }
    // The subset each stream diarizes.
    let count = match (o.stream_files, o.streams_budget) {
        (Some(k), _) => k.min(files.len()),
        (None, Some(budget)) => {
            // Assume no gain from concurrency: all the stream runs together
            // then take at most `budget` seconds.
            let streams: usize = o.streams.iter().sum();
            let allowed = budget * xrt_single / streams as f64;
            let mut acc = 0.0;
            files
                .iter()
                .take_while(|f| {
                    acc += f.seconds();
                    acc <= allowed
                })
                .count()
                .max(1)
        }
        (None, None) => files.len(),
    };
    let subset = Arc::new(files.into_iter().take(count).collect::<Vec<_>>());
    let sub_audio: f64 = subset.iter().map(File::seconds).sum();
    let how = match (o.stream_files, o.streams_budget) {
        (Some(_), _) => "--stream-files".to_string(),
        (None, Some(b)) => {
            format!("chosen to fit --streams-budget {b:.0} s at the single-stream {xrt_single:.1}×")
        }
        (None, None) => "the whole set".to_string(),
    };
    println!();
    println!(
        "streams: each diarizes the first {count} file(s) ({sub_audio:.1} s audio; {how}), all sharing the loaded sessions"
    );
    println!("| mode | threads | streams | files/stream | audio | aggregate xRT | wall | DER per stream (mean) | min – max | matches single-stream | peak RSS | GPU mem |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in &o.streams {
        let resettable = reset_peak_rss();
        if let Some(g) = &gpu {
            g.reset();
        }
        let t0 = Instant::now();
        let handles: Vec<JoinHandle<Result<Vec<DerComponents>, String>>> = (0..n)
            .map(|i| {
                let (models, stream, subset) = (models.clone(), stream.clone(), subset.clone());
                std::thread::Builder::new()
                    .name(format!("stream{i}"))
                    .spawn(move || {
                        subset
                            .iter()
                            .map(|f| run_file(&models, &stream, f))
                            .collect()
                    })
                    .map_err(|e| format!("cannot start stream thread: {e}"))
            })
            .collect::<Result<_, _>>()?;
        let mut results = Vec::new();
        for h in handles {
            results.push(
                h.join()
                    .map_err(|_| "a stream thread panicked".to_string())??,
            );
        }
        let wall = t0.elapsed().as_secs_f64();
        let ders: Vec<f64> = results
            .iter()
            .map(|r| {
                let mut t = DerComponents::default();
                r.iter().for_each(|c| t += *c);
                100.0 * t.der()
            })
            .collect();
        let mean = ders.iter().sum::<f64>() / n as f64;
        let (lo, hi) = ders
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &d| {
                (a.min(d), b.max(d))
            });
        let mut max_delta = 0.0f64;
        let mut identical = true;
        for r in &results {
            for (f, c) in subset.iter().zip(r) {
                let single = per_file[&f.uri];
                identical &= single == *c;
                max_delta = max_delta.max(100.0 * (single.der() - c.der()).abs());
            }
        }
        let matches = if identical {
            "yes (identical)".to_string()
        } else if max_delta < 0.01 {
            format!("yes (max Δ {max_delta:.4} pp)")
        } else {
            format!("no (max Δ {max_delta:.2} pp per file)")
        };
        println!(
            "| {mode} | {threads} | {n} | {count} | {:.0} s | {:.1}× | {wall:.1} s | {mean:.2} % | {lo:.2} – {hi:.2} % | {matches} | {:.0} MiB{} | {} |",
            sub_audio * n as f64,
            sub_audio * n as f64 / wall.max(1e-9),
            peak_rss_mib(),
            if resettable { "" } else { " (since start)" },
            gpu_cell(&gpu),
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
