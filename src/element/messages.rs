//! What the element tells the rest of the pipeline: bus messages, the
//! speaker tag, the `rstranscribe/speaker-change` event, and the mapping of
//! engine time (seconds since a stream's first analysed sample) to stream
//! and running time.
//!
//! Names (documented in the README):
//! - bus element message `speakrs-diarization`: `final` (bool),
//!   `num-speakers` (uint), `turns` (array of `speakrs-turn` structures),
//!   and while streaming `label-changes` (array of `speakrs-label-change`),
//!   `reclustered` (bool), `clustering-seconds` (double);
//! - `speakrs-turn`: `speaker` (string, "SPEAKER_00"…), `start-stream-time`,
//!   `end-stream-time`, `start-running-time`, `end-running-time` (guint64 ns,
//!   GST_CLOCK_TIME_NONE outside the segment), `final` (bool); with a
//!   voices file also `known` (bool: `speaker` is an enrolled name) and,
//!   when known, `score` (double: the voice's PLDA log-likelihood ratio);
//! - tag `speaker` (string): the active speaker's name or label;
//! - custom downstream event `rstranscribe/speaker-change` with `speaker`
//!   (string), as gst-plugins-rs transcribers send it.

use gst::glib;
use gst::prelude::*;

use crate::engine::online::Update;
use crate::engine::output::diarization::{name_or_label, Turn};
use crate::engine::registry::{Identities, LabelChange};

pub const MESSAGE_NAME: &str = "speakrs-diarization";
pub const TURN_NAME: &str = "speakrs-turn";
pub const SPEAKER_CHANGE_EVENT: &str = "rstranscribe/speaker-change";
pub const CHANGE_NAME: &str = "speakrs-label-change";
pub const DEGRADED_NAME: &str = "speakrs-degraded";

/// The custom tag carrying the active speaker's label.
pub enum SpeakerTag {}

impl<'a> gst::tags::Tag<'a> for SpeakerTag {
    type TagType = &'a str;
    const TAG_NAME: &'static glib::GStr = glib::gstr!("speaker");
}

impl gst::tags::CustomTag<'_> for SpeakerTag {
    const FLAG: gst::TagFlag = gst::TagFlag::Meta;
    const NICK: &'static glib::GStr = glib::gstr!("speaker");
    const DESCRIPTION: &'static glib::GStr =
        glib::gstr!("Label of the active speaker (speaker diarization)");
}

/// Registers the tag once per process; another plugin's same-named tag of
/// another type disables ours rather than feeding it wrong values.
pub fn register_tags() {
    use gst::tags::{tag_exists, Tag};
    if !tag_exists(SpeakerTag::TAG_NAME) {
        gst::tags::register::<SpeakerTag>();
    }
}

fn speaker_tag_usable() -> bool {
    use gst::tags::{tag_exists, tag_get_type, Tag};
    tag_exists(SpeakerTag::TAG_NAME) && tag_get_type(SpeakerTag::TAG_NAME) == String::static_type()
}

/// Maps engine seconds of one analysed stretch ("epoch") to pipeline time.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Increases with every new engine stream (flush, timestamp jump).
    pub id: u64,
    /// PTS of the stretch's first analysed sample.
    pub base_pts: gst::ClockTime,
    pub segment: gst::FormattedSegment<gst::ClockTime>,
}

impl Timeline {
    pub fn pts(&self, seconds: f64) -> gst::ClockTime {
        // Clamped: the cast saturates to u64::MAX, which is NONE, not a time.
        let ns = if seconds.is_finite() && seconds > 0.0 {
            ((seconds * 1e9).round() as u64).min(gst::ClockTime::MAX.nseconds())
        } else {
            0
        };
        self.base_pts
            .saturating_add(gst::ClockTime::from_nseconds(ns))
    }

    /// `identities`: the names speakers earned, None without a voices file
    /// (the turn then carries no `known` or `score`).
    pub fn turn(&self, turn: &Turn, is_final: bool, identities: Option<&Identities>) -> TimedTurn {
        let (start, end) = (self.pts(turn.start), self.pts(turn.end));
        let identity = identities.and_then(|i| i.get(&turn.speaker));
        TimedTurn {
            speaker: name_or_label(identities, turn.speaker),
            known: identities.map(|_| identity.is_some()),
            score: identity.map(|i| i.score),
            start,
            end,
            start_stream: self.segment.to_stream_time(start),
            end_stream: self.segment.to_stream_time(end),
            start_running: self.segment.to_running_time(start),
            end_running: self.segment.to_running_time(end),
            is_final,
        }
    }

    pub fn turns(
        &self,
        turns: &[Turn],
        is_final: bool,
        identities: Option<&Identities>,
    ) -> Vec<TimedTurn> {
        turns
            .iter()
            .map(|t| self.turn(t, is_final, identities))
            .collect()
    }
}

