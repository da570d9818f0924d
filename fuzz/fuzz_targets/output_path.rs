//! The element's output side without BaseTransform or models, driven as
//! imp.rs drives it: buffers with any PTS and duration (up to and past
//! ClockTime::MAX together) go through `Feed` (a recorder stands in for the
//! worker) into `Output`, held for any `latency` (0 to MAX), live or not;
//! GAP, tag and custom events queue behind them; segments with extreme
//! start / stop / time / base / offset / rate; turns reported on each engine
//! stream's timeline at any engine seconds (as report.rs does); flushes; EOS
//! with a final result and its RTTM; the LATENCY query's arithmetic.
//! What leaves is pushed through a real pad pair and checked: in order, at
//! most once, unchanged, with the meta; all of it by EOS; at once when
//! `latency` is 0.
#![no_main]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arbitrary::Arbitrary;
use gst::prelude::*;
use gstspeakrs::element::fuzzing::{
    add_latency, rttm_text, Command, Feed, Output, SampleFormat, SendError, Sink, Timeline,
};
use gstspeakrs::element::meta::{Turns, META_NAME};
use gstspeakrs::engine::output::diarization::{Diarization, Turn};
use libfuzzer_sys::fuzz_target;

const MAX: gst::ClockTime = gst::ClockTime::MAX;

/// Plausible times (ms), times just short of MAX, or any clock time.
#[derive(Debug, Arbitrary, Clone, Copy)]
enum Time {
    Ms(u32),
    BeforeMax(u32),
    Ns(u64),
}

impl Time {
    fn get(self) -> gst::ClockTime {
        match self {
            Time::Ms(ms) => gst::ClockTime::from_mseconds(ms as u64),
            Time::BeforeMax(ms) => MAX.saturating_sub(gst::ClockTime::from_mseconds(ms as u64)),
            Time::Ns(ns) => gst::ClockTime::from_nseconds(ns.min(MAX.nseconds())),
        }
    }
}

/// Engine seconds: plausible, or any double (NaN, ±inf, 1e300...).
#[derive(Debug, Arbitrary, Clone, Copy)]
enum Secs {
    Ms(u16),
    Raw(f64),
}

impl Secs {
    fn get(self) -> f64 {
        match self {
            Secs::Ms(ms) => ms as f64 / 1000.0,
            Secs::Raw(s) => s,
        }
    }
}

#[derive(Debug, Arbitrary)]
struct EngineTurn {
    speaker: u8,
    start: Secs,
    end: Secs,
}

fn engine_turns(turns: &[EngineTurn]) -> Vec<Turn> {
    turns
        .iter()
        .map(|t| Turn {
            speaker: t.speaker as usize % 8,
            start: t.start.get(),
            end: t.end.get(),
        })
        .collect()
}

#[derive(Debug, Arbitrary)]
struct Segment {
    start: Time,
    stop: Option<Time>,
    time: Time,
    base: Time,
    offset: Time,
    position: Time,
    rate: i8,
}

impl Segment {
    fn get(&self) -> gst::FormattedSegment<gst::ClockTime> {
        let mut s = gst::FormattedSegment::<gst::ClockTime>::new();
        s.set_start(self.start.get());
        s.set_stop(self.stop.map(Time::get));
        s.set_time(self.time.get());
        s.set_base(self.base.get());
        s.set_offset(self.offset.get());
        s.set_position(self.position.get());
        s.set_rate(if self.rate == 0 {
            1.0
        } else {
            self.rate as f64 / 4.0
        });
        s
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// `frames` of 16 kHz mono S16 (≤ 0.1 s).
    Buffer {
        pts: Option<Time>,
        duration: Option<Time>,
        frames: u16,
        discont: bool,
    },
    Gap {
        pts: Time,
        duration: Option<Time>,
    },
    Tag {
        stream_scope: bool,
    },
    Custom,
    Segment(Segment),
    /// A streaming update of the engine stream `back` streams before the newest.
    Update {
        back: u8,
        finalized: Vec<EngineTurn>,
        provisional: Vec<EngineTurn>,
        analysed: Secs,
    },
    /// An engine stream ended by a jump (its final turns).
    Finished {
        back: u8,
        turns: Vec<EngineTurn>,
    },
    FlushStop,
    /// EOS, the engine's final result being `result`.
    Eos {
        result: Option<Vec<EngineTurn>>,
    },
    LatencyQuery {
        min: Time,
        max: Option<Time>,
    },
    Live(bool),
}

#[derive(Debug, Arbitrary)]
struct Input {
    latency: Time,
    ops: Vec<Op>,
}

/// Stands in for the worker: keeps each engine stream's timeline, and
/// answers EOS with the result the input chose.
#[derive(Default)]
struct Recorder {
    timelines: RefCell<Vec<Arc<Timeline>>>,
    result: RefCell<Option<Vec<Turn>>>,
}

impl Sink for Recorder {
    fn send(&self, cmd: Command<Arc<Timeline>>, _block: bool) -> Result<(), SendError> {
        if let Command::Start { tag, .. } = cmd {
            self.timelines.borrow_mut().push(tag);
        }
        Ok(())
    }
    fn generation(&self) -> u64 {
        0
    }
    fn finish(&self) -> Result<Option<(Arc<Timeline>, Diarization)>, SendError> {
        let turns = self.result.borrow_mut().take();
        let timeline = self.timelines.borrow().last().cloned();
        // Built directly: the output side only reads `turns` (RTTM, meta).
        Ok(timeline.zip(turns).map(|(t, turns)| {
            (
                t,
                Diarization {
                    turns,
                    ..Default::default()
                },
            )
        }))
    }
}

/// What one buffer looked like going in.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sent {
    pts: Option<gst::ClockTime>,
    duration: Option<gst::ClockTime>,
    size: usize,
}

