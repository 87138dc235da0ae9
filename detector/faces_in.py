"""Faces for detectors from any image: detected and aligned exactly as the factory does
(MTCNN, 5-point similarity to the template at the store size), then brought to the dataset's size
and JPEG encoding; every unusable image is returned with its reason, never dropped silently."""
from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np

from factory.common.images import Skip, load_rgb
from factory.ingest.faces import FaceDetector, align, detect_padded, find_face
from factory.ingest.prepare import AlignConfig

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def canonical(crop: np.ndarray, size: int, jpeg_quality: int) -> np.ndarray:
    """Store-size crop → the dataset's size and encoding (the path every factory sample takes)."""
    from factory.common.images import resize
    from factory.common.shards import encode_jpeg
    from factory.ingest.facedata import decode

    return decode(encode_jpeg(resize(crop, size), jpeg_quality))


def iou(a, b) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0


def list_images(folder: str) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs if f.lower().endswith(IMAGE_EXT)
                  or not os.path.splitext(f)[1])


class FaceReader:
    def __init__(self, size: int = 64, jpeg_quality: int = 95, align_cfg: AlignConfig | dict | None = None):
        if isinstance(align_cfg, dict) or align_cfg is None:  # tight face crops are accepted: searched with
            # AlignConfig's black border (MTCNN mislocates faces that fill the frame), aligned with reflect padding
            align_cfg = AlignConfig(**{"allow_grey": True, "max_out_of_frame": 0.8, **(align_cfg or {})})
        self.cfg = align_cfg
        self.size, self.quality = size, jpeg_quality
        self.detector = FaceDetector(min_face_size=self.cfg.min_face_size)

    def dominant(self, path: str) -> tuple[np.ndarray, float]:
        """The image's main face as a canonical crop and its padded share (the part of the crop that lies
        outside the image and is filled by reflection, as for UTKFace's tight crops), or Skip."""
        image, _ = load_rgb(path, min_side=self.cfg.min_image_side, allow_grey=self.cfg.allow_grey)
        return self.dominant_in(image)

    def dominant_in(self, image: np.ndarray, box=None) -> tuple[np.ndarray, float]:
        """`dominant` on a decoded RGB image; with `box`, the confident face overlapping it most (the
        labelled face of a full image with several people)."""
        if box is None:
            face = find_face(self.detector, image, True, self.cfg.min_score, self.cfg.min_eye_distance,
                             detect_pad=self.cfg.detect_pad)
        else:
            found = [(iou(f.box, box), f) for f in detect_padded(self.detector, image, self.cfg.detect_pad)
                     if f.score >= self.cfg.min_score]
            overlap, face = max(found, key=lambda t: t[0], default=(0.0, None))
            if overlap < 0.3:
                raise Skip("labelled_face_not_found", f"no confident face overlaps the labelled box (best IoU {overlap:.2f})")
        crop, _, oob = align(image, face.landmarks, self.cfg.size)
        if oob > self.cfg.max_out_of_frame:
            raise Skip("face_cut_off", f"{oob:.0%} of the crop lies outside the photo (align.max_out_of_frame "
                                       f"{self.cfg.max_out_of_frame})")
        return canonical(crop, self.size, self.quality), oob

    def all_faces(self, path: str) -> list[tuple[np.ndarray, list[float]]]:
        """Every confident face of an image (crop, box), largest first; Skip if none."""
        image, _ = load_rgb(path, min_side=self.cfg.min_image_side, allow_grey=self.cfg.allow_grey)
        faces = [f for f in detect_padded(self.detector, image, self.cfg.detect_pad) if f.score >= self.cfg.min_score
                 and f.eye_distance >= self.cfg.min_eye_distance]
        if not faces:
            find_face(self.detector, image, True, self.cfg.min_score, self.cfg.min_eye_distance,
                      detect_pad=self.cfg.detect_pad)  # raises the reason
        out = []
        for f in sorted(faces, key=lambda f: -f.area):
            crop, _, oob = align(image, f.landmarks, self.cfg.size)
            if oob <= self.cfg.max_out_of_frame:
                out.append((canonical(crop, self.size, self.quality), [round(float(v), 1) for v in f.box]))
        if not out:
            raise Skip("face_cut_off", f"every face lies more than {self.cfg.max_out_of_frame:.0%} outside the image")
        return out

    def folder(self, root: str) -> tuple[np.ndarray, np.ndarray, list[dict], dict]:
        """`root/real` and `root/fake` → faces, labels, per-face metadata and a skip report."""
        faces, labels, metas, skips = [], [], [], []
        for label, sub in ((0, "real"), (1, "fake")):
            folder = os.path.join(root, sub)
            if not os.path.isdir(folder):
                raise FileNotFoundError(f"{root} needs real/ and fake/ sub-folders (missing {sub}/)")
            for path in list_images(folder):
                try:
                    face, padded = self.dominant(path)
                except Skip as s:
                    skips.append({"file": os.path.relpath(path, root), "reason": s.reason, "detail": s.detail})
                    continue
                faces.append(face)
                labels.append(label)
                metas.append({"label": label, "method": "real" if label == 0 else "unknown", "file":
                              os.path.relpath(path, root), "perturbation": {"type": "none", "level": 0},
                              "padded": round(padded, 4)})
        padded = np.array([m["padded"] for m in metas])
        report = {"images": len(faces) + len(skips), "faces": len(faces), "skipped": len(skips),
                  "skipped_by_reason": dict(Counter(s["reason"] for s in skips)), "skips": skips,
                  "padded": {"mean": float(padded.mean()) if len(padded) else 0.0,
                             "faces_over_10pct": int((padded > 0.1).sum()), "max": float(padded.max()) if len(padded) else 0.0}}
        stack = np.stack(faces) if faces else np.zeros((0, self.size, self.size, 3), np.uint8)
        return stack, np.array(labels, int), metas, report

    def shards(self, root: str, split: str, key: str = "image.jpg", limit: int | None = None):
        """Full images (`<key>` of each factory sample, e.g. the `image.jpg` of `generate output=image`) →
        faces found and aligned as in any photo, labels, the samples' metadata and a skip report."""
        from factory.common.shards import iter_samples
        from factory.ingest.facedata import decode

        faces, metas, skips = [], [], []
        for sample in iter_samples(root, split, decode=False):
            meta = json.loads(sample["json"])
            if key not in sample:
                raise KeyError(f"{root} [{split}] has no {key!r} entries (made with generate output=face?)")
            try:
                face, padded = self.dominant_in(decode(sample[key]), (meta.get("image") or {}).get("box"))
            except Skip as s:
                skips.append({"file": meta["key"], "method": meta["method"], "reason": s.reason, "detail": s.detail})
                continue
            faces.append(face)
            metas.append({**meta, "padded": round(padded, 4)})
            if limit and len(faces) >= limit:
                break
        if not faces:
            raise ValueError(f"no face found in any {key} of {root} split {split}")
        report = {"images": len(faces) + len(skips), "faces": len(faces), "skipped": len(skips),
                  "skipped_by_reason": dict(Counter(s["reason"] for s in skips)),
                  "skipped_by_method": dict(Counter(s["method"] for s in skips)), "skips": skips}
        return np.stack(faces), np.array([m["label"] for m in metas], int), metas, report
