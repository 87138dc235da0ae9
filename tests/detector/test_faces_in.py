"""Tight face crops (the usual format of public deepfake sets) are faces too: accepted, padded share recorded."""
import cv2

from benchmarks.tight_crops import tight_crop
from detector.faces_in import FaceReader
from factory.ingest.facedata import decode, load_faces


def test_tight_crops_are_accepted_and_their_padding_recorded(small_faces, tmp_path):
    items = load_faces(str(small_faces["dir"]), "train", ["celeba-wild"])[:8]
    for i, it in enumerate(items):
        sub = tmp_path / ("real" if i % 2 == 0 else "fake")
        sub.mkdir(exist_ok=True)
        cv2.imwrite(str(sub / f"{i}.jpg"), cv2.cvtColor(tight_crop(decode(it["jpg"])), cv2.COLOR_RGB2BGR))
    faces, labels, metas, report = FaceReader(64, 95).folder(str(tmp_path))
    assert report["skipped"] <= 1, report["skipped_by_reason"]  # the old 35 % limit skipped most of them
    assert faces.shape[1:] == (64, 64, 3) and len(faces) == len(labels) == len(metas)
    assert all(0.1 < m["padded"] <= 0.8 for m in metas)
    assert report["padded"]["faces_over_10pct"] == len(metas) and 0.1 < report["padded"]["mean"] < 0.8
    strict = FaceReader(64, 95, {"max_out_of_frame": 0.05}).folder(str(tmp_path))[3]
    assert strict["skipped_by_reason"].get("face_cut_off", 0) >= len(metas) - 1  # the limit is configurable
