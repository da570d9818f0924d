//! Shared machinery of the fault matrix (tests/fault_*.rs, issue #6).
//!
//! Every case checks three things, and this module does the checking:
//! (a) no panic: a panic anywhere in the process while a case runs (caught
//!     by gstreamer-rs or not) is counted by a panic hook, and an element
//!     error "Panicked: …" would show up in `Outcome::errors`;
//! (b) audio leaves byte-identical, exactly once, in order, with its PTS and
//!     duration: `Fx` / `Pipe` remember a hash of every buffer pushed and
//!     compare each buffer that comes out against it;
//! (c) the documented outcome: `Outcome` collects the final
//!     `speakrs-diarization` message, warnings and errors from the bus.
#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};

use gst::glib;
use gst::prelude::*;

pub mod audio;
pub mod pipe;

pub use audio::*;
#[allow(unused_imports)]
pub use pipe::Pipe;

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics on every thread (the default hook still prints them).
pub fn panics() -> usize {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info)
        }));
    });
    PANICS.load(Ordering::SeqCst)
}

/// What one buffer looked like going in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub len: usize,
    pub hash: u64,
    pub pts: Option<gst::ClockTime>,
    pub duration: Option<gst::ClockTime>,
}

impl Sent {
    pub fn of(buffer: &gst::BufferRef) -> Self {
        let map = buffer.map_readable().expect("readable buffer");
        let mut h = DefaultHasher::new();
        map.as_slice().hash(&mut h);
        Self {
            len: map.len(),
            hash: h.finish(),
            pts: buffer.pts(),
            duration: buffer.duration(),
        }
    }
}

/// Compares what came out with what went in, buffer by buffer.
#[derive(Default)]
pub struct Ledger {
    pub sent: Vec<Sent>,
    pub received: usize,
}

impl Ledger {
    pub fn check(&mut self, out: &gst::BufferRef) {
        let got = Sent::of(out);
        let i = self.received;
        let want = self
            .sent
            .get(i)
            .unwrap_or_else(|| panic!("output buffer #{i} was never pushed (duplicate?): {got:?}"));
        assert_eq!(
            &got, want,
            "output buffer #{i} differs from input buffer #{i} (bytes, PTS or duration)"
        );
        assert!(
            gst::meta::CustomMeta::from_buffer(out, "GstSpeakrsMeta").is_ok(),
            "buffer #{i} lacks GstSpeakrsMeta"
        );
        self.received += 1;
    }

    /// All pushed buffers came out (exactly once: extras fail in `check`).
    pub fn assert_complete(&self) {
        assert_eq!(
            self.received,
            self.sent.len(),
            "{} buffers pushed, {} came out",
            self.sent.len(),
            self.received
        );
    }

    /// After a flush or a stop: what came out is a prefix of what went in.
    pub fn assert_prefix(&self) {
        assert!(self.received <= self.sent.len());
    }
}

/// A speaker turn from the final message, in stream-time seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub speaker: String,
    pub start: f64,
    pub end: f64,
}

/// What the user saw on the bus.
#[derive(Debug, Default)]
pub struct Outcome {
    pub finals: Vec<gst::Structure>,
    pub interims: usize,
    pub warnings: Vec<(glib::Error, Option<String>, Option<gst::Structure>)>,
    pub errors: Vec<(glib::Error, Option<String>)>,
}

impl Outcome {
    pub fn from_bus(bus: &gst::Bus) -> Self {
        let mut out = Self::default();
        out.add_all(bus);
        out
    }

    pub fn add_all(&mut self, bus: &gst::Bus) {
        while let Some(msg) = bus.pop() {
            self.add(&msg);
        }
    }

    pub fn add(&mut self, msg: &gst::Message) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure().filter(|s| s.name() == "speakrs-diarization") else {
                    return;
                };
                if s.get::<bool>("final").expect("final field") {
                    self.finals.push(s.to_owned());
                } else {
                    self.interims += 1;
                }
            }
            gst::MessageView::Warning(w) => self.warnings.push((
                w.error(),
                w.debug().map(|d| d.to_string()),
                w.details().map(|d| d.to_owned()),
            )),
            gst::MessageView::Error(e) => self
                .errors
                .push((e.error(), e.debug().map(|d| d.to_string()))),
            _ => {}
        }
    }

    pub fn assert_no_errors(&self) {
        assert!(
            self.errors.is_empty(),
            "unexpected element error(s): {:?}",
            self.errors
        );
    }

    /// Exactly one final message; no error, no warning. Returns its turns.
    pub fn clean_final(&self) -> Vec<Turn> {
        self.assert_no_errors();
        assert!(
            self.warnings.is_empty(),
            "unexpected warning(s): {:?}",
            self.warnings
        );
        self.final_turns()
    }

    pub fn final_turns(&self) -> Vec<Turn> {
        assert_eq!(
            self.finals.len(),
            1,
            "expected exactly one final speakrs-diarization message"
        );
        let s = &self.finals[0];
        let turns: Vec<Turn> = s
            .get::<gst::Array>("turns")
            .expect("turns array")
            .iter()
            .map(|t| {
                let t = t.get::<gst::Structure>().expect("turn structure");
                let secs = |f: &str| {
                    t.get::<Option<gst::ClockTime>>(f)
                        .unwrap()
                        .expect(f)
                        .nseconds() as f64
                        / 1e9
                };
                assert!(
                    t.get::<bool>("final").unwrap(),
                    "turn in the final message not final: {t}"
                );
                Turn {
                    speaker: t.get::<String>("speaker").unwrap(),
                    start: secs("start-stream-time"),
                    end: secs("end-stream-time"),
                }
            })
            .collect();
        let speakers = s.get::<u32>("num-speakers").unwrap() as usize;
        let mut labels: Vec<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
        labels.sort();
        labels.dedup();
        assert!(
            labels.len() <= speakers.max(turns.is_empty() as usize),
            "{} labels but num-speakers {speakers}",
            labels.len()
        );
        for t in &turns {
            assert!(
                t.speaker.starts_with("SPEAKER_") && t.start <= t.end,
                "malformed turn {t:?}"
            );
        }
        turns
    }

    /// The final turns, each lying within [0, `end`] seconds of stream time.
    pub fn turns_within(&self, end: f64) -> Vec<Turn> {
        let turns = self.clean_final();
        for t in &turns {
            assert!(
                t.start >= 0.0 && t.end <= end + 0.1,
                "turn {t:?} outside the stream (0..{end} s)"
            );
        }
        println!(
            "final: {} turns, {:.1} s of speech in 0..{end} s",
            turns.len(),
            speech_in(&turns, 0.0, end)
        );
        turns
    }

    /// The first error, which must be of `kind` and mention every `needle`.
    pub fn error_naming<T: glib::error::ErrorDomain>(&self, kind: T, needles: &[&str]) -> String {
        let (err, debug) = self
            .errors
            .first()
            .unwrap_or_else(|| panic!("expected an element error, got {self:?}"));
        assert!(err.matches(kind), "wrong error kind: {err:?} ({debug:?})");
        let text = err.message().to_string();
        for n in needles {
            assert!(text.contains(n), "error text does not name `{n}`: {text}");
        }
        assert!(
            !text.contains("Panicked"),
            "a panic, not a handled error: {text}"
        );
        text
    }
}

