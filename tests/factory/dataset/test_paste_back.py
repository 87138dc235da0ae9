"""Full-image products: the inverse alignment is right, and `generate output=both` writes full images with
their masks and placement, byte-identically on a rerun, readable by plain webdataset and HF `datasets`."""
import json
import os

import cv2
import numpy as np
import pytest

from factory.common.images import Skip
from factory.common.shards import encode_jpeg, iter_samples, read_index
from factory.dataset.paste_back import footprint, load_photo, paste_back, photo_roots, placement, recover_placement
from factory.ingest.facedata import decode, load_faces
from tests.conftest import FULL_IMAGE, generate_cfg


def _wild(small_faces, n=6):
    faces = [f for split in ("train", "val", "test") for f in load_faces(str(small_faces["dir"]), split)]
    return [f for f in faces if f["meta"]["source"] == "celeba-wild"][:n]


def test_unchanged_face_pasted_back_reproduces_its_photo(small_faces):
    roots = photo_roots(str(small_faces["dir"]))
    faces = _wild(small_faces)
    assert len(faces) == 6
    for face in faces:
        meta = face["meta"]
        photo = load_photo(meta, roots)
        # a crop at least twice as fine as the photo (so no detail is lost on the way), JPEG-encoded as a sample is
        size = int(np.ceil(2 * meta["size"] * placement(meta, meta["size"]).upscale / 8)) * 8
        where = placement(meta, size)
        crop = cv2.warpAffine(photo, where.matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        crop = decode(encode_jpeg(crop, 95))
        image, label = paste_back(photo, crop, np.zeros(crop.shape[:2], np.float32), where)
        weight = cv2.warpAffine(footprint(size, 0.08), cv2.invertAffineTransform(where.matrix),
                                photo.shape[1::-1], flags=cv2.INTER_LINEAR)
        assert (image[weight == 0] == photo[weight == 0]).all()  # outside the crop: the photo, exactly
        diff = np.abs(image.astype(int) - photo)[weight > 0.99]
        assert diff.size > 0 and diff.mean() < 2.5, (meta["file"], size, diff.mean())  # inside: JPEG-level error
        assert label.max() == 0  # nothing manipulated, nothing in the label mask
        # the stored 128 px crop goes back at the store's own placement: its landmarks land on the photo's face
        assert np.allclose(placement(meta, meta["size"]).matrix * size / meta["size"], where.matrix)
        # the stored crop landmarks map back onto the photo's face box
        x1, y1, x2, y2 = meta["box"]
        lm = where.to_photo(meta["landmarks"])
        assert ((lm[:, 0] > x1 - 5) & (lm[:, 0] < x2 + 5) & (lm[:, 1] > y1 - 5) & (lm[:, 1] < y2 + 5)).all()


def test_a_store_without_placement_recovers_it_from_the_photo(small_faces):
    """Stores made before placements were kept: refused by name, or recovered by finding the face again."""
    roots = photo_roots(str(small_faces["dir"]))
    for face in _wild(small_faces, 3):
        meta = dict(face["meta"])
        kept = meta.pop("matrix")
        with pytest.raises(Skip, match="rerun"):
            placement(meta, 128)
        assert recover_placement(meta, load_photo(meta, roots))
        assert np.allclose(meta["matrix"], kept, atol=1e-4)
        meta["landmarks"] = (np.asarray(meta["landmarks"]) + 3).tolist()  # not this photo's face: no placement
        assert not recover_placement(meta, load_photo(meta, roots))


@pytest.mark.slow
def test_generate_full_images(full_image_dataset, small_faces, tiny_swapper_ckpt, tmp_path):
    from factory.dataset.generate import run

    out, stats = full_image_dataset["dir"], full_image_dataset["stats"]
    out_b = tmp_path / "b"
    run(generate_cfg(small_faces["dir"], out_b, tiny_swapper_ckpt, *FULL_IMAGE), progress=False)
    store = {f["meta"]["key"]: f["meta"] for s in ("train", "val", "test") for f in load_faces(str(small_faces["dir"]), s)}
    methods = set()
    for split in ("train", "val", "test"):
        for x in iter_samples(str(out), split):
            m, image, mask = x["json"], x["image.jpg"], x["image_mask.png"]
            target = store[m["target_key"]]
            methods.add(m["method"])
            assert target["source"] == "celeba-wild"
            assert image.shape[:2] == (target["photo_size"][1], target["photo_size"][0]) == mask.shape[:2]
            info = m["image"]
            assert info["box"] == target["box"] and len(info["landmarks"]) == 5
            assert (info["width"], info["height"]) == tuple(target["photo_size"]) and 0 < info["upscale"] <= 3.0
            assert x["jpg"].shape[:2] == x["mask.png"].shape[:2] == (128, 128)  # `both`: the crop too
            if m["label"] == 0:
                assert mask.max() == 0
            else:
                assert mask.max() > 100 and info["mask_area"] > 0
    assert len(methods) == 7
    whole = stats["image"]
    assert whole["samples"] == sum(stats["splits"][s]["samples"] for s in stats["splits"])
    assert whole["target_faces"]["not_a_whole_photo_source"] > 0 and whole["target_faces"]["kept"] > 0
    assert set(whole["leakage_audit"]["auc"]) >= {"jpeg_tables", "image_size", "file_size", "paste_boundary"}
    assert "Full images" in (out / "README.md").read_text() and (out / "contact_sheet_images.png").exists()
    tars = lambda root: {os.path.relpath(os.path.join(d, f), root): open(os.path.join(d, f), "rb").read()  # noqa: E731
                         for d, _, fs in os.walk(root) for f in fs if f.endswith(".tar")}
    assert tars(out) == tars(out_b)  # same config and seed → the same bytes
    assert json.loads((out / "_generate.json").read_text())["output"]["output"] == "both"


@pytest.mark.slow
def test_full_images_load_with_webdataset_and_hf_datasets(full_image_dataset):
    import datasets
    import webdataset as wds

    root = str(full_image_dataset["dir"])
    urls = [os.path.join(root, f) for f in read_index(root)["splits"]["test"]["filenames"]]
    plain = list(wds.WebDataset(urls, shardshuffle=False).decode("rgb8").to_tuple("image.jpg", "image_mask.png", "json"))
    assert len(plain) == full_image_dataset["stats"]["splits"]["test"]["samples"]
    assert all(img.shape[:2] == mask.shape[:2] == (j["image"]["height"], j["image"]["width"]) for img, mask, j in plain)
    ds = datasets.load_dataset("webdataset", data_files={"test": urls}, cache_dir=str(full_image_dataset["dir"].parent / "hf"))
    row = ds["test"][0]
    assert ds["test"].num_rows == len(plain)
    assert row["image.jpg"].size == (row["json"]["image"]["width"], row["json"]["image"]["height"])
    assert row["image_mask.png"].size == row["image.jpg"].size and row["jpg"].size == (128, 128)
