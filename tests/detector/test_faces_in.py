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


def test_tight_crops_are_framed_as_the_factory_frames_faces(small_faces):
    """MTCNN mislocates the landmarks of a face that fills the frame (too large, too high), so a tight
    crop would come back smaller and lower in the canonical crop than the factory's own faces — a framing
    cue a detector reads. Searched on a black-bordered copy (`align.detect_pad`), they land on the template."""
    import numpy as np

    from factory.ingest.faces import FaceDetector, detect_padded, similarity_matrix, template

    size, keep = 128, 0.8
    b = int(round(size * keep))
    x0, y0 = (size - b) // 2, int(np.clip(round(size * 0.55 - b / 2), 0, size - b))
    truth = (template(size) - (x0, y0)) * 224 / b  # the template's points in the 224 px tight crop
    detector = FaceDetector()
    errors = {0.0: [], 0.25: []}
    for it in load_faces(str(small_faces["dir"]), "train", ["celeba-wild"])[:8]:
        crop = tight_crop(decode(it["jpg"]), keep)
        for pad in errors:
            found = max(detect_padded(detector, crop, pad), key=lambda f: f.area).landmarks
            m = similarity_matrix(truth, found)
            errors[pad].append((abs(np.sqrt(abs(np.linalg.det(m[:, :2]))) - 1),
                                np.abs(found.mean(0) - truth.mean(0)).max() / 224))
    scale, shift = {p: np.median(e, axis=0) for p, e in errors.items()}[0.25]
    assert scale < 0.08 and shift < 0.04, errors[0.25]
    assert np.median(errors[0.0], axis=0)[0] > 2 * scale  # without the border, the bias this guards against
