//! The analysis thread. It owns the engine's `StreamingDiarizer` (which has
//! its own inference threads), so neither inference nor clustering ever runs
//! on a streaming thread. Audio arrives through a bounded channel: a full
//! channel blocks a non-live upstream (backpressure, every second analysed)
//! and makes a live one drop analysis audio instead (the buffers still pass).
//!
//! What the thread does with each command is in `analysis.rs`, with the
//! panic policy: no panic ends the thread silently, and none crosses the
//! FFI boundary (the GStreamer entry points are covered in imp.rs).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, select, Sender, TrySendError};

use super::analysis::Analysis;
pub use super::protocol::{Command, Control, Event};
use super::voices::VoicesStore;
use crate::engine::loaded::LoadedModels;
use crate::engine::output::diarization::Diarization;
use crate::engine::registry::Registry;
use crate::engine::stream::StreamConfig;

#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// Live mode and the queue is full: the audio was not queued.
    Full,
    /// Flushing or shutting down.
    Cancelled,
}

pub struct Worker<E> {
    tx: Option<Sender<Command<E>>>,
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

impl<E: Clone + Send + 'static> Worker<E> {
    /// `config.online` sets the re-clustering interval and horizon;
    /// `registry` holds the speakers known before (a voices file), saved
    /// back to `store` when there is one.
    pub fn spawn(
        models: LoadedModels,
        config: StreamConfig,
        registry: Registry,
        store: Option<VoicesStore>,
        queue: usize,
        on_event: impl FnMut(Event<E>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = bounded(queue.max(1));
        let (cancel_tx, cancel_rx) = bounded(1);
        let control = Arc::new(Control::new(cancel_tx, cancel_rx));
        let state = Analysis::new(
            models,
            config,
            registry,
            store,
            control.clone(),
            Box::new(on_event),
        );
        let thread = std::thread::Builder::new()
            .name("speakrs-worker".into())
            .spawn(move || state.run_until_closed(rx))?;
        Ok(Self {
            tx: Some(tx),
            control,
            thread: Some(thread),
        })
    }

    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// Blocking (until FLUSH_START) or, for live sources, non-blocking send.
    /// A worker thread that is gone has reported why; its commands are
    /// dropped so that audio keeps flowing.
    pub fn send(&self, cmd: Command<E>, block: bool) -> Result<(), SendError> {
        let tx = self.tx.as_ref().ok_or(SendError::Cancelled)?;
        if !block {
            return match tx.try_send(cmd) {
                Err(TrySendError::Full(_)) => Err(SendError::Full),
                _ => Ok(()),
            };
        }
        if self.control.flushing.load(Ordering::SeqCst) {
            return Err(SendError::Cancelled);
        }
        select! {
            send(tx, cmd) -> _ => Ok(()),
            recv(self.control.cancel_rx) -> _ => Err(SendError::Cancelled),
        }
    }

    /// Drains the engine and returns its final result; `Err` when flushed.
    pub fn finish(&self) -> Result<Option<(E, Diarization)>, SendError> {
        let (reply, result) = bounded(1);
        self.send(
            Command::Finish {
                generation: self.control.generation(),
                reply,
            },
            true,
        )?;
        select! {
            recv(result) -> r => Ok(r.ok().flatten()),
            recv(self.control.cancel_rx) -> _ => Err(SendError::Cancelled),
        }
    }
}

impl<E> Drop for Worker<E> {
    /// Closing the channel ends the thread once it has skipped the (now
    /// stale) queue; joining leaves no thread behind after a state change.
    fn drop(&mut self) {
        self.control.generation.fetch_add(1, Ordering::SeqCst);
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            // Never join oneself (the last element reference dropped on the worker).
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}
