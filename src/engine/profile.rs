//! Where the time goes: process-wide counters of the time spent in each
//! stage and of the embedding work, for benchmarks (`evaluate`,
//! `scripts/bench.sh`) to print as a split. Relaxed atomics, a few per
//! model call: nothing measurable next to the models themselves.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The element's conversion to 16 kHz mono (decoding happens upstream).
    Resample,
    Fbank,
    Segmentation,
    Embedding,
    Clustering,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Resample,
        Stage::Fbank,
        Stage::Segmentation,
        Stage::Embedding,
        Stage::Clustering,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Resample => "resample",
            Stage::Fbank => "fbank",
            Stage::Segmentation => "segmentation",
            Stage::Embedding => "embedding",
            Stage::Clustering => "clustering",
        }
    }
}

static NANOS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];
static EMBEDDING_RUNS: AtomicU64 = AtomicU64::new(0);
static EMBEDDED_FRAMES: AtomicU64 = AtomicU64::new(0);

/// CPU time of the calling thread: wall time would count the waits of a
/// thread preempted by the others (the element's threads besides the inference ones).
fn thread_cpu_nanos() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `t` is.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return 0;
    }
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// A stage's work on this thread, from `start` to `record`.
#[must_use]
pub struct Timer(u64);

pub fn start() -> Timer {
    Timer(thread_cpu_nanos())
}

/// Adds the calling thread's CPU time since `timer` started to `stage`.
pub fn record(stage: Stage, timer: Timer) {
    let nanos = thread_cpu_nanos().saturating_sub(timer.0);
    NANOS[stage as usize].fetch_add(nanos, Ordering::Relaxed);
}

/// One embedding-model run over `frames` fbank frames.
pub fn embedded(frames: usize) {
    EMBEDDING_RUNS.fetch_add(1, Ordering::Relaxed);
    EMBEDDED_FRAMES.fetch_add(frames as u64, Ordering::Relaxed);
}

/// The counters since the process started; subtract two for an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Profile {
    /// CPU seconds per stage, summed over threads, in `Stage::ALL` order.
    pub seconds: [f64; 5],
    pub embedding_runs: u64,
    pub embedded_frames: u64,
}

impl Profile {
    pub fn now() -> Self {
        Self {
            seconds: std::array::from_fn(|i| NANOS[i].load(Ordering::Relaxed) as f64 * 1e-9),
            embedding_runs: EMBEDDING_RUNS.load(Ordering::Relaxed),
            embedded_frames: EMBEDDED_FRAMES.load(Ordering::Relaxed),
        }
    }

    pub fn since(&self, earlier: &Profile) -> Profile {
        Profile {
            seconds: std::array::from_fn(|i| (self.seconds[i] - earlier.seconds[i]).max(0.0)),
            embedding_runs: self.embedding_runs.saturating_sub(earlier.embedding_runs),
            embedded_frames: self.embedded_frames.saturating_sub(earlier.embedded_frames),
        }
    }

    pub fn stage(&self, stage: Stage) -> f64 {
        self.seconds[stage as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_gains_the_cpu_time_spent_in_it_and_intervals_subtract() {
        let before = Profile::now();
        let timer = start();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        record(Stage::Clustering, timer);
        embedded(300);
        let spent = Profile::now().since(&before);
        assert!(spent.stage(Stage::Clustering) > 0.0, "{spent:?}");
        assert!(
            spent.embedding_runs >= 1 && spent.embedded_frames >= 300,
            "{spent:?}"
        );
        assert_eq!(before.since(&Profile::now()).embedding_runs, 0);
    }
}
