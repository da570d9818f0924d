//! A real pipeline, `appsrc ! speakrsdiarize ! appsink`, driven through the
//! elements' action signals (no gstreamer-app dependency needed).

use std::sync::{Arc, Mutex};

use gst::prelude::*;

use super::{panics, Format, Outcome, Sent};

pub struct Pipe {
    pub pipeline: gst::Pipeline,
    pub src: gst::Element,
    pub element: gst::Element,
    pub sent: Vec<Sent>,
    /// What reached appsink, and whether it carried the meta. Recorded,
    /// not asserted, in the streaming thread: a panic there would abort.
    pub out: Arc<Mutex<Vec<(Sent, bool)>>>,
    panics_before: usize,
}

impl Pipe {
    /// `props`: the element's properties in launch syntax.
    pub fn new(props: &str) -> Self {
        let panics_before = panics();
        let pipeline = gst::parse::launch(&format!(
            "appsrc name=src format=time ! speakrsdiarize name=d {props} ! appsink name=sink sync=false emit-signals=true"
        ))
        .expect("launch")
        .downcast::<gst::Pipeline>()
        .unwrap();
        let (src, element, sink) = (
            pipeline.by_name("src").unwrap(),
            pipeline.by_name("d").unwrap(),
            pipeline.by_name("sink").unwrap(),
        );
        let out: Arc<Mutex<Vec<(Sent, bool)>>> = Default::default();
        let o = out.clone();
        sink.connect("new-sample", false, move |args| {
            let sink = args[0].get::<gst::Element>().unwrap();
            if let Some(sample) = sink.emit_by_name::<Option<gst::Sample>>("pull-sample", &[]) {
                if let Some(b) = sample.buffer() {
                    let meta = gst::meta::CustomMeta::from_buffer(b, "GstSpeakrsMeta").is_ok();
                    o.lock().unwrap().push((Sent::of(b), meta));
                }
            }
            Some(gst::FlowReturn::Ok.to_value())
        });
        Self {
            pipeline,
            src,
            element,
            sent: vec![],
            out,
            panics_before,
        }
    }

    pub fn play(&self) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        self.pipeline.set_state(gst::State::Playing)
    }

    /// appsrc sends new caps before the next buffer (only if they changed).
    pub fn caps(&self, f: Format) {
        self.src.set_property("caps", f.caps());
    }

    pub fn push(&mut self, buffer: gst::Buffer) -> gst::FlowReturn {
        self.sent.push(Sent::of(&buffer));
        self.src
            .emit_by_name::<gst::FlowReturn>("push-buffer", &[&buffer])
    }

    /// Pushes `audio` (16 kHz mono) as `f` from `start`, setting caps `f` first.
    pub fn feed(
        &mut self,
        f: Format,
        audio: &[f32],
        start: gst::ClockTime,
        ms: u64,
    ) -> gst::ClockTime {
        self.caps(f);
        f.push_each(audio, start, ms, |b| {
            assert_eq!(self.push(b), gst::FlowReturn::Ok)
        })
    }

    /// Waits for EOS or an error; everything on the bus until then.
    pub fn wait(&self) -> Outcome {
        let bus = self.pipeline.bus().unwrap();
        let mut out = Outcome::default();
        for msg in bus.iter_timed(gst::ClockTime::from_seconds(600)) {
            out.add(&msg);
            match msg.view() {
                gst::MessageView::Eos(_) | gst::MessageView::Error(_) => return out,
                _ => {}
            }
        }
        panic!("no EOS within 10 minutes: {out:?}");
    }

    /// End of stream: waits for EOS, goes to NULL, checks the audio and
    /// that nothing panicked. The final message must come before EOS:
    /// `wait` stops at EOS, so a late final message is simply missing.
    pub fn finish(&self) -> Outcome {
        assert_eq!(
            self.src
                .emit_by_name::<gst::FlowReturn>("end-of-stream", &[]),
            gst::FlowReturn::Ok
        );
        let out = self.wait();
        self.stop();
        self.assert_audio(true);
        out
    }

    pub fn stop(&self) {
        assert_eq!(
            self.pipeline.set_state(gst::State::Null),
            Ok(gst::StateChangeSuccess::Success),
            "NULL failed"
        );
        assert_eq!(
            panics(),
            self.panics_before,
            "a panic happened during this case"
        );
    }

    /// Output equals input buffer for buffer; `complete`: all of it (else a prefix).
    pub fn assert_audio(&self, complete: bool) {
        let out = self.out.lock().unwrap();
        for (i, (got, meta)) in out.iter().enumerate() {
            let want = self
                .sent
                .get(i)
                .unwrap_or_else(|| panic!("output buffer #{i} was never pushed (duplicate?)"));
            assert_eq!(
                got, want,
                "output buffer #{i} differs from input buffer #{i} (bytes, PTS or duration)"
            );
            assert!(meta, "output buffer #{i} lacks GstSpeakrsMeta");
        }
        if complete {
            assert_eq!(
                out.len(),
                self.sent.len(),
                "{} buffers pushed, {} came out",
                self.sent.len(),
                out.len()
            );
        }
    }
}
