//! Makes a voices file: enrols people under their names from recordings,
//! for `speakrsdiarize voices-location=FILE` to label them by name.
//!
//!     cargo run --release --example enroll -- --out voices.json anchor=anchor.wav guest=talk.mp3:SPEAKER_01
//!
//! - `NAME=AUDIO`: the recording holds that person alone.
//! - `NAME=AUDIO:LABEL`: the person is LABEL in an RTTM of the recording,
//!   e.g. the one `speakrsdiarize rttm-location=…` wrote for it: AUDIO with
//!   its extension replaced by `.rttm`, or the file `--rttm FILE` names
//!   (it applies to the arguments after it).
//!
//! Any format GStreamer decodes will do. An existing `--out` file keeps its
//! voices and gains the new ones (a name enrolled again is replaced); it
//! must have been made with the same models. `--model-dir DIR` picks a
//! model set other than the default one.

use std::path::{Path, PathBuf};

use gst::prelude::*;
use gstspeakrs::engine::loaded::{EngineConfig, LoadedModels};
use gstspeakrs::engine::output::rttm::parse_rttm;
use gstspeakrs::engine::registry::enroll::{enroll, Whose};
use gstspeakrs::models::voices::{ModelIdentity, Voices, VoicesError};
use gstspeakrs::models::ModelSetRequest;

const USAGE: &str =
    "usage: enroll --out FILE [--model-dir DIR] [--rttm FILE] NAME=AUDIO[:LABEL] ...";

struct Request {
    name: String,
    audio: PathBuf,
    /// The RTTM and the person's label in it.
    turns: Option<(PathBuf, String)>,
}

/// `AUDIO` or `AUDIO:LABEL`: a path that exists as given has no label.
fn request(arg: &str, rttm: Option<&Path>) -> Result<Request, String> {
    let (name, rest) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}`: expected NAME=AUDIO[:LABEL]"))?;
    let labelled = (!Path::new(rest).exists())
        .then(|| rest.rsplit_once(':'))
        .flatten();
    let (audio, label) = match labelled {
        Some((audio, label)) => (PathBuf::from(audio), Some(label.to_string())),
        None => (PathBuf::from(rest), None),
    };
    if !audio.is_file() {
        return Err(format!("{}: no such file", audio.display()));
    }
    let turns = label.map(|label| {
        let rttm = rttm.map_or_else(|| audio.with_extension("rttm"), Path::to_path_buf);
        (rttm, label)
    });
    Ok(Request {
        name: name.to_string(),
        audio,
        turns,
    })
}

/// 16 kHz mono samples of any file GStreamer decodes.
fn decode(path: &Path) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let pipeline = gst::parse::launch(
        "filesrc name=src ! decodebin ! audioconvert ! audioresample ! \
         audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved ! appsink name=sink sync=false",
    )?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let src = pipeline.by_name("src").ok_or("no filesrc")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let sink = pipeline
        .by_name("sink")
        .ok_or("no appsink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| "not an appsink")?;
    pipeline.set_state(gst::State::Playing)?;
    let mut samples = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let Some(buffer) = sample.buffer() else {
            continue;
        };
        let map = buffer.map_readable()?;
        samples.extend(
            map.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
    let bus = pipeline.bus().ok_or("no bus")?;
    let failed = bus
        .pop_filtered(&[gst::MessageType::Error])
        .and_then(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        });
    pipeline.set_state(gst::State::Null)?;
    match failed {
        Some(e) => Err(format!("{}: {e}", path.display()).into()),
        None if samples.is_empty() => Err(format!("{}: no audio", path.display()).into()),
        None => Ok(samples),
    }
}

/// Turns as (start, end) seconds.
type Spans = Vec<(f64, f64)>;

/// The person's turns and everyone else's in an RTTM.
fn turns(rttm: &Path, label: &str) -> Result<(Spans, Spans), String> {
    let text = std::fs::read_to_string(rttm).map_err(|e| format!("{}: {e}", rttm.display()))?;
    let segments = parse_rttm(&text).map_err(|e| format!("{}: {e}", rttm.display()))?;
    let (own, others): (Vec<_>, Vec<_>) = segments.iter().partition(|s| s.speaker == label);
    if own.is_empty() {
        let mut labels: Vec<&str> = segments.iter().map(|s| s.speaker.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        return Err(format!(
            "{}: no turns of {label} (labels there: {})",
            rttm.display(),
            labels.join(", ")
        ));
    }
    let span = |s: &&gstspeakrs::engine::output::rttm::RttmSegment| (s.start, s.end());
    Ok((
        own.iter().map(span).collect(),
        others.iter().map(span).collect(),
    ))
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("enroll: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut out = None;
    let mut model_dir = None;
    let mut rttm: Option<PathBuf> = None;
    let mut requests = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = args.next().map(PathBuf::from),
            "--model-dir" => model_dir = args.next().map(PathBuf::from),
            "--rttm" => rttm = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => requests.push(request(&arg, rttm.as_deref())?),
        }
    }
    let out = out.ok_or(USAGE)?;
    if requests.is_empty() {
        return Err(USAGE.into());
    }
    gst::init()?;
    let models = LoadedModels::load(&EngineConfig {
        models: ModelSetRequest {
            dir: model_dir,
            ..Default::default()
        },
        ..Default::default()
    })?;
    let identity = ModelIdentity::of(&models.models)?;
    // Read before the work: a file that cannot be extended fails at once.
    let mut voices = match Voices::read(&out, &identity) {
        Ok(v) => v,
        Err(VoicesError::Missing { .. }) => Voices::new(identity),
        Err(e) => return Err(e.into()),
    };
    for r in &requests {
        let samples = decode(&r.audio)?;
        let spans = r.turns.as_ref().map(|(f, l)| turns(f, l)).transpose()?;
        let whose = match &spans {
            Some((own, others)) => Whose::Turns { own, others },
            None => Whose::OnePerson,
        };
        let voice = enroll(&models, &r.name, &samples, &whose)?;
        println!(
            "{}: {} embeddings from {}{}",
            r.name,
            voice.weight,
            r.audio.display(),
            r.turns
                .as_ref()
                .map_or(String::new(), |(f, l)| format!(" ({l} in {})", f.display()))
        );
        voices.enrolled.retain(|v| v.name != voice.name);
        voices.enrolled.push(voice);
    }
    voices.write(&out)?;
    println!(
        "{}: {} enrolled voices, {} speakers met",
        out.display(),
        voices.enrolled.len(),
        voices.met.len()
    );
    Ok(())
}
