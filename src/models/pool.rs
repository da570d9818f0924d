//! The sessions of one model and settings, shared by every element that
//! loads them. A session runs one inference at a time (`Session::run`
//! needs `&mut`): with one session, ten streams' embeddings queued for one
//! core of two. So while every session is busy another is opened, up to a
//! limit (one per core on the CPU, one on GPUs), and a caller waits for
//! whichever is free first.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, TryLockError, Weak};
use std::time::Duration;

use ort::session::Session;

use super::provider::Mode;
use super::runtime::{open, SessionConfig};
use super::ModelError;

pub struct SharedSession {
    config: SessionConfig,
    first: Mutex<Session>,
    /// Opened when every open session is busy.
    more: Vec<OnceLock<Mutex<Session>>>,
    /// Set when opening another failed: not tried again on every call.
    full: AtomicBool,
    /// Held while another session is opened: callers racing to open would
    /// each load the model, and all copies but one would be thrown away
    /// (with ten streams starting at once, hundreds of MiB of peak RSS).
    opening: Mutex<()>,
    /// Sessions opened, thrown-away ones included (there should be none).
    opens: AtomicUsize,
    /// Signalled (under `waiting`) whenever a session is handed back.
    waiting: Mutex<()>,
    freed: Condvar,
    /// What checking the model's shapes found (an embedding's dimension,
    /// segmentation's frames per window), once per session rather than
    /// once per element started: the check runs the model.
    checked: OnceLock<usize>,
    /// The model's path, for error messages.
    pub path: PathBuf,
}

/// A session in use; handing it back wakes a waiting caller.
pub struct SessionGuard<'a> {
    session: Option<MutexGuard<'a, Session>>,
    pool: &'a SharedSession,
}

impl SharedSession {
    /// A pool of its own (not shared through `session`) opening at
    /// most `limit` sessions; the first is opened here.
    pub fn new(config: SessionConfig, limit: usize) -> Result<Self, ModelError> {
        Ok(Self {
            first: Mutex::new(open(&config)?),
            more: (1..limit.max(1)).map(|_| OnceLock::new()).collect(),
            full: AtomicBool::new(false),
            opening: Mutex::new(()),
            opens: AtomicUsize::new(1),
            path: config.model.clone(),
            config,
            waiting: Mutex::new(()),
            freed: Condvar::new(),
            checked: OnceLock::new(),
        })
    }

    /// `check`'s result, running it only until it first succeeds.
    pub fn checked(
        &self,
        check: impl FnOnce() -> Result<usize, ModelError>,
    ) -> Result<usize, ModelError> {
        if let Some(&found) = self.checked.get() {
            return Ok(found);
        }
        let found = check()?;
        Ok(*self.checked.get_or_init(|| found))
    }

    /// A free session, else a newly opened one while there is room, else
    /// the first one handed back.
    pub fn lock(&self) -> SessionGuard<'_> {
        if let Some(guard) = self.try_lock() {
            return guard;
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            // Checked again under `waiting`: a session handed back since
            // cannot have signalled before this wait.
            if let Some(session) = self.try_any() {
                return self.guard(session);
            }
            // The timeout only bounds a wait that a missed signal would prolong.
            waiting = match self.freed.wait_timeout(waiting, Duration::from_millis(50)) {
                Ok((w, _)) => w,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// The most sessions this pool opens.
    pub fn limit(&self) -> usize {
        1 + self.more.len()
    }

    /// A free session, else a newly opened one while there is room; `None`
    /// instead of waiting when every session is busy and none can be opened
    /// now (the limit is reached, or another caller is opening one).
    pub fn try_lock(&self) -> Option<SessionGuard<'_>> {
        let session = self.try_any().or_else(|| self.open_another())?;
        Some(self.guard(session))
    }

    /// Sessions open.
    pub fn replicas(&self) -> usize {
        1 + self.more.iter().filter(|s| s.get().is_some()).count()
    }

    /// Sessions ever opened: more than `replicas` if any was thrown away.
    pub fn opens(&self) -> usize {
        self.opens.load(Ordering::Relaxed)
    }

    fn opened(&self) -> impl Iterator<Item = &Mutex<Session>> {
        std::iter::once(&self.first).chain(self.more.iter().filter_map(OnceLock::get))
    }

    fn try_any(&self) -> Option<MutexGuard<'_, Session>> {
        self.opened().find_map(|m| match m.try_lock() {
            Ok(guard) => Some(guard),
            // A panic mid-inference elsewhere leaves the session usable.
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        })
    }

    fn open_another(&self) -> Option<MutexGuard<'_, Session>> {
        if self.full.load(Ordering::Relaxed) {
            return None;
        }
        // Someone else is opening one: wait for whichever session frees first.
        let _opening = self.opening.try_lock().ok()?;
        let slot = self.more.iter().find(|s| s.get().is_none())?;
        self.opens.fetch_add(1, Ordering::Relaxed);
        // Opening can fail (memory): then the open sessions serve alone.
        let Ok(session) = open(&self.config) else {
            self.full.store(true, Ordering::Relaxed);
            return None;
        };
        let _ = slot.set(Mutex::new(session));
        slot.get()?.try_lock().ok()
    }

    fn guard<'a>(&'a self, session: MutexGuard<'a, Session>) -> SessionGuard<'a> {
        SessionGuard {
            session: Some(session),
            pool: self,
        }
    }
}

impl Deref for SessionGuard<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.session.as_deref().expect("held until drop")
    }
}

impl DerefMut for SessionGuard<'_> {
    fn deref_mut(&mut self) -> &mut Session {
        self.session.as_deref_mut().expect("held until drop")
    }
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        // Unlock first, then signal under `waiting`, so a waiter that
        // checked before this unlock is already waiting and wakes.
        self.session = None;
        let _waiting = self.pool.waiting.lock().unwrap_or_else(|p| p.into_inner());
        self.pool.freed.notify_one();
    }
}

static SESSIONS: Mutex<Option<HashMap<SessionConfig, Weak<SharedSession>>>> = Mutex::new(None);

/// A session for `config`, shared with any live user of the same config.
pub fn session(config: &SessionConfig) -> Result<Arc<SharedSession>, ModelError> {
    let mut sessions = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    let map = sessions.get_or_insert_with(HashMap::new);
    map.retain(|_, s| s.strong_count() > 0);
    if let Some(existing) = map.get(config).and_then(Weak::upgrade) {
        return Ok(existing);
    }
    let shared = Arc::new(create(config)?);
    map.insert(config.clone(), Arc::downgrade(&shared));
    Ok(shared)
}

fn create(config: &SessionConfig) -> Result<SharedSession, ModelError> {
    let limit = match config.provider.mode {
        Mode::Cpu => std::thread::available_parallelism().map_or(1, |n| n.get()),
        _ => 1,
    };
    SharedSession::new(config.clone(), limit)
}
