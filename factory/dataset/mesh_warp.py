"""Piecewise-affine warping on the dense face mesh: move an image so its mesh points land on others.

The image frame is triangulated (Delaunay) over the mesh points plus fixed points on the border, so
the whole crop warps and its edge stays put; each output pixel is mapped back through the affine map
of the triangle it lies in (one `cv2.remap` for the whole image).
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay


def border_points(size: int, per_side: int = 4) -> np.ndarray:
    """Fixed points along the crop's edge (corners included)."""
    t = np.linspace(0, size - 1, per_side + 1)
    edge = [(x, 0) for x in t] + [(x, size - 1) for x in t] + [(0, y) for y in t[1:-1]] + [(size - 1, y) for y in t[1:-1]]
    return np.asarray(edge, np.float64)


def with_border(points: np.ndarray, size: int) -> np.ndarray:
    """Mesh points (N x 2+, pixels) clipped into the crop, followed by the border points."""
    inner = np.clip(np.asarray(points, np.float64)[:, :2], 0, size - 1)
    return np.concatenate([inner, border_points(size)])


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles (T x 3 point indices) of 2-D points."""
    return Delaunay(points).simplices


def warp(image: np.ndarray, src: np.ndarray, dst: np.ndarray, triangles: np.ndarray | None = None) -> np.ndarray:
    """`image` (HxWx3, square) warped so that its points `src` move to `dst` (both N x 2, already
    including border points); triangles are taken on `dst` unless given."""
    size = image.shape[0]
    tris = triangulate(dst) if triangles is None else triangles
    index = np.full((size, size), -1, np.int32)
    for k, tri in enumerate(tris):  # which destination triangle each pixel centre lies in
        cv2.fillConvexPoly(index, np.round(dst[tri] * 16).astype(np.int32), int(k), cv2.LINE_8, 4)
    maps = np.zeros((len(tris), 2, 3), np.float64)
    for k, tri in enumerate(tris):
        maps[k] = cv2.getAffineTransform(dst[tri].astype(np.float32), src[tri].astype(np.float32))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    a = maps[np.maximum(index, 0)]
    map_x = a[..., 0, 0] * xs + a[..., 0, 1] * ys + a[..., 0, 2]
    map_y = a[..., 1, 0] * xs + a[..., 1, 1] * ys + a[..., 1, 2]
    outside = index < 0  # (only on degenerate meshes) keep the pixel where it is
    map_x[outside], map_y[outside] = xs[outside], ys[outside]
    return cv2.remap(image, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT_101)


def similarity_2d(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, shift) taking points `src` onto `dst`."""
    matrix, _ = cv2.estimateAffinePartial2D(np.asarray(src, np.float32)[:, :2], np.asarray(dst, np.float32)[:, :2],
                                            method=cv2.LMEDS)
    return matrix if matrix is not None else np.array([[1, 0, 0], [0, 1, 0]], np.float64)


def apply_2d(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """2x3 affine applied to N x 2+ points (the extra columns are dropped)."""
    p = np.asarray(points, np.float64)[:, :2]
    return p @ matrix[:, :2].T + matrix[:, 2]
