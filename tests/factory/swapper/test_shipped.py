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
