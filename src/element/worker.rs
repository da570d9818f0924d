//! The analysis thread. It owns the engine's `StreamingDiarizer` (which has
//! its own inference threads), so neither inference nor clustering ever runs
//! on a streaming thread. Audio arrives through a bounded channel: a full
//! channel blocks a non-live upstream (backpressure, every second analysed)
//! and makes a live one drop analysis audio instead (the buffers still pass).
//!
//! Panic policy: every call into the engine here goes through
//! `catch_unwind`, and so does the thread's whole loop; a panic becomes an
//! `Event::Error` (an element error on the bus) and analysis stops, instead
//! of killing the thread silently. The GStreamer entry points are covered
//! in imp.rs (see its header), so no panic crosses the FFI boundary.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, select, Receiver, Sender, TrySendError};

use crate::engine::diarization::Diarization;
use crate::engine::online::Update;
use crate::engine::pipeline::Pipeline;
use crate::engine::registry::Registry;
use crate::engine::stream::{StreamConfig, StreamingDiarizer};
use crate::models::ModelError;

/// Samples pushed into the engine per call, so that a flush or a stop is
/// noticed within about a second of audio.
const PIECE: usize = 16_000;

pub enum Command<E> {
    /// Start a new engine stream; the speakers the previous one met keep
    /// their labels. `live`: skip chunks rather than wait when inference lags.
    Start {
        tag: E,
        live: bool,
    },
    Audio {
        generation: u64,
        samples: Vec<f32>,
    },
    Silence {
        generation: u64,
        samples: u64,
    },
    /// Analyse the tail and reply with the final result (EOS).
    Finish {
        generation: u64,
        reply: Sender<Option<(E, Diarization)>>,
    },
}

pub enum Event<E> {
    /// New turns of epoch `E` (after each analysed piece; re-clustered
    /// every `cluster-interval`).
    Update(E, Update),
    /// All turns of an epoch that ended without a flush (a timestamp jump).
    Finished(E, Diarization),
    /// A live stream's inference lags: this many chunks skipped so far.
    Degraded {
        skipped_chunks: u64,
        step: f64,
    },
    Error(String),
}

#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// Live mode and the queue is full: the audio was not queued.
    Full,
    /// Flushing or shutting down.
    Cancelled,
}

/// Shared with FLUSH_START, which must be able to interrupt a blocked
/// streaming thread without taking the element's state lock.
pub struct Control {
    generation: AtomicU64,
    flushing: AtomicBool,
    cancel_tx: Sender<()>,
    cancel_rx: Receiver<()>,
}

impl Control {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Makes queued audio stale and wakes a blocked sender.
    pub fn flush_start(&self) {
        self.flushing.store(true, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        let _ = self.cancel_tx.try_send(());
    }

    pub fn flush_stop(&self) {
        self.flushing.store(false, Ordering::SeqCst);
        while self.cancel_rx.try_recv().is_ok() {}
    }
}

pub struct Worker<E> {
    tx: Option<Sender<Command<E>>>,
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

impl<E: Clone + Send + 'static> Worker<E> {
    /// `config.online` sets the re-clustering interval and horizon.
    pub fn spawn(
        pipeline: Pipeline,
        config: StreamConfig,
        queue: usize,
        on_event: impl FnMut(Event<E>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = bounded(queue.max(1));
        let (cancel_tx, cancel_rx) = bounded(1);
        let control = Arc::new(Control {
            generation: AtomicU64::new(0),
            flushing: AtomicBool::new(false),
            cancel_tx,
            cancel_rx,
        });
        let mut state = Analysis {
            pipeline,
            config,
            control: control.clone(),
            on_event: Box::new(on_event),
            current: None,
            registry: Registry::default(),
            failed: false,
            reported_skips: 0,
        };
        let thread = std::thread::Builder::new()
            .name("speakrs-worker".into())
            .spawn(move || {
                // A panic outside `guarded` still ends analysis with an error, not silently.
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| state.run(rx))) {
                    state.fail(panic_text(panic));
                }
            })?;
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

struct Analysis<E> {
    pipeline: Pipeline,
    config: StreamConfig,
    control: Arc<Control>,
    on_event: Box<dyn FnMut(Event<E>) + Send>,
    current: Option<Epoch<E>>,
    /// Speakers of earlier engine streams (before a flush or a jump).
    registry: Registry,
    failed: bool,
    reported_skips: u64,
}

struct Epoch<E> {
    tag: E,
    stream: StreamingDiarizer,
    /// Flush generation at its start: a later one means it was flushed.
    generation: u64,
}

fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned());
    format!(
        "internal error (panic) in the diarization engine: {}",
        what.unwrap_or_default()
    )
}