/// Speech seconds covered by `turns` between `from` and `to`.
pub fn speech_in(turns: &[Turn], from: f64, to: f64) -> f64 {
    turns
        .iter()
        .map(|t| (t.end.min(to) - t.start.max(from)).max(0.0))
        .sum()
}

/// Starts `appsrc ! speakrsdiarize {props} ! appsink`: READY→PAUSED must
/// fail with an element error; returns its text after checking kind and names.
pub fn refused<T: glib::error::ErrorDomain>(props: &str, kind: T, needles: &[&str]) -> String {
    let p = Pipe::new(props);
    assert!(p.play().is_err(), "{props}: the pipeline started");
    let text = p.wait().error_naming(kind, needles);
    p.stop();
    assert!(p.out.lock().unwrap().is_empty());
    println!("{props}\n  -> {text}");
    text
}

/// A non-live harness around one element: pushes block on backpressure,
/// like a file source, so every second is analysed.
pub struct Fx {
    pub h: gst_check::Harness,
    pub bus: gst::Bus,
    pub ledger: Ledger,
    pub events: Vec<gst::Event>,
    panics_before: usize,
}

impl Fx {
    pub fn new(props: &[(&str, &str)]) -> Self {
        let panics_before = panics();
        let mut b = gst::ElementFactory::make("speakrsdiarize");
        for (k, v) in props {
            b = b.property_from_str(k, v);
        }
        let element = b.build().expect("speakrsdiarize");
        let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        h.set_live(false);
        h.play();
        Self {
            h,
            bus,
            ledger: Ledger::default(),
            events: vec![],
            panics_before,
        }
    }

    pub fn caps(&mut self, f: Format) {
        self.h.set_src_caps(f.caps());
    }

    /// Pushes one buffer and checks everything that came out so far.
    pub fn push(&mut self, buffer: gst::Buffer) {
        self.ledger.sent.push(Sent::of(&buffer));
        let r = self.h.push(buffer);
        assert!(
            r.is_ok(),
            "push returned {r:?}; bus: {:?}",
            Outcome::from_bus(&self.bus)
        );
        self.collect();
    }

    /// Pushes `audio` (16 kHz mono) in format `f` from `start`, in buffers of `ms`.
    pub fn feed(
        &mut self,
        f: Format,
        audio: &[f32],
        start: gst::ClockTime,
        ms: u64,
    ) -> gst::ClockTime {
        f.push_each(audio, start, ms, |b| self.push(b))
    }

    pub fn event(&mut self, event: gst::Event) -> bool {
        let ok = self.h.push_event(event);
        self.collect();
        ok
    }

    pub fn collect(&mut self) {
        while let Some(b) = self.h.try_pull() {
            self.ledger.check(&b);
        }
        while let Some(e) = self.h.try_pull_event() {
            self.events.push(e);
        }
    }

    /// EOS, then the checks every case shares: all audio out exactly once,
    /// EOS forwarded after the final message, no panic.
    pub fn finish(mut self) -> Outcome {
        assert!(self.event(gst::event::Eos::new()), "EOS refused");
        self.ledger.assert_complete();
        assert!(
            self.events.iter().any(|e| e.type_() == gst::EventType::Eos),
            "EOS not forwarded"
        );
        let out = Outcome::from_bus(&self.bus);
        assert_eq!(
            panics(),
            self.panics_before,
            "a panic happened during this case"
        );
        out
    }

    pub fn assert_no_panic(&self) {
        assert_eq!(
            panics(),
            self.panics_before,
            "a panic happened during this case"
        );
    }
}

/// Shared so tests in one binary run one at a time (thread counts, CPU).
pub fn init() -> std::sync::MutexGuard<'static, ()> {
    panics();
    super::element_support::init()
}

pub type Shared<T> = Arc<Mutex<T>>;
