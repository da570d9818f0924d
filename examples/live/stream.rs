//! One stream of the live benchmark: `appsrc ! speakrsdiarize ! appsink`,
//! fed 16 kHz S16 audio (looped), paced by the wall clock when live. It
//! collects what users see: the speakers on each buffer's meta (the live
//! output), the final message (the EOS output), re-clustering times and
//! label switches, and degradation warnings.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::der::Segment;
use gst::prelude::*;

use super::sets::{dominant, relabelled, repeated, span};

pub struct Spec {
    /// One loop of audio and its reference (speaker labels global across loops).
    pub audio: Arc<Vec<i16>>,
    pub reference: Arc<Vec<Segment>>,
    pub seconds: f64,
    /// Live: `is-live=true` and pushed at real-time pace; else as fast as
    /// the element takes it (backpressure).
    pub live: bool,
    pub buffer_ms: u64,
    pub properties: String,
    /// Samples pushed so far (for monitors).
    pub progress: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Default)]
pub struct Outcome {
    /// Turns built from the `speakers` of each buffer as it left the element.
    pub live: Vec<Segment>,
    /// The final message's turns.
    pub eos: Vec<Segment>,
    /// (stream seconds, clustering seconds) per re-clustering.
    pub clusterings: Vec<(f64, f64)>,
    /// Label switches of a reference speaker between re-clusterings, after the first minute.
    pub label_switches: usize,
    /// Reference speakers whose label on the same speech a re-clustering
    /// changed (`sets::relabelled`), after the first minute; unlike
    /// `label_switches`, not which label leads as the reported span slides.
    pub relabels: usize,
    pub skipped_chunks: u64,
    pub pushed_seconds: f64,
}

#[derive(Default)]
struct Collected {
    outcome: Outcome,
    open: Vec<(String, f64)>,
    last_end: f64,
    dominant: std::collections::HashMap<String, String>,
    /// The previous message's turns.
    reported: Vec<Segment>,
}

fn seconds(t: gst::ClockTime) -> f64 {
    t.nseconds() as f64 / 1e9
}

/// Extends the live turns with one buffer's speakers.
fn add_buffer(c: &mut Collected, start: f64, end: f64, speakers: &[String]) {
    let closed: Vec<(String, f64)> = c
        .open
        .iter()
        .filter(|(s, _)| !speakers.contains(s))
        .cloned()
        .collect();
    for (label, from) in closed {
        c.outcome.live.push(Segment {
            label: label.clone(),
            start: from,
            end: start,
        });
        c.open.retain(|(s, _)| *s != label);
    }
    for s in speakers {
        if !c.open.iter().any(|(o, _)| o == s) {
            c.open.push((s.clone(), start));
        }
    }
    c.last_end = end;
}

fn turns_of(s: &gst::StructureRef) -> Vec<Segment> {
    let Ok(turns) = s.get::<gst::Array>("turns") else {
        return Vec::new();
    };
    turns
        .iter()
        .filter_map(|v| {
            let t = v.get::<gst::Structure>().ok()?;
            let start = t
                .get::<Option<gst::ClockTime>>("start-stream-time")
                .ok()??;
            let end = t.get::<Option<gst::ClockTime>>("end-stream-time").ok()??;
            Some(Segment {
                label: t.get::<String>("speaker").ok()?,
                start: seconds(start),
                end: seconds(end),
            })
        })
        .collect()
}

/// After a re-clustering: which label covers most of each reference
/// speaker's speech in the reported turns; a change is a label switch.
fn count_switches(
    c: &mut Collected,
    turns: &[Segment],
    reference: &[Segment],
    loop_len: f64,
    now: f64,
) {
    let Some((from, to)) = span(turns) else {
        return;
    };
    let first_loop = (from / loop_len).floor() as usize;
    let last_loop = (to / loop_len).floor() as usize;
    let truth = repeated(reference, loop_len, first_loop..last_loop + 1);
    // Speakers with under 5 s in the horizon are too little to judge.
    for (speaker, label) in dominant(&truth, turns, 5.0) {
        let previous = c.dominant.insert(speaker, label.clone());
        if previous.is_some_and(|p| p != label) && now > 60.0 {
            c.outcome.label_switches += 1;
        }
    }
    if now > 60.0 {
        c.outcome.relabels += relabelled(&truth, &c.reported, turns, 5.0).len();
    }
    c.reported = turns.to_vec();
}

