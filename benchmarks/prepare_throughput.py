"""Prepare-stage throughput on real CelebA in-the-wild photos: faces/s at 1 and 2 workers.

    python -m benchmarks.prepare_throughput [n_photos]
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

import factory  # noqa: F401
from factory.common.paths import REPO_ROOT
from factory.ingest.prepare import AlignConfig, prepare
from factory.ingest.sources import FolderSource


def main(n: int = 400) -> None:
    data = os.environ.get("SWAP_FACTORY_DATA", str(REPO_ROOT.parent / "shared" / "data"))
    src = FolderSource("celeba-wild", f"{data}/celeba-wild/images", identities=f"{data}/celeba-wild/identities.txt",
                       namespace="celeba", limit=n)
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as out:
            t = time.time()
            report = prepare([src], out, AlignConfig(), {"train": 1.0}, shard_size=50, workers=workers, progress=False)
            wall = time.time() - t
        print(f"workers={workers}: {report['faces']}/{n} faces in {wall:.1f}s = {report['faces'] / wall:.1f} faces/s "
              f"(includes process start-up and the contact sheet)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400)
