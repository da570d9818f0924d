//! The output side: buffers held back for `latency`, the meta put on each,
//! and the tag / speaker-change events sent just before the buffer where
//! the active speaker changes. Events serialized with held buffers wait in
//! the same queue, so downstream sees everything in its original order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use super::messages::{self, TimedTurn, Timeline};
use super::meta::{self, Turns};
use crate::engine::output::diarization::Diarization;

enum Held {
    /// With the engine stream (epoch) its audio went to.
    Buffer(gst::Buffer, Option<u64>),
    Event(gst::Event),
}

/// Non-live streams hold a buffer until the analysis has passed its end by
/// `latency`; should the analysis make no progress for this long (wall
/// clock) while newer audio waits, buffers leave anyway. A distance in
/// stream time would not do: upstream may run minutes ahead of a busy
/// analysis (the worker's queue holds up to 512 buffers), and its buffers
/// must still wait for their labels.
const STALL: std::time::Duration = std::time::Duration::from_secs(10);

/// When the analysis position last moved.
struct Progress {
    analysed: Option<gst::ClockTime>,
    since: std::time::Instant,
}

pub struct Output {
    pub turns: Arc<Mutex<Turns>>,
    latency: gst::ClockTime,
    held: VecDeque<Held>,
    /// End PTS of the newest input buffer: what `latency` is measured against.
    newest_end: Option<gst::ClockTime>,
    upstream_tags: Option<gst::TagList>,
    speaker: Option<String>,
    /// Live: release by the clock (newer audio); else by analysis progress.
    pub live: bool,
    progress: Progress,
}

fn lock(turns: &Mutex<Turns>) -> std::sync::MutexGuard<'_, Turns> {
    turns.lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer's PTS range; one ending past the clock's range ends at MAX.
fn span(buffer: &gst::BufferRef) -> Option<(gst::ClockTime, gst::ClockTime)> {
    buffer.pts().map(|p| {
        let duration = buffer.duration().unwrap_or(gst::ClockTime::ZERO);
        (p, p.saturating_add(duration))
    })
}

/// The LATENCY query's answer with our `latency` added: the minimum
/// saturates at MAX, a maximum past the clock's range is unbounded (None).
pub fn add_latency(
    min: gst::ClockTime,
    max: Option<gst::ClockTime>,
    latency: gst::ClockTime,
) -> (gst::ClockTime, Option<gst::ClockTime>) {
    (
        min.saturating_add(latency),
        max.and_then(|m| m.checked_add(latency)),
    )
}

impl Output {
    pub fn new(turns: Arc<Mutex<Turns>>, latency: gst::ClockTime) -> Self {
        Self {
            turns,
            latency,
            held: VecDeque::new(),
            newest_end: None,
            upstream_tags: None,
            speaker: None,
            live: false,
            progress: Progress {
                analysed: None,
                since: std::time::Instant::now(),
            },
        }
    }

    pub fn hold(&mut self, buffer: gst::Buffer, epoch: Option<u64>) {
        if let Some((_, end)) = span(&buffer) {
            self.newest_end = Some(end);
        }
        if self.held.is_empty() {
            // Nothing was waiting: a stall can only start now.
            self.progress.since = std::time::Instant::now();
        }
        self.held.push_back(Held::Buffer(buffer, epoch));
    }

    /// Queues a serialized event behind held buffers; returns it when
    /// nothing is held (forward it now).
    pub fn hold_event(&mut self, event: gst::Event) -> Option<gst::Event> {
        if self.held.is_empty() {
            return Some(event);
        }
        self.held.push_back(Held::Event(event));
        None
    }

    /// Upstream's tag event, with our speaker tag added; remembered so our
    /// own tag events carry upstream's tags too.
    pub fn upstream_tags(&mut self, event: &gst::event::Tag) -> gst::Event {
        let tags = event.tag_owned();
        if tags.scope() == gst::TagScope::Stream {
            self.upstream_tags = Some(tags.clone());
        }
        let merged = messages::merge_into_upstream(&tags, self.speaker.as_deref());
        gst::event::Tag::builder(merged)
            .seqnum(event.seqnum())
            .build()
    }

