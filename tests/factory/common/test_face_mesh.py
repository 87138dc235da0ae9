"""The dense face mesh finds real faces and measures pose and expression change correctly."""
import cv2
import numpy as np
import pytest

from factory.common.face_mesh import FaceMesh, euler_degrees, pose_expression_error, similarity_align
from factory.ingest.facedata import decode, load_faces


def test_similarity_align_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(468, 3))
    a = np.radians(20)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    moved = 1.7 * pts @ rot.T + [1, 2, 3]
    r, s, t = similarity_align(pts, moved)
    np.testing.assert_allclose(r, rot, atol=1e-8)
    assert s == pytest.approx(1.7)
    assert euler_degrees(rot)[2] == pytest.approx(20.0)
    angles, expr = pose_expression_error(moved, pts)
    assert angles[2] == pytest.approx(20.0) and expr == pytest.approx(0.0, abs=1e-9)


@pytest.mark.slow
def test_mesh_on_real_faces_pose_and_expression(small_faces):
    mesh = FaceMesh()
    items = load_faces(str(small_faces["dir"]), "train", ["celeba-wild"])[:6]
    faces = [cv2.resize(decode(it["jpg"]), (64, 64), interpolation=cv2.INTER_AREA) for it in items]
    found = [mesh(f) for f in faces]
    assert all(p > 0.5 for _, p in found)
    pts = found[0][0]
    assert pts.shape == (468, 3)
    # the eyes' mesh points land near the canonical crop's eye landmarks
    lm = np.asarray(items[0]["meta"]["landmarks"]) * 64 / 128
    assert np.linalg.norm(pts[[33, 133]].mean(0)[:2] - lm[0]) < 6 and np.linalg.norm(pts[[263, 362]].mean(0)[:2] - lm[1]) < 6
    # a face against itself: no error; rotated by 12 degrees in the image plane: roll of about 12
    same, expr = pose_expression_error(pts, pts)
    assert same.max() < 1e-3 and expr < 1e-5
    rot = cv2.warpAffine(faces[0], cv2.getRotationMatrix2D((32, 32), 12, 1.0), (64, 64), borderMode=cv2.BORDER_REPLICATE)
    angles, expr = pose_expression_error(mesh(rot)[0], pts)
    assert 8 < angles[2] < 16 and angles[:2].max() < 6 and expr < 0.08
    # other people differ in expression/shape more than the same face re-rendered does
    others = [pose_expression_error(m, pts)[1] for m, _ in found[1:]]
    assert np.mean(others) > expr * 0.5
