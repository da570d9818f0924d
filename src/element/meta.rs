//! The per-buffer `GstSpeakrsMeta` (a GstCustomMeta, readable from C and
//! Python with `gst_buffer_get_custom_meta (buf, "GstSpeakrsMeta")`), and the
//! bookkeeping of which turns are new since the previous buffer.
//!
//! Structure fields (documented in the README):
//! - `turns`: array of `speakrs-turn` structures (see messages.rs) that are
//!   new or changed since the previous buffer; often empty;
//! - `speakers`: array of strings, the speakers speaking for at least half
//!   of this buffer;
//!   only when `latency` > 0.

use super::messages::{turn_array, TimedTurn};

pub const META_NAME: &str = "GstSpeakrsMeta";

/// Registers the meta; no tags, so transforms (audioconvert...) keep it.
pub fn register() {
    if !gst::meta::CustomMeta::is_registered(META_NAME) {
        gst::meta::CustomMeta::register_simple(META_NAME);
    }
}

pub fn attach(buffer: &mut gst::BufferRef, turns: &[TimedTurn], speakers: Option<&[String]>) {
    let Ok(mut meta) = gst::meta::CustomMeta::add(buffer, META_NAME) else {
        return;
    };
    let s = meta.mut_structure();
    s.set("turns", turn_array(turns));
    if let Some(speakers) = speakers {
        s.set(
            "speakers",
            gst::Array::new(speakers.iter().map(String::as_str)),
        );
    }
}

/// Turns known so far, across engine streams ("epochs": a flush or a
/// timestamp jump starts a new one).
#[derive(Debug, Default)]
pub struct Turns {
    /// Earlier epochs' turns, as last reported.
    history: Vec<TimedTurn>,
    /// The current epoch's final turns (they left the horizon).
    settled: Vec<TimedTurn>,
    /// The current epoch's turns that may still change.
    provisional: Vec<TimedTurn>,
    epoch: Option<u64>,
    epochs: usize,
    /// PTS up to which the current epoch has been analysed.
    analysed: Option<gst::ClockTime>,
    /// New or changed turns not yet put on a buffer.
    pending: Vec<TimedTurn>,
}

/// Final turns looked at when naming a buffer's speakers: the buffer is
/// almost always in the provisional part, just after them.
const RECENT_FINAL: usize = 64;

impl Turns {
    /// False for a late report from before a flush (it must not displace the new stream).
    fn enter(&mut self, epoch: u64) -> bool {
        if self.epoch.is_some_and(|e| epoch < e) {
            return false;
        }
        if self.epoch != Some(epoch) {
            self.history.append(&mut self.settled);
            self.history
                .extend(self.provisional.drain(..).map(|t| TimedTurn {
                    is_final: true,
                    ..t
                }));
            self.epoch = Some(epoch);
            self.epochs += 1;
            self.analysed = None;
        }
        true
    }

    /// A streaming update of epoch `epoch`.
    pub fn update(
        &mut self,
        epoch: u64,
        finalized: Vec<TimedTurn>,
        provisional: Vec<TimedTurn>,
        analysed: gst::ClockTime,
    ) {
        if !self.enter(epoch) {
            return;
        }
        // Re-clustering may relabel or reshape earlier turns: announce those too.
        let fresh = finalized
            .iter()
            .chain(&provisional)
            .filter(|t| !self.provisional.contains(t));
        self.pending.extend(fresh.cloned());
        self.settled.extend(finalized);
        self.provisional = provisional;
        self.analysed = Some(self.analysed.map_or(analysed, |a| a.max(analysed)));
    }

    /// The final result of epoch `epoch`: all its turns.
    pub fn finish(&mut self, epoch: u64, all: Vec<TimedTurn>) {
        if !self.enter(epoch) {
            return;
        }
        let fresh = all
            .iter()
            .filter(|t| !self.provisional.contains(t) && !self.settled.contains(t));
        self.pending.extend(fresh.cloned());
        self.settled = all;
        self.provisional.clear();
        self.analysed = Some(gst::ClockTime::MAX);
    }

    /// How far epoch `epoch` has been analysed: `None` before its first
    /// report, `MAX` once it is over.
    pub fn analysed(&self, epoch: u64) -> Option<gst::ClockTime> {
        match self.epoch {
            Some(e) if e > epoch => Some(gst::ClockTime::MAX),
            Some(e) if e == epoch => self.analysed,
            _ => None,
        }
    }

    pub fn all(&self) -> Vec<TimedTurn> {
        self.history
            .iter()
            .chain(&self.settled)
            .chain(&self.provisional)
            .cloned()
            .collect()
    }

