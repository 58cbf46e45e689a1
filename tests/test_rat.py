"""RAT (Eq. 1-4): position, distance and overlap maps against hand-worked values, the
left-crop mirror against the mirrored image, the far-away box, and the shared embedding."""

import math

import pytest
import torch

from fourdhands.model.rat import (
    DEFAULT_TAU,
    RelationEmbedding,
    far_away_box,
    patch_centres,
    relation_inputs,
    relation_maps,
)

f64 = dict(dtype=torch.float64)


def sig(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def mirror_boxes(box: torch.Tensor, image_width: float) -> torch.Tensor:
    """Boxes of the horizontally mirrored image (x -> W_img - x); sizes unchanged."""
    return torch.cat([image_width - box[:, :1], box[:, 1:]], dim=-1)


def near_boxes(gen: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right/left boxes of unequal sizes, offset by less than a box: partial overlaps."""
    right = torch.cat([200 + 100 * torch.rand(n, 2, generator=gen, **f64),
                       40 + 60 * torch.rand(n, 2, generator=gen, **f64)], dim=-1)
    offset = (torch.rand(n, 2, generator=gen, **f64) - 0.5) * 1.2 * right[:, 2:]
    sizes = 40 + 60 * torch.rand(n, 2, generator=gen, **f64)
    return right, torch.cat([right[:, :2] + offset, sizes], dim=-1)


# --- Eq. (1) -------------------------------------------------------------------------


def test_patch_centres_hand_worked():
    boxes = torch.tensor([[100.0, 50.0, 40.0, 80.0], [0.0, 0.0, 6.0, 8.0]], **f64)
    c = patch_centres(boxes, grid=(4, 3))  # 4 rows, 3 columns
    assert c.shape == (2, 4, 3, 2)
    # Box 0: columns at 100 + (2i - 2) * 40 / 6, rows at 50 + (2k - 3) * 80 / 8.
    xs0, ys0 = [100 - 40 / 3, 100.0, 100 + 40 / 3], [20.0, 40.0, 60.0, 80.0]
    # Box 1: columns at (2i - 2) * 6 / 6, rows at (2k - 3) * 8 / 8.
    xs1, ys1 = [-2.0, 0.0, 2.0], [-3.0, -1.0, 1.0, 3.0]
    for b, (xs, ys) in enumerate([(xs0, ys0), (xs1, ys1)]):
        expected = torch.tensor([[[x, y] for x in xs] for y in ys], **f64)
        torch.testing.assert_close(c[b], expected)


# --- Eq. (2), (3) --------------------------------------------------------------------


def test_relation_maps_overlapping_unequal_scales_hand_worked():
    # Right box covers [0, 16]^2, left box [10, 18] x [0, 16]; 4 x 4 grid, tau = 2.
    right = torch.tensor([[8.0, 8.0, 16.0, 16.0]], **f64)
    left = torch.tensor([[14.0, 8.0, 8.0, 16.0]], **f64)
    d_r2l, d_l2r, o_r2l, o_l2r = relation_maps(right, left, grid=(4, 4), tau=2.0)
    assert d_r2l.shape == d_l2r.shape == (1, 4, 4, 2) and o_r2l.shape == o_l2r.shape == (1, 4, 4)
    # Right centres x = 2, 6, 10, 14; left centres x = 11, 13, 15, 17; rows coincide
    # (y = 2, 6, 10, 14 for both), so every dy is 0.
    # d_r2l x: sigmoid(2 (2i - 9) / 16), the RIGHT width 16 divides.
    # d_l2r x: sigmoid(2 (9 - 2i) / 8), the LEFT width 8 divides.
    dx_r2l = torch.tensor([sig(-9 / 8), sig(-7 / 8), sig(-5 / 8), sig(-3 / 8)], **f64)
    dx_l2r = torch.tensor([sig(9 / 4), sig(7 / 4), sig(5 / 4), sig(3 / 4)], **f64)
    torch.testing.assert_close(d_r2l[0, ..., 0], dx_r2l.expand(4, 4))
    torch.testing.assert_close(d_l2r[0, ..., 0], dx_l2r.expand(4, 4))
    torch.testing.assert_close(d_r2l[..., 1], torch.full((1, 4, 4), 0.5, **f64))
    torch.testing.assert_close(d_l2r[..., 1], torch.full((1, 4, 4), 0.5, **f64))
    # O_R2L: right centres x = 10 (on the left box's edge: inside, edges count) and 14
    # are in [10, 18]: columns 2, 3 of all 4 rows -> 8 entries of +1.
    expected_o_r2l = torch.tensor([-1.0, -1.0, 1.0, 1.0], **f64).expand(1, 4, 4)
    torch.testing.assert_close(o_r2l, expected_o_r2l)
    assert (o_r2l == 1).sum() == 8
    # O_L2R: left centres x = 11, 13, 15 are in [0, 16], 17 is not -> 12 entries of +1.
    torch.testing.assert_close(o_l2r, torch.tensor([1.0, 1.0, 1.0, -1.0], **f64).expand(1, 4, 4))
    assert (o_l2r == 1).sum() == 12


def test_relation_maps_separate_equal_scales_hand_worked():
    right = torch.tensor([[100.0, 100.0, 20.0, 20.0]], **f64)
    left = torch.tensor([[160.0, 130.0, 20.0, 20.0]], **f64)
    d_r2l, d_l2r, o_r2l, o_l2r = relation_maps(right, left, grid=(3, 2), tau=1.0)
    # Equal sizes: every patch pair is offset by the centres' offset (-60, -30) = (-3, -1.5) boxes.
    torch.testing.assert_close(d_r2l, torch.tensor([sig(-3), sig(-1.5)], **f64).expand(1, 3, 2, 2))
    torch.testing.assert_close(d_l2r, torch.tensor([sig(3), sig(1.5)], **f64).expand(1, 3, 2, 2))
    assert (o_r2l == -1).all() and (o_l2r == -1).all()


def test_relation_maps_symmetries():
    gen = torch.Generator().manual_seed(0)
    right, left = near_boxes(gen, 16)
    grid = (5, 4)
    d_r2l, d_l2r, o_r2l, o_l2r = relation_maps(right, left, grid, tau=1.5)
    assert (o_r2l == 1).any() and (o_r2l == -1).any()  # the scenes do overlap partially
    # Swapping the hands swaps the maps.
    s_r2l, s_l2r, so_r2l, so_l2r = relation_maps(left, right, grid, tau=1.5)
    torch.testing.assert_close(s_r2l, d_l2r)
    torch.testing.assert_close(s_l2r, d_r2l)
    assert torch.equal(so_r2l, o_l2r) and torch.equal(so_l2r, o_r2l)
    # Equal scales: the same offset divided by the same size, negated -> d_r2l = 1 - d_l2r.
    left_same_size = torch.cat([left[:, :2], right[:, 2:]], dim=-1)
    e_r2l, e_l2r, _, _ = relation_maps(right, left_same_size, grid, tau=1.5)
    torch.testing.assert_close(e_r2l, 1 - e_l2r)
    # Identical boxes: no offset anywhere, every centre inside the other box.
    i_r2l, i_l2r, io_r2l, io_l2r = relation_maps(right, right, grid)
    torch.testing.assert_close(i_r2l, torch.full_like(i_r2l, 0.5))
    torch.testing.assert_close(i_l2r, torch.full_like(i_l2r, 0.5))
    assert (io_r2l == 1).all() and (io_l2r == 1).all()


def test_tau_scales_the_sigmoid_argument():
    gen = torch.Generator().manual_seed(1)
    right, left = near_boxes(gen, 4)
    d1, _, _, _ = relation_maps(right, left, (4, 3), tau=1.0)
    d3, _, _, _ = relation_maps(right, left, (4, 3), tau=3.0)
    torch.testing.assert_close(d3, torch.sigmoid(3 * torch.logit(d1)))
    d_default, _, _, _ = relation_maps(right, left, (4, 3))
    torch.testing.assert_close(d_default, relation_maps(right, left, (4, 3), tau=DEFAULT_TAU)[0])


# --- far-away boxes (section 4.5) ----------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("missing", ["left", "right"])
def test_far_away_box_saturates_and_never_overlaps(missing, dtype):
    gen = torch.Generator().manual_seed(2)
    present = torch.cat([1000 * torch.rand(8, 2, generator=gen),
                         20 + 300 * torch.rand(8, 2, generator=gen)], dim=-1).to(dtype)
    far = far_away_box(present, missing=missing)
    assert far.shape == (8, 4)
    torch.testing.assert_close(far[:, 2:], present[:, 2:])  # same scale
    right, left = (present, far) if missing == "left" else (far, present)
    d_r2l, d_l2r, o_r2l, o_l2r = relation_maps(right, left, grid=(16, 12))
    for d in (d_r2l, d_l2r):
        assert (torch.minimum(d, 1 - d) < 1e-6).all()
    assert (o_r2l == -1).all() and (o_l2r == -1).all()


def test_lone_left_hand_gets_the_lone_right_hand_input():
    gen = torch.Generator().manual_seed(3)
    box = torch.cat([1000 * torch.rand(5, 2, generator=gen, **f64),
                     20 + 300 * torch.rand(5, 2, generator=gen, **f64)], dim=-1)
    lone_right, _ = relation_inputs(box, far_away_box(box, missing="left"), (4, 3))
    _, lone_left = relation_inputs(far_away_box(box, missing="right"), box, (4, 3), mirror_left=True)
    torch.testing.assert_close(lone_left, lone_right)
    # Saturated: x and y channels [0, 0, 1, 1] and no overlap.
    torch.testing.assert_close(lone_right, torch.tensor([0.0, 0.0, 1.0, 1.0, -1.0], **f64).expand_as(lone_right))
    with pytest.raises(ValueError):
        far_away_box(box, missing="both")


def test_zero_angles_are_the_axis_aligned_maps():
    gen = torch.Generator().manual_seed(4)
    boxes = [torch.cat([1000 * torch.rand(3, 2, generator=gen, **f64),
                        20 + 300 * torch.rand(3, 2, generator=gen, **f64)], dim=-1) for _ in range(2)]
    plain = relation_inputs(*boxes, (4, 3))
    zero = relation_inputs(*boxes, (4, 3), angles=torch.zeros(3, 2, **f64))
    for a, b in zip(plain, zero):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_turning_the_whole_image_leaves_the_relation_inputs_unchanged():
    """Turning the image about any point turns both crops with it (centres rotate, angles
    add): each token still sees the same thing, so Eq. (2)-(3) measured in the crops' own
    axes must not change. Checked against a hand rotation of the box centres."""
    gen = torch.Generator().manual_seed(5)
    box_r = torch.tensor([[300.0, 200.0, 80.0, 80.0], [100.0, 120.0, 50.0, 50.0]], **f64)
    box_l = torch.tensor([[350.0, 230.0, 70.0, 70.0], [400.0, 90.0, 60.0, 60.0]], **f64)
    angles = torch.rand(2, 2, generator=gen, **f64) * 2 - 1
    turn, pivot = 0.8, torch.tensor([50.0, -30.0], **f64)
    c, s = math.cos(turn), math.sin(turn)
    rot = torch.tensor([[c, -s], [s, c]], **f64)

    def turned(box):
        return torch.cat([(box[:, :2] - pivot) @ rot.T + pivot, box[:, 2:]], -1)

    before = relation_inputs(box_r, box_l, (5, 5), angles=angles)
    after = relation_inputs(turned(box_r), turned(box_l), (5, 5), angles=angles + turn)
    for a, b in zip(before, after):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=0)
    # and the patch centres themselves rotate with the image
    torch.testing.assert_close(patch_centres(turned(box_r), (5, 5), angles[:, 0] + turn),
                               (patch_centres(box_r, (5, 5), angles[:, 0]) - pivot) @ rot.T + pivot)


def test_lone_turned_left_hand_gets_the_lone_turned_right_hand_input():
    box = torch.tensor([[300.0, 200.0, 80.0, 80.0]], **f64)
    a = torch.tensor([0.9], **f64)
    lone_right, _ = relation_inputs(box, far_away_box(box, "left", angle=a), (4, 4),
                                    angles=torch.stack([a, a], -1))
    _, lone_left = relation_inputs(far_away_box(box, "right", angle=-a), box, (4, 4), mirror_left=True,
                                   angles=torch.stack([-a, -a], -1))
    torch.testing.assert_close(lone_left, lone_right)
    torch.testing.assert_close(lone_right, torch.tensor([0.0, 0.0, 1.0, 1.0, -1.0], **f64).expand_as(lone_right))


# --- the left-crop mirror ------------------------------------------------------------


def test_mirrored_left_input_is_the_right_input_of_the_mirrored_image():
    # Mirroring the image (x -> W_img - x) turns the left hand into a right hand and its
    # crop into the mirrored left crop. So the left hand's input (mirror_left=True) must
    # equal, token by token, the right-hand input computed in the mirrored image with the
    # mirrored left box as the right box and the mirrored right box as the left box.
    gen = torch.Generator().manual_seed(4)
    right, left = near_boxes(gen, 16)
    grid, image_width = (5, 4), 640.0
    input_right, input_left = relation_inputs(right, left, grid, tau=1.3, mirror_left=True)
    m_right, m_left = relation_inputs(mirror_boxes(left, image_width), mirror_boxes(right, image_width),
                                      grid, tau=1.3, mirror_left=True)
    assert (input_left[..., 4] == 1).any() and (input_left[..., 4] == -1).any()
    torch.testing.assert_close(input_left, m_right)
    torch.testing.assert_close(input_right, m_left)  # mirroring twice is the identity
    # Unmirrored crops: the left input is Eq. (4) in image order.
    d_r2l, d_l2r, o_r2l, o_l2r = relation_maps(right, left, grid, tau=1.3)
    plain_right, plain_left = relation_inputs(right, left, grid, tau=1.3, mirror_left=False)
    torch.testing.assert_close(plain_left, torch.cat([d_l2r, d_r2l, o_l2r[..., None]], dim=-1))
    torch.testing.assert_close(plain_right, torch.cat([d_r2l, d_l2r, o_r2l[..., None]], dim=-1))
    torch.testing.assert_close(plain_right, input_right)  # the right hand is never mirrored
    # The mirror rule spelled out: reverse columns, x channels -> 1 - d, y and O reordered.
    flipped = plain_left.flip(dims=[2])
    torch.testing.assert_close(input_left[..., [0, 2]], 1 - flipped[..., [0, 2]])
    torch.testing.assert_close(input_left[..., [1, 3, 4]], flipped[..., [1, 3, 4]])
    assert not torch.allclose(plain_left, m_right)  # the identity needs the mirror


# --- Eq. (4): the embedding ----------------------------------------------------------


def make_tokens(gen: torch.Generator, b: int, grid: tuple[int, int], c: int):
    return [torch.randn(b, *grid, c, generator=gen) for _ in range(2)]


@pytest.mark.parametrize("join", ["add", "concat"])
def test_embedding_shapes_and_join(join):
    torch.manual_seed(5)
    gen = torch.Generator().manual_seed(5)
    grid, c = (4, 3), 8
    embedding = RelationEmbedding(c, join=join)
    right, left = (b.float() for b in near_boxes(gen, 2))
    tokens_right, tokens_left = make_tokens(gen, 2, grid, c)
    out_right, out_left = embedding(tokens_right, tokens_left, right, left)
    assert out_right.shape == out_left.shape == (2, 4, 3, c)
    r_right, r_left = embedding.embed(right, left, grid)
    inputs = relation_inputs(right, left, grid, DEFAULT_TAU, mirror_left=True)
    torch.testing.assert_close(r_right, embedding.mlp(inputs[0].float()))
    torch.testing.assert_close(r_left, embedding.mlp(inputs[1].float()))
    if join == "add":
        torch.testing.assert_close(out_right, tokens_right + r_right)
        torch.testing.assert_close(out_left, tokens_left + r_left)
    else:
        torch.testing.assert_close(out_right, embedding.project(torch.cat([tokens_right, r_right], -1)))
        torch.testing.assert_close(out_left, embedding.project(torch.cat([tokens_left, r_left], -1)))


def test_embedding_parameters_and_tau():
    embedding = RelationEmbedding(16, hidden=32, join="add", tau=2.5)
    # One MLP 5 -> 32 -> 16 (with LayerNorm) for both hands, nothing else.
    assert sum(p.numel() for p in embedding.parameters()) == (5 * 32 + 32) + 2 * 32 + (32 * 16 + 16)
    concat = RelationEmbedding(16, hidden=32, join="concat")
    assert sum(p.numel() for p in concat.parameters()) == (5 * 32 + 32) + 2 * 32 + (32 * 16 + 16) + (32 * 16 + 16)
    gen = torch.Generator().manual_seed(6)
    right, left = (b.float() for b in near_boxes(gen, 3))
    inputs = relation_inputs(right, left, (4, 3), tau=2.5)
    torch.testing.assert_close(embedding.embed(right, left, (4, 3))[0], embedding.mlp(inputs[0]))
    with pytest.raises(ValueError):
        RelationEmbedding(16, join="sum")


@pytest.mark.parametrize("join", ["add", "concat"])
def test_embedding_is_shared_and_mirror_equivariant(join):
    torch.manual_seed(7)
    gen = torch.Generator().manual_seed(7)
    grid, c = (4, 3), 8
    embedding = RelationEmbedding(c, join=join)
    tokens_right, tokens_left = make_tokens(gen, 3, grid, c)
    right, left = (b.float() for b in near_boxes(gen, 3))
    # Identical boxes and tokens: both hands get identical inputs, so one shared MLP must
    # give identical outputs (two MLPs would not).
    out_right, out_left = embedding(tokens_right, tokens_right, right, right)
    torch.testing.assert_close(out_right, out_left)
    # Left hand here == right hand of the mirrored image (tokens swap roles with it).
    mirrored = mirror_boxes(left, 512.0), mirror_boxes(right, 512.0)
    out_right, out_left = embedding(tokens_right, tokens_left, right, left)
    m_right, m_left = embedding(tokens_left, tokens_right, *mirrored)
    torch.testing.assert_close(out_left, m_right)
    torch.testing.assert_close(out_right, m_left)


@pytest.mark.parametrize("join", ["add", "concat"])
def test_gradients_reach_the_mlp(join):
    torch.manual_seed(8)
    gen = torch.Generator().manual_seed(8)
    embedding = RelationEmbedding(8, join=join)
    tokens_right, tokens_left = (t.requires_grad_() for t in make_tokens(gen, 2, (4, 3), 8))
    right, left = (b.float() for b in near_boxes(gen, 2))
    out_right, out_left = embedding(tokens_right, tokens_left, right, left)
    (out_right.square().sum() + out_left.pow(3).sum()).backward()
    for name, p in embedding.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert tokens_right.grad.abs().sum() > 0 and tokens_left.grad.abs().sum() > 0