/// A speaker turn in pipeline time.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedTurn {
    /// The enrolled name the speaker matched, else its `SPEAKER_nn` label.
    pub speaker: String,
    /// With a voices file: whether `speaker` is an enrolled name.
    pub known: Option<bool>,
    /// The voice score behind the name (PLDA log-likelihood ratio).
    pub score: Option<f64>,
    /// Buffer-timestamp (PTS) bounds, for matching against buffers.
    pub start: gst::ClockTime,
    pub end: gst::ClockTime,
    pub start_stream: Option<gst::ClockTime>,
    pub end_stream: Option<gst::ClockTime>,
    pub start_running: Option<gst::ClockTime>,
    pub end_running: Option<gst::ClockTime>,
    pub is_final: bool,
}

impl TimedTurn {
    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(TURN_NAME)
            .field("speaker", &self.speaker)
            .field("start-stream-time", self.start_stream)
            .field("end-stream-time", self.end_stream)
            .field("start-running-time", self.start_running)
            .field("end-running-time", self.end_running)
            .field("final", self.is_final)
            .field_if_some("known", self.known)
            .field_if_some("score", self.score)
            .build()
    }
}

pub fn turn_array(turns: &[TimedTurn]) -> gst::Array {
    gst::Array::new(turns.iter().map(TimedTurn::to_structure))
}

/// `turns`: at EOS every turn; while streaming, the turns that became final
/// since the previous message plus all those that may still change.
pub fn diarization_message(
    src: &gst::Element,
    turns: &[TimedTurn],
    num_speakers: usize,
    is_final: bool,
    update: Option<&Update>,
) -> gst::Message {
    let mut s = gst::Structure::builder(MESSAGE_NAME)
        .field("final", is_final)
        .field("num-speakers", num_speakers as u32)
        .field("turns", turn_array(turns))
        .build();
    if let Some(u) = update {
        let identities = u.identities.as_ref();
        s.set(
            "label-changes",
            gst::Array::new(u.changes.iter().map(|c| change_structure(c, identities))),
        );
        s.set("reclustered", u.reclustered);
        s.set("clustering-seconds", u.clustering_seconds);
    }
    gst::message::Element::builder(s).src(src).build()
}

/// `speakrs-label-change`: `kind` "merged" (speaker `from` was `to` all
/// along; `from` is not used again) or "split" (part of `from` is a new
/// speaker `to`).
fn change_structure(change: &LabelChange, identities: Option<&Identities>) -> gst::Structure {
    let (kind, from, to) = match *change {
        LabelChange::Merged { from, into } => ("merged", from, into),
        LabelChange::Split { from, new } => ("split", from, new),
    };
    gst::Structure::builder(CHANGE_NAME)
        .field("kind", kind)
        .field("from", name_or_label(identities, from))
        .field("to", name_or_label(identities, to))
        .build()
}

/// The warning posted when a live stream's analysis lags and chunks are skipped.
pub fn degraded_details(skipped_chunks: u64, step: f64) -> gst::Structure {
    gst::Structure::builder(DEGRADED_NAME)
        .field("skipped-chunks", skipped_chunks)
        .field("step", step)
        .build()
}

/// A tag event with upstream's tags plus ours: a new stream-scope tag event
/// replaces the previous one downstream, so upstream's must be carried along.
pub fn speaker_tag_event(upstream: Option<&gst::TagList>, speaker: &str) -> Option<gst::Event> {
    if !speaker_tag_usable() {
        return None;
    }
    let mut tags = upstream.cloned().unwrap_or_default();
    tags.make_mut()
        .add::<SpeakerTag>(&speaker, gst::TagMergeMode::Replace);
    Some(gst::event::Tag::new(tags))
}

/// Adds the current speaker to an upstream tag event passing through.
pub fn merge_into_upstream(tags: &gst::TagList, speaker: Option<&str>) -> gst::TagList {
    let mut tags = tags.clone();
    if let (Some(speaker), true) = (speaker, speaker_tag_usable()) {
        tags.make_mut()
            .add::<SpeakerTag>(&speaker, gst::TagMergeMode::Replace);
    }
    tags
}

pub fn speaker_change_event(speaker: &str) -> gst::Event {
    gst::event::CustomDownstream::builder(
        gst::Structure::builder(SPEAKER_CHANGE_EVENT)
            .field("speaker", Some(speaker.to_string()))
            .build(),
    )
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the output_path fuzz target: engine seconds past the
    /// clock's range cast to u64::MAX, which is not a clock time (panic).
    #[test]
    fn engine_seconds_past_the_clock_range_end_at_max() {
        gst::init().unwrap();
        let timeline = Timeline {
            id: 0,
            base_pts: gst::ClockTime::ZERO,
            segment: gst::FormattedSegment::new(),
        };
        for seconds in [1.9e10, 1e300] {
            assert_eq!(timeline.pts(seconds), gst::ClockTime::MAX, "{seconds} s");
        }
        assert_eq!(timeline.pts(1.5), gst::ClockTime::from_mseconds(1500));
    }
}
