//! What the worker thread reports becomes what users get: each update's
//! turns go to the per-buffer meta and a bus message, lags become warnings
//! and engine failures element errors.

use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;

use super::messages::{self, Timeline};
use super::meta::Turns;
use super::protocol::Event;
use super::{lock, CAT};

/// Runs on the worker thread: updates become meta and bus messages, lags
/// warnings, engine failures element errors.
pub(super) fn event_handler(
    element: glib::WeakRef<super::SpeakrsDiarize>,
    turns: Arc<Mutex<Turns>>,
) -> impl FnMut(Event<Arc<Timeline>>) + Send {
    move |event| {
        let Some(element) = element.upgrade() else {
            return;
        };
        // Outside gstreamer-rs's guards (worker thread): a panic is an element error.
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            report(&element, &turns, event)
        }));
        if handled.is_err() {
            gst::element_error!(
                element,
                gst::LibraryError::Failed,
                ("Panicked while reporting diarization results")
            );
        }
    }
}

fn report(element: &super::SpeakrsDiarize, turns: &Mutex<Turns>, event: Event<Arc<Timeline>>) {
    match event {
        Event::Update(timeline, update) => {
            if update.reclustered {
                // INFO: one line per cluster-interval (30 s by default).
                gst::info!(
                    CAT,
                    obj = element,
                    "re-clustered up to {:.1} s in {:.0} ms: {} active speakers, {} label changes",
                    update.analysed_until,
                    1e3 * update.clustering_seconds,
                    update.active_speakers,
                    update.changes.len()
                );
            }
            gst::log!(
                CAT,
                obj = element,
                "analysed up to {:.1} s: {} turns final, {} provisional",
                update.analysed_until,
                update.finalized.len(),
                update.provisional.len()
            );
            let names = update.identities.as_ref();
            let finalized = timeline.turns(&update.finalized, true, names);
            let provisional = timeline.turns(&update.provisional, false, names);
            let reported: Vec<_> = finalized.iter().chain(&provisional).cloned().collect();
            lock(turns).update(
                timeline.id,
                finalized,
                provisional,
                timeline.pts(update.analysed_until),
            );
            let msg = messages::diarization_message(
                element.upcast_ref(),
                &reported,
                update.active_speakers,
                false,
                Some(&update),
            );
            let _ = element.post_message(msg);
        }
        Event::Finished(timeline, d) => {
            let all = timeline.turns(&d.turns, true, d.identities.as_ref());
            lock(turns).finish(timeline.id, all.clone());
            let _ = element.post_message(messages::diarization_message(
                element.upcast_ref(),
                &all,
                d.num_speakers,
                false,
                None,
            ));
        }
        Event::Degraded {
            skipped_chunks,
            step,
        } => {
            gst::warning!(
                CAT,
                obj = element,
                "inference lags: {skipped_chunks} chunks skipped (step {step:.1} s)"
            );
            gst::element_warning!(
                element,
                gst::CoreError::TooLazy,
                ("Speaker analysis lags behind the live source: {} chunks skipped so far (step {:.1} s; a larger step or a GPU mode avoids this)", skipped_chunks, step),
                details: messages::degraded_details(skipped_chunks, step)
            );
        }
        Event::Warning(message) => {
            gst::warning!(CAT, obj = element, "{message}");
            gst::element_warning!(element, gst::ResourceError::Write, ("{}", message));
        }
        Event::Error(message) => {
            gst::error!(CAT, obj = element, "analysis failed: {message}");
            gst::element_error!(
                element,
                gst::StreamError::Failed,
                ("Speaker diarization failed: {}", message)
            );
        }
    }
}
