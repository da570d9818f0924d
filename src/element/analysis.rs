//! What the analysis thread does: it owns the engine's `StreamingDiarizer`
//! (which has its own inference threads) for each epoch between flushes,
//! feeds it the audio commands, and reports turns, degradation and errors.
//!
//! Panic policy: every call into the engine here goes through
//! `catch_unwind`, and so does the thread's whole loop; a panic becomes an
//! `Event::Error` (an element error on the bus) and analysis stops, instead
//! of killing the thread silently.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::protocol::{Command, Control, Event};
use super::voices::VoicesStore;
use crate::engine::loaded::LoadedModels;
use crate::engine::output::diarization::Diarization;
use crate::engine::registry::Registry;
use crate::engine::stream::{StreamConfig, StreamingDiarizer};
use crate::models::ModelError;

/// Samples pushed into the engine per call, so that a flush or a stop is
/// noticed within about a second of audio.
const PIECE: usize = 16_000;

/// How often finished chunks are collected while no audio arrives, so a
/// source that pauses without EOS still gets the turns of what it sent.
const IDLE_POLL: Duration = Duration::from_millis(100);

pub(super) struct Analysis<E> {
    models: LoadedModels,
    config: StreamConfig,
    control: Arc<Control>,
    on_event: Box<dyn FnMut(Event<E>) + Send>,
    current: Option<Epoch<E>>,
    /// Speakers of earlier engine streams (before a flush or a jump) and
    /// of the voices file.
    registry: Registry,
    /// Where the speakers met are saved (`voices-save`), and whether
    /// anything was analysed since the last save.
    store: Option<VoicesStore>,
    unsaved: bool,
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

/// The engine configuration of a stream: a live source never waits for
/// the analysis (chunks are skipped instead) and its labels are watched as
/// they come, like those of held buffers (`Settings::stream_config`).
fn epoch_config(base: &StreamConfig, live: bool) -> StreamConfig {
    if live {
        StreamConfig {
            skip_when_busy: true,
            ..base.clone()
        }
        .watched_live()
    } else {
        base.clone()
    }
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
    pub(super) fn new(
        models: LoadedModels,
        config: StreamConfig,
        registry: Registry,
        store: Option<VoicesStore>,
        control: Arc<Control>,
        on_event: Box<dyn FnMut(Event<E>) + Send>,
    ) -> Self {
        Self {
            models,
            config,
            control,
            on_event,
            current: None,
            registry,
            store,
            unsaved: false,
            failed: false,
            reported_skips: 0,
        }
    }

    /// The thread's body: commands until the channel closes.
    pub(super) fn run_until_closed(mut self, rx: Receiver<Command<E>>) {
        // A panic outside `guarded` still ends analysis with an error, not silently.
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.run(rx))) {
            self.fail(panic_text(panic));
        }
        // The element stops (PAUSED→READY): what this run learnt is kept.
        if let Some(epoch) = self.current.take() {
            if let Ok(registry) = guarded(|| Ok(epoch.stream.into_registry())) {
                self.registry = registry;
            }
        }
        self.save();
    }

    /// Writes the speakers met to the voices file (`voices-save`); a
    /// failure is a warning, and the previous file stays as it was.
    fn save(&mut self) {
        let Some(store) = self.store.as_ref().filter(|_| self.unsaved) else {
            return;
        };
        match store.save(&self.registry) {
            Ok(()) => self.unsaved = false,
            Err(e) => (self.on_event)(Event::Warning(e.to_string())),
        }
    }

    fn run(&mut self, rx: Receiver<Command<E>>) {
        let control = self.control.clone();
        let live = move |g: u64| g == control.generation();
        loop {
            let cmd = match rx.recv_timeout(IDLE_POLL) {
                Ok(cmd) => cmd,
                Err(RecvTimeoutError::Timeout) => {
                    if self
                        .current
                        .as_ref()
                        .is_some_and(|epoch| live(epoch.generation))
                    {
                        self.report();
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
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
        let config = epoch_config(&self.config, live);
        let registry = std::mem::take(&mut self.registry);
        self.reported_skips = 0;
        match guarded(|| StreamingDiarizer::with_registry(self.models.clone(), &config, registry)) {
            Ok(stream) => {
                self.unsaved = true;
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
        if let Err(e) = guarded(|| epoch.stream.push(samples)) {
            self.fail(e);
            return false;
        }
        self.report()
    }

    /// Reports the turns of the chunks analysed since the last call, and
    /// skipped chunks. False on failure.
    fn report(&mut self) -> bool {
        let Some(epoch) = self.current.as_mut() else {
            return false;
        };
        let update = match guarded(|| epoch.stream.poll()) {
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
                self.save();
                Some((tag, d))
            }
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_source_skips_when_busy_and_its_labels_are_watched() {
        // What the element starts each stream from, for a file.
        let file = crate::element::settings::Settings::default().stream_config();
        let capped = file.embedding_frames();
        assert!(capped < usize::MAX);
        let live = epoch_config(&file, true);
        assert!(live.skip_when_busy && live.online.watched);
        assert_eq!(live.embedding_frames(), usize::MAX);
        let not_live = epoch_config(&file, false);
        assert!(!not_live.skip_when_busy && !not_live.online.watched);
        assert_eq!(not_live.embedding_frames(), capped);
    }
}
