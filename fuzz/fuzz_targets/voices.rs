//! Voices files from arbitrary bytes. First byte: bit 0 wraps the rest in
//! a well-formed envelope with its correct sha256, so that the voices
//! themselves (names, features, labels) reach the checks behind the
//! checksum. A file that reads must write back and read back the same.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use gstspeakrs::models::voices::{ModelIdentity, Voices};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

/// Per process: libFuzzer's parallel jobs must not share the files.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("speakrs-fuzz-voices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
});

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let file = if flags & 1 == 0 {
        rest.to_vec()
    } else {
        let Ok(voices) = std::str::from_utf8(rest) else { return };
        let sum = format!("{:x}", Sha256::digest(voices.as_bytes()));
        format!(r#"{{"format":"gst-speakrs-voices","version":1,"sha256":"{sum}","voices":{voices}}}"#)
            .into_bytes()
    };
    // The seeds' voices name these model sums.
    let ours = ModelIdentity {
        embedding_sha256: "e".into(),
        plda_sha256: Some("p".into()),
    };
    let path = DIR.join("voices.json");
    std::fs::write(&path, &file).expect("write voices");
    let Ok(voices) = Voices::read(&path, &ours) else { return };
    let again = DIR.join("again.json");
    voices.write(&again).expect("a file that reads writes back");
    let back = Voices::read(&again, &ours).expect("what was written reads back");
    assert_eq!(back, voices);
});
