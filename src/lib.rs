//! gst-speakrs: speaker diarization for GStreamer pipelines.
//!
//! Three layers, dependencies pointing one way: `element` (GStreamer glue)
//! → `engine` (16 kHz samples in, speaker turns out) → `models` (files,
//! checksums, ONNX Runtime sessions).

pub mod element;
pub mod engine;
pub mod models;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    element::register(plugin)
}

// Plugin `speakrs` → libgstspeakrs.so. Also defines `plugin_register_static()`
// for applications and tests that link the crate.
gst::plugin_define!(
    speakrs,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    // Not published anywhere yet: GStreamer's own default origin, not a made-up URL.
    "Unknown package origin",
    env!("BUILD_REL_DATE")
);
