#!/usr/bin/env python3
"""Measure the activation ranges the int8 CAM++ is quantized with.

Runs the fp32 CAM++ over speech features and writes, for every
convolution's input and output, the smallest and largest value seen, as
models/campplus-int8-ranges.json, which tools/convert_models.py reads. The
features are the engine's own (chunk mean removed, a speaker's frames, at
most 3 s), from the 84 LibriSpeech speakers the PLDA is trained on:

  cargo run --release --example train_plda -- --features /tmp/calibration.npz
  python3 tools/calibrate_int8.py --model ~/.local/share/gst-speakrs/models/campplus.onnx \
      --features /tmp/calibration.npz

Needs numpy, onnx and onnxruntime (tools/requirements.txt).
"""
import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from convert_models import INT8_RANGES, conv_tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the fp32 campplus.onnx")
    parser.add_argument("--features", required=True, help="npz of [T, 80] feature arrays")
    parser.add_argument("--out", default=str(INT8_RANGES))
    args = parser.parse_args()

    model = onnx.load(args.model)
    tensors = conv_tensors(model)
    known = {o.name for o in model.graph.output}
    for name in tensors:
        if name not in known:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    low = {t: np.inf for t in tensors}
    high = {t: -np.inf for t in tensors}
    features = np.load(args.features)
    for key in sorted(features.files, key=lambda k: int(k.lstrip("f"))):
        values = dict(zip(names, session.run(None, {"fbank": features[key][None].astype(np.float32)})))
        for t in tensors:
            low[t] = min(low[t], float(values[t].min()))
            high[t] = max(high[t], float(values[t].max()))
    ranges = {t: [low[t], high[t]] for t in tensors}
    Path(args.out).write_text(json.dumps(ranges, indent=0, sort_keys=True) + "\n")
    print(f"{len(ranges)} ranges from {len(features.files)} feature arrays -> {args.out}")


if __name__ == "__main__":
    main()
