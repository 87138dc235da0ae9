"""SFace as torch ops equals onnxruntime on the repaired shipped graph, and its frame is the ArcFace one."""
import numpy as np
import torch

from factory.identity.encoders import SFaceEncoder
from factory.identity.sface import TEMPLATE_112, SFaceNet, _dequantize, repaired_onnx_bytes
from factory.ingest.faces import TEMPLATE


def test_torch_graph_matches_onnxruntime():
    import onnxruntime as ort

    x = (np.random.default_rng(0).random((2, 3, 112, 112)) * 255).astype(np.float32)
    sess = ort.InferenceSession(repaired_onnx_bytes(), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    ref = np.concatenate([sess.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])
    with torch.no_grad():
        out = SFaceNet()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-4)


def test_blocked_dequantisation():
    q = np.array([[2, 4, 6, 8]], np.int8)
    out = _dequantize(q, np.array([[0.5, 2.0]], np.float32), np.array([[0, 1]], np.int8), axis=1, block=2)
    np.testing.assert_allclose(out, [[1.0, 2.0, 10.0, 14.0]])


def test_frame_maps_the_canonical_template_onto_arcface():
    x0, y0, x1, y1 = SFaceEncoder().box
    mapped = (TEMPLATE - [x0, y0]) / (x1 - x0) * 112
    assert np.abs(mapped - TEMPLATE_112).max() < 6.0  # px at 112: the two templates agree up to a similarity
    assert np.abs(mapped - TEMPLATE_112).mean() < 3.0


def test_colour_order_matters():
    """RGB in, as MODELS.md warns: swapping channels changes the embedding."""
    enc = SFaceEncoder()
    face = torch.rand(1, 3, 64, 64)
    assert float((enc(face) * enc(face.flip(1))).sum()) < 0.999
