"""Reading model files a user hands in (checkpoints, shipped weights, TorchScript, ONNX): every refusal is
one line — the file, what is wrong, what to do — and pickled code is never run (`weights_only`).

Pipelines turn a `ModelFileError` into that line on stderr and a non-zero exit (`pipelines.refusing`).
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile

import torch


class ModelFileError(ValueError):
    """A model file that cannot be used; `str()` is the one-line reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def require_file(path: str, hint: str = "") -> str:
    """`path` if it is an existing file, else a `ModelFileError` (with `hint`: what to run or pass instead)."""
    if not os.path.exists(str(path)):
        raise ModelFileError(path, "not found" + (f"; {hint}" if hint else ""))
    if not os.path.isfile(path):
        raise ModelFileError(path, "not a file")
    return path


def is_torchscript(path: str) -> bool:
    """Whether `path` is a TorchScript archive (a zip with compiled code), not a pickled state."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.split("/", 1)[-1].startswith("code/") for n in z.namelist())


SAFE_MODULES = ("torch", "collections", "numpy", "_codecs", "builtins.set", "builtins.frozenset")


def _named_callables(path: str) -> list[str]:
    """The callables a pickle imports (read by `pickletools`, which runs nothing) outside what plain
    weights use; [] for a file that is no pickle at all."""
    import pickletools

    with open(path, "rb") as f:
        data = f.read()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            member = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
            data = z.read(member) if member else b""
    names, strings = [], []
    try:
        for op, arg, _ in pickletools.genops(data):
            if isinstance(arg, str) and "UNICODE" in op.name or op.name in ("SHORT_BINSTRING", "BINSTRING"):
                strings.append(str(arg))
            elif op.name == "GLOBAL":
                names.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # noqa: BLE001 - not a pickle: no callables named
        return []
    return [n for n in names if not n.startswith(SAFE_MODULES)]


def read_weights(path: str, hint: str = "") -> dict:
    """A torch-saved file's content, loaded with `weights_only=True`: tensors and plain containers only.
    A file that would run code when unpickled is refused, not executed."""
    require_file(path, hint)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        names = [found.group(1)] if found else _named_callables(path)
        if names:  # the pickle imports a callable that is not plain weights: loading it would run code
            raise ModelFileError(path, f"unsafe content refused: it would run code on loading ({names[0]}); "
                                       "only plain weights are accepted") from None
        raise ModelFileError(path, "not a model file (not a PyTorch archive or pickle)") from None
    except EOFError:
        raise ModelFileError(path, "truncated: the file ends early; copy it again") from None
    except (RuntimeError, zipfile.BadZipFile, ValueError, OSError) as e:
        text = str(e)
        if "central directory" in text or "zip archive" in text:
            raise ModelFileError(path, "truncated or damaged archive; copy it again") from None
        raise ModelFileError(path, f"not a model file ({text.splitlines()[0][:120] if text else type(e).__name__})") from None
    if not isinstance(blob, dict):
        raise ModelFileError(path, f"not a model file: it holds a {type(blob).__name__}, not a checkpoint")
    return blob


def expect_state(path: str, blob: dict, wanted: str, prefix: str) -> dict:
    """The file's state dict if its weights are a `wanted`'s (keys under `prefix`), else a refusal — e.g. an
    identity encoder's checkpoint handed where a detector is wanted."""
    state = blob.get("state_dict")
    if not isinstance(state, dict) or not state:
        raise ModelFileError(path, f"holds no weights (no state_dict); not a {wanted}")
    if not any(isinstance(k, str) and k.startswith(prefix) for k in state):
        raise ModelFileError(path, f"a checkpoint of another kind (weights {next(iter(state))!r}, ...), not a {wanted}")
    return state


def choose(explicit: str | None, trained: str | None, shipped: str | None, what: str = "model") -> str:
    """The model file a stage uses: the one named (`explicit`; it must exist), else the local training
    output (`trained`) if there is one, else the weights that ship in the repository (`shipped`)."""
    if explicit:
        return require_file(str(explicit))
    for path in (trained, shipped):
        if path and os.path.isfile(str(path)):
            if path == shipped and trained:
                print(f"{what}: no local training output at {os.path.basename(str(trained))}, using the shipped {shipped}")
            return str(path)
    raise ModelFileError(str(trained or shipped), f"not found, and no shipped {what} either; train one or name a file")