pub fn run(spec: &Spec) -> Outcome {
    let desc = format!(
        "appsrc name=src is-live={} format=time caps=audio/x-raw,format=S16LE,rate=16000,channels=1,layout=interleaved max-bytes=64000 block=true ! speakrsdiarize name=d {} ! appsink name=sink sync=false",
        spec.live, spec.properties
    );
    let pipeline = gst::parse::launch(&desc)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let collected = Arc::new(Mutex::new(Collected::default()));
    let c = collected.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(buffer) = sample.buffer() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let (Some(pts), Some(duration)) = (buffer.pts(), buffer.duration()) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let speakers: Vec<String> =
                    gst::meta::CustomMeta::from_buffer(buffer, "GstSpeakrsMeta")
                        .ok()
                        .and_then(|m| m.structure().get::<gst::Array>("speakers").ok())
                        .map(|a| a.iter().filter_map(|v| v.get::<String>().ok()).collect())
                        .unwrap_or_default();
                add_buffer(
                    &mut c.lock().unwrap(),
                    seconds(pts),
                    seconds(pts + duration),
                    &speakers,
                );
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline.set_state(gst::State::Playing).expect("PLAYING");

    let (audio, live, buffer_ms, total) =
        (spec.audio.clone(), spec.live, spec.buffer_ms, spec.seconds);
    let feeder_src = src.clone();
    let progress = spec.progress.clone();
    let feeder = std::thread::spawn(move || {
        let per_buffer = (16 * buffer_ms) as usize;
        let total_samples = (total * 16_000.0) as usize;
        let started = Instant::now();
        let mut pushed = 0usize;
        while pushed < total_samples {
            let n = per_buffer.min(total_samples - pushed);
            let mut bytes = Vec::with_capacity(2 * n);
            for i in pushed..pushed + n {
                bytes.extend_from_slice(&audio[i % audio.len()].to_le_bytes());
            }
            let mut buffer = gst::Buffer::from_mut_slice(bytes);
            let pts = gst::ClockTime::from_nseconds(pushed as u64 * 62_500);
            {
                let b = buffer.get_mut().unwrap();
                b.set_pts(pts);
                b.set_duration(gst::ClockTime::from_nseconds(n as u64 * 62_500));
            }
            if live {
                let due = Duration::from_nanos(pts.nseconds());
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            if feeder_src.push_buffer(buffer).is_err() {
                break;
            }
            pushed += n;
            progress.store(pushed as u64, std::sync::atomic::Ordering::Relaxed);
        }
        let _ = feeder_src.end_of_stream();
        pushed as f64 / 16_000.0
    });

    let loop_len = spec.audio.len() as f64 / 16_000.0;
    let bus = pipeline.bus().expect("bus");
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            gst::MessageView::Error(err) => panic!("{} ({:?})", err.error(), err.debug()),
            gst::MessageView::Warning(w) => {
                if let Some(n) = w
                    .details()
                    .and_then(|d| d.get::<u64>("skipped-chunks").ok())
                {
                    collected.lock().unwrap().outcome.skipped_chunks = n;
                }
            }
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure().filter(|s| s.name() == "speakrs-diarization") else {
                    continue;
                };
                let mut c = collected.lock().unwrap();
                if s.get::<bool>("final").unwrap_or(false) {
                    c.outcome.eos = turns_of(s);
                } else if s.get::<bool>("reclustered").unwrap_or(false) {
                    let turns = turns_of(s);
                    let now = turns.iter().map(|t| t.end).fold(0.0, f64::max);
                    c.outcome
                        .clusterings
                        .push((now, s.get::<f64>("clustering-seconds").unwrap_or(0.0)));
                    count_switches(&mut c, &turns, &spec.reference, loop_len, now);
                }
            }
            _ => {}
        }
    }
    let pushed = feeder.join().unwrap_or(0.0);
    pipeline.set_state(gst::State::Null).expect("NULL");
    let mut c = std::mem::take(&mut *collected.lock().unwrap());
    let end = c.last_end;
    for (label, from) in std::mem::take(&mut c.open) {
        c.outcome.live.push(Segment {
            label,
            start: from,
            end,
        });
    }
    c.outcome.pushed_seconds = pushed;
    c.outcome
}
