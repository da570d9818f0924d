//! What the streaming thread and the analysis thread say to each other:
//! commands in, events out, and the flush control both share.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender};

use crate::engine::online::Update;
use crate::engine::output::diarization::Diarization;

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
    /// Something the user should know that stops nothing (a voices file
    /// that could not be written).
    Warning(String),
    Error(String),
}

/// Shared with FLUSH_START, which must be able to interrupt a blocked
/// streaming thread without taking the element's state lock.
pub struct Control {
    pub(super) generation: AtomicU64,
    pub(super) flushing: AtomicBool,
    pub(super) cancel_tx: Sender<()>,
    pub(super) cancel_rx: Receiver<()>,
}

impl Control {
    pub fn new(cancel_tx: Sender<()>, cancel_rx: Receiver<()>) -> Self {
        Self {
            generation: AtomicU64::new(0),
            flushing: AtomicBool::new(false),
            cancel_tx,
            cancel_rx,
        }
    }

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