    pub fn flush(&mut self) {
        self.held.clear();
        self.newest_end = None;
    }

    fn releasable(&mut self, buffer: &gst::Buffer, epoch: Option<u64>) -> bool {
        let (Some((_, end)), Some(newest)) = (span(buffer), self.newest_end) else {
            return true;
        };
        if self.latency == gst::ClockTime::ZERO {
            return true;
        }
        // Saturating: near the end of time a buffer waits for one reaching
        // MAX (or EOS) rather than leaving at once on a wrapped time.
        let wanted = end.saturating_add(self.latency);
        if self.live {
            return wanted <= newest;
        }
        let analysed = epoch.and_then(|e| lock(&self.turns).analysed(e));
        if analysed.is_some_and(|a| a >= wanted) {
            return true;
        }
        if analysed != self.progress.analysed {
            self.progress = Progress {
                analysed,
                since: std::time::Instant::now(),
            };
        }
        wanted <= newest && self.progress.since.elapsed() >= STALL
    }

    /// The next buffer that may leave, pushing the events queued before it.
    pub fn next(&mut self, pad: &gst::Pad) -> Option<gst::Buffer> {
        loop {
            match self.held.pop_front()? {
                Held::Event(e) => {
                    pad.push_event(e);
                }
                Held::Buffer(b, e) if self.releasable(&b, e) => return Some(self.decorate(pad, b)),
                Held::Buffer(b, e) => {
                    self.held.push_front(Held::Buffer(b, e));
                    return None;
                }
            }
        }
    }

    /// Pushes everything held (before a serialized event, or at EOS).
    pub fn release_all(&mut self, pad: &gst::Pad) {
        while let Some(item) = self.held.pop_front() {
            match item {
                Held::Event(e) => {
                    pad.push_event(e);
                }
                Held::Buffer(b, _) => {
                    let b = self.decorate(pad, b);
                    if pad.push(b).is_err() {
                        self.held.clear();
                    }
                }
            }
        }
    }

    /// Adds the meta; sends the tag and speaker-change events first when
    /// the active speaker changes.
    fn decorate(&mut self, pad: &gst::Pad, mut buffer: gst::Buffer) -> gst::Buffer {
        let (new_turns, speakers, speaker) = {
            let mut turns = lock(&self.turns);
            let new_turns = turns.take_pending();
            match (self.latency > gst::ClockTime::ZERO, span(&buffer)) {
                (true, Some((s, e))) => (
                    new_turns,
                    Some(turns.speakers_in(s, e)),
                    turns.dominant_in(s, e),
                ),
                (true, None) => (new_turns, Some(Vec::new()), None),
                // Without latency the newest known turn is the best guess.
                (false, _) => (new_turns, None, turns.latest_speaker()),
            }
        };
        meta::attach(buffer.make_mut(), &new_turns, speakers.as_deref());
        if let Some(speaker) = speaker.filter(|s| self.speaker.as_ref() != Some(s)) {
            if let Some(tags) = messages::speaker_tag_event(self.upstream_tags.as_ref(), &speaker) {
                pad.push_event(tags);
            }
            pad.push_event(messages::speaker_change_event(&speaker));
            self.speaker = Some(speaker);
        }
        buffer
    }

    /// Records the final result; returns all turns (every engine stream)
    /// and how many engine streams reported.
    pub fn finalize(
        &self,
        result: Option<&(Arc<Timeline>, Diarization)>,
    ) -> (Vec<TimedTurn>, usize) {
        let mut turns = lock(&self.turns);
        if let Some((timeline, d)) = result {
            turns.finish(
                timeline.id,
                timeline.turns(&d.turns, true, d.identities.as_ref()),
            );
        }
        // At EOS every turn is final, earlier engine streams' included (#6).
        let all = turns
            .all()
            .into_iter()
            .map(|t| TimedTurn {
                is_final: true,
                ..t
            })
            .collect();
        (all, turns.epochs())
    }
}
