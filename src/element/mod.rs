//! `speakrsdiarize` tells who speaks when. Audio passes through untouched;
//! a copy is downmixed to 16 kHz mono and diarized on a worker thread
//! (pyannote community-1: segmentation-3.0, CAM++ embeddings, PLDA + VBx).
//! Results come out four ways: a `GstSpeakrsMeta` custom meta on every
//! buffer (new or changed turns, and with `latency` > 0 who speaks in that
//! buffer), a `speaker` tag and `rstranscribe/speaker-change` event when
//! the active speaker changes, `speakrs-diarization` element messages on
//! the bus (interim while streaming, one final at EOS), and an RTTM file
//! (`rttm-location`). Models load at READY→PAUSED; a missing or broken
//! model, library or setting is an element error naming it and the fix.
//!
//! Diarize a file and print the final turns from the bus:
//!
//! ```text
//! gst-launch-1.0 -m filesrc location=talk.mp3 ! decodebin ! audioconvert ! speakrsdiarize rttm-location=talk.rttm ! fakesink
//! ```
//!
//! Live, with each buffer labelled 10 s after it was captured:
//!
//! ```text
//! gst-launch-1.0 pulsesrc ! audioconvert ! speakrsdiarize latency=10000000000 ! fakesink
//! ```
//!
//! Name enrolled people (`enroll` example) and keep every speaker's label
//! across restarts:
//!
//! ```text
//! gst-launch-1.0 -m filesrc location=show.mp3 ! decodebin ! audioconvert ! speakrsdiarize voices-location=voices.json voices-save=true ! fakesink
//! ```
//!
//! In an application, read the meta in a pad probe or `appsink`
//! (`gst_buffer_get_custom_meta (buf, "GstSpeakrsMeta")`) and the final
//! turns from the bus message; README.md shows C, Python and Rust.
//! `GST_DEBUG=speakrsdiarize:4` logs model loads, re-clusterings and the
//! final summary.

use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;

mod analysis;
mod feed;
mod imp;
pub mod messages;
pub mod meta;
mod output;
mod protocol;
mod report;
mod resample;
mod rttm_out;
pub mod settings;
mod voices;
mod worker;

pub use settings::{Mode, Precision};

/// The input and output sides without the element's pads or the worker
/// thread, for the fuzz targets in fuzz/. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::feed::{Feed, Sink};
    pub use super::messages::Timeline;
    pub use super::output::{add_latency, Output};
    pub use super::protocol::Command;
    pub use super::resample::{Downsampler, SampleFormat};
    pub use super::rttm_out::text as rttm_text;
    pub use super::worker::SendError;
}

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "speakrsdiarize",
        gst::DebugColorFlags::empty(),
        Some("Speaker diarization"),
    )
});

/// A poisoned lock is still used: its holder panicked, and that panic is
/// already an element error; the state it guards stays consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

glib::wrapper! {
    pub struct SpeakrsDiarize(ObjectSubclass<imp::SpeakrsDiarize>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers the element, its meta, its tag and its enums with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    meta::register();
    messages::register_tags();
    Mode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Precision::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "speakrsdiarize",
        gst::Rank::NONE,
        SpeakrsDiarize::static_type(),
    )
}
