//! The streaming-thread side of the analysis: downmix/resample each buffer,
//! keep the 16 kHz sample count in step with the buffers' timestamps (gaps
//! and discontinuities become silence, a jump backwards starts a new engine
//! stream), and hand the audio to the worker thread.

use std::sync::Arc;

use super::messages::Timeline;
use super::resample::{Downsampler, SampleFormat};
use super::worker::{Command, SendError, Worker};
use crate::engine::config::SAMPLE_RATE;
use crate::engine::output::diarization::Diarization;
use crate::engine::profile::{self, Stage};

/// Timestamp deviation tolerated before a buffer counts as discontinuous
/// (audiobasesink's default alignment threshold).
const JITTER: gst::ClockTime = gst::ClockTime::from_mseconds(40);
/// A timestamp this far behind what was analysed (clock drift, rounding)
/// is tolerated; further back is a new stream (new engine stream).
const BACKWARDS: gst::ClockTime = gst::ClockTime::SECOND;
/// A longer jump forward is a new engine stream rather than that much
/// silence to analyse (a gap of years would never finish); the speaker
/// registry carries the labels across.
const LONGEST_SILENCE: gst::ClockTime = gst::ClockTime::from_seconds(60);
/// Live overruns: warn again after this many more seconds of lost analysis.
const WARN_EVERY_S: u64 = 10;

/// Where the feed sends the analysis audio: the worker thread in the
/// element; a recorder in the fuzz targets, which cannot run the models.
pub trait Sink {
    fn send(&self, cmd: Command<Arc<Timeline>>, block: bool) -> Result<(), SendError>;
    fn generation(&self) -> u64;
    fn finish(&self) -> Result<Option<(Arc<Timeline>, Diarization)>, SendError>;
}

impl Sink for Worker<Arc<Timeline>> {
    fn send(&self, cmd: Command<Arc<Timeline>>, block: bool) -> Result<(), SendError> {
        Worker::send(self, cmd, block)
    }
    fn generation(&self) -> u64 {
        self.control().generation()
    }
    fn finish(&self) -> Result<Option<(Arc<Timeline>, Diarization)>, SendError> {
        Worker::finish(self)
    }
}

pub struct Feed<W = Worker<Arc<Timeline>>> {
    pub worker: W,
    down: Option<Downsampler>,
    pub segment: gst::FormattedSegment<gst::ClockTime>,
    timeline: Option<Arc<Timeline>>,
    next_epoch: u64,
    /// PTS at which the downsampler's current run started.
    run_pts: Option<gst::ClockTime>,
    /// 16 kHz samples of this epoch handed over (or owed as silence).
    sent: u64,
    /// Live mode: samples that did not fit the queue, sent later as silence.
    owed: u64,
    pub dropped: u64,
    next_warning: u64,
    /// Upstream is live: never block it, drop analysis audio instead.
    pub live: bool,
}

fn flushing(_: SendError) -> gst::FlowError {
    gst::FlowError::Flushing
}

/// 16 kHz samples in a duration, rounded.
fn samples_in(d: gst::ClockTime) -> u64 {
    ((d.nseconds() as u128 * SAMPLE_RATE as u128 + 500_000_000) / 1_000_000_000) as u64
}

impl<W: Sink> Feed<W> {
    pub fn new(worker: W) -> Self {
        Self {
            worker,
            down: None,
            segment: gst::FormattedSegment::new(),
            timeline: None,
            next_epoch: 0,
            run_pts: None,
            sent: 0,
            owed: 0,
            dropped: 0,
            next_warning: 0,
            live: false,
        }
    }

    /// The current engine stream's id (what held buffers wait for).
    pub fn epoch(&self) -> Option<u64> {
        self.timeline.as_ref().map(|t| t.id)
    }

    /// Caps have set the input format: buffers can be analysed.
    pub fn has_format(&self) -> bool {
        self.down.is_some()
    }

    /// Why the current format's audio cannot be analysed, if it cannot.
    pub fn unanalysable(&self) -> Option<String> {
        self.down.as_ref()?.unanalysable()
    }

    /// True before the first buffer of an engine stream (time to query liveness).
    pub fn needs_epoch(&self) -> bool {
        self.timeline.is_none()
    }

