"""SIR's three attention stages and the regression heads: shapes, which inputs reach
which outputs (the hands' separation and their fusion), and gradients reaching every
parameter."""

import torch

from fourdhands.model.heads import HandHead, RelativeHead
from fourdhands.model.sir import HandDecoder, SpatialFusion, TemporalFusion, sine_encoding, sine_positions


def _randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter random (the zero-initialised embeddings too), so that no input's
    influence hides behind a zero weight."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return module.eval()


def _all_parameters_get_gradients(module: torch.nn.Module, loss: torch.Tensor) -> None:
    loss.backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def _tokens(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_sine_encoding_by_hand():
    enc = sine_encoding(torch.tensor([0.0, 1.0, -2.0]), 4)
    w = torch.tensor([1.0, 10000.0 ** -0.5])
    expected = torch.stack([torch.cat([torch.sin(o * w), torch.cos(o * w)]) for o in (0.0, 1.0, -2.0)])
    torch.testing.assert_close(enc, expected)
    pos = sine_positions((2, 3), 8)
    assert pos.shape == (6, 8)
    # token (row 1, col 2): the first half encodes the row, the second the column
    torch.testing.assert_close(pos[5, :4], sine_encoding(torch.tensor([1.0]), 4)[0])
    torch.testing.assert_close(pos[5, 4:], sine_encoding(torch.tensor([2.0]), 4)[0])


def test_spatial_fusion_lets_each_hand_read_the_other_and_tells_them_apart():
    fusion = _randomise(SpatialFusion(dim=16, depth=1, heads=2))
    tokens = _tokens(3, 2, 6, 16)
    out = fusion(tokens, (2, 3))
    assert out.shape == (3, 2, 6, 16)
    moved = tokens.clone()
    moved[:, 1] += 1.0  # only the left hand's tokens change ...
    assert not torch.allclose(fusion(moved, (2, 3))[:, 0], out[:, 0])  # ... and the right's output does
    # swapping the hands is not a symmetry: the group embedding says which hand is which
    assert not torch.allclose(fusion(tokens.flip(1), (2, 3)).flip(1), out, atol=1e-5)
    # each sample is fused alone
    torch.testing.assert_close(fusion(tokens[1:2], (2, 3)), out[1:2], atol=1e-5, rtol=1e-5)
    _all_parameters_get_gradients(fusion, fusion(tokens, (2, 3)).square().sum())


def test_spatial_fusion_positions_make_token_order_matter_only_when_asked():
    plain = _randomise(SpatialFusion(dim=16, depth=1, heads=2), seed=2)
    placed = _randomise(SpatialFusion(dim=16, depth=1, heads=2, positions=True), seed=2)
    tokens = _tokens(2, 2, 6, 16)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    # without positions, self-attention is permutation-equivariant over the tokens
    torch.testing.assert_close(plain(tokens[:, :, perm], (2, 3)), plain(tokens, (2, 3))[:, :, perm],
                               atol=1e-5, rtol=1e-5)
    assert not torch.allclose(placed(tokens[:, :, perm], (2, 3)), placed(tokens, (2, 3))[:, :, perm], atol=1e-4)


def test_hand_decoder_reads_only_its_own_hands_tokens():
    decoder = _randomise(HandDecoder(token_dim=12, dim=16, depth=2, heads=2))
    tokens = _tokens(3, 2, 5, 12)
    g = decoder(tokens)
    assert g.shape == (3, 2, 16)
    moved = tokens.clone()
    moved[:, 1] += 1.0
    out = decoder(moved)
    torch.testing.assert_close(out[:, 0], g[:, 0])  # the right hand's G ignores the left's tokens
    assert not torch.allclose(out[:, 1], g[:, 1])
    # cross-attention pools: the order of a hand's tokens does not matter
    torch.testing.assert_close(decoder(tokens[:, :, [4, 2, 0, 1, 3]]), g, atol=1e-5, rtol=1e-5)
    _all_parameters_get_gradients(decoder, decoder(tokens).square().sum())


def test_temporal_fusion_reads_the_whole_window_in_order():
    temporal = _randomise(TemporalFusion(dim=16, depth=2, heads=2))
    feats = _tokens(2, 5, 2, 16)
    centre = torch.tensor([2])
    out = temporal(feats, centre)
    assert out.shape == (2, 1, 2, 16)
    assert temporal(feats, torch.arange(5)).shape == (2, 5, 2, 16)
    other = feats.clone()
    other[:, 0, 1] += 1.0  # the first frame's left hand, not a requested frame
    assert not torch.allclose(temporal(other, centre), out)
    # the frames' offsets are encoded: reversing the window changes the centre's result
    assert not torch.allclose(temporal(feats.flip(1), centre), out, atol=1e-5)
    _all_parameters_get_gradients(temporal, temporal(feats, centre).square().sum())


def test_hand_head_starts_at_a_flat_hand_and_gives_rotations():
    head = HandHead(dim=8)
    with torch.no_grad():
        head.mlp[0].bias.zero_()  # gelu(0) = 0: a zero feature gives exactly the last bias
    start = head(torch.zeros(3, 8))
    torch.testing.assert_close(start.rotmats, torch.eye(3).expand(3, 16, 3, 3))
    torch.testing.assert_close(start.betas, torch.zeros(3, 10))
    torch.testing.assert_close(start.crop_cam, torch.tensor([[8.0, 0.0, 0.0]]).expand(3, 3))
    _randomise(head)
    out = head(_tokens(4, 2, 8))
    assert out.rotmats.shape == (4, 2, 16, 3, 3) and out.betas.shape == (4, 2, 10) and out.crop_cam.shape == (4, 2, 3)
    r = out.rotmats.double()
    torch.testing.assert_close(r @ r.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand_as(r),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(r.shape[:-2], dtype=torch.float64), atol=1e-5, rtol=0)
    assert (out.crop_cam[..., 0] > 0).all()
    _all_parameters_get_gradients(head, sum(x.square().sum() for x in (out.rotmats, out.betas, out.crop_cam)))


def test_relative_head_depends_on_which_hand_is_which():
    head = _randomise(RelativeHead(dim=8))
    feats = _tokens(3, 2, 8)
    v = head(feats)
    assert v.shape == (3, 3)
    assert not torch.allclose(head(feats.flip(-2)), v)
    _all_parameters_get_gradients(head, head(feats).square().sum())
