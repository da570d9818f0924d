//! Evaluation: diarizes every file of one or more eval sets (`index.tsv`
//! with uri, wav, rttm columns), writes RTTMs and prints DER (collar 0,
//! overlap scored, optimal mapping) with missed / false alarm / confusion,
//! xRT (audio seconds per wall second, model loading excluded) and peak RSS.
//!
//!     cargo run --release --example evaluate -- --set ../shared/eval/sim-dev [--set …]
//!         [--mode element|engine] [--out DIR] [--step 1.0] [--clustering vbx|ahc]
//!         [--plda FILE] [--threads N] [--score-only RTTM_DIR] [--label NAME]
//!         [--embedding-frames N] [--precision fp32|int8]
//!         [--identify [--thresholds 0,10,20,25,30,35,40,50]]
//!
//! `--mode element` (default) runs the real `speakrsdiarize` element in
//! `filesrc ! decodebin ! audioconvert ! speakrsdiarize ! fakesink`;
//! `--mode engine` calls the engine directly; there `--embedding-frames N`
//! embeds at most N fbank frames per speaker and chunk (0 = all, as pyannote).
//! `--score-only DIR` scores RTTMs another system wrote (e.g.
//! tools/bench_sherpa.py).
//!
//! `--identify` measures naming speakers by enrolled voices instead (engine
//! path; enrollment protocol and metrics in `evaluate/identify.rs`), at
//! each naming threshold of `--thresholds` (comma-separated).

#[path = "common/der.rs"]
mod der;
#[path = "evaluate/element_mode.rs"]
mod element_mode;
#[path = "evaluate/identify.rs"]
mod identify;
#[path = "common/naming.rs"]
mod naming;
#[path = "common/process.rs"]
mod process;
#[path = "common/sets.rs"]
mod sets;
#[path = "common/wav.rs"]
mod wav;

use process::{cpu_seconds, peak_rss_mib};
use std::path::PathBuf;
use std::time::Instant;

use crate::der::{score, DerComponents};
use crate::wav::read_wav_16k;
use gstspeakrs::engine::clustering::ClusteringConfig;
use gstspeakrs::engine::loaded::{EngineConfig, LoadedModels};
use gstspeakrs::engine::profile::{Profile, Stage};
use gstspeakrs::engine::stream::{diarize, StreamConfig};
use gstspeakrs::models::Precision;
use sets::{read_index, segments};

pub struct Options {
    sets: Vec<PathBuf>,
    mode: String,
    out: PathBuf,
    pub step: f64,
    clustering: String,
    plda: Option<PathBuf>,
    precision: Precision,
    pub threads: usize,
    max_embedding_frames: Option<usize>,
    score_only: Option<PathBuf>,
    label: String,
    identify: bool,
    thresholds: Option<Vec<f64>>,
}

fn parse() -> Options {
    let mut o = Options {
        sets: Vec::new(),
        mode: "element".into(),
        out: std::env::temp_dir().join("speakrs-eval"),
        step: 1.0,
        clustering: "vbx".into(),
        plda: None,
        precision: Precision::Fp32,
        threads: 2,
        max_embedding_frames: None,
        score_only: None,
        label: String::new(),
        identify: false,
        thresholds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // Switches, without a value.
        let switch = match flag.as_str() {
            "--identify" => Some(&mut o.identify),
            _ => None,
        };
        if let Some(on) = switch {
            *on = true;
            continue;
        }
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--set" => o.sets.push(v.into()),
            "--mode" => o.mode = v,
            "--out" => o.out = v.into(),
            "--step" => o.step = v.parse().expect("--step: seconds"),
            "--clustering" => o.clustering = v,
            "--plda" => o.plda = Some(v.into()),
            "--precision" => {
                o.precision = match v.as_str() {
                    "fp32" => Precision::Fp32,
                    "int8" => Precision::Int8,
                    other => panic!("--precision: fp32 or int8, not {other}"),
                }
            }
            "--threads" => o.threads = v.parse().expect("--threads: integer"),
            "--embedding-frames" => {
                let n: usize = v.parse().expect("--embedding-frames: integer");
                o.max_embedding_frames = Some(if n == 0 { usize::MAX } else { n });
            }
            "--score-only" => o.score_only = Some(v.into()),
            "--label" => o.label = v,
            "--thresholds" => {
                o.thresholds = Some(
                    v.split(',')
                        .map(|t| {
                            t.trim()
                                .parse()
                                .expect("--thresholds: numbers, comma-separated")
                        })
                        .collect(),
                )
            }
            _ => panic!("unknown flag {flag}"),
        }
    }
    if o.label.is_empty() {
        o.label = match &o.score_only {
            Some(d) => format!("rttm:{}", d.display()),
            None if o.precision == Precision::Int8 => {
                format!("speakrs-{}-{}-int8", o.mode, o.clustering)
            }
            None => format!("speakrs-{}-{}", o.mode, o.clustering),
        };
    }
    o
}