    /// New caps: the old format's tail is analysed before switching.
    pub fn set_format(
        &mut self,
        rate: u32,
        channels: usize,
        format: SampleFormat,
    ) -> Result<(), gst::FlowError> {
        self.drain()?;
        self.down = Some(Downsampler::new(rate, channels, format));
        self.run_pts = None;
        Ok(())
    }

    /// A different segment without a flush is a new stream: new engine stream.
    pub fn set_segment(&mut self, segment: gst::FormattedSegment<gst::ClockTime>) {
        if segment != self.segment {
            self.segment = segment;
            self.timeline = None;
        }
    }

    /// After FLUSH_STOP: everything queued is stale; the next buffer starts afresh.
    pub fn flush(&mut self) {
        if let Some(d) = self.down.as_mut() {
            d.reset();
        }
        self.timeline = None;
        self.owed = 0;
    }

    fn start_epoch(&mut self, pts: gst::ClockTime) -> Result<(), gst::FlowError> {
        let timeline = Arc::new(Timeline {
            id: self.next_epoch,
            base_pts: pts,
            segment: self.segment.clone(),
        });
        self.next_epoch += 1;
        self.worker
            .send(
                Command::Start {
                    tag: timeline.clone(),
                    live: self.live,
                },
                true,
            )
            .map_err(flushing)?;
        self.timeline = Some(timeline);
        (self.sent, self.owed, self.run_pts) = (0, 0, Some(pts));
        if let Some(d) = self.down.as_mut() {
            d.reset();
        }
        Ok(())
    }

    /// Where a buffer without a timestamp is assumed to be.
    fn expected_pts(&self) -> Option<gst::ClockTime> {
        let d = self.down.as_ref()?;
        let run = self.run_pts?;
        let ns = d.in_frames() as u128 * 1_000_000_000 / d.rate().max(1) as u128;
        // Saturating: upstream timestamps may lie anywhere up to ClockTime::MAX.
        let ns = u64::try_from(ns)
            .unwrap_or(u64::MAX)
            .min(gst::ClockTime::MAX.nseconds());
        Some(run.saturating_add(gst::ClockTime::from_nseconds(ns)))
    }

    /// Re-aligns the analysis with `pts`: silence up to it, or a new engine
    /// stream if it lies before what was already analysed.
    fn align(&mut self, pts: gst::ClockTime, discont: bool) -> Result<(), gst::FlowError> {
        let Some(timeline) = self.timeline.clone() else {
            return self.start_epoch(pts);
        };
        let expected = self.expected_pts();
        let off = expected.is_none_or(|e| pts.max(e) - pts.min(e) > JITTER);
        if !discont && !off {
            return Ok(());
        }
        self.drain()?;
        match pts.checked_sub(timeline.base_pts).map(samples_in) {
            Some(target)
                if target + samples_in(BACKWARDS) >= self.sent
                    && target <= self.sent + samples_in(LONGEST_SILENCE) =>
            {
                if target > self.sent {
                    self.silence(target - self.sent)?;
                }
                self.run_pts = Some(pts);
                Ok(())
            }
            _ => self.start_epoch(pts),
        }
    }

    /// One input buffer. Returns the dropped-sample count when a live
    /// overrun warning is due.
    pub fn buffer(
        &mut self,
        pts: Option<gst::ClockTime>,
        discont: bool,
        data: &[u8],
    ) -> Result<Option<u64>, gst::FlowError> {
        if self.down.is_none() {
            return Ok(None);
        }
        let pts = pts
            .or_else(|| self.expected_pts())
            .or(self.segment.start())
            .unwrap_or(gst::ClockTime::ZERO);
        self.align(pts, discont)?;
        let mut out = Vec::new();
        if let Some(d) = self.down.as_mut() {
            let started = profile::start();
            d.push_bytes(data, &mut out);
            profile::record(Stage::Resample, started);
        }
        self.audio(out)
    }

    /// A GAP event: silence for its duration.
    pub fn gap(
        &mut self,
        pts: gst::ClockTime,
        duration: Option<gst::ClockTime>,
    ) -> Result<(), gst::FlowError> {
        if self.down.is_none() {
            return Ok(());
        }
        self.align(pts, true)?;
        let samples = samples_in(duration.unwrap_or(gst::ClockTime::ZERO));
        if samples > samples_in(LONGEST_SILENCE) {
            // The next buffer starts a new engine stream (see `align`).
            self.run_pts = None;
            return Ok(());
        }
        self.silence(samples)?;
        self.run_pts = duration.map(|d| pts.saturating_add(d));
        Ok(())
    }

