//! Fault matrix, timestamps at the end of time (issue #14): PTS, durations,
//! `latency` and upstream latencies up to ClockTime::MAX, and segments with
//! extreme start / base / offset. Clock-time sums saturate (or, for a
//! maximum latency, become unbounded) instead of wrapping, so held buffers
//! wait as long as they should and audio still leaves unchanged. Found with
//! the output_path fuzz target; in release builds (no overflow checks) each
//! sum used to wrap silently, which these tests see as buffers leaving early
//! or a wrong LATENCY answer.

mod common;
mod element_support;
mod fault_support;

use gst::prelude::*;

use fault_support::*;

const MAX: gst::ClockTime = gst::ClockTime::MAX;

/// `ms` of 16 kHz mono silence with the given PTS and duration.
fn silence(pts: gst::ClockTime, duration: gst::ClockTime, ms: u64) -> gst::Buffer {
    let bytes = MONO16K.encode(&constant(ms as f64 / 1000.0, 0.0));
    let mut b = gst::Buffer::from_mut_slice(bytes);
    let r = b.get_mut().unwrap();
    r.set_pts(pts);
    r.set_duration(duration);
    b
}

/// A harness whose upstream says it is live: held buffers leave once
/// `latency` of newer audio has arrived.
fn live(latency: gst::ClockTime) -> Fx {
    let latency = latency.nseconds().to_string();
    let mut fx = Fx::new(&[("latency", &latency)]);
    fx.h.set_live(true);
    fx.caps(MONO16K);
    fx
}

#[test]
fn latency_of_clock_max_holds_buffers_until_eos() {
    let _g = init();
    let mut fx = live(MAX);
    // end + latency is past MAX for every buffer: no newer audio can ever
    // be `latency` later, so each waits for EOS (a wrapped sum let it go).
    for i in 0..3 {
        fx.push(silence(secs(0.2 * i as f64), secs(0.2), 200));
    }
    assert_eq!(fx.ledger.received, 0, "a buffer left before its latency");
    fx.finish().assert_no_errors();
}

#[test]
fn held_buffer_near_clock_max_waits_for_audio_reaching_max() {
    let _g = init();
    let mut fx = live(secs(1.0));
    // Ends 0.7 s before MAX: `latency` later is past MAX.
    fx.push(silence(MAX - secs(1.2), secs(0.5), 500));
    assert_eq!(
        fx.ledger.received, 0,
        "left before newer audio (end + latency wrapped)"
    );
    // Ends exactly at MAX: nothing can come later, both leave.
    fx.push(silence(MAX - secs(0.7), secs(0.7), 700));
    assert_eq!(fx.ledger.received, 2, "held past audio reaching MAX");
    fx.finish().assert_no_errors();
}

#[test]
fn buffer_whose_pts_plus_duration_overflows_ends_at_clock_max() {
    let _g = init();
    let mut fx = live(secs(1.0));
    fx.push(silence(MAX - secs(3.0), secs(1.0), 1000));
    assert_eq!(fx.ledger.received, 0);
    // PTS + duration is 8 s past MAX: it ends at MAX, so the first buffer
    // has its second of newer audio and both leave, PTS and duration as sent.
    fx.push(silence(MAX - secs(2.0), secs(10.0), 1000));
    assert_eq!(
        fx.ledger.received, 2,
        "held as if the stream had gone back in time (end wrapped)"
    );
    fx.finish().assert_no_errors();
}

#[test]
fn latency_query_minimum_saturates_at_clock_max() {
    let _g = init();
    let mut fx = live(secs(1.0));
    fx.h.set_upstream_latency(MAX - secs(0.5));
    assert_eq!(
        fx.h.query_latency(),
        Some(MAX),
        "upstream minimum + latency wrapped"
    );
    fx.finish().assert_no_errors();
}

#[test]
fn latency_query_maximum_past_clock_max_is_unbounded() {
    let _g = init();
    let fx = live(secs(1.0));
    let element = fx.h.element().expect("element");
    // Upstream answers live, 0 .. MAX - 0.5 s.
    element
        .static_pad("sink")
        .unwrap()
        .add_probe(
            gst::PadProbeType::QUERY_UPSTREAM | gst::PadProbeType::PULL,
            |_, info| {
                if let Some(gst::PadProbeData::Query(q)) = info.data.as_mut() {
                    if let gst::QueryViewMut::Latency(l) = q.view_mut() {
                        l.set(true, gst::ClockTime::ZERO, Some(MAX - secs(0.5)));
                    }
                }
                gst::PadProbeReturn::Ok
            },
        )
        .expect("probe");
    let mut q = gst::query::Latency::new();
    assert!(
        element.static_pad("src").unwrap().query(&mut q),
        "LATENCY query failed"
    );
    assert_eq!(
        q.result(),
        (true, secs(1.0), None),
        "upstream maximum + latency wrapped (or saturated to a bound)"
    );
    fx.finish().assert_no_errors();
}

#[test]
fn speech_near_clock_max_in_an_extreme_segment_keeps_its_stream_time() {
    let _g = init();
    let mut fx = Fx::new(&[("latency", "1000000000")]);
    fx.caps(MONO16K);
    // Stream time 0 at PTS MAX - 8 s; base and offset make running time
    // overflow inside GStreamer's own arithmetic (its business, not ours).
    let start = MAX - secs(8.0);
    let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
    segment.set_start(start);
    segment.set_time(gst::ClockTime::ZERO);
    segment.set_base(MAX - secs(1.0));
    segment.set_offset(MAX - secs(4.0));
    assert!(
        fx.event(gst::event::Segment::new(&segment)),
        "SEGMENT refused"
    );
    // The last buffer's PTS + duration runs past MAX by a millisecond.
    let mut buffers = MONO16K.buffers(&speech(8.0), start, 500);
    let last = buffers.last_mut().unwrap().get_mut().unwrap();
    last.set_duration(last.duration().unwrap() + secs(0.001));
    for b in buffers {
        fx.push(b);
    }
    let turns = fx.finish().turns_within(8.0);
    assert!(
        speech_in(&turns, 0.0, 8.0) > 4.0,
        "speech near MAX not found at stream time 0–8 s: {turns:?}"
    );
}
