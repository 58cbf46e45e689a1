"""The PyTorch port of MediaPipe's hand-landmark network against LiteRT running the same file."""

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mediapipe")
pytest.importorskip("tflite")
pytest.importorskip("ai_edge_litert")

from fourdhands.errors import UserError  # noqa: E402
from fourdhands.model.mediapipe_hand import MediaPipeHandEncoder, load_mediapipe_hand, tflite_path  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared/samples/real"

# Hand centres and sizes (pixels of the full photo) from mediapipe.solutions.hands; the crop is
# an axis-aligned square 1.5x the keypoints' extent, as MediaPipe's own ROI roughly is.
HANDS = [
    ("people_signing_many_hands.jpg", 432, 359, 137),
    ("people_signing_many_hands.jpg", 319, 247, 165),
    ("two_hands_crossed_signing.jpg", 468, 372, 284),
    ("two_hands_gesturing_desk.jpg", 1245, 495, 408),
    ("two_hands_on_face_close.jpg", 492, 702, 387),
    ("two_hands_on_face_close.jpg", 686, 684, 392),
]


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """(K, 224, 224, 3) float32 RGB in [0, 1]."""
    if not REAL.is_dir():
        pytest.skip(f"{REAL} is absent")
    from PIL import Image

    out = []
    for name, cx, cy, size in HANDS:
        with Image.open(REAL / name) as im:
            h = size * 0.75
            box = (round(cx - h), round(cy - h), round(cx + h), round(cy + h))
            crop = im.convert("RGB").crop(box).resize((224, 224), Image.BILINEAR)
        out.append(np.asarray(crop, dtype=np.float32) / 255.0)
    return np.stack(out)


@pytest.fixture(scope="module")
def model() -> MediaPipeHandEncoder:
    return load_mediapipe_hand()


def run_litert(crops: np.ndarray) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(tflite_path()), num_threads=2)
    it.allocate_tensors()
    index = it.get_input_details()[0]["index"]
    outs = {o["name"]: o["index"] for o in it.get_output_details()}
    rows = []
    for x in crops:
        it.set_tensor(index, x[None])
        it.invoke()
        rows.append({k: it.get_tensor(i).copy() for k, i in outs.items()})
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def test_matches_litert_on_real_crops(model, crops):
    ref = run_litert(crops)
    with torch.inference_mode():
        got = model(torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous())
    k = len(crops)
    lm, world = got["landmarks"].numpy(), got["world_landmarks"].numpy()
    assert lm.shape == world.shape == (k, 21, 3)
    assert got["presence"].shape == got["handedness"].shape == (k,)
    ref_lm, ref_world = ref["Identity"].reshape(k, 21, 3), ref["Identity_3"].reshape(k, 21, 3)
    assert np.abs(lm[..., :2] - ref_lm[..., :2]).max() < 0.5  # pixels of the 224 crop
    assert np.abs(lm[..., 2] - ref_lm[..., 2]).max() < 0.5
    assert np.abs(world - ref_world).max() < 0.5e-3  # metres
    assert np.abs(got["presence"].numpy() - ref["Identity_1"][:, 0]).max() < 1e-3
    assert np.abs(got["handedness"].numpy() - ref["Identity_2"][:, 0]).max() < 1e-3
    # The crops do hold hands, so the comparison is on meaningful outputs.
    assert (ref["Identity_1"][:, 0] > 0.5).sum() >= 4
    assert ((ref_lm[..., :2] > 0) & (ref_lm[..., :2] < 224)).mean() > 0.9


def test_intermediate_shapes(model):
    x = torch.rand(2, 3, 224, 224)
    with torch.inference_mode():
        s = model.trunk(x)
        f = model.top(s)
        out = model.heads(f)
    assert s.shape == (2, 192, 7, 7)
    assert f.shape == (2, model.width, *model.grid) == (2, 1152, 7, 7)
    assert f.min() >= 0 and f.max() <= 6  # ReLU6 output
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "landmarks": (2, 21, 3), "world_landmarks": (2, 21, 3), "presence": (2,), "handedness": (2,)}
    assert model.input_size == (224, 224) and not model.training


def test_garbage_file_is_refused(tmp_path):
    bad = tmp_path / "garbage_model.tflite"
    bad.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 8)
    with pytest.raises(UserError, match="garbage_model.tflite"):
        load_mediapipe_hand(bad)
    text = tmp_path / "notes.tflite"
    text.write_text("not a model\n")
    with pytest.raises(UserError, match="notes.tflite.*not a TFLite"):
        load_mediapipe_hand(text)
    with pytest.raises(UserError, match="missing.tflite"):
        load_mediapipe_hand(tmp_path / "missing.tflite")


def test_wrong_shaped_model_names_the_tensor():
    # The "lite" variant in the same wheel is a valid TFLite file with narrower layers.
    lite = tflite_path().with_name("hand_landmark_lite.tflite")
    if not lite.is_file():
        pytest.skip("no hand_landmark_lite.tflite in this mediapipe")
    with pytest.raises(UserError) as e:
        load_mediapipe_hand(lite)
    msg = str(e.value)
    assert "hand_landmark_lite.tflite" in msg and "tensor '" in msg and "\n" not in msg


def test_missing_mediapipe_says_how_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mediapipe" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install --no-deps mediapipe==0\.10\.21"):
        tflite_path()
