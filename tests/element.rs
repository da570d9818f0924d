//! The `speakrsdiarize` element in harnesses and real pipelines on
//! ../shared/eval audio. Needs the default models (scripts/setup.sh).
//! Tests share one lock: the thread-count test must not see other tests' threads.

mod common;
mod element_support;

use element_support::*;
use gst::prelude::*;

#[test]
fn passthrough_is_byte_identical_and_meta_is_on_every_buffer() {
    let _guard = init();
    let mut h = gst_check::Harness::new("speakrsdiarize");
    h.play();
    h.set_src_caps_str("audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=1");
    let data = std::fs::read(sample_wav()).unwrap();
    let mut pushed = vec![];
    for (i, piece) in data[44..].chunks(3200).take(50).enumerate() {
        let mut buffer = gst::Buffer::from_mut_slice(piece.to_vec());
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(100 * i as u64));
        b.set_duration(gst::ClockTime::from_mseconds(100));
        b.set_offset(1600 * i as u64);
        pushed.push((piece.to_vec(), b.pts(), b.duration(), b.offset()));
        h.push(buffer).unwrap();
    }
    for (bytes, pts, duration, offset) in pushed {
        let out = h.pull().unwrap();
        assert_eq!(out.map_readable().unwrap().as_slice(), &bytes[..]);
        assert_eq!(
            (out.pts(), out.duration(), out.offset()),
            (pts, duration, offset)
        );
        let meta = gst::meta::CustomMeta::from_buffer(&out, "GstSpeakrsMeta")
            .expect("meta on every buffer");
        assert!(meta.structure().get::<gst::Array>("turns").is_ok());
        assert!(
            !meta.structure().has_field("speakers"),
            "speakers only with latency > 0"
        );
    }
    assert!(h.push_event(gst::event::Eos::new()));
    assert!(h.try_pull().is_none(), "each buffer exactly once");
}

#[test]
fn garbage_audio_flush_and_gap_pass_unchanged_without_panic() {
    let _guard = init();
    let mut h = gst_check::Harness::new("speakrsdiarize");
    h.play();
    h.set_src_caps_str("audio/x-raw,format=F32LE,layout=interleaved,rate=44100,channels=2");
    let pieces: Vec<Vec<f32>> = vec![
        vec![f32::NAN; 882],
        [f32::INFINITY, f32::NEG_INFINITY].repeat(441),
        vec![1e30; 882],
        vec![0.5; 2],              // one frame
        vec![0.9; 44100 * 2 * 20], // 20 s of DC, one buffer
        vec![0.0; 8820],
    ];
    let mut pts = gst::ClockTime::ZERO;
    for (i, samples) in pieces.iter().enumerate() {
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut buffer = gst::Buffer::from_mut_slice(bytes.clone());
        let duration =
            gst::ClockTime::from_nseconds(samples.len() as u64 / 2 * 1_000_000_000 / 44100);
        buffer.get_mut().unwrap().set_pts(pts);
        buffer.get_mut().unwrap().set_duration(duration);
        pts += duration;
        h.push(buffer).unwrap();
        assert_eq!(
            h.pull().unwrap().map_readable().unwrap().as_slice(),
            &bytes[..],
            "piece {i}"
        );
        if i == 2 {
            assert!(h.push_event(
                gst::event::Gap::builder(pts)
                    .duration(gst::ClockTime::SECOND)
                    .build()
            ));
            pts += gst::ClockTime::SECOND;
        }
    }
    // A flushing seek back to 0 restarts the analysis; audio keeps flowing.
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    let bytes: Vec<u8> = [0.25f32; 882]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    let mut buffer = gst::Buffer::from_mut_slice(bytes.clone());
    buffer.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
    h.push(buffer).unwrap();
    assert_eq!(
        h.pull().unwrap().map_readable().unwrap().as_slice(),
        &bytes[..]
    );
    assert!(h.push_event(gst::event::Eos::new()));
}

#[test]
fn latency_holds_buffers_and_is_added_to_live_latency() {
    let _guard = init();
    let element = gst::ElementFactory::make("speakrsdiarize")
        .property("latency", 2_000_000_000u64)
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.set_upstream_latency(gst::ClockTime::from_mseconds(10));
    h.play();
    h.set_src_caps_str("audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=1");
    assert_eq!(h.query_latency(), Some(gst::ClockTime::from_mseconds(2010)));
    for i in 0..30u64 {
        let mut buffer = gst::Buffer::from_mut_slice(vec![0u8; 3200]);
        buffer
            .get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(100 * i));
        buffer
            .get_mut()
            .unwrap()
            .set_duration(gst::ClockTime::from_mseconds(100));
        h.push(buffer).unwrap();
    }
    // 3 s in, 2 s held back: buffers ending at or before 1 s have left.
    assert_eq!(h.buffers_in_queue(), 10);
    assert!(h.push_event(gst::event::Eos::new()));
    for _ in 0..30 {
        let out = h.pull().unwrap();
        let meta = gst::meta::CustomMeta::from_buffer(&out, "GstSpeakrsMeta").unwrap();
        assert!(meta.structure().get::<gst::Array>("speakers").is_ok());
    }
}