/// What reached the downstream pad: (offset = sequence number, as sent, meta ok).
type Log = Arc<Mutex<Vec<(u64, Sent, bool)>>>;

/// The element's src pad, linked to a sink pad that logs each buffer.
fn pads(log: Log, held: bool) -> (gst::Pad, gst::Pad) {
    let sink = gst::Pad::builder(gst::PadDirection::Sink)
        .chain_function(move |_, _, buffer| {
            // Logged, not asserted: a panic here would cross into C.
            let meta_ok = gst::meta::CustomMeta::from_buffer(&buffer, META_NAME).is_ok_and(|m| {
                let s = m.structure();
                s.get::<gst::Array>("turns").is_ok() && s.has_field("speakers") == held
            });
            let sent = Sent {
                pts: buffer.pts(),
                duration: buffer.duration(),
                size: buffer.size(),
            };
            log.lock().unwrap().push((buffer.offset(), sent, meta_ok));
            Ok(gst::FlowSuccess::Ok)
        })
        .event_function(|_, _, _| true)
        .build();
    let src = gst::Pad::builder(gst::PadDirection::Src).build();
    src.link(&sink).expect("link");
    sink.set_active(true).expect("activate");
    src.set_active(true).expect("activate");
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("layout", "interleaved")
        .field("rate", 16_000i32)
        .field("channels", 1i32)
        .build();
    src.push_event(gst::event::StreamStart::new("fuzz"));
    src.push_event(gst::event::Caps::new(&caps));
    src.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    (src, sink)
}

struct Run {
    latency: gst::ClockTime,
    feed: Feed<Recorder>,
    output: Output,
    src: gst::Pad,
    _sink: gst::Pad,
    log: Log,
    /// Pushed and neither out nor flushed, by sequence number.
    waiting: BTreeMap<u64, Sent>,
    next: u64,
    last_out: Option<u64>,
}

impl Run {
    fn forward(&mut self, event: gst::Event) {
        if let Some(e) = self.output.hold_event(event) {
            self.src.push_event(e);
        }
    }

