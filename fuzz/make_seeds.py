"""Writes the fuzz targets' seed inputs into fuzz/seeds/ (committed; rerun
only to change them). Needs numpy: ~/.cache/gst-speakrs/venv/bin/python."""
import hashlib
import io
import json
import struct
from pathlib import Path

import numpy as np

SEEDS = Path(__file__).parent / "seeds"


def put(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def npz(compressed=False, **arrays):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def npy(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def prefixed(files):
    """All but the last file length-prefixed (u32 LE), as fuzz/fuzz_targets/plda.rs splits."""
    return b"".join(struct.pack("<I", len(f)) + f for f in files[:-1]) + files[-1]


def plda_arrays(d_in=4, d_lda=3):
    rng = np.random.default_rng(6)
    return dict(
        mean1=rng.normal(size=d_in).astype(np.float32),
        mean2=rng.normal(size=d_lda),
        lda=rng.normal(size=(d_in, d_lda)),
        mu=rng.normal(size=d_lda),
        tr=rng.normal(size=(d_lda, d_lda)) + 2 * np.eye(d_lda),
        psi=rng.uniform(0.5, 2.0, size=d_lda),
    )


def plda():
    a = plda_arrays()
    put("plda", "npz", b"\0" + npz(**a))
    put("plda", "npz-f64-compressed", b"\0" + npz(True, **{k: v.astype(np.float64) for k, v in a.items()}))
    xvec = npz(**{k: a[k] for k in ("mean1", "mean2", "lda")})
    put("plda", "pyannote", b"\1" + prefixed([xvec, npz(**{k: a[k] for k in ("mu", "tr", "psi")})]))
    names = ("mean1", "mean2", "lda", "mu", "tr", "psi")
    put("plda", "npy-dir", b"\2" + prefixed([npy(a[n]) for n in names]))


def manifest():
    # Stand-in files the target writes: contents "seg", "emb", "plda".
    sha = lambda s: hashlib.sha256(s.encode()).hexdigest()
    files = {
        "segmentation": {"file": "segmentation.onnx", "sha256": sha("seg")},
        "embedding": {"file": "campplus.onnx", "sha256": sha("emb"), "licence": "x"},
        "plda": {"file": "sub/plda.npz", "sha256": sha("plda")},
    }
    text = json.dumps({"files": files, "name": "fuzz"}).encode()
    put("manifest", "valid", b"\0" + text)
    put("manifest", "overridden", b"\7" + text)
    files["plda"]["sha256"] = sha("other")
    put("manifest", "bad-sum", b"\0" + json.dumps({"files": files}).encode())
    put("manifest", "no-manifest", b"\x08")
    real = Path.home() / ".local/share/gst-speakrs/models/manifest.json"
    if real.exists():  # the set-up's own, as a shape to mutate
        put("manifest", "setup", b"\0" + real.read_bytes())


def rttm():
    put("rttm", "speakers", (
        "SPEAKER talk 1 0.580 1.880 <NA> <NA> SPEAKER_00 <NA> <NA>\n"
        "SPEAKER talk 1 2.58 1.49 <NA> <NA> alice <NA> <NA>\n"
        "# comment\n;; other\n\nSPKR-INFO talk 1 <NA> <NA> <NA> unknown bob <NA>\n"
        "SPEAKER talk 1 4.600 0 <NA> <NA> bob <NA> <NA>\n"
    ).encode())


def voices():
    # Models "e" and "p": the sums the voices target says it runs with.
    models = '{"models":{"embedding_sha256":"e","plda_sha256":"p"},'
    full = (models + '"enrolled":[{"name":"anchor","mean":[0.5,-1.25,3.0],"weight":41.0}],'
            '"next_label":3,"met":[{"label":0,"mean":[1.0,2.0,0.1],"weight":120.0,"last_seen":3600.0},'
            '{"label":2,"mean":[0.0,1e-300,-7.5],"weight":1.0,"last_seen":12.5}]}')
    put("voices", "wrapped", b"\x01" + full.encode())  # first bit: the target wraps it
    envelope = ('{"format":"gst-speakrs-voices","version":1,"sha256":"%s","voices":%s}'
                % (hashlib.sha256(full.encode()).hexdigest(), full))
    put("voices", "whole", b"\0" + envelope.encode())
    put("voices", "empty", b"\x01" + (models + '"enrolled":[],"next_label":0,"met":[]}').encode())


if __name__ == "__main__":
    plda()
    manifest()
    rttm()
    voices()