#[test]
fn live_source_never_blocks_and_overruns_are_reported() {
    let _guard = init();
    // The harness answers the LATENCY query as live: the element must not
    // apply backpressure, and says so on the bus when analysis falls behind.
    let mut h = gst_check::Harness::new("speakrsdiarize");
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    h.play();
    h.set_src_caps_str("audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=1");
    let data = std::fs::read(sample_wav()).unwrap();
    let mut pts = gst::ClockTime::ZERO;
    for _ in 0..10 {
        let (buffers, end) = pcm_buffers(&data[44..], pts, 32000);
        pts = end;
        for buffer in buffers {
            h.push(buffer).unwrap();
            h.pull().unwrap();
        }
    }
    // 300 s pushed as fast as the harness takes them: far faster than
    // analysis runs. Had the element applied backpressure, analysis would
    // have kept up and nothing would be skipped; the warning below proves
    // that it let the audio through and degraded instead. The worker posts
    // it once it has caught up with the queued audio, which may be after
    // the last push returned: wait for it (the timeout only guards a hang).
    let warning = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(120),
            &[gst::MessageType::Warning],
        )
        .and_then(|m| match m.view() {
            gst::MessageView::Warning(w) => w.details().map(|d| d.to_owned()),
            _ => None,
        });
    // First line of defence: chunks skipped (a coarser step); last: audio
    // replaced by silence when even the worker's queue is full.
    let details = warning.expect("degradation warning with details");
    match details.name().as_str() {
        "speakrs-degraded" => assert!(details.get::<u64>("skipped-chunks").unwrap() > 0),
        "speakrs-overrun" => assert!(details.get::<u64>("dropped-samples").unwrap() > 0),
        other => panic!("unexpected warning {other}"),
    }
}