    /// How many engine streams reported turns.
    pub fn epochs(&self) -> usize {
        self.epochs
    }

    pub fn take_pending(&mut self) -> Vec<TimedTurn> {
        std::mem::take(&mut self.pending)
    }

    fn recent(&self) -> impl Iterator<Item = &TimedTurn> {
        self.settled[self.settled.len().saturating_sub(RECENT_FINAL)..]
            .iter()
            .chain(&self.provisional)
    }

    /// Speakers of the current epoch who speak for at least half of
    /// `[start, end)` (PTS): a buffer carries a label as a frame is rounded
    /// to its nearest, so turns are neither stretched nor cut on average.
    /// Naming everyone who speaks anywhere in the buffer instead stretched
    /// every turn by up to a buffer at each end (issue #19).
    pub fn speakers_in(&self, start: gst::ClockTime, end: gst::ClockTime) -> Vec<String> {
        let half = end.saturating_sub(start) / 2;
        let mut spoken: Vec<(String, gst::ClockTime)> = Vec::new();
        for t in self.recent().filter(|t| t.start < end && t.end > start) {
            let overlap = overlap(t, start, end);
            match spoken.iter_mut().find(|(s, _)| *s == t.speaker) {
                Some((_, total)) => *total = total.saturating_add(overlap),
                None => spoken.push((t.speaker.clone(), overlap)),
            }
        }
        spoken
            .into_iter()
            .filter(|(_, total)| *total > gst::ClockTime::ZERO && *total >= half)
            .map(|(s, _)| s)
            .collect()
    }

    /// The speaker speaking longest within `[start, end)`.
    pub fn dominant_in(&self, start: gst::ClockTime, end: gst::ClockTime) -> Option<String> {
        let mut best: Option<(&str, gst::ClockTime)> = None;
        for t in self.recent().filter(|t| t.start < end && t.end > start) {
            let overlap = overlap(t, start, end);
            if best.is_none_or(|(_, b)| overlap > b) {
                best = Some((&t.speaker, overlap));
            }
        }
        best.map(|(s, _)| s.to_string())
    }

    /// The speaker of the most recently ending known turn.
    pub fn latest_speaker(&self) -> Option<String> {
        self.recent()
            .max_by_key(|t| (t.end, t.start))
            .map(|t| t.speaker.clone())
    }
}

/// How much of `[start, end)` turn `t` covers; saturating: a reversed turn
/// or range overlaps by nothing.
fn overlap(t: &TimedTurn, start: gst::ClockTime, end: gst::ClockTime) -> gst::ClockTime {
    t.end.min(end).saturating_sub(t.start.max(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(speaker: &str, start: u64, end: u64) -> TimedTurn {
        TimedTurn {
            speaker: speaker.into(),
            known: None,
            score: None,
            start: gst::ClockTime::from_mseconds(start),
            end: gst::ClockTime::from_mseconds(end),
            start_stream: None,
            end_stream: None,
            start_running: None,
            end_running: None,
            is_final: false,
        }
    }

    /// Found by the output_path fuzz target (engine turns at any seconds):
    /// a turn ending before it starts made `end - start` wrap, and so
    /// made it the longest.
    #[test]
    fn a_reversed_turn_overlaps_by_nothing() {
        let mut turns = Turns::default();
        let (a, b) = (turn("A", 1000, 3000), turn("B", 2500, 1500));
        turns.update(0, vec![], vec![a, b], gst::ClockTime::ZERO);
        let (start, end) = (gst::ClockTime::SECOND, gst::ClockTime::from_seconds(3));
        assert_eq!(turns.dominant_in(start, end).as_deref(), Some("A"));
    }

    #[test]
    fn a_buffer_names_who_speaks_for_half_of_it_or_more() {
        let mut turns = Turns::default();
        // A ends 5 ms into the 20 ms buffer [100, 120), B starts at 108,
        // C speaks 104–110 and 112–118 (12 ms in two turns).
        let all = vec![
            turn("A", 0, 105),
            turn("B", 108, 500),
            turn("C", 104, 110),
            turn("C", 112, 118),
        ];
        turns.update(0, vec![], all, gst::ClockTime::ZERO);
        let (start, end) = (
            gst::ClockTime::from_mseconds(100),
            gst::ClockTime::from_mseconds(120),
        );
        assert_eq!(turns.speakers_in(start, end), vec!["B", "C"]);
        // An empty buffer names nobody.
        assert!(turns.speakers_in(start, start).is_empty());
    }
}
