"""Thin Hydra entry points: `python -m pipelines.<stage>`; the logic lives in factory/ and detector/."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import factory  # noqa: E402,F401  (registers the config resolvers)
