"""The backbone registry, its checkpoints, and the camera default for real images."""

import json

import pytest
import torch

from fourdhands.checkpoint import WEIGHTS, load_checkpoint, save_checkpoint
from fourdhands.errors import UserError
from fourdhands.geometry.camera import field_of_view_focal
from fourdhands.model.backbones import ALIASES, BACKBONES, backbone_spec
from fourdhands.model.config import model_config
from fourdhands.model.network import FourDHands
from fourdhands.model.vit import ViT, VIT_PRESETS


def test_registry_names_aliases_and_errors():
    assert set(VIT_PRESETS) | {"mediapipe_hand"} == set(BACKBONES)
    assert backbone_spec("vit_small") is BACKBONES["small"]
    assert all(target in BACKBONES for target in ALIASES.values())
    with pytest.raises(UserError, match="unknown backbone 'resnet50'"):
        backbone_spec("resnet50")
    spec = BACKBONES["mediapipe_hand"]
    assert (spec.input_size, spec.width, spec.has_pos_embed) == ((224, 224), 1152, False)


def test_vit_is_laid_out_for_its_crop_and_old_checkpoints_still_load(tmp_path):
    """Old ViT checkpoints kept the 256x192 pre-training grid and resized it on every
    forward; loading resizes it once, which must give the same predictions."""
    torch.manual_seed(0)
    config = model_config("tiny", "cross_s", image_size=(64, 48))
    net = FourDHands(config).eval()
    assert net.backbone.pos_embed.shape[1] == 1 + 4 * 3  # 64x48 crops, 16 px patches
    old = ViT(VIT_PRESETS["tiny"])  # the old layout: the pre-training grid 16 x 12
    state = {k: v for k, v in net.state_dict().items() if not k.startswith(("right_model.", "left_model."))}
    state.update({f"backbone.{k}": v for k, v in old.state_dict().items()})
    save_checkpoint(tmp_path / "new", net)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "new" / WEIGHTS))
    loaded = load_checkpoint(tmp_path / "new")
    crops = torch.rand(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded.backbone(crops), old(crops), atol=1e-5, rtol=1e-5)


mediapipe = pytest.importorskip("mediapipe", reason="the mediapipe_hand backbone reads its weights from mediapipe")
pytest.importorskip("tflite")


def _inputs():
    g = torch.Generator().manual_seed(1)
    return dict(crops=torch.rand(1, 1, 2, 3, 224, 224, generator=g),
                boxes=torch.tensor([[[[300.0, 240.0, 90.0, 90.0], [380.0, 250.0, 80.0, 80.0]]]]),
                image_size=torch.tensor([[640.0, 480.0]]), angles=torch.tensor([[[0.3, -0.5]]]))


def test_mediapipe_checkpoints_leave_out_the_weights_that_come_from_the_wheel(tmp_path):
    torch.manual_seed(0)
    net = FourDHands(model_config("mediapipe", "cross_s")).eval()
    save_checkpoint(tmp_path / "a", net)
    from safetensors.torch import load_file

    stored = load_file(str(tmp_path / "a" / WEIGHTS))
    assert not any(k.startswith("backbone.") for k in stored)
    assert "token_project.weight" in stored
    # training changed the top: those weights are stored, the untouched trunk still is not
    with torch.no_grad():
        net.backbone.encoder.top_expand.weight.mul_(1.01)
    save_checkpoint(tmp_path / "b", net)
    stored = load_file(str(tmp_path / "b" / WEIGHTS))
    assert {k for k in stored if k.startswith("backbone.")} == {"backbone.encoder.top_expand.weight"}
    loaded = load_checkpoint(tmp_path / "b")
    with torch.no_grad():
        a, b = net(**_inputs()), loaded(**_inputs())
    torch.testing.assert_close(b.camera_keypoints, a.camera_keypoints)


def test_a_checkpoint_for_another_backbone_is_a_one_line_error(tmp_path):
    torch.manual_seed(0)
    vit = FourDHands(model_config("tiny", "cross_s", image_size=(64, 48)))
    save_checkpoint(tmp_path / "ckpt", vit)
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    config["model"].update(backbone="mediapipe_hand", image_size=[224, 224], token_dim=256,
                           upright=True, crop_frame=True, fusion_heads=8)
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="made for backbone 'tiny', its config says 'mediapipe_hand'"):
        load_checkpoint(tmp_path / "ckpt")


def test_the_spatial_fusion_adds_positions_for_a_backbone_without_them():
    net = FourDHands(model_config("mediapipe", "cross_s"))
    assert net.spatial.positions and not FourDHands(model_config("tiny", "cross_s", image_size=(64, 48))).spatial.positions
    tokens = torch.zeros(1, 2, 49, 256)
    out = net.spatial(tokens, (7, 7))  # zero tokens: only the positions tell cells apart
    assert (out[0, 0, 0] - out[0, 0, 1]).abs().max() > 1e-3


def test_field_of_view_focal_is_the_image_diagonal():
    torch.testing.assert_close(field_of_view_focal(torch.tensor([640.0, 480.0])), torch.tensor(800.0))
    # a 1920x1080 video: 2203 px, i.e. a 20 cm hand filling a 400 px box is ~1.1 m away
    assert abs(float(field_of_view_focal(torch.tensor([1920.0, 1080.0]))) - 2202.9) < 0.1


@pytest.mark.parametrize("backbone, mean, std", [
    # the statistics each backbone's pre-training used, written out: ImageNet's for the
    # ViTs (ViTPose / HaMeR), none for MediaPipe's network (it takes RGB in [0, 1])
    ("tiny", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ("mediapipe_hand", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
])
def test_network_views_are_normalised_as_the_backbone_was_trained(backbone, mean, std):
    preset = "mediapipe" if backbone == "mediapipe_hand" else "tiny"
    net = FourDHands(model_config(preset, "cross_s", backbone=backbone, **({} if preset == "mediapipe" else
                                                                           {"image_size": (64, 48)})))
    h, w = net.config.image_size
    crops = torch.rand(1, 2, 3, h, w, generator=torch.Generator().manual_seed(0))
    views = net.network_views(crops)
    m, s = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None]
    torch.testing.assert_close(views[0, 0], (crops[0, 0] - m) / s)
    torch.testing.assert_close(views[0, 1], ((crops[0, 1] - m) / s).flip(-1))  # the left crop mirrored
