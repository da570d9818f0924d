#!/usr/bin/env python3
"""Check the ONNX models written by convert_models.py against PyTorch reference
tensors (needs numpy + onnxruntime).

  python3 tools/check_models.py DIR [--reference /work/shared/reference/models]

Pass criteria (from the reference README): segmentation - same argmax on every
frame and max |delta probability| <= 1e-3; CAM++ - cosine >= 0.9999 for every
embedding, including the short input. Also runs odd input lengths.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def cosine(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def check_segmentation(model_dir, ref):
    sess = session(model_dir / "segmentation-3.0.onnx")
    meta = sess.get_modelmeta().custom_metadata_map
    print("segmentation metadata:", dict(sorted(meta.items())))
    x = np.load(ref / "segmentation_input.npy")
    want = np.load(ref / "segmentation_output.npy")
    (got,) = sess.run(["log_probabilities"], {"waveform": x})
    ok = got.shape == want.shape
    print(f"segmentation: output shape {got.shape} (reference {want.shape})")
    if ok:
        dprob = np.abs(np.exp(got) - np.exp(want)).max()
        same = (got.argmax(-1) == want.argmax(-1)).all()
        print(f"segmentation: max |delta prob| = {dprob:.3e}, argmax identical on every frame: {same}")
        print(f"segmentation: max |delta log-prob| = {np.abs(got - want).max():.3e} (informative only)")
        ok = same and dprob <= 1e-3
    for t in (80000, 16000, 991):
        (y,) = sess.run(["log_probabilities"], {"waveform": x[:1, :, :t]})
        print(f"segmentation: T={t} -> {y.shape[1]} frames, finite={np.isfinite(y).all()}")
        ok = ok and np.isfinite(y).all() and y.shape[1] >= 1
    # results must not depend on the batch: row 0 alone == row 0 in the batch
    (y0,) = sess.run(["log_probabilities"], {"waveform": x[:1]})
    print(f"segmentation: batch-independence max |delta| = {np.abs(y0 - got[:1]).max():.3e}")
    return ok


def check_campplus(model_dir, ref):
    sess = session(model_dir / "campplus.onnx")
    meta = sess.get_modelmeta().custom_metadata_map
    print("campplus metadata:", dict(sorted(meta.items())))
    ok = True
    for name in ("campplus", "campplus_short"):
        x = np.load(ref / f"{name}_input.npy")
        want = np.load(ref / f"{name}_output.npy")
        (got,) = sess.run(["embedding"], {"fbank": x})
        cos = [cosine(g, w) for g, w in zip(got, want)]
        print(
            f"{name}: input {x.shape} -> {got.shape}, cosines {[f'{c:.12f}' for c in cos]}, "
            f"max |delta| = {np.abs(got - want).max():.3e}"
        )
        ok = ok and got.shape == want.shape and min(cos) >= 0.9999
    x = np.load(ref / "campplus_input.npy")
    for t in (3, 101, 199, 200, 201):
        (y,) = sess.run(["embedding"], {"fbank": x[:, :t]})
        print(f"campplus: T={t} -> {y.shape}, finite={np.isfinite(y).all()}")
        ok = ok and y.shape == (2, 192) and np.isfinite(y).all()
    return ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=Path)
    parser.add_argument("--reference", type=Path, default=Path("/work/shared/reference/models"))
    args = parser.parse_args()
    ok_seg = check_segmentation(args.dir, args.reference)
    ok_campp = check_campplus(args.dir, args.reference)
    print("segmentation:", "PASS" if ok_seg else "FAIL")
    print("campplus:", "PASS" if ok_campp else "FAIL")
    sys.exit(0 if ok_seg and ok_campp else 1)


if __name__ == "__main__":
    main()
