//! Fault matrix, buffering (issue #6): odd buffer sizes, missing or
//! jumping timestamps, DISCONT bursts and GAP events. Audio always leaves
//! unchanged; the turns land where the speech is in stream time.

mod common;
mod element_support;
mod fault_support;

use fault_support::*;

const ZERO: gst::ClockTime = gst::ClockTime::ZERO;

/// Final turns for `audio` pushed in buffers of `ms` (0 = one frame).
fn turns_for(f: Format, audio: &[f32], ms: u64) -> Vec<Turn> {
    let mut fx = Fx::new(&[]);
    fx.caps(f);
    let end = fx.feed(f, audio, ZERO, ms);
    fx.finish().turns_within(end.nseconds() as f64 / 1e9)
}

#[test]
fn one_sample_buffers_give_the_same_turns_as_one_second_buffers() {
    let _g = init();
    let audio = speech(6.0);
    let reference = turns_for(MONO16K, &audio, 1000);
    assert!(!reference.is_empty());
    assert_eq!(
        turns_for(MONO16K, &audio, 0),
        reference,
        "16 kHz mono, 96000 one-sample buffers"
    );
    // One-frame buffers through the resampler: same speech, near-same turns.
    let turns = turns_for(STEREO44K, &audio, 0);
    let (a, b) = (speech_in(&turns, 0.0, 6.0), speech_in(&reference, 0.0, 6.0));
    assert!(
        (a - b).abs() < 0.5,
        "44.1 kHz one-frame buffers: {a:.2} s of speech vs {b:.2} s"
    );
}

#[test]
fn one_ten_minute_buffer_keeps_its_timeline() {
    let _g = init();
    // 9:40 of silence then 20 s of speech, as ONE buffer. About buffering
    // and the timeline, not accuracy: step=5 keeps the 10 minutes cheap.
    let mut audio = constant(580.0, 0.0);
    audio.extend(speech(20.0));
    let mut fx = Fx::new(&[("step", "5")]);
    fx.caps(MONO16K);
    fx.feed(MONO16K, &audio, ZERO, 600_000);
    assert_eq!(fx.ledger.sent.len(), 1);
    let turns = fx.finish().turns_within(600.0);
    assert!(
        turns.iter().all(|t| t.start >= 579.0),
        "turns in the silent part: {turns:?}"
    );
    assert!(
        speech_in(&turns, 580.0, 600.0) > 8.0,
        "speech at the end not found: {turns:?}"
    );
}

#[test]
fn zero_length_buffers_pass_and_change_nothing() {
    let _g = init();
    let audio = speech(8.0);
    let mut fx = Fx::new(&[]);
    fx.caps(MONO16K);
    for (i, b) in MONO16K.buffers(&audio, ZERO, 500).into_iter().enumerate() {
        let pts = b.pts().unwrap();
        fx.push(b);
        // Empty buffers: with a timestamp, with a duration, with neither.
        let mut empty = gst::Buffer::new();
        match i % 3 {
            0 => empty.get_mut().unwrap().set_pts(pts),
            1 => empty.get_mut().unwrap().set_duration(ZERO),
            _ => {}
        }
        fx.push(empty);
    }
    let turns = fx.finish().turns_within(8.0);
    assert!(
        speech_in(&turns, 0.0, 8.0) > 4.0,
        "speech lost among empty buffers: {turns:?}"
    );
}

#[test]
fn buffers_without_timestamps_give_the_same_turns() {
    let _g = init();
    let audio = speech(10.0);
    let reference = turns_for(MONO16K, &audio, 100);
    let mut fx = Fx::new(&[]);
    fx.caps(MONO16K);
    for mut b in MONO16K.buffers(&audio, ZERO, 100) {
        let r = b.get_mut().unwrap();
        r.set_pts(gst::ClockTime::NONE);
        r.set_duration(gst::ClockTime::NONE);
        fx.push(b);
    }
    assert_eq!(
        fx.finish().turns_within(10.0),
        reference,
        "untimestamped buffers are assumed contiguous from 0"
    );
}

#[test]
fn timestamp_jumps_forwards_and_backwards_place_turns_where_the_audio_is() {
    let _g = init();
    let mut fx = Fx::new(&[]);
    fx.caps(MONO16K);
    // 0–8 s, then a jump forward to 40 s, then back to 20 s (a new engine stream).
    for start in [0.0, 40.0, 20.0] {
        fx.feed(MONO16K, &speech(8.0), secs(start), 500);
    }
    let turns = fx.finish().turns_within(48.0);
    for (from, to) in [(0.0, 8.0), (40.0, 48.0), (20.0, 28.0)] {
        let s = speech_in(&turns, from, to);
        assert!(
            s > 3.0,
            "only {s:.1} s of speech found in {from}–{to} s: {turns:?}"
        );
    }
    assert!(
        speech_in(&turns, 9.0, 19.0) + speech_in(&turns, 29.0, 39.0) < 0.5,
        "speech where there was none: {turns:?}"
    );
}

#[test]
fn discont_bursts_pass_and_speech_is_still_found() {
    let _g = init();
    let mut fx = Fx::new(&[]);
    fx.caps(STEREO44K);
    // 44.1 kHz stereo in 100 ms buffers; 40 in a row flagged DISCONT with
    // continuous timestamps (each one resets the resampler).
    for (i, mut b) in STEREO44K
        .buffers(&speech(15.0), ZERO, 100)
        .into_iter()
        .enumerate()
    {
        if (20..60).contains(&i) {
            b.get_mut().unwrap().set_flags(gst::BufferFlags::DISCONT);
        }
        fx.push(b);
    }
    let turns = fx.finish().turns_within(15.0);
    assert!(
        speech_in(&turns, 0.0, 15.0) > 8.0,
        "speech lost in a DISCONT burst: {turns:?}"
    );
}

#[test]
fn gap_events_are_forwarded_in_order_and_analysed_as_silence() {
    let _g = init();
    let mut fx = Fx::new(&[]);
    fx.caps(MONO16K);
    fx.feed(MONO16K, &speech(8.0), ZERO, 500);
    let before = fx.ledger.received;
    assert!(
        fx.event(
            gst::event::Gap::builder(secs(8.0))
                .duration(secs(10.0))
                .build()
        ),
        "GAP refused"
    );
    assert_eq!(
        fx.ledger.received, before,
        "the GAP overtook or duplicated buffers"
    );
    assert!(
        fx.events.iter().any(|e| e.type_() == gst::EventType::Gap),
        "GAP not forwarded downstream"
    );
    fx.feed(MONO16K, &speech(8.0), secs(18.0), 500);
    let turns = fx.finish().turns_within(26.0);
    assert!(
        speech_in(&turns, 0.0, 8.0) > 3.0 && speech_in(&turns, 18.0, 26.0) > 3.0,
        "speech around the gap lost: {turns:?}"
    );
    assert!(
        speech_in(&turns, 8.6, 17.4) < 0.1,
        "speech inside the gap: {turns:?}"
    );
}