    fn turns(&self) -> std::sync::MutexGuard<'_, Turns> {
        self.output.turns.lock().unwrap()
    }

    fn timeline(&self, back: u8) -> Option<Arc<Timeline>> {
        let t = self.feed.worker.timelines.borrow();
        let n = t.len();
        (n > 0).then(|| t[n - 1 - back as usize % n].clone())
    }

    /// What reached downstream: in order, once, unchanged, with the meta.
    fn check_log(&mut self) {
        for (seq, got, meta_ok) in std::mem::take(&mut *self.log.lock().unwrap()) {
            assert!(meta_ok, "buffer #{seq} left without a proper meta");
            assert!(
                self.last_out.is_none_or(|l| seq > l),
                "buffer #{seq} out of order or twice"
            );
            let sent = self
                .waiting
                .remove(&seq)
                .expect("a buffer never pushed or flushed came out");
            assert_eq!(got, sent, "buffer #{seq} changed");
            self.last_out = Some(seq);
        }
    }

    fn op(&mut self, op: &Op) {
        self.apply(op);
        // Before a flush forgets what was pushed: anything out by now counts.
        self.check_log();
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Buffer {
                pts,
                duration,
                frames,
                discont,
            } => {
                let data = vec![0u8; 2 * (*frames as usize % 1601)];
                let mut buffer = gst::Buffer::from_mut_slice(data.clone());
                let seq = self.next;
                self.next += 1;
                {
                    let b = buffer.get_mut().unwrap();
                    b.set_pts(pts.map(Time::get));
                    b.set_duration(duration.map(Time::get));
                    b.set_offset(seq);
                }
                let sent = Sent {
                    pts: buffer.pts(),
                    duration: buffer.duration(),
                    size: buffer.size(),
                };
                self.waiting.insert(seq, sent);
                // As submit_input_buffer, then generate_output until it has none.
                let _ = self.feed.buffer(buffer.pts(), *discont, &data);
                let epoch = self.feed.epoch();
                self.output.hold(buffer, epoch);
                while let Some(b) = self.output.next(&self.src) {
                    let _ = self.src.push(b);
                }
                self.check_log();
                if self.latency == gst::ClockTime::ZERO {
                    assert_eq!(self.last_out, Some(seq), "latency 0 held buffer #{seq}");
                }
            }
            Op::Gap { pts, duration } => {
                let (pts, duration) = (pts.get(), duration.map(Time::get));
                let _ = self.feed.gap(pts, duration);
                self.forward(gst::event::Gap::builder(pts).duration(duration).build());
            }
            Op::Tag { stream_scope } => {
                let mut tags = gst::TagList::new();
                tags.get_mut()
                    .unwrap()
                    .add::<gst::tags::Title>(&"fuzz", gst::TagMergeMode::Append);
                tags.get_mut().unwrap().set_scope(if *stream_scope {
                    gst::TagScope::Stream
                } else {
                    gst::TagScope::Global
                });
                let event = gst::event::Tag::new(tags);
                let gst::EventView::Tag(tag) = event.view() else {
                    unreachable!()
                };
                let merged = self.output.upstream_tags(tag);
                self.forward(merged);
            }
            Op::Custom => {
                let s = gst::Structure::new_empty("fuzz");
                self.forward(gst::event::CustomDownstream::new(s));
            }
            Op::Segment(s) => {
                let segment = s.get();
                self.feed.set_segment(segment.clone());
                self.output.release_all(&self.src);
                self.src.push_event(gst::event::Segment::new(&segment));
            }
            Op::Update {
                back,
                finalized,
                provisional,
                analysed,
            } => {
                if let Some(tl) = self.timeline(*back) {
                    let (f, p) = (
                        tl.turns(&engine_turns(finalized), true, None),
                        tl.turns(&engine_turns(provisional), false, None),
                    );
                    self.turns().update(tl.id, f, p, tl.pts(analysed.get()));
                }
            }
            Op::Finished { back, turns } => {
                if let Some(tl) = self.timeline(*back) {
                    let all = tl.turns(&engine_turns(turns), true, None);
                    self.turns().finish(tl.id, all);
                }
            }
            Op::FlushStop => {
                self.output.flush();
                self.feed.flush();
                self.waiting.clear();
            }
            Op::Eos { result } => {
                *self.feed.worker.result.borrow_mut() = result.as_deref().map(engine_turns);
                // As drain() in imp/held.rs.
                if let Ok(result) = self.feed.finish() {
                    let (all, epochs) = self.output.finalize(result.as_ref());
                    let _ = rttm_text("fuzz", result.as_ref(), &all, epochs);
                    self.output.release_all(&self.src);
                    self.check_log();
                    assert!(
                        self.waiting.is_empty(),
                        "buffers still held after EOS: {:?}",
                        self.waiting
                    );
                }
            }
            Op::LatencyQuery { min, max } => {
                let (min, max) = (min.get(), max.map(Time::get));
                let latency = self.latency;
                let (lo, hi) = add_latency(min, max, latency);
                let sum = |t: gst::ClockTime| t.nseconds() as u128 + latency.nseconds() as u128;
                assert_eq!(lo.nseconds() as u128, sum(min).min(MAX.nseconds() as u128));
                let want_hi = max.map(sum).filter(|&s| s <= MAX.nseconds() as u128);
                assert_eq!(hi.map(|h| h.nseconds() as u128), want_hi);
            }
            Op::Live(live) => {
                self.feed.live = *live;
                self.output.live = *live;
            }
        }
    }
}

fuzz_target!(init: {
    gst::init().expect("gst init");
    gstspeakrs::element::meta::register();
}, |input: Input| {
    let latency = input.latency.get();
    let log: Log = Arc::default();
    let (src, sink) = pads(log.clone(), latency > gst::ClockTime::ZERO);
    let mut feed = Feed::new(Recorder::default());
    feed.set_format(16_000, 1, SampleFormat::S16).expect("format");
    let mut run = Run {
        latency,
        feed,
        output: Output::new(Arc::new(Mutex::new(Turns::default())), latency),
        src,
        _sink: sink,
        log,
        waiting: BTreeMap::new(),
        next: 0,
        last_out: None,
    };
    for op in &input.ops {
        run.op(op);
    }
    run.op(&Op::Eos { result: None });
});
