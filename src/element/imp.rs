//! GObject / BaseTransform glue of `speakrsdiarize`: properties, caps,
//! events, queries, state changes; imp/held.rs holds events behind held
//! buffers and drains at EOS. The work lives in feed.rs (input side),
//! worker.rs (analysis thread) and analysis.rs (its work), report.rs
//! (what it reports), output.rs / meta.rs / messages.rs / rttm_out.rs
//! (outputs).
//!
//! Buffers are never modified: the element queues each input buffer
//! (`submit_input_buffer`) and hands the very same buffer back
//! (`generate_output`) with only a GstSpeakrsMeta added, immediately when
//! `latency` is 0, else once `latency` of newer audio has arrived. Adding a
//! meta needs a writable buffer, which rules out plain passthrough; making
//! it writable copies the buffer header only, never the audio memory.
//!
//! Panics never cross into C and never end analysis silently; each becomes
//! an element error on the bus (checked against gstreamer-rs 0.25):
//! - every Element / BaseTransform vfunc below (state changes, start/stop,
//!   caps, events, queries, submit_input_buffer, generate_output) is wrapped
//!   by gstreamer-rs in `panic_to_error!` ("Panicked: …", LibraryError::Failed;
//!   the element then refuses further work). We install no pad functions of
//!   our own: BaseTransform's C pad functions call those vfuncs;
//! - glib's `set_property` / `property` trampolines are NOT wrapped (a panic
//!   there would abort): we wrap them in `catch_panic`, same error;
//! - the worker thread: engine calls go through `catch_unwind` (analysis.rs),
//!   the rest of its loop too, and `report::event_handler` catches its own panics;
//! - class set-up (`properties`, `metadata`, `pad_templates`) only builds
//!   constant data; plugin_init is guarded by `gst::plugin_define!`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use gst::glib;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;

use super::feed::Feed;

use super::meta::Turns;
use super::output::{add_latency, Output};
use super::resample::SampleFormat;
use super::settings::{self, Settings};
use super::worker::{Control, Worker};
use super::{lock, report, voices, CAT};
use crate::engine::loaded::LoadedModels;
use crate::models::voices::VoicesError;
use crate::models::ModelError;

mod held;

/// Analysis commands (≈ buffers) that may wait for the worker thread; a
/// live stream's buffers wait here while the horizon is re-clustered.
const QUEUE: usize = 512;

struct State {
    feed: Feed,
    output: Output,
    settings: Settings,
    /// Buffers came before any caps: said once, then passed unanalysed.
    warned_uncapped: bool,
}

#[derive(Default)]
pub struct SpeakrsDiarize {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// Outside `state`: FLUSH_START must reach it while the streaming thread
    /// blocks with the state locked.
    control: Mutex<Option<Arc<Control>>>,
    live: AtomicBool,
}

/// Model errors become element errors whose text is the ModelError's (it
/// names the file or library and the command that fixes it).
fn model_error(e: &ModelError) -> gst::ErrorMessage {
    use gst::ResourceError as R;
    let kind = match e {
        ModelError::Missing { .. } => R::NotFound,
        ModelError::Runtime { .. } => R::NotFound,
        ModelError::Provider { .. } => R::Settings,
        // Session: ONNX Runtime could not load the file (e.g. truncated, no manifest).
        ModelError::Checksum { .. }
        | ModelError::Manifest { .. }
        | ModelError::Shape { .. }
        | ModelError::Io { .. }
        | ModelError::Session { .. } => R::OpenRead,
        _ => R::Failed,
    };
    gst::error_msg!(kind, ("{}", e))
}

/// Voices-file faults become element errors with the VoicesError's text
/// (it names the file, what is wrong and that the file was left alone).
fn voices_error(e: &VoicesError) -> gst::ErrorMessage {
    use gst::ResourceError as R;
    let kind = match e {
        VoicesError::Missing { .. } => R::NotFound,
        VoicesError::Unwritable { .. } => R::OpenWrite,
        VoicesError::OtherModels { .. } => R::Settings,
        _ => R::OpenRead,
    };
    gst::error_msg!(kind, ("{}", e))
}

#[glib::object_subclass]
impl ObjectSubclass for SpeakrsDiarize {
    const NAME: &'static str = "GstSpeakrsDiarize";
    type Type = super::SpeakrsDiarize;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for SpeakrsDiarize {
    fn properties() -> &'static [glib::ParamSpec] {
        settings::properties()
    }

