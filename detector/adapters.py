"""Any detector behind one protocol: `score(faces) -> p(fake)`.

The protocol: `faces` is a uint8 array N x H x W x 3 (RGB, the canonical aligned crops), the result a
float array of N fake probabilities in [0, 1]. Four kinds of detector are accepted, by spec string:

- `path/to/file.ckpt`   a checkpoint of this project's `train_detector`
- `path/to/file.pt`     shipped detector weights (`weights/detector.pt`), or a TorchScript module taking
                        B x 3 x H x W floats in [0, 1] and returning B logits (told apart by content)
- `path/to/file.onnx`   the same contract as an ONNX model (onnxruntime, CPU)
- `package.module:fn`   a Python callable following the protocol directly
"""
from __future__ import annotations

import importlib
from typing import Callable

import numpy as np
import torch

from factory.common.model_files import ModelFileError, choose, is_torchscript, require_file


FILES = (".ckpt", ".pt", ".pth", ".torchscript", ".onnx")  # specs that name a model file (else module:function)


def _to_tensor(faces: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float().div_(255.0)


class TorchScorer:
    """Wraps a torch module (checkpoint or TorchScript) that maps [0, 1] faces to logits."""

    def __init__(self, model: torch.nn.Module, batch_size: int = 256):
        self.model, self.batch_size = model.eval(), batch_size

    @torch.inference_mode()
    def __call__(self, faces: np.ndarray) -> np.ndarray:
        out = [torch.sigmoid(self.model(_to_tensor(faces[i:i + self.batch_size])).reshape(-1))
               for i in range(0, len(faces), self.batch_size)]
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


class OnnxScorer:
    def __init__(self, path: str, batch_size: int = 256):
        import onnxruntime as ort

        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.batch_size = batch_size

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(faces), self.batch_size):
            x = _to_tensor(faces[i:i + self.batch_size]).numpy()
            out.append(self.session.run(None, {self.input: x})[0].reshape(-1))
        logits = np.concatenate(out) if out else np.zeros(0)
        return 1 / (1 + np.exp(-logits.astype(np.float64)))


def load_checkpoint_model(path: str) -> torch.nn.Module:
    """The detector network of a `train_detector` checkpoint or of shipped detector weights; pickled code
    is refused (`weights_only`), and a file of another kind is refused in one line."""
    from detector.shipped import load_detector

    return load_detector(path)


def pick(spec: str | None, trained: str | None, shipped: str | None) -> str:
    """The detector a stage scores with: `spec` as given (a file must exist; `module:function` is kept),
    else the local `train_detector` output (`trained`) if there is one, else the shipped detector."""
    if spec and ":" in str(spec) and not str(spec).endswith(FILES):
        return str(spec)
    return choose(spec, trained, shipped, "detector")


def load_scorer(spec: str, batch_size: int = 256) -> Callable[[np.ndarray], np.ndarray]:
    """A scorer from a spec string (see the module docstring); a file that cannot be used raises
    `ModelFileError` with a one-line reason."""
    spec = str(spec)
    if spec.endswith(FILES):
        require_file(spec, "train one (python -m pipelines.train_detector) or name another file")
    if spec.endswith((".pt", ".torchscript")) and is_torchscript(spec):
        try:
            return TorchScorer(torch.jit.load(spec, map_location="cpu"), batch_size)
        except RuntimeError as e:
            raise ModelFileError(spec, f"a damaged TorchScript archive ({str(e).splitlines()[0][:100]})") from None
    if spec.endswith((".ckpt", ".pt", ".pth")):
        return TorchScorer(load_checkpoint_model(spec), batch_size)
    if spec.endswith(".onnx"):
        try:
            return OnnxScorer(spec, batch_size)
        except Exception as e:  # onnxruntime's own error types (InvalidProtobuf, Fail, ...)
            raise ModelFileError(spec, f"not a usable ONNX model ({str(e).splitlines()[0][:100]})") from None
    if ":" in spec:
        module, name = spec.split(":", 1)
        fn = getattr(importlib.import_module(module), name)
        return lambda faces: np.asarray(fn(faces), np.float64).reshape(-1)
    raise ValueError(f"unknown detector spec {spec!r}: give a .ckpt, .pt/.torchscript, .onnx file or module:function")


def export(checkpoint: str, torchscript: str | None = None, onnx: str | None = None) -> None:
    """Export a trained detector to TorchScript and/or ONNX with the protocol's input contract."""
    model = load_checkpoint_model(checkpoint)
    example = torch.rand(2, 3, model.input_size, model.input_size)
    if torchscript:
        torch.jit.trace(model, example).save(torchscript)
    if onnx:
        torch.onnx.export(model, example, onnx, input_names=["faces"], output_names=["logits"],
                          dynamic_axes={"faces": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