    /// EOS: the resampler tail, then the engine's final result.
    pub fn finish(&mut self) -> Result<Option<(Arc<Timeline>, Diarization)>, gst::FlowError> {
        if self.timeline.is_none() {
            return Ok(None);
        }
        self.drain()?;
        if self.owed > 0 {
            let owed = std::mem::take(&mut self.owed);
            let generation = self.worker.generation();
            self.worker
                .send(
                    Command::Silence {
                        generation,
                        samples: owed,
                    },
                    true,
                )
                .map_err(flushing)?;
        }
        self.timeline = None;
        self.worker.finish().map_err(flushing)
    }

    fn drain(&mut self) -> Result<(), gst::FlowError> {
        let mut out = Vec::new();
        if let (Some(d), Some(_)) = (self.down.as_mut(), self.timeline.as_ref()) {
            d.drain(&mut out);
        }
        self.audio(out).map(|_| ())
    }

    fn silence(&mut self, samples: u64) -> Result<(), gst::FlowError> {
        if samples == 0 {
            return Ok(());
        }
        let generation = self.worker.generation();
        match self.worker.send(
            Command::Silence {
                generation,
                samples,
            },
            !self.live,
        ) {
            Ok(()) => {}
            Err(SendError::Full) => self.owed += samples,
            Err(e) => return Err(flushing(e)),
        }
        self.sent += samples;
        Ok(())
    }

    fn audio(&mut self, samples: Vec<f32>) -> Result<Option<u64>, gst::FlowError> {
        let n = samples.len() as u64;
        if n == 0 || self.timeline.is_none() {
            return Ok(None);
        }
        let generation = self.worker.generation();
        self.sent += n;
        if !self.live {
            self.worker
                .send(
                    Command::Audio {
                        generation,
                        samples,
                    },
                    true,
                )
                .map_err(flushing)?;
            return Ok(None);
        }
        // Live: first settle what is owed, so the engine's timeline stays in step.
        if self.owed > 0 {
            match self.worker.send(
                Command::Silence {
                    generation,
                    samples: self.owed,
                },
                false,
            ) {
                Ok(()) => self.owed = 0,
                Err(SendError::Full) => {}
                Err(e) => return Err(flushing(e)),
            }
        }
        if self.owed == 0 {
            match self.worker.send(
                Command::Audio {
                    generation,
                    samples,
                },
                false,
            ) {
                Ok(()) => return Ok(None),
                Err(SendError::Full) => {}
                Err(e) => return Err(flushing(e)),
            }
        }
        self.owed += n;
        self.dropped += n;
        if self.dropped >= self.next_warning {
            self.next_warning = self.dropped + WARN_EVERY_S * SAMPLE_RATE as u64;
            return Ok(Some(self.dropped));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts everything, like a worker that keeps up.
    struct Null;

    impl Sink for Null {
        fn send(&self, _: Command<Arc<Timeline>>, _: bool) -> Result<(), SendError> {
            Ok(())
        }
        fn generation(&self) -> u64 {
            0
        }
        fn finish(&self) -> Result<Option<(Arc<Timeline>, Diarization)>, SendError> {
            Ok(None)
        }
    }

    /// Found by the audio_path fuzz target: `pts + duration`
    /// overflowed (a panic with overflow checks, a wrapped time without).
    #[test]
    fn timestamps_near_the_end_of_time_do_not_overflow() {
        gst::init().unwrap();
        let max = gst::ClockTime::MAX;
        let mut feed = Feed::new(Null);
        feed.set_format(48_000, 2, SampleFormat::S16).unwrap();
        // A gap ending past the clock's range, then buffers without timestamps.
        feed.gap(
            max - gst::ClockTime::SECOND,
            Some(gst::ClockTime::from_seconds(2)),
        )
        .unwrap();
        feed.buffer(None, false, &[0; 4 * 4800]).unwrap();
        feed.buffer(Some(max), true, &[0; 4 * 4800]).unwrap();
        feed.buffer(None, false, &[0; 4 * 4800]).unwrap();
        feed.finish().unwrap();
    }
}
