//! The RTTM written at EOS. Written to a temporary file beside the target
//! and renamed over it, so a reader never sees half a file and a crash
//! mid-write leaves the previous RTTM intact.

use std::io::Write;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use super::messages::{TimedTurn, Timeline};
use crate::engine::output::diarization::Diarization;

/// The RTTM `uri` column: the location's file stem, or "stream".
pub fn uri_for(location: &Path) -> String {
    location
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty() && !s.chars().any(char::is_whitespace))
        .unwrap_or_else(|| "stream".to_string())
}

/// The RTTM for the end of a stream: the engine's own, verbatim, for one
/// engine stream starting at stream time 0 (the usual file case); else the
/// turns of every engine stream in stream time.
pub fn text(
    uri: &str,
    result: Option<&(Arc<Timeline>, Diarization)>,
    all: &[TimedTurn],
    epochs: usize,
) -> String {
    match result {
        Some((tl, d))
            if epochs == 1
                && tl.segment.to_stream_time(tl.base_pts) == Some(gst::ClockTime::ZERO) =>
        {
            d.to_rttm(uri)
        }
        _ => from_turns(uri, all),
    }
}

/// RTTM lines in stream time (PTS where a turn lies outside the segment),
/// for streams the engine's own `to_rttm` cannot describe alone (several
/// engine streams after seeks, or a stream not starting at 0).
pub fn from_turns(uri: &str, turns: &[TimedTurn]) -> String {
    let mut out = String::new();
    for t in turns {
        let start = t.start_stream.unwrap_or(t.start).nseconds() as f64 / 1e9;
        let end = t.end_stream.unwrap_or(t.end).nseconds() as f64 / 1e9;
        out += &format!(
            "SPEAKER {uri} 1 {start:.3} {:.3} <NA> <NA> {} <NA> <NA>\n",
            (end - start).max(0.0),
            t.speaker
        );
    }
    out
}

/// Writes `contents` to `location` atomically (temp file + fsync + rename).
pub fn write_atomic(location: &Path, contents: &str) -> std::io::Result<()> {
    let dir = match location.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = location
        .file_name()
        .ok_or_else(|| std::io::Error::other("location names no file"))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, location)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_atomically() {
        let dir = std::env::temp_dir().join(format!("speakrs-rttm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("talk.rttm");
        write_atomic(&target, "one\n").unwrap();
        write_atomic(&target, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "two\n");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temp file left"
        );
        assert_eq!(uri_for(&target), "talk");
        assert!(write_atomic(&dir.join("missing/x.rttm"), "x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
