"""Mesh masks, piecewise-affine warping and the mesh methods (morph, reenact, partial) on real faces."""
import numpy as np
import pytest

from factory.common.face_mesh import euler_degrees, shared_mesh, similarity_align
from factory.common.images import resize
from factory.common.masks import REGIONS, mesh_mask
from factory.dataset.mesh_methods import INNER_LIPS, STABLE, Morph, Partial, Reenact
from factory.dataset.mesh_warp import apply_2d, similarity_2d, warp, with_border
from factory.dataset.methods import Pair
from factory.ingest.facedata import decode, load_faces


def _faces(small_faces, n=6, size=64):
    items = load_faces(str(small_faces["dir"]), "train", ["celeba-wild", "celeba-aligned"])
    picked, seen = [], set()
    for it in items:  # different people
        if it["meta"]["identity"] not in seen:
            seen.add(it["meta"]["identity"])
            picked.append(it)
    return [(resize(decode(it["jpg"]), size), np.asarray(it["meta"]["landmarks"], np.float32) * size / 128)
            for it in picked[:n]]


def _pairs(faces, k=3):
    return [Pair(faces[i][0], faces[-1 - i][0], faces[i][1], faces[-1 - i][1], np.random.default_rng(i)) for i in range(k)]


def test_region_masks_lie_inside_the_face(small_faces):
    face, _ = _faces(small_faces, 1)[0]
    pts = shared_mesh()(face)[0]
    whole = mesh_mask(pts, 64, "face")
    assert 0.25 < whole.mean() < 0.75
    for region in set(REGIONS) - {"face"}:
        m = mesh_mask(pts, 64, region, grow=1.5, feather=0.06)
        assert m.max() > 0.9, region  # small regions survive the feathering
        assert (m * (whole < 0.05)).sum() < 0.05 * m.sum(), region
    with pytest.raises(ValueError, match="unknown mesh region"):
        mesh_mask(pts, 64, "ears")


def test_warp_is_identity_on_equal_meshes_and_moves_content(small_faces):
    face, _ = _faces(small_faces, 1)[0]
    pts = with_border(shared_mesh()(face)[0], 64)
    np.testing.assert_allclose(warp(face, pts, pts).astype(float), face.astype(float), atol=1.01)
    moved = pts.copy()
    moved[:468] += [3.0, 0.0]  # the face moves 3 px right, the border stays
    shifted = warp(face, pts, moved)
    centre = slice(24, 40)
    np.testing.assert_allclose(shifted[centre, 27:37].astype(float), face[centre, 24:34].astype(float), atol=3)
    m = np.array([[np.cos(0.2), -np.sin(0.2), 5], [np.sin(0.2), np.cos(0.2), -2]]) * [[1.3], [1.3]]
    np.testing.assert_allclose(apply_2d(similarity_2d(pts[:468], apply_2d(m, pts[:468])), pts), apply_2d(m, pts), atol=1e-3)


def test_morph_weights_the_two_faces_by_alpha(small_faces):
    faces = _faces(small_faces)
    pairs = _pairs(faces)
    for alpha, close in ((0.0, "target"), (1.0, "source")):
        for p, (fake, mask, info) in zip(pairs, Morph(alpha=(alpha, alpha))(pairs)):
            assert info["alpha"] == alpha
            inside = mask > 0.5
            d_t = np.abs(fake.astype(float) - p.target)[inside].mean()
            d_s = np.abs(fake.astype(float) - p.source)[inside].mean()
            assert (d_t < d_s) == (close == "target"), (alpha, d_t, d_s)
    drawn = [info["alpha"] for _, _, info in Morph()(pairs)]
    assert all(0.3 <= a <= 0.7 for a in drawn) and len(set(drawn)) == len(drawn)


def test_reenactment_moves_the_targets_expression_to_the_sources(small_faces):
    """Re-measured on the output image, the mouth and eyes lie closer to the (aligned) source's than the
    target's did, while the head keeps its pose."""
    faces = _faces(small_faces)
    pairs = _pairs(faces)
    mesh = shared_mesh()
    expr = sorted({i for r in ("mouth", "eyes") for part in REGIONS[r] for i in part} | set(INNER_LIPS))
    before, after, pose = [], [], []
    for p, (fake, _, info) in zip(pairs, Reenact()(pairs)):
        mt, ms, mo = (mesh(im)[0] for im in (p.target, p.source, fake))
        rot, scale, shift = similarity_align(ms[list(STABLE)], mt[list(STABLE)])  # the source in the target's pose
        src = (scale * ms @ rot.T + shift)[:, :2]
        mt, mo = mt[:, :2], mo[:, :2]
        before.append(np.linalg.norm(mt[expr] - src[expr], axis=1).mean())
        after.append(np.linalg.norm(mo[expr] - src[expr], axis=1).mean())
        rot = similarity_align(mesh(fake)[0][list(STABLE)], mesh(p.target)[0][list(STABLE)])[0]
        pose.append(np.abs(euler_degrees(rot)).mean())  # head pose from the skull's points
    assert np.mean(after) < 0.75 * np.mean(before), (before, after)
    assert np.mean(pose) < 2.0, pose  # the head keeps its pose (degrees)


def test_partial_records_region_and_donor_and_edits_only_it(small_faces, tiny_swapper_ckpt):
    faces = _faces(small_faces)
    method = Partial(regions=("mouth",), donors=("source", "swap"), checkpoint=tiny_swapper_ckpt)
    pairs = _pairs(faces, 6)
    out = method(pairs)
    assert {info["donor"] for _, _, info in out} == {"source", "swap"}
    for p, (fake, mask, info) in zip(pairs, out):
        assert info["region"] == "mouth"
        diff = np.abs(fake.astype(float) - p.target).mean(2)
        assert diff[mask == 0].max() == 0 and diff[mask > 0.5].mean() > 1.0
        assert mask[32:, :].sum() > 0.9 * mask.sum()  # the mouth is in the lower half
    with pytest.raises(ValueError, match="regions"):
        Partial(regions=("face",))
