//! Fault matrix, sample values (issue #6): garbage and extreme audio
//! passes byte-identical and is analysed as what it is — silence for
//! NaN / Inf / denormals / digital silence, no crash for the rest.
//! Each case: non-live harness, 1 s buffers, EOS; checks in fault_support.

mod common;
mod element_support;
mod fault_support;

use fault_support::*;

/// Pushes `audio` in format `f` (1 s buffers) and ends the stream.
fn run(f: Format, audio: &[f32], props: &[(&str, &str)]) -> Outcome {
    let mut fx = Fx::new(props);
    fx.caps(f);
    fx.feed(f, audio, gst::ClockTime::ZERO, 1000);
    fx.finish()
}

fn assert_silent(out: &Outcome, what: &str) {
    let turns = out.clean_final();
    assert!(
        turns.is_empty(),
        "{what} must be analysed as silence, got turns {turns:?}"
    );
    assert_eq!(
        out.finals[0].get::<u32>("num-speakers").unwrap(),
        0,
        "{what}: speakers found in silence"
    );
}

#[test]
fn nan_samples_are_silence() {
    let _g = init();
    assert_silent(&run(MONO16K, &constant(12.0, f32::NAN), &[]), "NaN");
    // NaN in a stereo 44.1 kHz stream goes through the resampler too.
    assert_silent(
        &run(STEREO44K, &constant(12.0, f32::NAN), &[]),
        "NaN at 44.1 kHz",
    );
}

#[test]
fn infinite_samples_are_silence() {
    let _g = init();
    let inf: Vec<f32> = (0..12 * 16_000)
        .map(|i| {
            if i % 2 == 0 {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            }
        })
        .collect();
    assert_silent(&run(MONO16K, &inf, &[]), "±Inf");
}

#[test]
fn denormal_samples_are_silence() {
    let _g = init();
    let tiny: Vec<f32> = tone(12.0, 440.0, 1.0)
        .iter()
        .map(|v| v * f32::MIN_POSITIVE / 8.0)
        .collect();
    assert!(tiny.iter().any(|v| v.is_subnormal()));
    assert_silent(&run(MONO16K, &tiny, &[]), "denormals");
}

#[test]
fn ten_minutes_of_digital_silence_is_silence() {
    let _g = init();
    // About buffering and timeline length, not accuracy: step=5 keeps it cheap.
    assert_silent(
        &run(MONO16K_S16, &constant(600.0, 0.0), &[("step", "5")]),
        "10 min of silence",
    );
}

#[test]
fn full_scale_clipped_square_wave_passes_and_finishes() {
    let _g = init();
    // S16 at full scale: every sample ±32767.
    for (format, name) in [
        (MONO16K_S16, "S16 16 kHz"),
        (STEREO44K, "F32 44.1 kHz stereo"),
    ] {
        let turns = run(format, &square(15.0, 200.0), &[]).turns_within(15.0);
        println!(
            "square wave, {name}: {} turns, {:.2} s",
            turns.len(),
            speech_in(&turns, 0.0, 15.0)
        );
    }
}

#[test]
fn speech_under_a_large_dc_offset_is_found_as_without_it() {
    let _g = init();
    let clean = run(MONO16K, &speech(15.0), &[]).turns_within(15.0);
    let dc: Vec<f32> = speech(15.0).iter().map(|v| v + 0.5).collect();
    let turns = run(MONO16K, &dc, &[]).turns_within(15.0);
    let (found, without) = (speech_in(&turns, 0.0, 15.0), speech_in(&clean, 0.0, 15.0));
    println!(
        "DC: {} turns, {found:.2} s; clean: {} turns, {without:.2} s",
        turns.len(),
        clean.len()
    );
    assert!(
        (found - without).abs() < 0.5,
        "{found:.1} s of speech found under DC offset against {without:.1} s without: {turns:?}"
    );
}

#[test]
fn white_noise_only_gives_no_turns() {
    let _g = init();
    let turns = run(MONO16K, &noise(15.0, 0.5), &[]).turns_within(15.0);
    assert!(turns.is_empty(), "turns in white noise: {turns:?}");
}

#[test]
fn single_tone_gives_no_turns() {
    let _g = init();
    let turns = run(STEREO44K, &tone(15.0, 1000.0, 0.5), &[]).turns_within(15.0);
    assert!(turns.is_empty(), "turns in a 1 kHz tone: {turns:?}");
}
