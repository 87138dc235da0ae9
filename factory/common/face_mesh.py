"""MediaPipe's 468-point 3-D face mesh (Apache-2.0) for pose and expression measurements.

The model file ships inside the `mediapipe==0.10.14` wheel, which is not installed (it pulls jax and
a numpy-1 build): `python -m factory.common.face_mesh` — a set-up step run by `.ci/run` and the README —
downloads that wheel from the package registry and extracts only `face_landmark.tflite` into
`$SWAP_FACTORY_MODELS` (default `<repo>/.models`, ignored by git). It runs with `ai-edge-litert`.

All crops share one 5-point alignment, so 5 points cannot tell people or expressions apart; the dense
mesh can: head pose (yaw, pitch, roll of the rotation between two meshes) and expression (mesh
distance once a 3-D similarity transform is removed, in inter-ocular units).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile

import cv2
import numpy as np

from factory.common.masks import EYE_CORNERS, blend, face_mask, mesh_mask
from factory.common.paths import REPO_ROOT

WHEEL = "mediapipe==0.10.14"
MEMBER = "mediapipe/modules/face_landmark/face_landmark.tflite"


def models_dir() -> str:
    return os.environ.get("SWAP_FACTORY_MODELS", str(REPO_ROOT / ".models"))


def mesh_model_path() -> str:
    path = os.path.join(models_dir(), "face_landmark.tflite")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: run `python -m factory.common.face_mesh` once (set-up step; it "
                                f"extracts the face-mesh model from the {WHEEL} wheel)")
    return path


def install(dest: str | None = None) -> str:
    """Download the mediapipe wheel (no dependencies, not installed) and extract the mesh model."""
    dest = dest or models_dir()
    os.makedirs(dest, exist_ok=True)
    target = os.path.join(dest, "face_landmark.tflite")
    if os.path.exists(target):
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, WHEEL], check=True)
        wheel = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl"))
        with zipfile.ZipFile(wheel) as z, open(target + ".part", "wb") as f:
            f.write(z.read(MEMBER))
    os.replace(target + ".part", target)
    return target


class FaceMesh:
    """468 3-D landmarks of canonical face crops (uint8 RGB, any size), in crop pixels."""

    INPUT = 192

    def __init__(self, path: str | None = None, margin: float = 0.25):
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=path or mesh_model_path(), num_threads=1)
        self.interp.allocate_tensors()
        self.input = self.interp.get_input_details()[0]["index"]
        outs = self.interp.get_output_details()
        self.points = next(o["index"] for o in outs if int(np.prod(o["shape"])) == 1404)
        self.score = next(o["index"] for o in outs if int(np.prod(o["shape"])) == 1)
        self.margin = margin

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """(468 x 3 points in the crop's pixels, face-presence probability). The canonical crop is
        padded by `margin` on every side (the model expects a face with some context)."""
        size = image.shape[0]
        pad = int(round(self.margin * size))
        canvas = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        scale = self.INPUT / canvas.shape[0]
        x = cv2.resize(canvas, (self.INPUT, self.INPUT), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        self.interp.set_tensor(self.input, x[None])
        self.interp.invoke()
        pts = self.interp.get_tensor(self.points).reshape(468, 3) / scale
        pts[:, :2] -= pad
        logit = float(self.interp.get_tensor(self.score).ravel()[0])
        return pts, 1.0 / (1.0 + np.exp(-logit))


_SHARED: dict[int, FaceMesh] = {}


def shared_mesh() -> FaceMesh:
    """One interpreter per process (DataLoader workers and generation ranks each build their own)."""
    pid = os.getpid()
    if pid not in _SHARED:
        _SHARED[pid] = FaceMesh()
    return _SHARED[pid]


def region_mask(image: np.ndarray, landmarks: np.ndarray, region: str = "face", grow: float = 1.0,
                feather: float = 0.08, min_score: float = 0.5) -> tuple[np.ndarray, bool]:
    """(soft mask of a mesh region of a canonical crop, True) — or, when the mesh finds no face
    (presence < `min_score`), (the 5-landmark ellipse, False) so the caller can count the fallback."""
    points, score = shared_mesh()(image)
    if score < min_score:
        return face_mask(landmarks, image.shape[0]), False
    return mesh_mask(points, image.shape[0], region, grow, feather), True


def similarity_align(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Least-squares 3-D similarity (Umeyama): rotation R, scale s, translation t with s·R·src + t ≈ dst."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rot = u @ fix @ vt
    scale = float((sig * np.diag(fix)).sum() / (a ** 2).sum())
    return rot, scale, mu_d - scale * rot @ mu_s


def euler_degrees(rot: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees of a rotation matrix (y-axis yaw, x-axis pitch, z-axis roll)."""
    yaw = np.degrees(np.arcsin(np.clip(-rot[2, 0], -1, 1)))
    pitch = np.degrees(np.arctan2(rot[2, 1], rot[2, 2]))
    roll = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
    return np.array([yaw, pitch, roll])


def pose_expression_error(mesh: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, float]:
    """|yaw, pitch, roll| (degrees) of the rotation from `reference` to `mesh`, and the expression
    distance: mean point distance after the best similarity transform, in reference inter-ocular units."""
    rot, scale, t = similarity_align(mesh, reference)
    moved = scale * mesh @ rot.T + t
    iod = np.linalg.norm(reference[EYE_CORNERS[0], :2] - reference[EYE_CORNERS[1], :2])
    return np.abs(euler_degrees(rot)), float(np.linalg.norm(moved - reference, axis=1).mean() / max(iod, 1e-6))


if __name__ == "__main__":
    print(install())


def swap_mask(target: np.ndarray, landmarks: np.ndarray, kind: str = "mesh") -> np.ndarray:
    """The region a swap replaces in `target`: the face mesh's hull (`mesh`; the ellipse when the mesh
    finds no face) or the 5-landmark ellipse (`ellipse`)."""
    if kind == "mesh":
        return region_mask(target, landmarks)[0]
    if kind == "ellipse":
        return face_mask(landmarks, target.shape[0])
    raise ValueError(f"unknown swap mask {kind!r}: mesh or ellipse")


def blend_into_targets(faces, targets, target_lms, mask: str = "mesh") -> list[tuple[np.ndarray, np.ndarray]]:
    """Generated faces (uint8 HxWx3) blended into their targets with each target's soft face mask:
    (fake, mask) as the factory ships them (also what the swap evaluation scores)."""
    result = []
    for face, target, lm in zip(faces, targets, target_lms):
        m = swap_mask(target, lm, mask)
        result.append((blend(face, target, m), m))
    return result
