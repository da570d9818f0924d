//! Buffers and events the element holds (`latency`): events serialized
//! with held buffers wait behind them, and EOS drains the analysis before
//! the held buffers leave with the final turns.

use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use super::{SpeakrsDiarize, State};
use crate::element::{lock, CAT};
use crate::element::{messages, rttm_out};

impl SpeakrsDiarize {
    pub(super) fn upstream_is_live(&self) -> bool {
        let mut q = gst::query::Latency::new();
        let live = self.obj().sink_pad().peer_query(&mut q) && q.result().0;
        self.live.store(live, Ordering::SeqCst);
        live
    }

    /// Events serialized with held buffers wait behind them.
    pub(super) fn queue_or_forward(
        &self,
        mut guard: MutexGuard<'_, Option<State>>,
        event: gst::Event,
    ) -> bool {
        let event = match guard.as_mut() {
            Some(state) => state.output.hold_event(event),
            None => Some(event),
        };
        drop(guard);
        event.is_none_or(|e| self.parent_sink_event(e))
    }

    pub(super) fn release_all(&self) {
        if let Some(state) = lock(&self.state).as_mut() {
            state.output.release_all(self.obj().src_pad());
        }
    }

    /// EOS: analyse the tail, post the final message, write the RTTM, then
    /// release held buffers (they get the final turns). False when flushed.
    pub(super) fn drain(&self) -> bool {
        let mut guard = lock(&self.state);
        let Some(state) = guard.as_mut() else {
            return true;
        };
        let Ok(result) = state.feed.finish() else {
            return false;
        };
        let (all, epochs) = state.output.finalize(result.as_ref());
        // Labels are stable across engine streams: count them over all turns.
        let mut labels: Vec<&str> = all.iter().map(|t| t.speaker.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        let num_speakers = labels.len();
        let speech: f64 = all
            .iter()
            .filter_map(|t| Some(t.end_stream?.saturating_sub(t.start_stream?).seconds_f64()))
            .sum();
        gst::info!(
            CAT,
            imp = self,
            "final: {num_speakers} speakers, {} turns, {speech:.1} s of speech",
            all.len()
        );
        let obj = self.obj();
        let _ = obj.post_message(messages::diarization_message(
            obj.upcast_ref(),
            &all,
            num_speakers,
            true,
            None,
        ));
        if let Some(path) = state.settings.rttm_path() {
            let text = rttm_out::text(&rttm_out::uri_for(&path), result.as_ref(), &all, epochs);
            if let Err(e) = rttm_out::write_atomic(&path, &text) {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::OpenWrite,
                    ("Cannot write the RTTM to {}: {}", path.display(), e)
                );
            }
        }
        state.output.release_all(obj.src_pad());
        true
    }
}
