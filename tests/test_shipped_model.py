"""The shipped checkpoint is accurate, not merely runnable: on a small fixed synthetic clip
it beats the split-mean references by a margin, so that a preprocessing regression
(normalisation, crop expansion, mirroring, upright turn, camera conversion) fails the
suite."""

import pytest

from fourdhands.checkpoint import load_checkpoint, trained_gap
from fourdhands.evaluate import predict_split, split_metrics
from fourdhands.run import SHIPPED_CHECKPOINT
from fourdhands.synth.generate import generate

pytestmark = pytest.mark.skipif(not SHIPPED_CHECKPOINT.is_dir(), reason="the shipped checkpoint is not installed")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    # 12 short sequences of the interacting split (its default seed), 24 windows of them
    data = tmp_path_factory.mktemp("clip") / "interacting"
    generate(data, sequences=12, frames=4, seed=1001, split="interacting", progress=False)
    net = load_checkpoint(SHIPPED_CHECKPOINT)
    return split_metrics(predict_split(net, data, trained_gap(SHIPPED_CHECKPOINT), batch_size=8, frames=24))["mean"]


def test_the_shipped_model_beats_the_split_mean_references(table):
    # Measured on this clip (ratios to the reference): wrist-aligned MPJPE 0.55, orientation
    # 0.49, Procrustes-aligned MPJPE 0.38, MRRPE of the placed hands 0.70. Feeding the left
    # crop unmirrored gives 0.70 / 0.72 / 0.41 / 0.66; the first two bounds sit between. The
    # MRRPE rose from 0.62 when the generator stopped letting the hands pass into each other
    # (the checkpoint learned from hands that did); its bound only keeps it from getting worse.
    m = table
    assert m["mpjpe_wrist"] < 0.62 * m["mean_pose_mpjpe"], m
    assert m["orient"] < 0.6 * m["mean_orient"], m
    assert m["pa_mpjpe"] < 0.5 * m["mean_pose_pa_mpjpe"], m
    assert m["mrrpe_placed"] < 0.75 * m["mean_v_mrrpe"], m