#[test]
fn flushing_seek_restarts_analysis_and_still_finishes() {
    let _guard = init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! wavparse ! speakrsdiarize cluster-interval=5000000000 ! fakesink sync=false",
        sample_wav().display()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Paused).unwrap();
    pipeline.state(gst::ClockTime::from_seconds(60)).0.unwrap();
    // Prerolled: the first buffers have reached the element and its analysis.
    // The flushing seek lands while that analysis runs, without a sleep.
    pipeline
        .seek_simple(
            gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
            gst::ClockTime::from_seconds(15),
        )
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut last = None;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(600)) {
        match msg.view() {
            gst::MessageView::Element(e)
                if e.structure().unwrap().name() == "speakrs-diarization" =>
            {
                last = e.structure().map(|s| s.to_owned())
            }
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let last = last.expect("final message");
    assert!(last.get::<bool>("final").unwrap());
    let starts = turn_times(&last, "start-stream-time");
    assert!(
        starts
            .iter()
            .any(|s| *s >= gst::ClockTime::from_seconds(15)),
        "no turns after the seek: {starts:?}"
    );
}

#[test]
fn final_message_and_rttm_at_eos_agree_with_offline_engine() {
    let _guard = init();
    let (out, written) = run_with_rttm(
        "sample.rttm",
        &format!(
            "filesrc location={} ! wavparse ! speakrsdiarize cluster-interval=10000000000 rttm-location={{rttm}} ! fakesink",
            sample_wav().display()
        ),
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(out.final_before_eos, "final message must precede EOS");
    let last = out.messages.last().unwrap();
    assert!(last.get::<u32>("num-speakers").unwrap() >= 1);
    let turns = last.get::<gst::Array>("turns").unwrap();
    assert!(!turns.is_empty());
    for t in turns.iter() {
        let t = t.get::<gst::Structure>().unwrap();
        assert!(t.get::<String>("speaker").unwrap().starts_with("SPEAKER_"));
        let (s, e) = (
            t.get::<Option<gst::ClockTime>>("start-stream-time")
                .unwrap(),
            t.get::<Option<gst::ClockTime>>("end-stream-time").unwrap(),
        );
        assert!(s.unwrap() <= e.unwrap());
        assert_eq!(
            s,
            t.get::<Option<gst::ClockTime>>("start-running-time")
                .unwrap()
        );
        assert!(t.get::<bool>("final").unwrap());
    }
    assert!(out
        .messages
        .iter()
        .rev()
        .skip(1)
        .all(|m| !m.get::<bool>("final").unwrap()));
    assert!(!written.is_empty(), "no RTTM written");
    assert_eq!(written.lines().count(), turns.len());
    let offline = offline_rttm(&sample_wav());
    let score = agreement(&parse_rttm(&written), &parse_rttm(&offline));
    println!("element vs offline agreement {score:.4}");
    assert!(
        score >= 0.98,
        "element RTTM differs from offline diarize: {score}"
    );
}

#[test]
fn stereo_44k_input_gives_nearly_the_same_turns() {
    let _guard = init();
    let (out, written) = run_with_rttm(
        "stereo.rttm",
        &format!(
            "filesrc location={} ! wavparse ! audioconvert ! audioresample ! audio/x-raw,rate=44100,channels=2,format=F32LE ! speakrsdiarize rttm-location={{rttm}} ! fakesink",
            sample_wav().display()
        ),
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(!written.is_empty(), "no RTTM written");
    let (ours, offline) = (
        parse_rttm(&written),
        parse_rttm(&offline_rttm(&sample_wav())),
    );
    let score = agreement(&ours, &offline);
    let speech = speech_agreement(&ours, &offline);
    println!(
        "44.1 kHz stereo vs 16 kHz offline: agreement {score:.4}, speech/non-speech {speech:.4}"
    );
    assert!(
        speech >= 0.97,
        "speech regions moved after resampling: {speech}"
    );
    assert!(
        score >= 0.9,
        "44.1 kHz stereo turns differ too much: {score}"
    );
}

#[test]
fn meta_tags_and_speaker_change_events_reach_downstream() {
    let _guard = init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! wavparse ! taginject tags=\"title=hello\" ! speakrsdiarize latency=3000000000 ! fakesink name=sink",
        sample_wav().display()
    ))
    .unwrap();
    let sink = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("sink")
        .unwrap();
    type Seen = (Vec<gst::Structure>, Vec<gst::TagList>, Vec<String>);
    let seen: std::sync::Arc<std::sync::Mutex<Seen>> = Default::default();
    let s = seen.clone();
    sink.static_pad("sink").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            let mut seen = s.lock().unwrap();
            if let Some(buffer) = info.buffer() {
                seen.0.push(
                    gst::meta::CustomMeta::from_buffer(buffer, "GstSpeakrsMeta")
                        .unwrap()
                        .structure()
                        .to_owned(),
                );
            } else if let Some(event) = info.event() {
                match event.view() {
                    gst::EventView::Tag(t) => seen.1.push(t.tag_owned()),
                    gst::EventView::CustomDownstream(c)
                        if c.structure().unwrap().name() == "rstranscribe/speaker-change" =>
                    {
                        seen.2
                            .push(c.structure().unwrap().get::<String>("speaker").unwrap())
                    }
                    _ => {}
                }
            }
            gst::PadProbeReturn::Ok
        },
    );
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(600),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(msg.unwrap().type_(), gst::MessageType::Eos);
    let (metas, tags, changes) = &*seen.lock().unwrap();
    let turns: Vec<gst::Structure> = metas
        .iter()
        .flat_map(|m| {
            m.get::<gst::Array>("turns")
                .unwrap()
                .iter()
                .map(|t| t.get::<gst::Structure>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!turns.is_empty(), "no turns in any meta");
    for t in &turns {
        for field in [
            "speaker",
            "start-stream-time",
            "end-stream-time",
            "start-running-time",
            "end-running-time",
            "final",
        ] {
            assert!(t.has_field(field), "turn lacks {field}: {t}");
        }
    }
    assert!(
        turns.iter().any(|t| t.get::<bool>("final").unwrap()),
        "final turns reach the held buffers"
    );
    assert!(metas
        .iter()
        .any(|m| !m.get::<gst::Array>("speakers").unwrap().is_empty()));
    assert!(!changes.is_empty(), "no rstranscribe/speaker-change event");
    let with_speaker: Vec<&gst::TagList> = tags
        .iter()
        .filter(|t| t.generic("speaker").is_some())
        .collect();
    assert!(!with_speaker.is_empty(), "no speaker tag");
    assert!(
        with_speaker.iter().all(|t| t
            .get::<gst::tags::Title>()
            .is_some_and(|v| v.get() == "hello")),
        "upstream tags lost"
    );
}

#[test]
fn wrong_mode_and_missing_models_are_element_errors() {
    let _guard = init();
    #[cfg(not(feature = "cuda"))]
    {
        let out = run("audiotestsrc num-buffers=10 ! speakrsdiarize mode=cuda ! fakesink");
        let (err, text) = out
            .errors
            .first()
            .expect("mode=cuda must fail in a CPU build");
        assert!(err.matches(gst::ResourceError::Settings), "{err:?}");
        assert!(
            text.contains("cuda") && text.contains("--features cuda"),
            "{text}"
        );
    }
    let out = run("audiotestsrc num-buffers=10 ! speakrsdiarize model-dir=/nonexistent/speakrs-models ! fakesink");
    let (err, text) = out.errors.first().expect("missing model dir must fail");
    assert!(err.matches(gst::ResourceError::NotFound), "{err:?}");
    assert!(
        text.contains("/nonexistent/speakrs-models") && text.contains("setup.sh"),
        "{text}"
    );
}

#[test]
fn state_cycles_leave_no_threads_behind() {
    let _guard = init();
    let pipeline =
        gst::parse::launch("audiotestsrc num-buffers=20 ! speakrsdiarize ! fakesink").unwrap();
    let cycle = || {
        pipeline.set_state(gst::State::Playing).unwrap();
        let _ = pipeline.state(gst::ClockTime::from_seconds(60));
        pipeline.set_state(gst::State::Null).unwrap();
    };
    cycle();
    let (before, _) = threads();
    for _ in 0..100 {
        cycle();
    }
    let (after, ours) = threads();
    println!("threads: {before} before, {after} after 100 cycles");
    assert_eq!(ours, 0, "speakrs threads left running");
    assert!(
        after <= before + 2,
        "{after} threads after 100 cycles, {before} before"
    );
}

/// `field` (a time) of each turn of a `speakrs-diarization` message.
fn turn_times(message: &gst::StructureRef, field: &str) -> Vec<gst::ClockTime> {
    message
        .get::<gst::Array>("turns")
        .unwrap()
        .iter()
        .filter_map(|t| {
            t.get::<gst::Structure>()
                .unwrap()
                .get::<Option<gst::ClockTime>>(field)
                .unwrap()
        })
        .collect()
}

/// The latest end of the turns of a `speakrs-diarization` message, in seconds.
fn latest_turn_end(message: &gst::StructureRef) -> f64 {
    turn_times(message, "end-stream-time")
        .into_iter()
        .map(|end| end.nseconds() as f64 / 1e9)
        .fold(0.0, f64::max)
}

#[test]
fn interim_turns_keep_coming_while_the_audio_pauses() {
    let _guard = init();
    // A non-live source sends 30 s at once, then nothing for a while (no
    // EOS). The chunks still being analysed when its last buffer arrived
    // must be reported as they finish, not when more audio comes.
    let pipeline = gst::parse::launch(
        "appsrc name=src format=time \
         caps=audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=1 \
         ! speakrsdiarize ! fakesink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let data = std::fs::read(sample_wav()).unwrap();
    for buffer in pcm_buffers(&data[44..], gst::ClockTime::ZERO, 3200).0 {
        src.push_buffer(buffer).unwrap();
    }
    // Interim messages until none came for 5 s (a minute at most).
    let mut paused_until = 0.0f64;
    let started = std::time::Instant::now();
    while let Some(message) = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(5),
        &[gst::MessageType::Element, gst::MessageType::Error],
    ) {
        let s = message.structure().unwrap();
        assert_eq!(s.name(), "speakrs-diarization", "{message:?}");
        paused_until = paused_until.max(latest_turn_end(s));
        if started.elapsed().as_secs() > 60 {
            break;
        }
    }
    src.end_of_stream().unwrap();
    let mut at_eos = None;
    while let Some(message) = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[
            gst::MessageType::Element,
            gst::MessageType::Eos,
            gst::MessageType::Error,
        ],
    ) {
        match message.view() {
            gst::MessageView::Element(e) => {
                let s = e.structure().unwrap();
                if s.get::<bool>("final").unwrap() {
                    at_eos = Some(latest_turn_end(s));
                }
            }
            gst::MessageView::Eos(_) => break,
            _ => panic!("{message:?}"),
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let at_eos = at_eos.expect("a final message");
    println!("turns reached {paused_until:.2} s while paused, {at_eos:.2} s at EOS");
    assert!(
        paused_until >= at_eos - 1.0,
        "while the audio paused the turns reached {paused_until:.2} s, at EOS {at_eos:.2} s"
    );
}
