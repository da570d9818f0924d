//! RTTM: parsing arbitrary text never panics; formatting turns and parsing
//! them back gives the same uri, labels and times (to the written 1 ms).
//! The raw input is the text parsed; read as structured data, it also
//! gives the turns (so RTTM seeds work as they are).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use gstspeakrs::engine::output::reconstruct::Turn;
use gstspeakrs::engine::output::rttm::{format_rttm, parse_rttm, speaker_labels};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    uri: String,
    /// (speaker, start, length): the engine's turns have small cluster
    /// indices, finite times and end >= start.
    turns: Vec<(u8, f32, f32)>,
}

fn written(v: f64) -> f64 {
    format!("{v:.3}").parse().expect("formatted number parses")
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_rttm(&String::from_utf8_lossy(data));
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else { return };

    let turns: Vec<Turn> = input
        .turns
        .iter()
        .filter(|(_, s, l)| s.is_finite() && l.is_finite())
        .map(|&(speaker, start, len)| {
            let start = start as f64;
            Turn { speaker: speaker as usize, start, end: start + len.abs() as f64 }
        })
        .collect();
    let text = format_rttm(&input.uri, &turns);
    let parsed = parse_rttm(&text).unwrap_or_else(|e| panic!("own RTTM does not parse: {e}\n{text}"));
    assert_eq!(parsed.len(), turns.len());
    let labels = speaker_labels(&turns);
    let uri: String = input.uri.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
    for (p, t) in parsed.iter().zip(&turns) {
        assert_eq!(p.uri, if uri.is_empty() { "<NA>" } else { uri.as_str() });
        assert_eq!(Some(&p.speaker), labels[t.speaker].as_ref());
        assert_eq!(p.start, written(t.start));
        assert_eq!(p.duration, written(t.end - t.start));
    }
});
