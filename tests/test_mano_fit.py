"""Dataset MANO fits into this project's parameters, against the fit posed the dataset's
way (smplx's mean-relative pose, in the fit's frame) and moved to the camera by hand."""

import numpy as np
import pytest
import torch
from _mano_fixture import random_mano_data
from scipy.spatial.transform import Rotation

from fourdhands.hands.mano_fit import fit_to_camera
from fourdhands.hands.model import HandModel


@pytest.fixture(scope="module")
def models():
    data = random_mano_data(seed=3)
    data["hands_mean"] = np.random.default_rng(1).normal(0, 0.2, 45)
    return (HandModel(data, "right", flat_hand_mean=True, dtype=torch.float64),
            HandModel(data, "right", flat_hand_mean=False, dtype=torch.float64))


def _fits(n=4, seed=0):
    rng = np.random.default_rng(seed)
    pose = rng.normal(0, 0.4, (n, 48))
    betas = rng.normal(0, 1, (n, 10))
    transl = rng.normal(0, 0.3, (n, 3))
    R = Rotation.random(n, random_state=seed).as_matrix()
    t = rng.normal(0, 1, (n, 3))
    return pose, betas, transl, R, t


def test_the_converted_fit_gives_the_fits_vertices_in_the_camera(models):
    ours, theirs = models
    pose, betas, transl, R, t = _fits()
    world = theirs(global_orient=torch.tensor(pose[:, :3]), hand_pose=torch.tensor(pose[:, 3:]),
                   betas=torch.tensor(betas), transl=torch.tensor(transl)).vertices.numpy()
    want = np.einsum("nij,nvj->nvi", R, world) + t[:, None]
    p = fit_to_camera(ours, pose, betas, transl, R, t, mean_relative=True)
    got = ours(**{k: torch.tensor(v) for k, v in p.items()}).vertices.numpy()
    np.testing.assert_allclose(got, want, atol=1e-10)
    # an absolute (flat-mean) pose gains nothing
    q = fit_to_camera(ours, pose, betas, transl, R, t, mean_relative=False)
    np.testing.assert_allclose(q["hand_pose"], pose[:, 3:], atol=0)


def test_an_unknown_translation_puts_the_wrist_on_the_annotated_one(models):
    ours, _ = models
    pose, betas, transl, R, t = _fits(seed=1)
    transl[1] = np.nan
    wrist = np.tile([0.05, -0.02, 0.6], (4, 1))
    p = fit_to_camera(ours, pose, betas, transl, R, t, mean_relative=True, wrist=wrist)
    out = ours(**{k: torch.tensor(v) for k, v in p.items()})
    np.testing.assert_allclose(out.keypoints[1, 0].numpy(), wrist[1], atol=1e-12)
    assert not np.allclose(out.keypoints[0, 0].numpy(), wrist[0])  # known translations are kept


def test_a_pca_fit_uses_the_models_components(models):
    ours, theirs = models
    pose, betas, transl, R, t = _fits(seed=2)
    components = ours.hands_components.numpy()
    fingers = pose[:, 3:] @ components  # the 45 PCA coefficients, by hand
    world = theirs(global_orient=torch.tensor(pose[:, :3]), hand_pose=torch.tensor(fingers),
                   betas=torch.tensor(betas), transl=torch.tensor(transl)).vertices.numpy()
    want = np.einsum("nij,nvj->nvi", R, world) + t[:, None]
    p = fit_to_camera(ours, pose, betas, transl, R, t, mean_relative=True, pca=True)
    got = ours(**{k: torch.tensor(v) for k, v in p.items()}).vertices.numpy()
    np.testing.assert_allclose(got, want, atol=1e-10)
