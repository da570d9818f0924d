//! Fault matrix, caps (issue #6): renegotiation mid-stream across rate,
//! channel count and sample format. Each stretch is analysed in its own
//! format; audio leaves unchanged and the turns cover every stretch.

mod common;
mod element_support;
mod fault_support;

use fault_support::*;

/// Speech found in each 8 s stretch `i` (starting at 8·i s).
fn assert_speech_in_each(turns: &[Turn], stretches: usize) {
    for i in 0..stretches {
        let (from, to) = (8.0 * i as f64, 8.0 * (i + 1) as f64);
        let s = speech_in(turns, from, to);
        assert!(
            s > 3.0,
            "only {s:.1} s of speech found in stretch {i} ({from}–{to} s): {turns:?}"
        );
    }
}

#[test]
fn renegotiation_44k_stereo_to_16k_mono_to_48k_six_channels_in_a_pipeline() {
    let _g = init();
    let mut p = Pipe::new("");
    p.play().expect("PLAYING");
    let mut t = gst::ClockTime::ZERO;
    for f in [STEREO44K, MONO16K, SIX48K] {
        t = p.feed(f, &speech(8.0), t, 200); // new caps, then the buffers
    }
    let turns = p.finish().turns_within(24.0);
    assert_speech_in_each(&turns, 3);
}

#[test]
fn s16le_and_f32le_alternate_mid_stream() {
    let _g = init();
    let mut fx = Fx::new(&[]);
    let mut t = gst::ClockTime::ZERO;
    for f in [
        MONO16K_S16,
        MONO16K,
        MONO16K_S16,
        Format {
            s16: true,
            ..STEREO44K
        },
    ] {
        fx.caps(f);
        t = fx.feed(f, &speech(8.0), t, 250);
    }
    let turns = fx.finish().turns_within(32.0);
    assert_speech_in_each(&turns, 4);
}

#[test]
fn audio_before_any_caps_passes_with_one_warning_and_later_audio_is_analysed() {
    let _g = init();
    let mut fx = Fx::new(&[]);
    assert!(fx.event(gst::event::StreamStart::new("uncapped")));
    let segment = gst::FormattedSegment::<gst::ClockTime>::new();
    assert!(fx.event(gst::event::Segment::new(&segment)));
    // 4 s without caps: nothing says what the bytes are.
    let t = fx.feed(MONO16K, &speech(4.0), gst::ClockTime::ZERO, 250);
    fx.caps(MONO16K);
    fx.feed(MONO16K, &speech(8.0), t, 250);
    let out = fx.finish();
    out.assert_no_errors();
    let said = out
        .warnings
        .iter()
        .filter(|(e, ..)| e.message().contains("without caps"))
        .count();
    assert_eq!(said, 1, "one warning: {:?}", out.warnings);
    let turns = out.final_turns();
    assert!(speech_in(&turns, 4.0, 12.0) > 3.0, "{turns:?}");
}
