//! The mission pipeline on compressed, resampled, multichannel input:
//! `filesrc ! decodebin ! audioconvert ! speakrsdiarize rttm-location=… ! fakesink`.

mod common;
mod element_support;

use std::path::Path;

use element_support::{init, run_with_rttm, tmp};

use common::der::{score, DerComponents, Segment};
use gst::prelude::*;
use gstspeakrs::engine::output::rttm::parse_rttm;

/// Runs a launch line to EOS; any error fails the test.
fn run_to_eos(description: &str) {
    let out = element_support::run(description);
    assert!(out.errors.is_empty(), "{description}: {:?}", out.errors);
}

/// Encodes a 16 kHz mono WAV to another container, rate and channel count.
fn encode(wav: &Path, caps: &str, encoder: &str, out: &Path) {
    run_to_eos(&format!(
        "filesrc location={} ! wavparse ! audioconvert ! audioresample ! {caps} ! {encoder} ! filesink location={}",
        wav.display(),
        out.display()
    ));
}

/// Diarizes through the mission pipeline and scores against the reference RTTM.
fn diarize_and_score(input: &Path, reference: &Path) -> DerComponents {
    let (out, written) = run_with_rttm(
        "out.rttm",
        &format!("filesrc location={} ! decodebin ! audioconvert ! speakrsdiarize rttm-location={{rttm}} ! fakesink", input.display()),
    );
    assert!(
        out.errors.is_empty() && !written.is_empty(),
        "{}: {:?}",
        input.display(),
        out.errors
    );
    let segments = |text: &str| {
        parse_rttm(text)
            .unwrap()
            .iter()
            .map(Segment::from)
            .collect::<Vec<_>>()
    };
    let ours = segments(&written);
    score(
        &segments(&std::fs::read_to_string(reference).unwrap()),
        &ours,
    )
}

const FILES: &[(&str, &str)] = &[
    ("sim-dev", "simdev_003"),
    ("sim-dev", "simdev_006"),
    ("sim-dev", "simdev_012"),
    ("sim-dev", "simdev_017"),
    ("real", "trn03"),
    ("real", "falcon_test"),
];

#[test]
fn mp3_44k_stereo_der_is_within_one_point_of_the_16k_wav() {
    common::model_set();
    let _guard = init();
    let (mut wav_total, mut mp3_total) = (DerComponents::default(), DerComponents::default());
    for (set, uri) in FILES {
        let dir = common::shared().join("eval").join(set);
        let (wav, reference) = (
            dir.join(format!("wav/{uri}.wav")),
            dir.join(format!("rttm/{uri}.rttm")),
        );
        let mp3 = tmp(&format!("{uri}.mp3"));
        encode(
            &wav,
            "audio/x-raw,rate=44100,channels=2",
            "lamemp3enc bitrate=128",
            &mp3,
        );
        wav_total += diarize_and_score(&wav, &reference);
        mp3_total += diarize_and_score(&mp3, &reference);
        std::fs::remove_file(&mp3).unwrap();
    }
    let (wav_der, mp3_der) = (100.0 * wav_total.der(), 100.0 * mp3_total.der());
    println!(
        "DER over {} files: 16 kHz WAV {wav_der:.2} %, 44.1 kHz stereo MP3 {mp3_der:.2} %",
        FILES.len()
    );
    assert!(
        (mp3_der - wav_der).abs() <= 1.0,
        "MP3 {mp3_der:.2} % vs WAV {wav_der:.2} %"
    );
}

#[test]
fn ogg_vorbis_48k_six_channels_is_diarized() {
    common::model_set();
    let _guard = init();
    let dir = common::shared().join("eval/real");
    let ogg = tmp("falcon.ogg");
    encode(
        &dir.join("wav/falcon_test.wav"),
        "audio/x-raw,rate=48000,channels=6",
        "vorbisenc ! oggmux",
        &ogg,
    );
    let c = diarize_and_score(&ogg, &dir.join("rttm/falcon_test.rttm"));
    std::fs::remove_file(&ogg).unwrap();
    println!(
        "falcon_test as 48 kHz 6-channel Ogg Vorbis: DER {:.2} %",
        100.0 * c.der()
    );
    assert!(c.der() < 0.2, "DER {:.2} %", 100.0 * c.der());
}

#[test]
fn buffers_held_at_eos_carry_the_final_speakers() {
    common::model_set();
    let _guard = init();
    let wav = common::shared().join("eval/real/wav/sample.wav");
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! audioconvert ! speakrsdiarize latency=2000000000 ! fakesink name=sink signal-handoffs=true",
        wav.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let last: std::sync::Arc<std::sync::Mutex<Vec<Vec<String>>>> = Default::default();
    let collected = last.clone();
    pipeline
        .by_name("sink")
        .unwrap()
        .connect("handoff", false, move |args| {
            let buffer = args[1].get::<gst::Buffer>().unwrap();
            // The sample's last turn (SPEAKER_00, 27.86–29.97 s) covers the
            // buffers of its last second up to the last few milliseconds (a
            // buffer names those speaking for at least half of it).
            let (pts, duration) = (buffer.pts().unwrap(), buffer.duration().unwrap());
            if pts >= gst::ClockTime::from_mseconds(29_000)
                && pts.saturating_add(duration) <= gst::ClockTime::from_mseconds(29_950)
            {
                let meta = gst::meta::CustomMeta::from_buffer(&buffer, "GstSpeakrsMeta").unwrap();
                let speakers = meta.structure().get::<gst::Array>("speakers").unwrap();
                collected.lock().unwrap().push(
                    speakers
                        .iter()
                        .map(|v| v.get::<String>().unwrap())
                        .collect(),
                );
            }
            None
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    for msg in pipeline
        .bus()
        .unwrap()
        .iter_timed(gst::ClockTime::from_seconds(300))
    {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let last = last.lock().unwrap();
    assert!(!last.is_empty());
    assert!(
        last.iter().all(|s| s.len() == 1),
        "held buffers must name the final speaker: {last:?}"
    );
}
