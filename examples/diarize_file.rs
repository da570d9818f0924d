//! Diarizes an audio file through a GStreamer pipeline and prints the turns
//! twice: as they arrive in the per-buffer meta, and from the final bus
//! message.
//!
//!     cargo run --release --example diarize_file -- talk.wav [out.rttm]
//!
//! The pipeline is the one users type — no audioresample needed:
//! `filesrc ! decodebin ! audioconvert ! speakrsdiarize ! fakesink`.

use gst::prelude::*;

fn turn_line(t: &gst::StructureRef) -> String {
    let secs = |field: &str| {
        t.get::<Option<gst::ClockTime>>(field)
            .ok()
            .flatten()
            .map_or("?".to_string(), |c| {
                format!("{:.3}", c.nseconds() as f64 / 1e9)
            })
    };
    format!(
        "{} {}..{} s{}",
        t.get::<String>("speaker").unwrap_or_default(),
        secs("start-stream-time"),
        secs("end-stream-time"),
        if t.get::<bool>("final").unwrap_or(false) {
            ""
        } else {
            " (provisional)"
        }
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let input = args
        .next()
        .ok_or("usage: diarize_file <audio file> [out.rttm]")?;
    let rttm = args.next();

    gst::init()?;
    gstspeakrs::plugin_register_static()?;

    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", &input)
        .build()?;
    let decode = gst::ElementFactory::make("decodebin").build()?;
    let convert = gst::ElementFactory::make("audioconvert").build()?;
    let mut diarize =
        gst::ElementFactory::make("speakrsdiarize").property("cluster-interval", 10_000_000_000u64);
    if let Some(path) = &rttm {
        diarize = diarize.property("rttm-location", path);
    }
    let diarize = diarize.build()?;
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .build()?;
    pipeline.add_many([&src, &decode, &convert, &diarize, &sink])?;
    src.link(&decode)?;
    gst::Element::link_many([&convert, &diarize, &sink])?;
    let convert_sink = convert.static_pad("sink").unwrap();
    decode.connect_pad_added(move |_, pad| {
        if pad.current_caps().is_some_and(|c| {
            c.structure(0)
                .is_some_and(|s| s.name().starts_with("audio/"))
        }) && !convert_sink.is_linked()
        {
            let _ = pad.link(&convert_sink);
        }
    });

    // Turns as they become known, from the meta of the buffers leaving the element.
    sink.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, |_, info| {
            if let Some(buffer) = info.buffer() {
                if let Ok(meta) = gst::meta::CustomMeta::from_buffer(buffer, "GstSpeakrsMeta") {
                    if let Ok(turns) = meta.structure().get::<gst::Array>("turns") {
                        for t in turns.iter().filter_map(|v| v.get::<gst::Structure>().ok()) {
                            println!("meta  {}", turn_line(&t));
                        }
                    }
                }
            }
            gst::PadProbeReturn::Ok
        });

    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().unwrap();
    let mut result = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        use gst::MessageView;
        match msg.view() {
            MessageView::Element(e) => {
                let Some(s) = e.structure().filter(|s| s.name() == "speakrs-diarization") else {
                    continue;
                };
                let is_final = s.get::<bool>("final").unwrap_or(false);
                let turns = s.get::<gst::Array>("turns").map(|a| a.len()).unwrap_or(0);
                println!(
                    "bus   {} update: {} turns, {} speakers",
                    if is_final { "final" } else { "interim" },
                    turns,
                    s.get::<u32>("num-speakers").unwrap_or(0)
                );
                if is_final {
                    for t in s
                        .get::<gst::Array>("turns")
                        .iter()
                        .flat_map(|a| a.iter())
                        .filter_map(|v| v.get::<gst::Structure>().ok())
                    {
                        println!("final {}", turn_line(&t));
                    }
                }
            }
            MessageView::Warning(w) => eprintln!("warning: {} ({:?})", w.error(), w.debug()),
            MessageView::Error(e) => {
                result = Err(format!("{} ({:?})", e.error(), e.debug()).into());
                break;
            }
            MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null)?;
    if result.is_ok() {
        if let Some(path) = rttm {
            println!("RTTM written to {path}");
        }
    }
    result
}
