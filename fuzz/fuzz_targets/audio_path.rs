//! The element's input side without GStreamer pads or models: random
//! S16/F32 buffers at any rate (1..=384000) and channel count (1..=64),
//! with timestamps, discontinuities, gaps, segments, flushes, format
//! changes and live-queue overruns, through `Feed` into a recorder standing
//! in for the worker thread. A second pass checks the resampler's length
//! contract on the same buffers.
#![no_main]

use std::cell::Cell;
use std::sync::Arc;

use arbitrary::Arbitrary;
use gstspeakrs::element::fuzzing::{Command, Downsampler, Feed, SampleFormat, SendError, Sink, Timeline};
use gstspeakrs::engine::output::diarization::Diarization;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary, Clone, Copy)]
struct Format {
    rate: u32,
    channels: u8,
    s16: bool,
}

impl Format {
    fn rate(self) -> u32 {
        1 + self.rate % 384_000
    }
    fn channels(self) -> usize {
        1 + self.channels as usize % 64
    }
    fn format(self) -> SampleFormat {
        if self.s16 { SampleFormat::S16 } else { SampleFormat::F32 }
    }
}

/// Mostly plausible times (ms), sometimes anything a clock time can hold.
#[derive(Debug, Arbitrary, Clone, Copy)]
enum Time {
    Ms(u32),
    Ns(u64),
}

impl Time {
    fn get(self) -> gst::ClockTime {
        match self {
            Time::Ms(ms) => gst::ClockTime::from_mseconds(ms as u64),
            Time::Ns(ns) => gst::ClockTime::from_nseconds(ns.min(gst::ClockTime::MAX.nseconds())),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Buffer { pts: Option<Time>, discont: bool, data: Vec<u8> },
    Gap { pts: Time, duration: Option<Time> },
    SetFormat(Format),
    Segment { start: Time },
    FlushStart,
    FlushStop,
    Eos,
    /// The worker's queue is full (live upstream: audio is dropped).
    QueueFull(bool),
    Live(bool),
}

#[derive(Debug, Arbitrary)]
struct Input {
    format: Format,
    ops: Vec<Op>,
}

/// Stands in for the worker: accepts or refuses like its bounded channel.
#[derive(Default)]
struct Recorder {
    full: Cell<bool>,
    flushing: Cell<bool>,
    generation: Cell<u64>,
}

impl Sink for Recorder {
    fn send(&self, cmd: Command<Arc<Timeline>>, block: bool) -> Result<(), SendError> {
        if !block {
            return if self.full.get() { Err(SendError::Full) } else { Ok(()) };
        }
        if self.flushing.get() {
            return Err(SendError::Cancelled);
        }
        if let Command::Audio { samples, .. } = &cmd {
            assert!(!samples.is_empty(), "empty audio command");
        }
        Ok(())
    }
    fn generation(&self) -> u64 {
        self.generation.get()
    }
    fn finish(&self) -> Result<Option<(Arc<Timeline>, Diarization)>, SendError> {
        if self.flushing.get() { Err(SendError::Cancelled) } else { Ok(None) }
    }
}

fn feed(input: &Input) {
    let mut feed = Feed::new(Recorder::default());
    let f = input.format;
    let _ = feed.set_format(f.rate(), f.channels(), f.format());
    for op in &input.ops {
        match op {
            Op::Buffer { pts, discont, data } => {
                let _ = feed.buffer(pts.map(Time::get), *discont, data);
            }
            Op::Gap { pts, duration } => {
                let _ = feed.gap(pts.get(), duration.map(Time::get));
            }
            Op::SetFormat(f) => {
                let _ = feed.set_format(f.rate(), f.channels(), f.format());
            }
            Op::Segment { start } => {
                let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
                segment.set_start(start.get());
                feed.set_segment(segment);
            }
            // As the element does: FLUSH_START cancels, FLUSH_STOP resets the feed.
            Op::FlushStart => {
                feed.worker.flushing.set(true);
                feed.worker.generation.set(feed.worker.generation.get() + 1);
            }
            Op::FlushStop => {
                feed.worker.flushing.set(false);
                feed.flush();
            }
            Op::Eos => {
                let _ = feed.finish();
            }
            Op::QueueFull(full) => feed.worker.full.set(*full),
            Op::Live(live) => feed.live = *live,
        }
    }
    let _ = feed.finish();
}

/// Exactly round(frames · 16000 / rate) samples come out after `drain`.
fn lengths(input: &Input) {
    let f = input.format;
    let mut down = Downsampler::new(f.rate(), f.channels(), f.format());
    let frame_bytes = f.channels() * if f.s16 { 2 } else { 4 };
    let (mut frames, mut out) = (0u64, Vec::new());
    for op in &input.ops {
        if let Op::Buffer { data, .. } = op {
            down.push_bytes(data, &mut out);
            frames += (data.len() / frame_bytes) as u64;
        }
    }
    down.drain(&mut out);
    let rate = f.rate() as u64;
    assert_eq!(out.len() as u64, (frames * 16_000 + rate / 2) / rate, "rate {rate}, {frames} frames");
}

fuzz_target!(init: { gst::init().expect("gst init") }, |input: Input| {
    feed(&input);
    lengths(&input);
});
