"""`generate` end to end on a small real face store: readers, provenance, determinism, resume, 2 ranks."""
import json
import os
import shutil

import numpy as np
import pytest

from factory.common.shards import iter_samples, read_index
from factory.dataset.generate import run

pytestmark = pytest.mark.slow

from tests.conftest import SAMPLES
from tests.conftest import generate_cfg as _cfg


def _tars(root):
    return {os.path.relpath(os.path.join(d, f), root): open(os.path.join(d, f), "rb").read()
            for d, _, fs in os.walk(root) for f in fs if f.endswith(".tar")}


@pytest.fixture(scope="module")
def made(small_dataset):
    return small_dataset


def test_counts_provenance_and_masks(made):
    info = read_index(str(made["dir"]))
    assert {s: v["num_samples"] for s, v in info["splits"].items()} == SAMPLES
    assert info["size"] == 128  # the store's own size, the default resolution
    face_meta = {}
    for split in ("train", "val", "test"):
        for x in iter_samples(str(made["faces"]["dir"]), split):
            face_meta[x["json"]["key"]] = x["json"]
    methods = set()
    for split in SAMPLES:
        for x in iter_samples(str(made["dir"]), split):
            m, img, mask = x["json"], x["jpg"], x["mask.png"]
            methods.add(m["method"])
            assert img.shape == (info["size"], info["size"], 3) and mask.shape[:2] == img.shape[:2]
            for k in ("label", "method", "split", "source_id", "target_id", "source_key", "target_key", "generator",
                      "seed", "perturbation", "id_similarity"):
                assert k in m
            assert m["split"] == split == face_meta[m["source_key"]]["split"] == face_meta[m["target_key"]]["split"]
            assert m["target_id"] == face_meta[m["target_key"]]["identity"]
            assert -1 <= m["id_similarity"] <= 1
            if m["label"] == 0:
                assert m["method"] == "real" and mask.max() == 0 and m["source_key"] == m["target_key"]
            else:
                assert mask.max() > 200
            if m["method"] in ("swap", "warp_blend", "morph", "reenact", "partial"):
                assert m["source_id"] != m["target_id"]
            if m["method"] == "morph":
                assert 0.3 <= m["manipulation"]["alpha"] <= 0.7
            if m["method"] == "partial":
                assert m["manipulation"]["region"] in ("eyes", "nose", "mouth", "brows")
            if m["method"] == "swap":
                assert m["generator"]["checkpoint"] == os.path.basename(made["ckpt"])  # outside every root: its name
                assert len(m["generator"]["sha256"]) == 64
    assert methods == {"real", "swap", "warp_blend", "self_blend", "morph", "reenact", "partial"}
    stats = json.loads((made["dir"] / "stats.json").read_text())
    assert stats["samples"] == sum(SAMPLES.values())
    assert stats["leakage_audit"]["distinct_jpeg_tables"] == 1 and stats["leakage_audit"]["distinct_image_sizes"] == 1
    card = (made["dir"] / "README.md").read_text()
    assert card.startswith("---\nlicense:") and "## Leakage audit" in card and "non-commercial" in card
    assert (made["dir"] / "contact_sheet.png").stat().st_size > 1000


def test_shards_load_with_webdataset_timm_and_hf_datasets(made):
    import datasets
    import webdataset as wds
    from timm.data.readers.reader_wds import ReaderWds

    root = str(made["dir"])
    urls = [os.path.join(root, f) for f in read_index(root)["splits"]["test"]["filenames"]]
    plain = list(wds.WebDataset(urls, shardshuffle=False).decode("rgb8").to_tuple("jpg", "json"))
    assert len(plain) == SAMPLES["test"]
    reader = ReaderWds(root, split="test", target_key="label")
    labels = sorted(t for _, t in reader)
    assert labels == sorted(j["label"] for _, j in plain)
    ds = datasets.load_dataset("webdataset", data_files={"test": urls}, cache_dir=str(made["dir"].parent / "hf"))
    assert ds["test"].num_rows == SAMPLES["test"] and ds["test"][0]["jpg"].size == (128, 128)  # the default resolution
    assert set(ds["test"][0]["json"]) >= {"label", "method", "perturbation"}


def test_same_config_same_bytes_and_resume_after_kill(made, tmp_path):
    again = tmp_path / "b"
    run(_cfg(made["faces"]["dir"], again, made["ckpt"]), progress=False)
    assert _tars(again) == _tars(made["dir"])
    # a killed run: one shard gone with its sidecar, another half-written
    victim = "train/fakes-train-00001.tar"
    os.remove(again / victim)
    os.remove(again / "_work" / victim.replace("/", "__").replace(".tar", ".json"))
    (again / "val" / "fakes-val-00000.tar.part").write_bytes(b"partial")
    kept = (again / "test" / "fakes-test-00000.tar").stat().st_mtime_ns
    stats = run(_cfg(made["faces"]["dir"], again, made["ckpt"]), progress=False)
    assert stats["run"]["shards_written"] == 1
    assert (again / "test" / "fakes-test-00000.tar").stat().st_mtime_ns == kept
    assert not list(again.rglob("*.part"))
    assert _tars(again) == _tars(made["dir"])
    with pytest.raises(RuntimeError, match="different config"):
        run(_cfg(made["faces"]["dir"], again, made["ckpt"], "size=48"), progress=False)


def test_two_ranks_write_the_same_shards_as_one(made, tmp_path):
    two = tmp_path / "ddp"
    run(_cfg(made["faces"]["dir"], two, made["ckpt"], "trainer=ddp_cpu"), progress=False)
    ranks = {json.loads(p.read_text())["rank"] for p in (two / "_work").glob("*.json")}
    assert ranks == {0, 1}
    assert _tars(two) == _tars(made["dir"])


def test_nothing_written_for_others_names_a_machine_path(made):
    """Card, index, stats, the resume fingerprint and every sample's metadata travel with the dataset: no absolute
    path in them."""
    import re

    from factory.common.paths import REPO_ROOT

    root = made["dir"]
    texts = {name: (root / name).read_text() for name in ("README.md", "_info.json", "stats.json", "_generate.json")}
    texts.update({f"{s['__key__']}.json": s["json"].decode() for s in iter_samples(str(root), "test", decode=False)})
    machine = [str(p) for p in (REPO_ROOT, root, made["faces"]["dir"], REPO_ROOT.parent, os.path.realpath(root))]
    absolute = re.compile(r"(?<![\w.:/])/(?:root|work|tmp|home|Users|mnt|var|opt)/")
    for name, text in texts.items():
        assert not [m for m in machine if m in text] and not absolute.search(text), (name, text[:300])
    swap = next(json.loads(s["json"]) for s in iter_samples(str(root), "test", decode=False)
                if json.loads(s["json"])["method"] == "swap")
    assert swap["generator"]["checkpoint"].endswith("tiny.ckpt") and swap["generator"]["sha256"]
