//! Known voices (issue #17): a voices file that cannot be used is an
//! element error at start naming the file, and the file is left exactly as
//! it was; enrolled voices name the speakers who match them; a pipeline
//! stopped mid-stream and restarted with `voices-save` gives the same
//! people the same labels.

mod common;
mod element_support;
mod fault_support;

use std::path::{Path, PathBuf};

use fault_support::*;
use gst::prelude::*;
use gstspeakrs::engine::loaded::{EngineConfig, LoadedModels};
use gstspeakrs::engine::registry::enroll::{enroll, Whose};
use gstspeakrs::models::voices::{EnrolledVoice, ModelIdentity, Voices};

fn scratch(name: &str) -> PathBuf {
    let dir = element_support::tmp("voices");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn models() -> LoadedModels {
    LoadedModels::load(&EngineConfig::default()).expect("default models (scripts/setup.sh)")
}

/// A valid voices file for the default models, one enrolled voice.
fn valid_file(path: &Path) -> Vec<u8> {
    let identity = ModelIdentity::of(&models().models).unwrap();
    let mut voices = Voices::new(identity);
    voices.enrolled.push(EnrolledVoice {
        name: "anchor".into(),
        mean: vec![0.25; 128],
        weight: 20.0,
    });
    voices.write(path).unwrap();
    std::fs::read(path).unwrap()
}

/// The element refuses to start with `file` as it stands (with and
/// without saving), naming it, and leaves its bytes as they were.
fn refused_untouched(file: &Path, kind: gst::ResourceError, needles: &[&str]) {
    let before = std::fs::read(file).ok();
    for save in [false, true] {
        let props = format!("voices-location={} voices-save={save}", file.display());
        let text = refused(&props, kind, needles);
        assert!(text.contains(&file.display().to_string()), "{text}");
        assert_eq!(
            std::fs::read(file).ok(),
            before,
            "{} changed",
            file.display()
        );
    }
}

#[test]
fn a_missing_voices_file_is_an_error_unless_it_is_to_be_saved() {
    let _g = init();
    let file = scratch("missing.json");
    let props = format!("voices-location={}", file.display());
    refused(
        &props,
        gst::ResourceError::NotFound,
        &["does not exist", "enroll"],
    );
    // With voices-save the file is started instead (written at stop).
    let p = Pipe::new(&format!("{props} voices-save=true"));
    assert!(p.play().is_ok());
    p.stop();
    assert!(!file.exists(), "nothing analysed, nothing written");
}

#[test]
fn a_corrupt_voices_file_is_refused_and_kept() {
    let _g = init();
    let file = scratch("corrupt.json");
    let text = String::from_utf8(valid_file(&file)).unwrap();
    std::fs::write(&file, text.replacen("20.0", "21.0", 1)).unwrap();
    refused_untouched(&file, gst::ResourceError::OpenRead, &["corrupt", "sha256"]);
}

#[test]
fn a_truncated_voices_file_is_refused_and_kept() {
    let _g = init();
    let file = scratch("truncated.json");
    let bytes = valid_file(&file);
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    refused_untouched(
        &file,
        gst::ResourceError::OpenRead,
        &["corrupt", "truncated"],
    );
}

#[test]
fn a_foreign_file_is_refused_and_kept() {
    let _g = init();
    let json = scratch("foreign.json");
    std::fs::write(&json, br#"{"files": {"embedding": "campplus.onnx"}}"#).unwrap();
    refused_untouched(
        &json,
        gst::ResourceError::OpenRead,
        &["not a gst-speakrs voices file"],
    );
    let wav = scratch("foreign.wav");
    std::fs::copy(element_support::sample_wav(), &wav).unwrap();
    refused_untouched(&wav, gst::ResourceError::OpenRead, &["not JSON"]);
}

#[test]
fn a_voices_file_of_other_models_is_refused_and_kept() {
    let _g = init();
    let file = scratch("other-models.json");
    let mut voices = Voices::new(ModelIdentity {
        embedding_sha256: "0".repeat(64),
        plda_sha256: None,
    });
    voices.enrolled.push(EnrolledVoice {
        name: "anchor".into(),
        mean: vec![0.5; 192],
        weight: 3.0,
    });
    voices.write(&file).unwrap();
    refused_untouched(
        &file,
        gst::ResourceError::Settings,
        &["other models", "enrol the voices again"],
    );
}

#[test]
fn a_voices_file_of_a_newer_format_is_refused_and_kept() {
    let _g = init();
    let file = scratch("newer.json");
    let text = String::from_utf8(valid_file(&file)).unwrap();
    std::fs::write(&file, text.replacen("\"version\":1", "\"version\":2", 1)).unwrap();
    refused_untouched(&file, gst::ResourceError::OpenRead, &["version 2", "newer"]);
}

#[test]
fn an_unwritable_location_is_an_error_at_start_when_saving() {
    let _g = init();
    let file = scratch("no-such-directory").join("voices.json");
    let props = format!("voices-location={} voices-save=true", file.display());
    refused(
        &props,
        gst::ResourceError::OpenWrite,
        &["cannot write voices file"],
    );
}

/// 16 kHz mono samples of a shared evaluation file.
fn samples(rel: &str) -> Vec<i16> {
    let path = common::shared().join(rel);
    let mut reader = hound::WavReader::open(&path).unwrap();
    reader.samples::<i16>().map(Result::unwrap).collect()
}

/// A shared reference RTTM as (speaker, start, end).
fn reference(rel: &str) -> Vec<(String, f64, f64)> {
    let text = std::fs::read_to_string(common::shared().join(rel)).unwrap();
    element_support::parse_rttm(&text)
        .into_iter()
        .map(|(start, end, speaker)| (speaker, start, end))
        .collect()
}

/// Turns as (speaker, start, end, known, score) from a message's array.
type Named = (String, f64, f64, Option<bool>, Option<f64>);

/// Each turn of a message, and whether it is final.
fn turns_of(s: &gst::StructureRef) -> Vec<(Named, bool)> {
    s.get::<gst::Array>("turns")
        .unwrap()
        .iter()
        .map(|t| {
            let t = t.get::<gst::Structure>().unwrap();
            let secs = |f: &str| {
                t.get::<Option<gst::ClockTime>>(f)
                    .unwrap()
                    .map_or(0.0, |c| c.nseconds() as f64 / 1e9)
            };
            let turn = (
                t.get::<String>("speaker").unwrap(),
                secs("start-stream-time"),
                secs("end-stream-time"),
                t.get::<bool>("known").ok(),
                t.get::<f64>("score").ok(),
            );
            (turn, t.get::<bool>("final").unwrap())
        })
        .collect()
}

/// Runs `audio` through the element with `props`. With `stop_at` the
/// pipeline is stopped (to NULL, no EOS) once turns reach that many
/// seconds; returns the turns the last messages gave.
fn diarize(audio: &[i16], props: &str, stop_at: Option<f64>) -> Vec<Named> {
    let p = Pipe::new(props);
    p.src.set_property(
        "caps",
        gst::Caps::builder("audio/x-raw")
            .field("format", "S16LE")
            .field("layout", "interleaved")
            .field("rate", 16_000)
            .field("channels", 1)
            .build(),
    );
    assert!(p.play().is_ok(), "{props}");
    let appsrc = p.src.clone().downcast::<gst_app::AppSrc>().unwrap();
    for (i, piece) in audio.chunks(1600).enumerate() {
        let bytes: Vec<u8> = piece.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut buffer = gst::Buffer::from_mut_slice(bytes);
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(100 * i as u64));
        b.set_duration(gst::ClockTime::from_mseconds(100));
        appsrc.push_buffer(buffer).unwrap();
    }
    if stop_at.is_none() {
        appsrc.end_of_stream().unwrap();
    }
    let bus = p.pipeline.bus().unwrap();
    let (mut finalized, mut provisional) = (Vec::new(), Vec::new());
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                let s = e.structure().unwrap();
                if s.name() != "speakrs-diarization" {
                    continue;
                }
                let turns = turns_of(s);
                if s.get::<bool>("final").unwrap() {
                    finalized = turns.into_iter().map(|(t, _)| t).collect();
                    provisional.clear();
                    continue;
                }
                // Interim: the turns that became final since the last
                // message, then every provisional one.
                let reached = turns.iter().map(|(t, _)| t.2).fold(0.0, f64::max);
                provisional.clear();
                for (turn, is_final) in turns {
                    if is_final {
                        finalized.push(turn);
                    } else {
                        provisional.push(turn);
                    }
                }
                if stop_at.is_some_and(|at| reached >= at) {
                    break;
                }
            }
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    p.stop();
    finalized.extend(provisional);
    finalized
}

