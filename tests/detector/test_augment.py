"""Training augmentation: the degrade option applies one of the factory's perturbations, seeded."""
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
