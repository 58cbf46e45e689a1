"""The ViT backbone against independent float64 computations, and loading its weights."""

import math
import pickle

import pytest
import torch
import torch.nn.functional as F

from fourdhands.errors import UserError
from fourdhands.model.vit import VIT_PRESETS, ViT, ViTConfig, resize_pos_embed, token_grid
from fourdhands.model.weights import load_backbone_weights

HEADS = ("keypoint_head.final_layer.weight", "mano_head.decpose.bias")


def small_config(image_size=(256, 192), **kwargs) -> ViTConfig:
    return ViTConfig(embed_dim=64, depth=2, num_heads=4, image_size=image_size, **kwargs)


def distinctive_vit(config: ViTConfig, seed: int = 0) -> ViT:
    """A ViT in eval mode whose every tensor (LayerNorms too) is random, so a tensor that
    fails to load changes the output."""
    torch.manual_seed(seed)
    model = ViT(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def images(*hw, batch=2, seed=1) -> torch.Tensor:
    return torch.randn(batch, 3, *hw, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- independent reference
def ref_patch_embed(x, weight, bias, pad=2):
    """(B, 3, H, W) -> (B, H', W', C): zero-pad, cut P x P patches, one matmul."""
    c, _, p, _ = weight.shape
    x = F.pad(x, (pad, pad, pad, pad))
    h, w = (x.shape[2] - p) // p + 1, (x.shape[3] - p) // p + 1
    cols = F.unfold(x, kernel_size=p, stride=p)  # (B, 3 P P, h w), patches row-major
    return (cols.transpose(1, 2) @ weight.reshape(c, -1).T + bias).reshape(x.shape[0], h, w, c)


def ref_layer_norm(x, weight, bias, eps=1e-6):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def ref_block(x, p, heads):
    """One pre-norm ViT block from a dict of float64 tensors named as in a checkpoint."""
    b, n, c = x.shape
    d = c // heads
    qkv = ref_layer_norm(x, p["norm1.weight"], p["norm1.bias"]) @ p["attn.qkv.weight"].T + p["attn.qkv.bias"]
    q, k, v = (t.reshape(b, n, heads, d).transpose(1, 2) for t in qkv.split(c, dim=-1))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
    x = x + (weights @ v).transpose(1, 2).reshape(b, n, c) @ p["attn.proj.weight"].T + p["attn.proj.bias"]
    hidden = ref_layer_norm(x, p["norm2.weight"], p["norm2.bias"]) @ p["mlp.fc1.weight"].T + p["mlp.fc1.bias"]
    hidden = 0.5 * hidden * (1 + torch.erf(hidden / math.sqrt(2)))
    return x + hidden @ p["mlp.fc2.weight"].T + p["mlp.fc2.bias"]


def sub_dict(state, prefix):
    return {k[len(prefix):]: v.double() for k, v in state.items() if k.startswith(prefix)}


# ---------------------------------------------------------------- the ViT
@pytest.mark.parametrize("hw, grid", [((256, 192), (16, 12)), ((128, 96), (8, 6))])
def test_token_grid_shapes(hw, grid):
    assert token_grid(hw, 16) == grid
    model = distinctive_vit(small_config())
    assert model(images(*hw)).shape == (2, *grid, 64)
    assert small_config(image_size=hw).grid == grid


def test_patch_embed_is_a_padded_patch_matmul():
    model = distinctive_vit(small_config()).double()
    x = images(64, 48).double()
    proj = model.patch_embed.proj
    expected = ref_patch_embed(x, proj.weight, proj.bias)
    torch.testing.assert_close(model.patch_embed(x), expected, atol=1e-12, rtol=0)
    # The 2-pixel padding matters: without it every patch would be 2 pixels off.
    assert not torch.allclose(model.patch_embed(x), ref_patch_embed(x, proj.weight, proj.bias, pad=0))


def test_block_matches_float64_reference():
    model = distinctive_vit(small_config()).double()
    x = torch.randn(2, 7, 64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = ref_block(x, sub_dict(model.state_dict(), "blocks.0."), heads=4)
    torch.testing.assert_close(model.blocks[0](x), expected, atol=1e-12, rtol=0)


def test_whole_vit_matches_float64_reference():
    """Patch embedding, pos_embed with its cls slot added to every token, blocks, last_norm."""
    model = distinctive_vit(small_config()).double()
    state = {k: v.double() for k, v in model.state_dict().items()}
    x = images(256, 192).double()
    tokens = ref_patch_embed(x, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"]).flatten(1, 2)
    tokens = tokens + state["pos_embed"][:, 1:] + state["pos_embed"][:, :1]
    for i in range(2):
        tokens = ref_block(tokens, sub_dict(state, f"blocks.{i}."), heads=4)
    expected = ref_layer_norm(tokens, state["last_norm.weight"], state["last_norm.bias"]).reshape(2, 16, 12, 64)
    torch.testing.assert_close(model(x), expected, atol=1e-10, rtol=0)


def test_resize_pos_embed_keeps_cls_and_orientation():
    h, w, c = 16, 12, 3
    rows = torch.arange(h, dtype=torch.float64)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=torch.float64)[None, :].expand(h, w)
    patches = torch.stack([rows, cols, torch.full((h, w), 5.0, dtype=torch.float64)], -1).reshape(1, h * w, c)
    cls = torch.tensor([[[7.0, -1.0, 2.0]]], dtype=torch.float64)
    pos = torch.cat([cls, patches], dim=1)
    assert resize_pos_embed(pos, (h, w), (h, w)) is pos
    out = resize_pos_embed(pos, (h, w), (8, 6))
    assert out.shape == (1, 1 + 8 * 6, c)
    assert torch.equal(out[:, :1], cls)
    grid = out[0, 1:].reshape(8, 6, c)
    # channel 0 (the row index) grows down the rows and is constant along them; channel 1
    # the other way round; a constant stays that constant.
    assert (grid[1:, :, 0] > grid[:-1, :, 0]).all() and torch.allclose(grid[:, 1:, 0], grid[:, :-1, 0])
    assert (grid[:, 1:, 1] > grid[:, :-1, 1]).all() and torch.allclose(grid[1:, :, 1], grid[:-1, :, 1])
    torch.testing.assert_close(grid[..., 2], torch.full((8, 6), 5.0, dtype=torch.float64))


def test_resize_pos_embed_is_bicubic_like_hamer():
    """Rows 0..3 holding row**2, halved: samples at rows 0.5 and 2.5 with the Keys cubic
    (a = -0.75) weights (-3/32, 19/32, 19/32, -3/32), edges clamped, worked by hand:
    0.5 * 0 + 19/32 * 1 - 3/32 * 4 and -3/32 * 1 + 19/32 * 4 + 1/2 * 9 (bilinear: 0.5, 6.5)."""
    rows = torch.arange(4, dtype=torch.float64)[:, None].expand(4, 4) ** 2
    pos = torch.cat([torch.zeros(1, 1, 1, dtype=torch.float64), rows.reshape(1, 16, 1)], dim=1)
    out = resize_pos_embed(pos, (4, 4), (2, 2))[0, 1:, 0].reshape(2, 2)
    torch.testing.assert_close(out, torch.tensor([[0.21875] * 2, [6.78125] * 2], dtype=torch.float64))


def test_other_input_size_uses_the_resized_pos_embed():
    model = distinctive_vit(small_config())
    resized = distinctive_vit(small_config(image_size=(128, 96)))
    resized.load_state_dict({**model.state_dict(),
                             "pos_embed": resize_pos_embed(model.pos_embed.detach(), (16, 12), (8, 6))})
    x = images(128, 96)
    torch.testing.assert_close(model(x), resized(x), atol=0, rtol=0)


def closed_form_parameters(cfg: ViTConfig) -> int:
    """Patch conv + pos_embed (with cls slot) + depth * (qkv, proj, fc1, fc2, 2 norms) + last norm."""
    c, p = cfg.embed_dim, cfg.patch_size
    h, w = cfg.grid
    block = (3 * c * c + 3 * c) + (c * c + c) + (4 * c * c + 4 * c) + (4 * c * c + c) + 4 * c
    return 3 * p * p * c + c + (1 + h * w) * c + cfg.depth * block + 2 * c


# The ViT paper (Dosovitskiy et al., Table 1) and DeiT (Touvron et al.) sizes, which include
# a cls token and a classifier, so ours (neither) come out a little smaller.
NOMINAL = {"tiny": 5.7e6, "small": 22e6, "base": 86e6, "large": 307e6, "huge": 632e6}


@pytest.mark.parametrize("name", list(VIT_PRESETS))
def test_preset_parameter_counts_on_meta(name):
    with torch.device("meta"):
        model = ViT(VIT_PRESETS[name])
    params = list(model.parameters())
    assert all(p.is_meta for p in params)
    count = sum(p.numel() for p in params)
    assert count == closed_form_parameters(VIT_PRESETS[name])
    assert abs(count / NOMINAL[name] - 1) < 0.05
    if name == "huge":
        assert count == 630_912_000
        assert VIT_PRESETS[name].grid == (16, 12)


def test_drop_path_only_in_training():
    plain = distinctive_vit(small_config())
    dropping = distinctive_vit(small_config(drop_path=0.5))
    dropping.load_state_dict(plain.state_dict())
    x = images(64, 48, batch=16)
    torch.testing.assert_close(dropping(x), plain(x), atol=0, rtol=0)
    dropping.train()
    torch.manual_seed(0)
    first = dropping(x)
    torch.manual_seed(1)
    assert not torch.allclose(first, dropping(x))
    # Block 0's rate is 0 (the linear rule), block 1 drops whole samples with p = 0.5.
    assert [block.drop_path for block in dropping.blocks] == [0.0, 0.5]


def test_gradient_checkpointing_gives_the_same_values_and_gradients():
    results = []
    for flag in (False, True):
        model = distinctive_vit(small_config()).train()
        model.grad_checkpointing = flag
        model(images(64, 48)).square().sum().backward()
        results.append((model.pos_embed.grad.clone(), model.blocks[0].attn.qkv.weight.grad.clone()))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)


def test_config_rejects_bad_shapes():
    with pytest.raises(ValueError, match="divisible"):
        ViTConfig(embed_dim=65, depth=1, num_heads=4)
    with pytest.raises(ValueError, match="patch_size"):
        ViTConfig(embed_dim=64, depth=1, num_heads=4, patch_size=4)


# ---------------------------------------------------------------- loading weights
def save(tmp_path, name, obj):
    path = tmp_path / name
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file({k: v.contiguous().clone() for k, v in obj.items()}, path)
    else:
        torch.save(obj, path)
    return path


def checkpoint_like(model, prefix="backbone.", heads=HEADS):
    state = {prefix + k: v.clone() for k, v in model.state_dict().items()}
    state.update({prefix.replace("backbone.", "") + h: torch.randn(3) for h in heads})
    return state


@pytest.mark.parametrize("name, wrap, prefix", [
    ("hamer.ckpt", lambda sd: {"state_dict": sd, "epoch": 3, "global_step": 10}, "backbone."),
    ("vitpose.pth", lambda sd: {"meta": {"epoch": 210}, "state_dict": sd}, "backbone."),
    ("ddp.pt", lambda sd: {"model": sd}, "module.backbone."),
    ("plain.pth", lambda sd: sd, ""),
    ("weights.safetensors", lambda sd: sd, "backbone."),
])
def test_load_maps_published_layouts(tmp_path, name, wrap, prefix):
    source = distinctive_vit(small_config(), seed=0)
    target = distinctive_vit(small_config(), seed=5)
    x = images(256, 192)
    assert not torch.allclose(target(x), source(x))
    state = checkpoint_like(source, prefix, heads=HEADS if prefix else ())
    report = load_backbone_weights(target, save(tmp_path, name, wrap(state)))
    assert report.prefix == prefix
    assert report.loaded == tuple(source.state_dict())
    assert report.missing == report.mismatched == () and report.complete
    expected_unexpected = {prefix.replace("backbone.", "") + h for h in HEADS} if prefix else set()
    assert set(report.unexpected) == expected_unexpected
    torch.testing.assert_close(target(x), source(x), atol=0, rtol=0)
    summary = report.summary()
    assert "\n" not in summary and f"loaded {len(report.loaded)}/{len(report.loaded)}" in summary


# The tensor names and shapes of a published ViTPose / HaMeR backbone (mmpose's ViT, which
# HaMeR copies), written out as data so that a rename on our side fails here: C channels,
# P = 16 patches, M = 4C MLP width, N patch tokens plus one class-token slot.
PUBLISHED_BLOCK = {"norm1.weight": ("C",), "norm1.bias": ("C",), "attn.qkv.weight": ("3C", "C"),
                   "attn.qkv.bias": ("3C",), "attn.proj.weight": ("C", "C"), "attn.proj.bias": ("C",),
                   "norm2.weight": ("C",), "norm2.bias": ("C",), "mlp.fc1.weight": ("M", "C"),
                   "mlp.fc1.bias": ("M",), "mlp.fc2.weight": ("C", "M"), "mlp.fc2.bias": ("C",)}
PUBLISHED_TOP = {"pos_embed": (1, "N+1", "C"), "patch_embed.proj.weight": ("C", 3, 16, 16),
                 "patch_embed.proj.bias": ("C",), "last_norm.weight": ("C",), "last_norm.bias": ("C",)}


def test_load_takes_the_published_tensor_names(tmp_path):
    config = small_config()
    c, n = config.embed_dim, (256 // 16) * (192 // 16)
    sizes = {"C": c, "3C": 3 * c, "M": 4 * c, "N+1": n + 1}
    names = dict(PUBLISHED_TOP)
    for i in range(config.depth):
        names.update({f"blocks.{i}.{k}": v for k, v in PUBLISHED_BLOCK.items()})
    g = torch.Generator().manual_seed(3)
    state = {f"backbone.{k}": torch.randn(*(sizes.get(d, d) for d in shape), generator=g)
             for k, shape in names.items()}
    target = distinctive_vit(config, seed=5)
    report = load_backbone_weights(target, save(tmp_path, "vitpose.pth", {"state_dict": state}))
    assert report.complete and report.prefix == "backbone." and not report.unexpected
    ours = target.state_dict()
    assert set(ours) == set(names)
    for k in names:
        torch.testing.assert_close(ours[k], state[f"backbone.{k}"], atol=0, rtol=0)


def test_load_reports_missing_and_mismatched(tmp_path):
    source = distinctive_vit(small_config(), seed=0)
    target = distinctive_vit(small_config(), seed=5)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    state = checkpoint_like(source)
    del state["backbone.blocks.1.mlp.fc2.weight"], state["backbone.last_norm.bias"]
    state["backbone.blocks.0.mlp.fc1.weight"] = torch.zeros(10, 64)
    report = load_backbone_weights(target, save(tmp_path, "partial.pth", {"state_dict": state}))
    assert report.missing == ("blocks.1.mlp.fc2.weight", "last_norm.bias")
    assert report.mismatched == ("blocks.0.mlp.fc1.weight",)
    assert not report.complete
    after = target.state_dict()
    for key in report.missing + report.mismatched:
        assert torch.equal(after[key], before[key])
    for key in report.loaded:
        assert torch.equal(after[key], source.state_dict()[key])
    assert "2 missing" in report.summary() and "1 mismatched" in report.summary()


@pytest.mark.parametrize("source_hw, source_grid", [((256, 192), (16, 12)), ((224, 224), (14, 14))])
def test_load_resizes_pos_embed_of_another_grid(tmp_path, source_hw, source_grid):
    source = distinctive_vit(small_config(image_size=source_hw), seed=0)
    target = distinctive_vit(small_config(image_size=(128, 96)), seed=5)
    report = load_backbone_weights(target, save(tmp_path, "w.safetensors", checkpoint_like(source)))
    assert report.pos_embed_resized == (source_grid, (8, 6))
    assert report.complete and "pos_embed" in report.loaded
    # The source resizes its pos_embed on the fly for 128 x 96 crops; the target stores it.
    x = images(128, 96)
    torch.testing.assert_close(target(x), source(x), atol=0, rtol=0)


# A training config pickled next to the weights, as Lightning does with HaMeR's yacs CfgNode,
# and a pickle that would call a function: neither may run when the file is read.
RAN = []


def record(*args):
    RAN.append(args)
    return {}


class TrainingConfig(dict):
    def __setstate__(self, state):
        RAN.append(state)


class CallsOnLoad:
    def __reduce__(self):
        return record, ("called",)


def test_load_lightning_checkpoint_without_running_its_objects(tmp_path):
    source = distinctive_vit(small_config(), seed=0)
    target = distinctive_vit(small_config(), seed=5)
    cfg = TrainingConfig(MODEL={"IMAGE_SIZE": 256})
    cfg.frozen = True  # instance state, so the pickle carries a BUILD for __setstate__
    path = save(tmp_path, "hamer.ckpt", {"state_dict": checkpoint_like(source),
                                         "hyper_parameters": {"cfg": cfg}, "loops": CallsOnLoad()})
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    report = load_backbone_weights(target, path)
    assert RAN == []
    assert report.complete
    x = images(64, 48)
    torch.testing.assert_close(target(x), source(x), atol=0, rtol=0)


def test_prefix_tie_goes_to_the_shorter(tmp_path):
    """A file with two full backbones (the model's and, say, an EMA copy) loads the model's."""
    model, ema = distinctive_vit(small_config(), seed=0), distinctive_vit(small_config(), seed=1)
    state = {**checkpoint_like(ema, "ema.backbone.", heads=()), **checkpoint_like(model, heads=())}
    target = distinctive_vit(small_config(), seed=5)
    report = load_backbone_weights(target, save(tmp_path, "w.pth", state))
    assert report.prefix == "backbone." and len(report.unexpected) == len(report.loaded)
    assert torch.equal(target.pos_embed, model.pos_embed)


def test_explicit_prefix(tmp_path):
    source = distinctive_vit(small_config(), seed=0)
    path = save(tmp_path, "w.pth", checkpoint_like(source))
    report = load_backbone_weights(distinctive_vit(small_config(), seed=5), path, prefix="backbone.")
    assert report.complete
    with pytest.raises(UserError, match="nothing fits"):
        load_backbone_weights(distinctive_vit(small_config()), path, prefix="encoder.")


def bad_files(tmp_path):
    valid = tmp_path / "valid.pth"
    torch.save(checkpoint_like(distinctive_vit(small_config())), valid)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(valid.read_bytes()[: valid.stat().st_size // 2])
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    bad_safetensors = tmp_path / "bad.safetensors"
    bad_safetensors.write_bytes(b"\xff" * 64)
    linear = tmp_path / "linear.pth"
    torch.save({"state_dict": torch.nn.Linear(3, 4).state_dict()}, linear)
    other_size = tmp_path / "vit32.pth"
    torch.save(ViT(ViTConfig(embed_dim=32, depth=2, num_heads=4)).state_dict(), other_size)
    unknown = tmp_path / "weights.npz"
    unknown.write_bytes(b"PK")
    return {
        "missing": (tmp_path / "nope.pth", "no such file"),
        "directory": (tmp_path, "directory"),
        "truncated": (truncated, "not a readable PyTorch checkpoint"),
        "garbage": (garbage, "not a readable PyTorch checkpoint"),
        "bad safetensors": (bad_safetensors, "not a readable safetensors"),
        "another model": (linear, "no ViT backbone weights"),
        "another ViT size": (other_size, "nothing fits"),
        "unknown format": (unknown, "unknown weights format"),
    }


def test_bad_files_raise_user_error(tmp_path):
    for case, (path, message) in bad_files(tmp_path).items():
        with pytest.raises(UserError) as info:
            load_backbone_weights(distinctive_vit(small_config()), path)
        text = str(info.value)
        assert message in text and str(path) in text and "\n" not in text, case
