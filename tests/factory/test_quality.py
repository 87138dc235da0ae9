"""Long measurement runs on the full prepared data (`python -m pytest -m quality`); not in CI."""
import os

import pytest

from factory.common.paths import REPO_ROOT

FACES = os.environ.get("SWAP_FACTORY_FACES", str(REPO_ROOT / "outputs" / "faces"))
pytestmark = pytest.mark.quality


@pytest.mark.skipif(not os.path.exists(os.path.join(FACES, "_info.json")), reason="run pipelines.prepare first")
def test_dlib_port_on_full_held_out_test_split(tmp_path):
    from factory.identity.encoders import DlibEncoder
    from factory.identity.evaluation import evaluate_identity

    report = evaluate_identity(DlibEncoder(), FACES, str(tmp_path))
    assert report["test_identities"] >= 200
    assert report["verification"]["auc"] >= 0.97, report["verification"]
