//! The pipeline lifecycle that scripts/leak_check.sh runs under
//! LeakSanitizer (issue #6): build a pipeline, play speech to EOS, go to
//! NULL, repeat; then PLAYING → NULL while the analysis runs. Everything is
//! dropped and GStreamer deinitialised before exit, so whatever is still
//! allocated and unreachable at exit is a leak.
//!
//! `cargo run --release --example leak_lifecycle -- [speech.wav]`
//! (default: ../shared/eval/real/wav/sample.wav, 30 s, 16 kHz mono).

use gst::prelude::*;

fn run(description: &str, stop_after_interim: bool) -> Result<usize, String> {
    let pipeline = gst::parse::launch(description).map_err(|e| e.to_string())?;
    let bus = pipeline.bus().unwrap();
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let mut messages = 0;
    let result = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(300)) else {
            break Err("timeout".to_string());
        };
        match msg.view() {
            gst::MessageView::Element(e)
                if e.structure()
                    .is_some_and(|s| s.name() == "speakrs-diarization") =>
            {
                messages += 1;
                if stop_after_interim {
                    break Ok(messages); // mid-stream: inference is running now
                }
            }
            gst::MessageView::Error(e) => break Err(format!("{} ({:?})", e.error(), e.debug())),
            gst::MessageView::Eos(_) => break Ok(messages),
            _ => {}
        }
    };
    pipeline
        .set_state(gst::State::Null)
        .map_err(|e| e.to_string())?;
    result
}

fn main() {
    let wav = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/eval/real/wav/sample.wav"
        )
        .into()
    });
    let rttm = std::env::temp_dir().join(format!("speakrs-leak-{}.rttm", std::process::id()));
    gst::init().unwrap();
    gstspeakrs::plugin_register_static().unwrap();
    let source =
        format!("filesrc location={wav} ! wavparse ! audioconvert ! audio/x-raw,format=F32LE");
    let mut failed = false;
    for round in 0..3 {
        let line = format!(
            "{source} ! speakrsdiarize rttm-location={} ! fakesink",
            rttm.display()
        );
        let r = run(&line, false);
        println!("round {round} to EOS: {r:?}");
        failed |= !matches!(r, Ok(n) if n >= 1);
    }
    for round in 0..2 {
        let line = format!("{source} ! speakrsdiarize cluster-interval=12000000000 ! fakesink");
        let r = run(&line, true);
        println!("round {round} PLAYING -> NULL mid-stream: {r:?}");
        failed |= r.is_err();
    }
    let _ = std::fs::remove_file(&rttm);
    // SAFETY: every GStreamer object of this process is gone.
    unsafe { gst::deinit() };
    if failed {
        eprintln!("leak_lifecycle: a pipeline failed");
        std::process::exit(1);
    }
}
