//! RTTM writing (pyannote's `Annotation.write_rttm` format) and parsing.

use std::fmt::Write as _;

use crate::engine::output::reconstruct::Turn;
use crate::engine::registry::Identities;

/// One `SPEAKER` line of an RTTM file.
#[derive(Debug, Clone, PartialEq)]
pub struct RttmSegment {
    pub uri: String,
    pub start: f64,
    pub duration: f64,
    pub speaker: String,
}

impl RttmSegment {
    pub fn end(&self) -> f64 {
        self.start + self.duration
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RttmError {
    #[error("RTTM line {line}: {msg}")]
    Parse { line: usize, msg: String },
}

/// Speaker labels as pyannote names them: the speakers present, in index
/// order, become SPEAKER_00, SPEAKER_01, … (an unused cluster index does
/// not leave a gap). Returns the label for each speaker index (None if the
/// index has no turn).
pub fn speaker_labels(turns: &[Turn]) -> Vec<Option<String>> {
    let n = turns.iter().map(|t| t.speaker + 1).max().unwrap_or(0);
    let mut present = vec![false; n];
    for t in turns {
        present[t.speaker] = true;
    }
    let mut next = 0;
    present
        .into_iter()
        .map(|p| {
            p.then(|| {
                next += 1;
                format!("SPEAKER_{:02}", next - 1)
            })
        })
        .collect()
}

/// RTTM text, one line per turn in the given order:
/// `SPEAKER <uri> 1 <start:.3> <dur:.3> <NA> <NA> <label> <NA> <NA>`.
/// Whitespace in `uri` would break the format, so it becomes `_`.
pub fn format_rttm(uri: &str, turns: &[Turn]) -> String {
    format_named_rttm(uri, turns, None)
}

/// `format_rttm` with the names of the speakers who matched an enrolled
/// voice in place of their labels.
pub fn format_named_rttm(uri: &str, turns: &[Turn], identities: Option<&Identities>) -> String {
    let uri: String = uri
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    let uri = if uri.is_empty() {
        "<NA>".to_string()
    } else {
        uri
    };
    let labels = speaker_labels(turns);
    let mut out = String::new();
    for t in turns {
        let label = match identities.and_then(|i| i.get(&t.speaker)) {
            Some(identity) => identity.name.as_str(),
            None => labels[t.speaker].as_deref().unwrap_or("SPEAKER_??"),
        };
        let _ = writeln!(
            out,
            "SPEAKER {uri} 1 {:.3} {:.3} <NA> <NA> {label} <NA> <NA>",
            t.start,
            t.end - t.start
        );
    }
    out
}

/// Parses the `SPEAKER` lines of an RTTM text. Blank lines, `#`/`;`
/// comments and other RTTM record types are skipped; a malformed SPEAKER
/// line is an error naming its (1-based) line number.
pub fn parse_rttm(text: &str) -> Result<Vec<RttmSegment>, RttmError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        if f[0] != "SPEAKER" {
            continue;
        }
        let err = |msg: String| RttmError::Parse { line, msg };
        if f.len() < 8 {
            return Err(err(format!("expected at least 8 fields, got {}", f.len())));
        }
        let num = |s: &str, what: &str| -> Result<f64, RttmError> {
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(err(format!("bad {what} `{s}`"))),
            }
        };
        let start = num(f[3], "start")?;
        let duration = num(f[4], "duration")?;
        if duration < 0.0 {
            return Err(err(format!("negative duration {duration}")));
        }
        out.push(RttmSegment {
            uri: f[1].to_string(),
            start,
            duration,
            speaker: f[7].to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_labels() {
        let t = [
            Turn {
                speaker: 2,
                start: 0.5,
                end: 1.25,
            },
            Turn {
                speaker: 0,
                start: 1.0,
                end: 2.0,
            },
        ];
        let text = format_rttm("my file", &t);
        assert_eq!(
            text.lines().next(),
            Some("SPEAKER my_file 1 0.500 0.750 <NA> <NA> SPEAKER_01 <NA> <NA>")
        );
        let p = parse_rttm(&format!("# c\n\n{text}")).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].speaker, "SPEAKER_00");
        assert!((p[1].end() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn bad_lines() {
        let e = parse_rttm("SPEAKER a 1 0.0 1.0 <NA> <NA> x\nSPEAKER a 1 zz 1.0 <NA> <NA> x\n");
        assert!(matches!(e, Err(RttmError::Parse { line: 2, .. })));
        assert!(parse_rttm("SPEAKER a 1 0.0\n").is_err());
        assert!(parse_rttm("SPEAKER a 1 0 -1 <NA> <NA> x").is_err());
        assert_eq!(
            parse_rttm("SPKR-INFO a 1 <NA> <NA> <NA> unknown x <NA>\n")
                .unwrap()
                .len(),
            0
        );
    }
}