/// Degradation warnings: at most one per this many newly skipped chunks.
const SKIPS_PER_WARNING: u64 = 30;

/// Runs engine code, turning errors and panics into one message.
fn guarded<T>(f: impl FnOnce() -> Result<T, ModelError>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(panic_text(panic)),
    }
}

impl<E: Clone> Analysis<E> {
    fn run(&mut self, rx: Receiver<Command<E>>) {
        let control = self.control.clone();
        let live = move |g: u64| g == control.generation();
        for cmd in rx {
            match cmd {
                Command::Start { tag, live } => self.start(tag, live),
                Command::Audio {
                    generation,
                    samples,
                } if live(generation) => {
                    for piece in samples.chunks(PIECE) {
                        if !live(generation) || !self.push(piece) {
                            break;
                        }
                    }
                }
                Command::Silence {
                    generation,
                    samples,
                } if live(generation) => {
                    let zeros = vec![0.0f32; PIECE];
                    let mut left = samples;
                    while left > 0 && live(generation) {
                        let n = left.min(PIECE as u64) as usize;
                        if !self.push(&zeros[..n]) {
                            break;
                        }
                        left -= n as u64;
                    }
                }
                Command::Finish { generation, reply } if live(generation) => {
                    let _ = reply.send(self.finish());
                }
                _ => {} // stale: from before a flush
            }
        }
    }

    fn fail(&mut self, message: String) {
        self.current = None;
        self.failed = true;
        (self.on_event)(Event::Error(message));
    }

    fn start(&mut self, tag: E, live: bool) {
        // A stream ended by a timestamp jump or a new segment, not a flush,
        // is finished and reported (its last turns would be missing at EOS);
        // a flushed one is dropped. Either way its speakers keep their labels.
        if let Some(old) = self.current.take() {
            if old.generation == self.control.generation() {
                match guarded(|| old.stream.finish_with_registry()) {
                    Ok((d, registry)) => {
                        self.registry = registry;
                        (self.on_event)(Event::Finished(old.tag, d));
                    }
                    Err(e) => self.fail(e),
                }
            } else if let Ok(registry) = guarded(|| Ok(old.stream.into_registry())) {
                self.registry = registry;
            }
        }
        if self.failed {
            return;
        }
        let config = StreamConfig {
            skip_when_busy: live,
            ..self.config.clone()
        };
        let registry = std::mem::take(&mut self.registry);
        self.reported_skips = 0;
        match guarded(|| StreamingDiarizer::with_registry(self.pipeline.clone(), &config, registry))
        {
            Ok(stream) => {
                self.current = Some(Epoch {
                    tag,
                    stream,
                    generation: self.control.generation(),
                })
            }
            Err(e) => self.fail(e),
        }
    }

    /// Pushes one piece and reports what became known. False on failure.
    fn push(&mut self, samples: &[f32]) -> bool {
        let Some(epoch) = self.current.as_mut() else {
            return false;
        };
        let polled = guarded(|| {
            epoch.stream.push(samples)?;
            epoch.stream.poll()
        });
        let update = match polled {
            Ok(update) => update,
            Err(e) => {
                self.fail(e);
                return false;
            }
        };
        let skipped = epoch.stream.skipped_chunks();
        let step = epoch.stream.step_seconds();
        let tag = epoch.tag.clone();
        if let Some(update) = update {
            (self.on_event)(Event::Update(tag, update));
        }
        if skipped >= self.reported_skips + SKIPS_PER_WARNING
            || (skipped > 0 && self.reported_skips == 0)
        {
            self.reported_skips = skipped;
            (self.on_event)(Event::Degraded {
                skipped_chunks: skipped,
                step,
            });
        }
        true
    }

    fn finish(&mut self) -> Option<(E, Diarization)> {
        let epoch = self.current.take()?;
        let Epoch { tag, stream, .. } = epoch;
        match guarded(|| stream.finish_with_registry()) {
            Ok((d, registry)) => {
                self.registry = registry;
                Some((tag, d))
            }
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }
}
