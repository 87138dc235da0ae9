"""Training augmentation: the degrade option applies one of the factory's perturbations, and the reframe option
moves the face in the crop, both seeded."""
import numpy as np

from detector.data import train_augment
from factory.common.images import load_rgb, resize


def test_degrade_applies_a_factory_perturbation_reproducibly(data_dir):
    face = resize(load_rgb(str(sorted((data_dir / "utkface" / "images").iterdir())[0]))[0], 64)
    flipped = face[:, ::-1]

    def untouched(out):  # the horizontal flip (p 0.5) is the one transform left on at strength 0
        return np.array_equal(out, face) or np.array_equal(out, flipped)

    plain = train_augment(strength=0.0, degrade=0.0)
    plain.set_random_seed(0)
    assert all(untouched(plain(image=face)["image"]) for _ in range(8))
    runs = []
    for _ in range(2):
        aug = train_augment(strength=0.0, degrade=1.0)
        aug.set_random_seed(3)
        runs.append([aug(image=face)["image"] for _ in range(4)])
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
    assert sum(not untouched(out) for out in runs[0]) >= 3


def test_reframe_moves_the_face_in_the_crop_reproducibly(data_dir):
    """Re-framing shifts and scales the face (as a re-detected alignment would), seeded; at 0 it is off."""
    import cv2

    face = resize(load_rgb(str(sorted((data_dir / "utkface" / "images").iterdir())[0]))[0], 64)
    grey = np.float32(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY))
    runs, shifts = [], []
    for _ in range(2):
        aug = train_augment(strength=0.0, reframe=1.0)
        aug.set_random_seed(5)
        runs.append([aug(image=face)["image"] for _ in range(12)])
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
    for out in runs[0]:
        out = out if np.corrcoef(out.ravel(), face.ravel())[0, 1] > np.corrcoef(out.ravel(), face[:, ::-1].ravel())[0, 1] \
            else out[:, ::-1]  # undo the flip before measuring the shift
        (dx, dy), _ = cv2.phaseCorrelate(grey, np.float32(cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGB2GRAY)))
        shifts.append(np.hypot(dx, dy))
    assert max(shifts) > 2.0 and max(shifts) < 12.0, shifts  # up to 8 % of 64 px per axis


def test_subset_filters_keep_what_they_name():
    from detector.data import keep

    real = {"label": 0, "method": "real", "perturbation": {"type": "none"}, "target_dataset": "utkface"}
    fake = {"label": 1, "method": "swap", "perturbation": {"type": "jpeg"}, "target_dataset": "celeba-wild"}
    assert keep(real, methods=["morph"]) and not keep(fake, methods=["morph"])  # reals always stay
    assert not keep(fake, exclude=["swap"]) and keep(real, exclude=["swap"])
    assert not keep(fake, perturbations=["none"]) and keep(real, perturbations=["none"])
    celeba = ["celeba-wild", "celeba-aligned"]  # a cross-source split leaves the other source out, both classes
    assert keep(fake, sources=celeba) and not keep(real, sources=celeba)
