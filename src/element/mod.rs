//! The `speakrsdiarize` element: audio passes through untouched while the
//! analysis path (downmix, 16 kHz, engine on a worker thread) reports who
//! speaks when, as per-buffer meta, tag / custom events, bus messages and
//! an RTTM file. See docs/element.md.

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
mod worker;

pub use settings::Mode;

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

/// Registers the element, its meta, its tag and the mode enum with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    meta::register();
    messages::register_tags();
    Mode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "speakrsdiarize",
        gst::Rank::NONE,
        SpeakrsDiarize::static_type(),
    )
}
