"""MediaPipe's hand-landmark network ("full" complexity) as plain PyTorch modules.

What it is. ``hand_landmark_full.tflite`` is the second stage of MediaPipe Hands: given a
224x224 crop around one hand it regresses 21 keypoints in crop pixels, 21 keypoints in
metres (centred near the hand, MediaPipe's "world landmarks"), a hand-presence probability
and a handedness probability. The body is a MobileNet/EfficientNet-Lite-style stack of
inverted-residual blocks (no squeeze-excitation, ReLU6 everywhere), 224 -> 7x7x192, then a
1x1 expand to 1152 and a 3x3 depthwise, a global mean and four fully connected heads.
This module rebuilds that graph with named ``nn.Module`` layers so its 7x7x1152 map can be
used as a backbone (``trunk``/``top``) and its heads as a reference (``heads``).

Licence and weights. The network and its weights are MediaPipe's (Apache-2.0, Copyright
The MediaPipe Authors). Nothing is downloaded or copied into this repository: the weights
are read at load time from the ``.tflite`` file inside the user's installed ``mediapipe``
wheel (``pip install --no-deps mediapipe==0.10.21``), parsed with the ``tflite`` package.

Facts the port depends on (shapes, strides, padding and activations are checked against
the file when loading; the input range and handedness were checked against LiteRT/MediaPipe):

- Input: ``(N, 3, 224, 224)`` float RGB in [0, 1] (MediaPipe's ImageToTensor range for
  this model; LiteRT takes the same values as NHWC ``(1, 224, 224, 3)``). No mean/std.
- Weights are float16 constants behind DEQUANTIZE ops; they are widened to float32.
  Batch norm is already folded into every conv's weight and bias.
- Layouts: TFLite conv weights are OHWI -> torch OIHW; depthwise weights are
  ``(1, H, W, C)`` -> torch ``(C, 1, H, W)``; fully connected ``(out, in)`` is torch's.
- Padding is TF 'SAME' everywhere. With stride 2 on an even input TF pads more on the
  bottom/right (3x3: 0 before, 1 after; 5x5: 1 before, 2 after); that is reproduced with an
  explicit ``F.pad``; torch's symmetric padding shifts every stride-2 stage by half a pixel
  and moved the landmarks by up to 54 px on a random input.
- Heads (graph outputs in MediaPipe's order): ``Identity`` landmarks (63), ``Identity_1``
  hand flag / presence (1, logistic), ``Identity_2`` handedness (1, logistic),
  ``Identity_3`` world landmarks (63).
- Handedness: MediaPipe labels output 0 with ``handedness.txt``'s first entry, "Left", under
  its mirrored (selfie) convention; on an unmirrored photo a score near 1 therefore means
  the anatomical right hand.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fourdhands.errors import UserError

__all__ = ["MediaPipeHandEncoder", "load_mediapipe_hand", "tflite_path"]

_INSTALL_HINT = "pip install --no-deps mediapipe==0.10.21"
_RELATIVE = Path("modules", "hand_landmark", "hand_landmark_full.tflite")

# (input channels, expanded channels or None, depthwise kernel, stride, output channels).
# A residual ADD follows the block whenever stride is 1 and input == output channels.
_BLOCKS: tuple[tuple[int, int | None, int, int, int], ...] = (
    (24, None, 3, 1, 16),
    (16, 64, 3, 2, 24),
    (24, 144, 3, 1, 24),
    (24, 144, 5, 2, 40),
    (40, 240, 5, 1, 40),
    (40, 240, 3, 2, 80),
    (80, 480, 3, 1, 80),
    (80, 480, 3, 1, 80),
    (80, 480, 5, 1, 112),
    (112, 672, 5, 1, 112),
    (112, 672, 5, 1, 112),
    (112, 672, 5, 2, 192),
    (192, 1152, 5, 1, 192),
    (192, 1152, 5, 1, 192),
    (192, 1152, 5, 1, 192),
)
_STEM = (3, 24, 3, 2)  # in, out, kernel, stride
_TOP = (192, 1152, 3)  # in, expanded, depthwise kernel
_HEADS = ("landmarks", "presence", "handedness", "world_landmarks")  # graph output order
_HEAD_OUT = {"landmarks": 63, "presence": 1, "handedness": 1, "world_landmarks": 63}


class _SameConv(nn.Conv2d):
    """Conv2d (dense or depthwise) with TF 'SAME' padding and optional fused ReLU6.

    Input ``(N, C_in, H, W)`` -> ``(N, C_out, ceil(H/s), ceil(W/s))``.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, depthwise: bool = False,
                 relu6: bool = True) -> None:
        # Stride 1 with an odd kernel is symmetric, so the conv can pad by itself (no copy).
        super().__init__(cin, cout, kernel, stride, padding=kernel // 2 if stride == 1 else 0,
                         groups=cin if depthwise else 1, bias=True)
        self.relu6 = relu6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] != 1:
            x = F.pad(x, _same_pad(x.shape[-1], self.kernel_size[1], self.stride[1])
                      + _same_pad(x.shape[-2], self.kernel_size[0], self.stride[0]))
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups)
        return F.relu6(x, inplace=True) if self.relu6 else x  # x is this conv's fresh output


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2  # TF puts the odd pixel after


