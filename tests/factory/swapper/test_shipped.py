"""The swapper committed under weights/: its manifest matches the file, it loads, it is small, and the
README and the swapper page quote the figures it was measured at."""
import hashlib
import json

from factory.common.paths import REPO_ROOT

WEIGHTS = REPO_ROOT / "weights"


def test_shipped_weights_match_their_manifest_and_the_docs():
    from factory.swapper.networks import load_shipped

    manifest = json.loads((WEIGHTS / "manifest.json").read_text())
    blob = (WEIGHTS / manifest["file"]).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == manifest["sha256"] and len(blob) == manifest["bytes"]
    assert sum(p.stat().st_size for p in WEIGHTS.iterdir()) < 30e6
    swapper = load_shipped(str(WEIGHTS / manifest["file"]))
    assert bool(swapper.calibrated) and swapper.size == manifest["config"]["size"]
    judge = next(n for n in manifest["figures"]["judges"] if n != manifest["figures"]["trained_against"])
    top1 = f'{100 * manifest["figures"]["swap"][judge]["id_retrieval_top1"]:.1f} %'
    for page in ("README.md", "docs/swapper.md"):
        assert top1 in (REPO_ROOT / page).read_text(), (page, top1)


def test_train_generator_evaluates_given_weights_without_training(small_faces, tmp_path):
    """`eval.swapper=weights/swapper.pt` scores the shipped swapper on the current store (here the small
    real one) with the independent judge, and trains nothing: its swaps are retrieved as the source."""
    from pipelines.train_generator import main
    from tests.compose import compose_config

    cfg = compose_config("train_generator", [
        f"paths.output_dir={tmp_path}", f"paths.faces_dir={small_faces['dir']}",
        f"eval.swapper={WEIGHTS / 'swapper.pt'}", "eval.pairs=24", "++trainer.max_steps=1"])  # bounded if it trained
    report = main.__wrapped__(cfg)["eval"]
    assert report["checkpoint"] == "swapper.pt" and report["swap"]["pairs"] == 24
    swap, target = report["swap"]["sface"], report["baseline_target"]["sface"]
    assert swap["id_retrieval_top1"] > target["id_retrieval_top1"] and swap["cos_to_source"] > target["cos_to_source"]
    assert (tmp_path / "swapper" / "eval" / "swap_report.json").exists()
    assert not (tmp_path / "swapper" / "checkpoints").exists()
