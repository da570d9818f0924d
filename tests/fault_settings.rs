//! Fault matrix, settings (issue #14): what cannot work is said at start,
//! or as soon as the caps say so, naming the values concerned, rather than
//! failing or going quiet mid-stream. Contradictory speaker counts and a
//! segmentation model of another frame count refuse READY→PAUSED; a sample
//! rate the resampler cannot handle is a warning naming it.

mod common;
mod element_support;
mod fault_support;

use fault_support::*;
use gst::prelude::*;

/// Properties that must start: the pipeline reaches PLAYING without an
/// error, then stops.
fn starts(props: &str) {
    let p = Pipe::new(props);
    assert!(p.play().is_ok(), "{props}: the pipeline did not start");
    let bus = p.pipeline.bus().unwrap();
    let out = Outcome::from_bus(&bus);
    out.assert_no_errors();
    p.stop();
}

#[test]
fn min_speakers_above_max_speakers_is_a_settings_error_at_start() {
    let _g = init();
    refused(
        "min-speakers=5 max-speakers=3",
        gst::ResourceError::Settings,
        &["min-speakers=5", "max-speakers=3"],
    );
    // The control: equal bounds are consistent.
    starts("min-speakers=3 max-speakers=3");
}

#[test]
fn num_speakers_outside_the_bounds_is_a_settings_error_at_start() {
    let _g = init();
    refused(
        "num-speakers=4 min-speakers=1 max-speakers=3",
        gst::ResourceError::Settings,
        &["num-speakers=4", "max-speakers=3"],
    );
    refused(
        "num-speakers=1 min-speakers=2",
        gst::ResourceError::Settings,
        &["num-speakers=1", "min-speakers=2"],
    );
    // The controls: a count within its bounds, or with either bound unset.
    starts("num-speakers=2 min-speakers=1 max-speakers=3");
    starts("num-speakers=7 max-speakers=0 min-speakers=7");
}

/// A segmentation model giving 588 frames per 10 s window instead of
/// segmentation-3.0's 589 would pass the old probe and panic mid-stream.
#[test]
fn segmentation_model_with_another_frame_count_is_an_element_error_at_start() {
    let _g = init();
    let bad = common::onnx::write_segmentation_like("element-seg-588x7", 588, 7);
    refused(
        &format!("segmentation-model={}", bad.display()),
        gst::ResourceError::OpenRead,
        &[&bad.display().to_string(), "[N, 589, 7]", "[1, 588, 7]"],
    );
    // The control: the same tiny model with 589 frames starts.
    let good = common::onnx::write_segmentation_like("element-seg-589x7", 589, 7);
    starts(&format!("segmentation-model={}", good.display()));
}

fn rate_warnings(out: &Outcome) -> Vec<String> {
    out.warnings
        .iter()
        .filter(|(e, ..)| e.matches(gst::StreamError::Format))
        .map(|(e, ..)| e.message().to_string())
        .collect()
}

/// 50 Hz audio cannot be resampled to 16 kHz for analysis: it still
/// passes unchanged, and one warning names the rate; audio after caps of
/// a usable rate is analysed again.
#[test]
fn a_rate_the_resampler_cannot_handle_is_a_warning_naming_it() {
    let _g = init();
    let low = Format {
        rate: 50,
        channels: 1,
        s16: false,
    };
    let mut fx = Fx::new(&[]);
    fx.caps(low);
    let t = fx.feed(low, &speech(4.0), gst::ClockTime::ZERO, 500);
    fx.caps(MONO16K);
    fx.feed(MONO16K, &speech(8.0), t, 250);
    let out = fx.finish();
    out.assert_no_errors();
    let warned = rate_warnings(&out);
    assert_eq!(warned.len(), 1, "one warning: {:?}", out.warnings);
    assert!(warned[0].contains("50 Hz"), "{}", warned[0]);
    let (_, _, details) = out
        .warnings
        .iter()
        .find(|(e, ..)| e.matches(gst::StreamError::Format))
        .unwrap();
    let details = details.as_ref().expect("warning details");
    assert_eq!(details.get::<u32>("rate").unwrap(), 50);
    let turns = out.final_turns();
    assert!(speech_in(&turns, 4.0, 12.0) > 3.0, "{turns:?}");
}

#[test]
fn rates_the_resampler_handles_give_no_rate_warning() {
    let _g = init();
    for rate in [100, 8_000, 48_000] {
        let f = Format {
            rate,
            channels: 1,
            s16: true,
        };
        let mut fx = Fx::new(&[]);
        fx.caps(f);
        fx.feed(f, &speech(2.0), gst::ClockTime::ZERO, 250);
        let out = fx.finish();
        out.assert_no_errors();
        assert!(
            rate_warnings(&out).is_empty(),
            "{rate} Hz: {:?}",
            out.warnings
        );
    }
}