class _InvertedResidual(nn.Module):
    """1x1 expand + ReLU6 (absent in the first block), kxk depthwise + ReLU6, 1x1 project.

    ``(N, C_in, H, W)`` -> ``(N, C_out, H/s, W/s)``, plus the input when shapes match.
    """

    def __init__(self, cin: int, hidden: int | None, kernel: int, stride: int, cout: int) -> None:
        super().__init__()
        mid = hidden or cin
        self.expand = _SameConv(cin, hidden, 1) if hidden else None
        self.depthwise = _SameConv(mid, mid, kernel, stride, depthwise=True)
        self.project = _SameConv(mid, cout, 1, relu6=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return y.add_(x) if self.residual else y


class MediaPipeHandEncoder(nn.Module):
    """MediaPipe's hand-landmark network (full); ``forward`` maps ``(N, 3, 224, 224)`` RGB in
    [0, 1] to the heads' dict (see :meth:`heads`). Build it with :func:`load_mediapipe_hand`.

    Layers: ``stem`` (3x3 s2 conv, 3->24), ``blocks`` (15 inverted residuals, each with
    ``expand`` / ``depthwise`` / ``project``), ``top_expand`` (1x1, 192->1152) and
    ``top_depthwise`` (3x3), heads ``landmarks``, ``world_landmarks``, ``presence``,
    ``handedness`` (``nn.Linear`` from 1152).

    As loaded, the conv weights are channels_last, so ``trunk``/``top`` return channels_last
    tensors (the shapes are as documented; use ``reshape``/``flatten`` rather than ``view``
    across the channel dim, or ``.contiguous()``).
    """

    input_size = (224, 224)
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)
    width = 1152
    grid = (7, 7)
    has_pos_embed = False

    def __init__(self) -> None:
        super().__init__()
        cin, cout, k, s = _STEM
        self.stem = _SameConv(cin, cout, k, s)
        self.blocks = nn.ModuleList(_InvertedResidual(*b) for b in _BLOCKS)
        cin, hidden, k = _TOP
        self.top_expand = _SameConv(cin, hidden, 1)
        self.top_depthwise = _SameConv(hidden, hidden, k, depthwise=True)
        for name in _HEADS:
            setattr(self, name, nn.Linear(hidden, _HEAD_OUT[name]))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, 224, 224)`` in [0, 1] -> ``(N, 192, 7, 7)`` (the graph's ``add_8``)."""
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return x

    def top(self, s: torch.Tensor) -> torch.Tensor:
        """``(N, 192, 7, 7)`` -> ``(N, 1152, 7, 7)``: 1x1 expand + ReLU6, 3x3 depthwise + ReLU6."""
        return self.top_depthwise(self.top_expand(s))

    def heads(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, 1152, 7, 7)`` -> dict, after a spatial mean:

        - ``landmarks`` ``(N, 21, 3)``: x, y in pixels of the 224x224 crop, z on the same
          scale relative to the wrist (MediaPipe's raw, unnormalised output);
        - ``world_landmarks`` ``(N, 21, 3)``: metres;
        - ``presence`` ``(N,)``: probability a hand is in the crop;
        - ``handedness`` ``(N,)``: probability of MediaPipe's "Left" label, which on an
          unmirrored image is the anatomical right hand.
        """
        v = f.mean(dim=(2, 3))
        n = v.shape[0]
        return {
            "landmarks": self.landmarks(v).view(n, 21, 3),
            "world_landmarks": self.world_landmarks(v).view(n, 21, 3),
            "presence": torch.sigmoid(self.presence(v)).view(n),
            "handedness": torch.sigmoid(self.handedness(v)).view(n),
        }

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, 3, 224, 224)`` RGB in [0, 1] -> :meth:`heads`' dict."""
        return self.heads(self.top(self.trunk(x)))


def tflite_path() -> Path:
    """Path of ``hand_landmark_full.tflite`` inside the installed mediapipe wheel.

    Looks the package up without importing it (mediapipe's ``__init__`` loads its C++
    framework and tasks, about a second). Raises UserError if mediapipe is not installed.
    """
    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"mediapipe is not installed; its hand-landmark model is read from the wheel: "
                        f"{_INSTALL_HINT}")
    for root in spec.submodule_search_locations:
        path = Path(root) / _RELATIVE
        if path.is_file():
            return path
    root = next(iter(spec.submodule_search_locations))
    raise UserError(f"{Path(root) / _RELATIVE}: not found in the installed mediapipe; reinstall it: {_INSTALL_HINT}")


@dataclass(frozen=True)
class _Op:
    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    stride: tuple[int, int] | None = None
    padding: int | None = None
    act: int | None = None
    multiplier: int | None = None


def _expected_convs() -> list[tuple[str, str, tuple[int, ...], int, bool]]:
    """(torch prefix, op kind, TFLite weight shape, stride, ReLU6) in graph order, plus
    ``("", "ADD", ...)`` markers where a residual add follows."""
    seq: list = []

    def conv(name, cin, cout, k, s, relu):
        seq.append((name, "CONV_2D", (cout, k, k, cin), s, relu))

    def dw(name, c, k, s):
        seq.append((name, "DEPTHWISE_CONV_2D", (1, k, k, c), s, True))

    cin, cout, k, s = _STEM
    conv("stem", cin, cout, k, s, True)
    for i, (cin, hidden, k, s, cout) in enumerate(_BLOCKS):
        if hidden:
            conv(f"blocks.{i}.expand", cin, hidden, 1, 1, True)
        dw(f"blocks.{i}.depthwise", hidden or cin, k, s)
        conv(f"blocks.{i}.project", hidden or cin, cout, 1, 1, False)
        if s == 1 and cin == cout:
            seq.append(("", "ADD", (), 1, False))
    cin, hidden, k = _TOP
    conv("top_expand", cin, hidden, 1, 1, True)
    dw("top_depthwise", hidden, k, 1)
    return seq


def _operators(tflite, model, g) -> list:
    """The subgraph's operators in order, with the options the torch port needs."""
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    ops = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        # Old files store the code in the deprecated int8 field; newer in the int32 one.
        kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        extra = {}
        opts = op.BuiltinOptions()
        if kind == "CONV_2D":
            o = tflite.Conv2DOptions()
            o.Init(opts.Bytes, opts.Pos)
            extra = dict(stride=(o.StrideH(), o.StrideW()), padding=o.Padding(),
                         act=o.FusedActivationFunction(),
                         multiplier=o.DilationHFactor() * o.DilationWFactor())
        elif kind == "DEPTHWISE_CONV_2D":
            o = tflite.DepthwiseConv2DOptions()
            o.Init(opts.Bytes, opts.Pos)
            extra = dict(stride=(o.StrideH(), o.StrideW()), padding=o.Padding(),
                         act=o.FusedActivationFunction(), multiplier=o.DepthMultiplier())
        elif kind in ("ADD", "FULLY_CONNECTED"):
            o = tflite.AddOptions() if kind == "ADD" else tflite.FullyConnectedOptions()
            o.Init(opts.Bytes, opts.Pos)
            extra = dict(act=o.FusedActivationFunction())
        ops.append(_Op(kind, tuple(int(t) for t in op.InputsAsNumpy()),
                       tuple(int(t) for t in op.OutputsAsNumpy()), **extra))
    return ops


def _tensors(tflite, model, g, buf: bytes) -> tuple[list[str], list[tuple], dict[int, np.ndarray]]:
    """Every tensor's name and shape, and the float constants (as float32) by index."""
    tnames, shapes, consts = [], [], {}
    for t in range(g.TensorsLength()):
        tensor = g.Tensors(t)
        tnames.append(tensor.Name().decode(errors="replace"))
        shapes.append(tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ())
        b = model.Buffers(tensor.Buffer())
        if b.DataLength():
            raw = b.DataAsNumpy().tobytes()
        elif hasattr(b, "Size") and b.Size():  # >2 GB models keep constants after the flatbuffer
            raw = buf[b.Offset():b.Offset() + b.Size()]
        else:
            continue
        dtype = {tflite.TensorType.FLOAT16: np.float16, tflite.TensorType.FLOAT32: np.float32}.get(tensor.Type())
        if dtype is not None:
            consts[t] = np.frombuffer(raw, dtype=dtype).reshape(shapes[t]).astype(np.float32)
    return tnames, shapes, consts


def _read_flatbuffer(path: Path):
    """Parse the file into (operators, tensor names, shapes, constant arrays, graph outputs)."""
    try:
        import tflite
    except ImportError:
        raise UserError("the 'tflite' package is needed to read MediaPipe's model: pip install tflite") from None
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    # Every TFLite flatbuffer carries the identifier "TFL3" after its root offset; checking it
    # first turns a wrong file into a clear message instead of a flatbuffers crash.
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise UserError(f"{path}: not a TFLite model file")
    try:
        model = tflite.Model.GetRootAsModel(buf, 0)
        g = model.Subgraphs(0)
        ops = _operators(tflite, model, g)
        tnames, shapes, consts = _tensors(tflite, model, g, buf)
        outputs = tuple(int(t) for t in g.OutputsAsNumpy())
    except UserError:
        raise
    except Exception as e:  # a truncated or foreign flatbuffer fails anywhere in here
        raise UserError(f"{path}: not a readable TFLite model ({type(e).__name__}: {e})") from None
    return ops, tnames, shapes, consts, outputs


class _Graph:
    """The parsed file's tensors, for looking up constants and naming what differs."""

    def __init__(self, path: Path, ops: list, tnames: list[str], consts: dict[int, np.ndarray]):
        self.path, self.tnames, self.consts = path, tnames, consts
        # DEQUANTIZE ops only widen float16 constants; look through them to the constant.
        self.deq = {op.outputs[0]: op.inputs[0] for op in ops if op.kind == "DEQUANTIZE"}

    def const(self, t: int, what: str) -> np.ndarray:
        t = self.deq.get(t, t)
        if t not in self.consts:
            raise UserError(f"{self.path}: tensor '{self.tnames[t]}' for {what} is not a float constant")
        return self.consts[t]

    def mismatch(self, t: int | None, what: str, got, want) -> UserError:
        name = f"tensor '{self.tnames[self.deq.get(t, t)]}'" if t is not None else "graph"
        return UserError(f"{self.path}: {name} ({what}) is {got}, expected {want}; "
                         "not MediaPipe's hand_landmark_full")

    def weight_and_bias(self, op, prefix: str, wshape: tuple, bshape: tuple) -> tuple[np.ndarray, np.ndarray]:
        w_t, b_t = op.inputs[1], op.inputs[2]
        w, b = self.const(w_t, prefix + ".weight"), self.const(b_t, prefix + ".bias")
        if w.shape != wshape:
            raise self.mismatch(w_t, prefix + ".weight", w.shape, wshape)
        if b.shape != bshape:
            raise self.mismatch(b_t, prefix + ".bias", b.shape, bshape)
        return w, b


def _conv_weights(graph: _Graph, ops: list) -> dict[str, np.ndarray]:
    """The convolutions' weights, checked op by op against :func:`_expected_convs`."""
    state: dict[str, np.ndarray] = {}
    body = [op for op in ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD")]
    expected = _expected_convs()
    # Walk in step so the message names the first tensor that differs, not just a count.
    for op, (prefix, kind, wshape, stride, relu) in zip(body, expected):
        out = op.outputs[0]
        if op.kind != kind:
            raise graph.mismatch(out, f"op for {prefix or 'residual add'}", op.kind, kind)
        if kind == "ADD":
            continue
        w, b = graph.weight_and_bias(op, prefix, wshape, (wshape[0] if kind == "CONV_2D" else wshape[3],))
        checks = (("stride", op.stride, (stride, stride)), ("padding (0 = SAME)", op.padding, 0),
                  ("fused activation (3 = RELU6)", op.act, 3 if relu else 0),
                  ("dilation/depth multiplier", op.multiplier, 1))
        for what, got, want in checks:
            if got != want:
                raise graph.mismatch(out, f"{prefix} {what}", got, want)
        if kind == "CONV_2D":
            # OHWI -> OIHW as a view: torch reads those strides as channels_last, the format
            # the model runs in, so loading copies each weight once.
            state[prefix + ".weight"] = w.transpose(0, 3, 1, 2)
        else:
            # 1HWC -> C1HW; with one input channel per group this is channels_last too.
            state[prefix + ".weight"] = np.ascontiguousarray(w[0].transpose(2, 0, 1)[:, None])
        state[prefix + ".bias"] = b
    if len(body) != len(expected):
        raise graph.mismatch(None, "number of conv/add ops", len(body), len(expected))
    return state


def _head_weights(graph: _Graph, ops: list, outputs: tuple) -> dict[str, np.ndarray]:
    """The fully connected heads behind the graph's outputs, in :data:`_HEADS` order."""
    producer = {o: op for op in ops for o in op.outputs}
    if len(outputs) != len(_HEADS):
        raise graph.mismatch(None, "number of outputs", len(outputs), len(_HEADS))
    state: dict[str, np.ndarray] = {}
    for name, t in zip(_HEADS, outputs):
        op = producer.get(t)
        if op is not None and op.kind == "LOGISTIC":
            op = producer.get(op.inputs[0])
        if op is None or op.kind != "FULLY_CONNECTED" or op.act != 0:
            raise graph.mismatch(t, f"producer of the {name} output", getattr(op, "kind", None), "FULLY_CONNECTED")
        state[name + ".weight"], state[name + ".bias"] = graph.weight_and_bias(
            op, name, (_HEAD_OUT[name], _TOP[1]), (_HEAD_OUT[name],))
    return state


@functools.lru_cache(maxsize=4)
def _parse(path_str: str, _mtime_ns: int, _size: int) -> dict[str, np.ndarray]:
    """Torch state dict (as float32 numpy) from the file; cached per path and file version."""
    path = Path(path_str)
    ops, tnames, shapes, consts, outputs = _read_flatbuffer(path)
    graph = _Graph(path, ops, tnames, consts)
    return {**_conv_weights(graph, ops), **_head_weights(graph, ops, outputs)}


def load_mediapipe_hand(path: str | os.PathLike | None = None) -> MediaPipeHandEncoder:
    """The network with MediaPipe's weights, in eval mode, float32 on the CPU, its conv
    weights in channels_last memory format.

    ``path`` defaults to :func:`tflite_path` (the installed wheel's file). A missing,
    unreadable or foreign file, or one whose tensors do not have the expected shapes, raises
    UserError naming the file (and the first mismatching tensor). Parsing is cached per
    path within the process, so later loads only copy ~8 MB of weights.
    """
    path = Path(path) if path is not None else tflite_path()
    try:
        st = path.resolve().stat()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    if not path.is_file():
        raise UserError(f"{path}: not a file")
    state = _parse(str(path.resolve()), st.st_mtime_ns, st.st_size)
    # Built on the meta device: a random init of 2M parameters would only be overwritten.
    # The tensors are copies (clone keeps the strides), so training cannot alter the cache.
    with torch.device("meta"):
        model = MediaPipeHandEncoder()
    model.load_state_dict({k: torch.from_numpy(v).clone() for k, v in state.items()}, strict=True, assign=True)
    # oneDNN's depthwise and 1x1 kernels run NHWC natively; with NCHW every conv reorders its
    # input and output (~20 % of the time at batch 1-2 on CPU). Convolutions follow the
    # weights' format, so NCHW inputs work unchanged and the maps come out channels_last.
    return model.to(memory_format=torch.channels_last).eval()
