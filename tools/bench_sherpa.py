#!/usr/bin/env python3
"""Peer benchmark: sherpa-onnx's OfflineSpeakerDiarization on OUR converted
models (the converter's metadata makes them loadable by sherpa-onnx), over
an eval set's index.tsv. Writes one RTTM per file and prints xRT, so
`examples/evaluate.rs --score-only` can score it with the same scorer.

  bench_sherpa.py --set ../shared/eval/sim-dev --models DIR --out DIR [--threads 2]

Settings follow reference/baselines.md: fast clustering threshold 0.5,
min_duration_on 0.3 s, min_duration_off 0.5 s. Model loading is excluded
from the timing.
"""
import argparse
import csv
import os
import resource
import time
import wave

import numpy as np
import sherpa_onnx


def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getsampwidth() == 2, path
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        return data.reshape(-1, w.getnchannels()).mean(axis=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    config = sherpa_onnx.OfflineSpeakerDiarizationConfig(
        segmentation=sherpa_onnx.OfflineSpeakerSegmentationModelConfig(
            pyannote=sherpa_onnx.OfflineSpeakerSegmentationPyannoteModelConfig(
                model=os.path.join(args.models, "segmentation-3.0.onnx")),
            num_threads=args.threads),
        embedding=sherpa_onnx.SpeakerEmbeddingExtractorConfig(
            model=os.path.join(args.models, "campplus.onnx"), num_threads=args.threads),
        clustering=sherpa_onnx.FastClusteringConfig(threshold=0.5),
        min_duration_on=0.3, min_duration_off=0.5)
    sd = sherpa_onnx.OfflineSpeakerDiarization(config)
    os.makedirs(args.out, exist_ok=True)
    audio_s = wall_s = 0.0
    with open(os.path.join(args.set, "index.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            samples = read_wav(os.path.join(args.set, row["wav"]))
            t0 = time.perf_counter()
            result = sd.process(samples).sort_by_start_time()
            wall_s += time.perf_counter() - t0
            audio_s += len(samples) / 16000
            with open(os.path.join(args.out, row["uri"] + ".rttm"), "w") as out:
                for s in result:
                    out.write(f"SPEAKER {row['uri']} 1 {s.start:.3f} {s.end - s.start:.3f} <NA> <NA> "
                              f"SPEAKER_{s.speaker:02d} <NA> <NA>\n")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"sherpa-onnx {sherpa_onnx.__version__}: {audio_s:.1f} s audio in {wall_s:.2f} s = "
          f"{audio_s / wall_s:.1f}x real time, peak RSS {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
