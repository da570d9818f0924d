//! Fault matrix, control flow (issue #6): flushes during inference, EOS in
//! odd places, state changes while the worker is busy, many instances.

mod common;
mod element_support;
mod fault_support;

use fault_support::*;
use gst::prelude::*;

const ZERO: gst::ClockTime = gst::ClockTime::ZERO;

#[test]
fn flushing_seek_during_inference_restarts_the_analysis() {
    let _g = init();
    // cluster-interval=0: no interim result, so the final list holds only
    // what was analysed after the flush.
    let mut fx = Fx::new(&[("cluster-interval", "0")]);
    fx.caps(MONO16K);
    // 40 s in 1 s buffers fit the element's queue: pushing returns at once
    // and the flush arrives while the worker is still analysing them.
    fx.feed(MONO16K, &speech(40.0), ZERO, 1000);
    assert!(
        fx.event(gst::event::FlushStart::new()),
        "FLUSH_START refused"
    );
    assert!(
        fx.event(gst::event::FlushStop::new(true)),
        "FLUSH_STOP refused"
    );
    // The seek's new segment: stream time = PTS from 100 s.
    let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
    segment.set_start(secs(100.0));
    segment.set_time(secs(100.0));
    assert!(fx.event(gst::event::Segment::new(&segment)));
    fx.feed(MONO16K, &speech(8.0), secs(100.0), 500);
    let turns = fx.finish().turns_within(108.0);
    assert!(
        turns.iter().all(|t| t.start >= 100.0),
        "turns from before the flush: {turns:?}"
    );
    assert!(
        speech_in(&turns, 100.0, 108.0) > 3.0,
        "speech after the flush not found: {turns:?}"
    );
}

#[test]
fn eos_without_any_data_still_posts_an_empty_final_message() {
    let _g = init();
    // With caps, without caps, and in a real pipeline.
    let mut fx = Fx::new(&[]);
    fx.caps(MONO16K);
    assert!(fx.finish().clean_final().is_empty());
    assert!(Fx::new(&[]).finish().clean_final().is_empty());
    let p = Pipe::new("");
    p.play().expect("PLAYING");
    let out = p.finish();
    assert!(out.clean_final().is_empty());
    assert_eq!(out.finals[0].get::<u32>("num-speakers").unwrap(), 0);
}

#[test]
fn eos_right_after_a_flush_posts_an_empty_final_message() {
    let _g = init();
    let mut fx = Fx::new(&[("cluster-interval", "0")]);
    fx.caps(STEREO44K);
    fx.feed(STEREO44K, &speech(12.0), ZERO, 1000);
    assert!(fx.event(gst::event::FlushStart::new()));
    assert!(fx.event(gst::event::FlushStop::new(true)));
    assert!(
        fx.finish().clean_final().is_empty(),
        "flushed audio must not be reported"
    );
}

#[test]
fn playing_to_null_while_inference_runs_stops_cleanly() {
    let _g = init();
    let mut p = Pipe::new("cluster-interval=12000000000");
    p.play().expect("PLAYING");
    // 2 min queued in appsrc; the streaming thread soon blocks on the
    // worker's queue (backpressure) while the worker runs inference.
    p.feed(MONO16K, &speech(120.0), ZERO, 500);
    // The first interim result proves the analysis is under way.
    let bus = p.pipeline.bus().unwrap();
    let mut out = Outcome::default();
    while out.interims == 0 {
        let msg = bus
            .timed_pop(gst::ClockTime::from_seconds(300))
            .expect("no interim result within 5 min");
        out.add(&msg);
        out.assert_no_errors();
    }
    p.stop();
    out.add_all(&bus);
    out.assert_no_errors();
    assert!(
        out.finals.is_empty(),
        "no final result when stopped before EOS"
    );
    p.assert_audio(false);
    assert_eq!(
        element_support::threads().1,
        0,
        "speakrs threads left after NULL"
    );
}

#[test]
fn hundred_state_cycles_each_to_eos_or_interrupted() {
    let _g = init();
    let mut p = Pipe::new("");
    let audio = speech(1.0);
    let (before, _) = element_support::threads();
    for cycle in 0..100 {
        p.sent.clear();
        p.out.lock().unwrap().clear();
        p.play().unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        p.feed(MONO16K, &audio, ZERO, 250);
        if cycle % 4 == 0 {
            // One cycle in four finishes (EOS: inference, final message);
            // the others go to NULL mid-stream, worker still busy.
            p.finish().turns_within(1.0);
        } else {
            p.stop();
            p.assert_audio(false);
        }
    }
    let (after, ours) = element_support::threads();
    assert_eq!(ours, 0, "speakrs threads left running after 100 cycles");
    assert!(
        after <= before + 2,
        "{after} threads after 100 cycles, {before} before"
    );
}

#[test]
fn eight_instances_pushing_from_eight_threads_do_not_mix() {
    let _g = init();
    // Even instances get speech, odd ones silence: cross-talk between the
    // instances (shared ONNX sessions) would show as turns in silence or
    // as differing results for the same speech.
    let results: Vec<Vec<Turn>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                s.spawn(move || {
                    let audio = if i % 2 == 0 {
                        speech(8.0)
                    } else {
                        constant(8.0, 0.0)
                    };
                    let mut fx = Fx::new(&[]);
                    fx.caps(MONO16K);
                    fx.feed(MONO16K, &audio, ZERO, 200);
                    fx.finish().turns_within(8.0)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("instance thread panicked"))
            .collect()
    });
    assert!(!results[0].is_empty(), "no turns for speech");
    for (i, turns) in results.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(
                turns, &results[0],
                "instance {i} differs from instance 0 on the same speech"
            );
        } else {
            assert!(
                turns.is_empty(),
                "instance {i} got turns for silence: {turns:?}"
            );
        }
    }
}
