"""Thin Hydra entry points: `python -m pipelines.<stage>`; the logic lives in factory/ and detector/."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import factory  # noqa: E402,F401  (registers the config resolvers)


def refusing(task):
    """Wrap a pipeline's task function so a model file that cannot be used ends the run with one line on
    stderr (the file, the reason, what to do) and exit status 2, instead of a stack trace."""
    import functools
    import sys

    from factory.common.model_files import ModelFileError

    @functools.wraps(task)
    def run(cfg):
        try:
            return task(cfg)
        except Exception as e:  # noqa: BLE001 - Hydra's instantiate wraps what a constructor raised
            cause = e
            while cause is not None and not isinstance(cause, ModelFileError):
                cause = cause.__cause__
            if cause is None:
                raise
            print(f"error: {cause}", file=sys.stderr)
            raise SystemExit(2) from None

    return run