/// Seconds of `turns` labelled `label` while `speaker` speaks in `truth`.
fn overlap(truth: &[(String, f64, f64)], speaker: &str, turns: &[Named], label: &str) -> f64 {
    let mut total = 0.0;
    for (_, a, b) in truth.iter().filter(|t| t.0 == speaker) {
        for (_, c, d, _, _) in turns.iter().filter(|t| t.0 == label) {
            total += (b.min(*d) - a.max(*c)).max(0.0);
        }
    }
    total
}

/// The label covering most of `speaker`'s speech.
fn label_of(truth: &[(String, f64, f64)], speaker: &str, turns: &[Named]) -> Option<String> {
    let mut labels: Vec<&String> = turns.iter().map(|t| &t.0).collect();
    labels.sort();
    labels.dedup();
    labels
        .into_iter()
        .map(|l| (l, overlap(truth, speaker, turns, l)))
        .filter(|(_, s)| *s > 1.0)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(l, _)| l.clone())
}

/// simdev_011 (83 s, six LibriSpeech speakers) cut at 42 s: three people
/// speak on both sides of the cut. The first pipeline is stopped at the
/// cut (EOS, as `gst-launch-1.0 -e` does on Ctrl-C) with voices-save on;
/// the second, started afresh on the rest of the stream with the same
/// file, must give those three the labels they had, and the newcomers
/// labels of their own. Without the file it starts again at SPEAKER_00.
#[test]
fn a_restarted_pipeline_gives_the_same_people_the_same_labels() {
    let _g = init();
    let audio = samples("eval/sim-dev/wav/simdev_011.wav");
    let truth = reference("eval/sim-dev/rttm/simdev_011.rttm");
    let cut = 42 * 16_000;
    let file = scratch("restart.json");
    let _ = std::fs::remove_file(&file);
    let props = format!("voices-location={} voices-save=true", file.display());
    let before = diarize(&audio[..cut], &props, None);
    assert!(file.exists(), "stopping did not write {}", file.display());
    let after = diarize(&audio[cut..], &props, None);
    let shifted: Vec<(String, f64, f64)> = truth
        .iter()
        .map(|(s, a, b)| (s.clone(), a - 42.0, b - 42.0))
        .collect();
    // Checked: people on both sides of the cut whom the first pipeline
    // told apart (a label it gave two people is its clustering's error,
    // not something a restart can keep).
    let earlier: Vec<Option<String>> = ["libri1069", "libri1098", "libri1578", "libri1841"]
        .iter()
        .map(|s| label_of(&truth, s, &before))
        .collect();
    let told_apart = |label: &Option<String>| earlier.iter().filter(|l| *l == label).count() == 1;
    let mut kept = Vec::new();
    for speaker in ["libri1098", "libri1578", "libri1841"] {
        let a = label_of(&truth, speaker, &before);
        let b = label_of(&shifted, speaker, &after);
        println!("{speaker}: {a:?} before the restart, {b:?} after");
        if a.is_some() && told_apart(&a) {
            assert_eq!(a, b, "{speaker} changed label across the restart");
            kept.push(speaker);
        }
    }
    assert!(kept.len() >= 2, "too few people to check: {kept:?}");
    for newcomer in ["libri1334", "libri289"] {
        let b = label_of(&shifted, newcomer, &after);
        println!("{newcomer} (new after the restart): {b:?}");
        assert!(
            !earlier.contains(&b),
            "{newcomer} took an earlier speaker's label {b:?}"
        );
    }
    // The control: without the file the second pipeline numbers afresh,
    // and the people checked do not all keep their labels.
    let fresh = diarize(&audio[cut..], "", None);
    let same = kept
        .iter()
        .filter(|s| label_of(&truth, s, &before) == label_of(&shifted, s, &fresh))
        .count();
    assert!(
        same < kept.len(),
        "labels kept without a voices file: the test shows nothing"
    );
    // A voices file without enrolled voices names nobody.
    assert!(after.iter().all(|t| t.3 == Some(false) && t.4.is_none()));
}

