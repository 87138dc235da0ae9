from collections import Counter

import pytest

from factory.ingest.sources import FolderSource, parse_utkface
from factory.ingest.splits import split_identities


def test_utkface_names():
    assert parse_utkface("26_1_2_20170116174525125.jpg.chip.jpg") == {"age": 26, "gender": "female", "race": "asian"}
    for bad in ["61_1_20170109142408075.jpg.chip.jpg", "x_1_2_1.jpg.chip.jpg", "26_3_2_1.jpg.chip.jpg"]:
        with pytest.raises(ValueError):
            parse_utkface(bad)


def test_identity_from_file_subfolders_and_per_file(tmp_path):
    (tmp_path / "lab").mkdir()
    for f in ["a.jpg", "b.jpg", "c.jpg"]:
        (tmp_path / "lab" / f).write_bytes(b"x")
    (tmp_path / "ids.txt").write_text("a.jpg 7\nb.jpg 9\n")
    inputs = {i.file: i for i in FolderSource("s", str(tmp_path / "lab"), identities=str(tmp_path / "ids.txt"),
                                               namespace="celeba").inputs()}
    assert inputs["a.jpg"].identity == "celeba:7" and inputs["a.jpg"].skip is None
    assert inputs["c.jpg"].skip[0] == "unknown_identity"

    for person in ["ann", "bob"]:
        (tmp_path / "sub" / person).mkdir(parents=True)
        (tmp_path / "sub" / person / "1.jpg").write_bytes(b"x")
    assert {i.identity for i in FolderSource("mine", str(tmp_path / "sub")).inputs()} == {"mine:ann", "mine:bob"}
    assert {i.identity for i in FolderSource("flat", str(tmp_path / "lab")).inputs()} == {"flat:a", "flat:b", "flat:c"}
    keys = [i.key for i in FolderSource("mine", str(tmp_path / "sub")).inputs()]
    assert all("." not in k for k in keys) and len(set(keys)) == len(keys)


def test_missing_folder_says_what_to_set(tmp_path):
    with pytest.raises(FileNotFoundError, match="SWAP_FACTORY_DATA"):
        FolderSource("x", str(tmp_path / "nope")).inputs()


def test_splits_identity_disjoint_stratified_deterministic():
    ids = [f"celeba:{i}" for i in range(200)] + [f"utkface:{i}" for i in range(100)]
    a = split_identities(ids, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    b = split_identities(list(reversed(ids)), {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    assert a == b and set(a) == set(ids)
    per_ns = Counter((k.split(":")[0], v) for k, v in a.items())
    assert per_ns[("celeba", "train")] == 160 and per_ns[("celeba", "test")] == 20
    assert per_ns[("utkface", "val")] == 10
    assert split_identities(ids, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=4) != a
