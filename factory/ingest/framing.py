"""How a canonical crop frames its face, judged by MediaPipe's face mesh — a landmark model independent
of MTCNN, which did the aligning — so sources framed differently by the detector can be told apart."""
from __future__ import annotations

import numpy as np

from factory.common.face_mesh import shared_mesh
from factory.ingest.faces import similarity_matrix, template

# mesh points matching the template's eye centres (corner midpoints) and mouth corners
EYES = ((33, 133), (362, 263))
MOUTH = (61, 291)


def mesh_points(points: np.ndarray) -> np.ndarray:
    """Eye centres and mouth corners (4 x 2) of a 468-point mesh, in the template's order."""
    eyes = [points[list(pair), :2].mean(0) for pair in EYES]
    return np.stack(eyes + [points[MOUTH[0], :2], points[MOUTH[1], :2]])


def framing(image: np.ndarray) -> tuple[float, float, float] | None:
    """(scale, dx, dy) of the template fitted onto the face's mesh points — scale 1 and no shift is a face
    on the template; shifts are shares of the crop (dy > 0: lower) — or None when the mesh finds no face."""
    points, score = shared_mesh()(image)
    if score < 0.5:
        return None
    size = image.shape[0]
    ref = template(size)[[0, 1, 3, 4]]
    m = similarity_matrix(ref, mesh_points(points))
    centre = ref.mean(0)
    shift = (m[:, :2] @ centre + m[:, 2] - centre) / size
    return float(np.hypot(m[0, 0], m[1, 0])), float(shift[0]), float(shift[1])
