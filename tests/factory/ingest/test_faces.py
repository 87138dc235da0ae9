import numpy as np
import pytest

from factory.ingest.faces import align, similarity_matrix, template, transform_points


def test_similarity_matrix_recovers_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    m = similarity_matrix(src, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)
    np.testing.assert_allclose(transform_points(m, src), dst, atol=1e-9)


def test_similarity_matrix_never_reflects():
    src = template(100)
    dst = src * np.array([-1.0, 1.0])  # mirror image: best similarity is not a reflection
    m = similarity_matrix(src, dst)
    assert np.linalg.det(m[:, :2]) > 0


@pytest.mark.parametrize("size", [64, 128])
def test_align_puts_landmarks_on_template(size):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (400, 500, 3), dtype=np.uint8)
    pts = template(size) * 2.3 + np.array([90.0, 40.0])
    crop, m, oob = align(image, pts, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(transform_points(m, pts), template(size), atol=1e-6)
    assert oob == 0.0


def test_align_reports_out_of_frame_share():
    image = np.full((100, 100, 3), 128, np.uint8)
    pts = template(100) + np.array([60.0, 0.0])  # face pushed past the right edge
    _, _, oob = align(image, pts, 100)
    assert 0.5 < oob < 0.7
