//! Runs the real element: `filesrc ! decodebin ! audioconvert ! speakrsdiarize ! fakesink`.

use std::path::Path;

use gstspeakrs::engine::loaded::EngineConfig;
use gstspeakrs::models::Precision;

use super::sets::Entry;
use super::Options;

pub fn init() {
    gst::init().expect("GStreamer init");
    gstspeakrs::plugin_register_static().expect("register speakrs plugin");
}

pub fn run(o: &Options, e: &Entry, rttm: &Path, config: &EngineConfig) {
    use gst::prelude::*;
    let mut desc = format!(
        "filesrc location=\"{}\" ! decodebin ! audioconvert ! speakrsdiarize step={} threads={} rttm-location=\"{}\"",
        e.wav.display(),
        o.step,
        o.threads,
        rttm.display()
    );
    if let Some(plda) = &config.models.plda {
        desc += &format!(" plda=\"{}\"", plda.display());
    }
    if config.models.precision == Precision::Int8 {
        desc += " precision=int8";
    }
    desc += " ! fakesink";
    let pipeline = gst::parse::launch(&desc)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    pipeline.set_state(gst::State::Playing).expect("PLAYING");
    let bus = pipeline.bus().expect("bus");
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            gst::MessageView::Error(err) => {
                panic!("{}: {} ({:?})", e.uri, err.error(), err.debug())
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).expect("NULL");
}