    // GObject calls these two without gstreamer-rs's panic guard: add it.
    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.catch_panic(|| (), |imp| lock(&imp.settings).set(pspec.name(), value));
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        self.catch_panic(
            || pspec.default_value().clone(),
            |imp| lock(&imp.settings).get(pspec.name()),
        )
    }
}

impl GstObjectImpl for SpeakrsDiarize {}

impl ElementImpl for SpeakrsDiarize {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Speaker diarization",
                "Filter/Analyzer/Audio",
                "Tells who speaks when (pyannote community-1 algorithm, ONNX Runtime); audio passes unchanged",
                "gst-speakrs contributors",
            )
        });
        Some(&META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_audio::AudioCapsBuilder::new_interleaved()
                .format_list([gst_audio::AudioFormat::F32le, gst_audio::AudioFormat::S16le])
                .build();
            let pad = |name, dir| {
                gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &caps).unwrap()
            };
            vec![
                pad("src", gst::PadDirection::Src),
                pad("sink", gst::PadDirection::Sink),
            ]
        });
        TEMPLATES.as_ref()
    }

    /// PAUSED → READY first wakes a streaming thread blocked on the worker,
    /// so that deactivating the pads does not wait for the analysis.
    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::PausedToReady {
            if let Some(c) = lock(&self.control).as_ref() {
                c.flush_start();
            }
        }
        self.parent_change_state(transition)
    }
}