/// One row of the profile table: where the CPU time of a set went.
fn profile_row(set: &str, wall: f64, cpu: f64, audio: f64, p: &Profile) -> String {
    let staged: f64 = p.seconds.iter().sum();
    let share = |s: f64| format!("{s:.2} s ({:.0} %)", 100.0 * s / cpu.max(1e-9));
    let stages: Vec<String> = Stage::ALL.iter().map(|&s| share(p.stage(s))).collect();
    format!(
        "| {set} | {wall:.1} s | {cpu:.1} s | {} | {} | {:.2} | {:.0} |",
        stages.join(" | "),
        share((cpu - staged).max(0.0)),
        p.embedding_runs as f64 / audio.max(1e-9),
        p.embedded_frames as f64 / audio.max(1e-9),
    )
}

fn main() {
    let o = parse();
    let mut config = EngineConfig {
        threads: o.threads,
        ..Default::default()
    };
    config.clustering = if o.clustering == "ahc" {
        ClusteringConfig::ahc()
    } else {
        ClusteringConfig::vbx()
    };
    config.models.plda = o.plda.clone();
    config.models.precision = o.precision;
    // Loaded once: the engine mode uses it; in element mode it keeps the
    // shared ONNX Runtime sessions alive between files, so that model
    // loading stays out of the timing as it does for the engine.
    let loaded = o
        .score_only
        .is_none()
        .then(|| LoadedModels::load(&config).unwrap_or_else(|e| panic!("{e}")));
    if o.identify {
        match &loaded {
            Some(models) => identify::run(&o, models),
            None => panic!("--identify diarizes: it does not take --score-only"),
        }
        return;
    }
    let pipeline = loaded.as_ref().filter(|_| o.mode == "engine");
    if o.score_only.is_none() && o.mode == "element" {
        element_mode::init();
    }
    let mut profiles = Vec::new();
    println!("| system | set | files | DER | missed | false alarm | confusion | xRT |");
    println!("|---|---|---|---|---|---|---|---|");
    for set in &o.sets {
        let set_name = set
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out_dir = o.out.join(&set_name);
        std::fs::create_dir_all(&out_dir).expect("output directory");
        let (mut total, mut audio, mut wall) = (DerComponents::default(), 0.0, 0.0);
        let (profile_before, cpu_before, wall_before) =
            (Profile::now(), cpu_seconds(), Instant::now());
        let entries = read_index(set);
        for e in &entries {
            let hyp_text = if let Some(dir) = &o.score_only {
                std::fs::read_to_string(dir.join(&set_name).join(format!("{}.rttm", e.uri)))
                    .unwrap_or_default()
            } else {
                let rttm_path = out_dir.join(format!("{}.rttm", e.uri));
                let t0 = Instant::now();
                if let Some(p) = &pipeline {
                    let samples = read_wav_16k(&e.wav).expect("16 kHz wav");
                    let stream = StreamConfig {
                        step_seconds: o.step,
                        max_embedding_frames: o.max_embedding_frames,
                        ..Default::default()
                    };
                    let d = diarize((*p).clone(), &stream, &samples)
                        .unwrap_or_else(|err| panic!("{}: {err}", e.uri));
                    std::fs::write(&rttm_path, d.to_rttm(&e.uri)).expect("write RTTM");
                } else {
                    element_mode::run(&o, e, &rttm_path, &config);
                }
                wall += t0.elapsed().as_secs_f64();
                std::fs::read_to_string(&rttm_path).unwrap_or_default()
            };
            audio += e.duration;
            let reference = segments(&std::fs::read_to_string(&e.rttm).expect("reference RTTM"));
            let c = score(&reference, &segments(&hyp_text));
            eprintln!("{:<24} DER {:6.2} %", e.uri, 100.0 * c.der());
            total.missed += c.missed;
            total.false_alarm += c.false_alarm;
            total.confusion += c.confusion;
            total.total += c.total;
        }
        if o.score_only.is_none() {
            profiles.push(profile_row(
                &set_name,
                wall_before.elapsed().as_secs_f64(),
                cpu_seconds() - cpu_before,
                audio,
                &Profile::now().since(&profile_before),
            ));
        }
        let pct = |x: f64| format!("{:.2} %", 100.0 * x / total.total);
        let xrt = if wall > 0.0 {
            format!("{:.1}×", audio / wall)
        } else {
            "–".into()
        };
        println!(
            "| {} | {set_name} | {} | {} | {} | {} | {} | {xrt} |",
            o.label,
            entries.len(),
            pct(total.error()),
            pct(total.missed),
            pct(total.false_alarm),
            pct(total.confusion)
        );
    }
    if o.score_only.is_none() {
        println!("peak RSS: {:.0} MiB", peak_rss_mib());
        println!();
        println!("Profile: CPU time per stage, summed over threads (share of the process's CPU time); \"other\" is the rest: decoding (element mode), file reading, scoring, glue.");
        println!();
        println!("| set | wall | CPU | resample | fbank | segmentation | embedding | clustering | other | CAM++ runs / audio s | frames embedded / audio s |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for row in &profiles {
            println!("{row}");
        }
    }
}