/// Four people of one AMI meeting enrolled from trn07 are named in
/// trn08 (another excerpt of that meeting): names in the turns with
/// `known` and a score above the threshold, SPEAKER_nn for nobody
/// else, and no name given to a voice from another meeting (trn04).
#[test]
fn enrolled_voices_name_the_speakers_of_another_recording() {
    let _g = init();
    let models = models();
    let enrol_from = reference("eval/real/rttm/trn07.rttm");
    let audio: Vec<f32> = samples("eval/real/wav/trn07.wav")
        .iter()
        .map(|&s| s as f32 / 32768.0)
        .collect();
    let mut voices = Voices::new(ModelIdentity::of(&models.models).unwrap());
    for name in ["FEE087", "FEE088", "MEE089", "MEO086"] {
        let span = |keep: bool| -> Vec<(f64, f64)> {
            enrol_from
                .iter()
                .filter(|t| (t.0 == name) == keep)
                .map(|t| (t.1, t.2))
                .collect()
        };
        let (own, others) = (span(true), span(false));
        match enroll(
            &models,
            name,
            &audio,
            &Whose::Turns {
                own: &own,
                others: &others,
            },
        ) {
            Ok(v) => voices.enrolled.push(v),
            Err(e) => println!("{name}: {e}"),
        }
    }
    assert!(voices.enrolled.len() >= 2, "too few voices enrolled");
    let file = scratch("enrolled.json");
    voices.write(&file).unwrap();
    let props = format!("voices-location={}", file.display());
    let named = diarize(&samples("eval/real/wav/trn08.wav"), &props, None);
    let truth = reference("eval/real/rttm/trn08.rttm");
    let mut right = 0;
    for t in &named {
        assert_eq!(t.3, Some(!t.0.starts_with("SPEAKER_")), "{t:?}");
        assert_eq!(t.3 == Some(true), t.4.is_some(), "{t:?}");
    }
    for v in &voices.enrolled {
        let label = label_of(&truth, &v.name, &named);
        println!("{}: labelled {label:?}", v.name);
        right += (label.as_deref() == Some(v.name.as_str())) as usize;
    }
    assert!(right >= 1, "nobody enrolled was named in trn08: {named:?}");
    let stranger = diarize(&samples("eval/real/wav/trn04.wav"), &props, None);
    let names: Vec<&String> = stranger
        .iter()
        .filter(|t| t.3 == Some(true))
        .map(|t| &t.0)
        .collect();
    assert!(
        names.is_empty(),
        "people of another meeting were named {names:?}"
    );
}