impl BaseTransformImpl for SpeakrsDiarize {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    /// READY → PAUSED: check the speaker counts, load the models (errors
    /// name the file and the fix) and start the analysis thread.
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        settings
            .check_speakers()
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{}", e)))?;
        let loading = std::time::Instant::now();
        let config = settings.pipeline_config();
        let models = LoadedModels::load(&config).map_err(|e| {
            gst::error!(CAT, imp = self, "model loading failed: {e}");
            model_error(&e)
        })?;
        gst::info!(
            CAT,
            imp = self,
            "models loaded in {:.2} s, provider {}: segmentation {}, embedding {} ({} sessions), PLDA {}",
            loading.elapsed().as_secs_f64(),
            config.provider.mode.name(),
            match &models.models.segmentation_parts {
                Some(parts) => format!(
                    "{} + {}",
                    parts.filterbank.display(),
                    parts.after_filterbank.display()
                ),
                None => models.models.segmentation.display().to_string(),
            },
            models.models.embedding.display(),
            models.embedders.len(),
            models
                .models
                .plda
                .as_ref()
                .map_or_else(|| "none (agglomerative clustering)".into(), |p| p.display().to_string())
        );
        let (registry, store) = voices::open(
            settings.voices_path(),
            settings.voices_save,
            settings.voices_threshold,
            &models,
        )
        .map_err(|e| {
            gst::error!(CAT, imp = self, "voices file: {e}");
            voices_error(&e)
        })?;
        if let Some(known) = registry.known() {
            gst::info!(
                CAT,
                imp = self,
                "voices file {}: {} enrolled voices, {} speakers met before{}",
                settings.voices_path().unwrap_or_default().display(),
                known.voices.len(),
                registry.labels_used(),
                if store.is_some() {
                    ", saved at EOS and stop"
                } else {
                    ""
                }
            );
        }
        let turns = Arc::new(Mutex::new(Turns::default()));
        let on_event = report::event_handler(self.obj().downgrade(), turns.clone());
        let config = settings.stream_config();
        let worker =
            Worker::spawn(models, config, registry, store, QUEUE, on_event).map_err(|e| {
                gst::error_msg!(
                    gst::CoreError::Thread,
                    ("Cannot start the analysis thread: {}", e)
                )
            })?;
        *lock(&self.control) = Some(worker.control().clone());
        let state = State {
            feed: Feed::new(worker),
            output: Output::new(turns, settings.latency),
            settings,
            warned_uncapped: false,
        };
        *lock(&self.state) = Some(state);
        gst::debug!(CAT, imp = self, "started");
        Ok(())
    }

    /// PAUSED → READY: dropping the state joins the worker and the engine's threads.
    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let state = lock(&self.state).take();
        *lock(&self.control) = None;
        drop(state);
        self.live.store(false, Ordering::SeqCst);
        gst::debug!(CAT, imp = self, "stopped");
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_audio::AudioInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "Invalid caps {}", incaps))?;
        let format = match info.format() {
            gst_audio::AudioFormat::F32le => SampleFormat::F32,
            gst_audio::AudioFormat::S16le => SampleFormat::S16,
            f => return Err(gst::loggable_error!(CAT, "Unsupported format {:?}", f)),
        };
        let mut guard = lock(&self.state);
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "Not started"))?;
        state
            .feed
            .set_format(info.rate(), info.channels() as usize, format)
            .map_err(|_| gst::loggable_error!(CAT, "Flushing"))?;
        gst::debug!(CAT, imp = self, "caps {incaps}");
        if let Some(why) = state.feed.unanalysable() {
            gst::warning!(CAT, imp = self, "{why}");
            let details = gst::Structure::builder("speakrs-unanalysable-rate")
                .field("rate", info.rate())
                .build();
            gst::element_imp_warning!(self, gst::StreamError::Format, ("{}", why), details: details);
        }
        Ok(())
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        let ret = BaseTransformImplExt::parent_query(self, direction, query);
        if let (true, gst::PadDirection::Src, gst::QueryViewMut::Latency(q)) =
            (ret, direction, query.view_mut())
        {
            let (live, min, max) = q.result();
            let latency = lock(&self.settings).latency;
            if live && latency > gst::ClockTime::ZERO {
                let (min, max) = add_latency(min, max, latency);
                q.set(live, min, max);
            }
        }
        ret
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::FlushStart(_) => {
                gst::debug!(CAT, imp = self, "flush start: queued analysis is dropped");
                if let Some(c) = lock(&self.control).as_ref() {
                    c.flush_start();
                }
            }
            EventView::FlushStop(_) => {
                gst::debug!(CAT, imp = self, "flush stop: analysis restarts");
                if let Some(c) = lock(&self.control).as_ref() {
                    c.flush_stop();
                }
                if let Some(state) = lock(&self.state).as_mut() {
                    state.output.flush();
                    state.feed.flush();
                }
            }
            EventView::Eos(_) if !self.drain() => return false,
            EventView::Gap(gap) => {
                let (pts, duration) = gap.get();
                let mut guard = lock(&self.state);
                if let Some(state) = guard.as_mut() {
                    if state.feed.gap(pts, duration).is_err() {
                        return false;
                    }
                }
                return self.queue_or_forward(guard, event);
            }
            EventView::Tag(tag) => {
                let mut guard = lock(&self.state);
                let Some(state) = guard.as_mut() else {
                    return self.parent_sink_event(event);
                };
                let event = state.output.upstream_tags(tag);
                return self.queue_or_forward(guard, event);
            }
            // Stream-group-done precedes EOS: it must not push held buffers
            // out before the final turns are known.
            EventView::CustomDownstream(_) | EventView::StreamGroupDone(_) => {
                return self.queue_or_forward(lock(&self.state), event)
            }
            EventView::Segment(seg) => {
                if let Some(state) = lock(&self.state).as_mut() {
                    if let Ok(segment) = seg.segment().clone().downcast::<gst::ClockTime>() {
                        state.feed.set_segment(segment);
                    }
                }
                self.release_all();
            }
            _ if event.is_serialized() => self.release_all(),
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn submit_input_buffer(
        &self,
        is_discont: bool,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = lock(&self.state);
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        if state.feed.needs_epoch() {
            state.feed.live = self.upstream_is_live();
            state.output.live = state.feed.live;
        }
        if !state.feed.has_format() && !state.warned_uncapped {
            state.warned_uncapped = true;
            gst::element_imp_warning!(
                self,
                gst::CoreError::Negotiation,
                ("Audio arrives without caps: it passes through but is not analysed until caps arrive")
            );
        }
        let discont = is_discont || buffer.flags().contains(gst::BufferFlags::DISCONT);
        let warn = {
            let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
            state.feed.buffer(buffer.pts(), discont, &map)?
        };
        if let Some(dropped) = warn {
            let seconds = dropped as f64 / 16_000.0;
            let details = gst::Structure::builder("speakrs-overrun")
                .field("dropped-samples", dropped)
                .field("dropped-seconds", seconds)
                .build();
            gst::element_imp_warning!(
                self,
                gst::CoreError::TooLazy,
                ("Speaker analysis is falling behind the live source: {:.1} s of audio replaced by silence so far; try a larger step or a GPU mode", seconds),
                details: details
            );
        }
        let epoch = state.feed.epoch();
        state.output.hold(buffer, epoch);
        Ok(gst::FlowSuccess::Ok)
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        let mut guard = lock(&self.state);
        let Some(state) = guard.as_mut() else {
            return Ok(GenerateOutputSuccess::NoOutput);
        };
        Ok(match state.output.next(self.obj().src_pad()) {
            Some(buffer) => GenerateOutputSuccess::Buffer(buffer),
            None => GenerateOutputSuccess::NoOutput,
        })
    }
}
