"""Stage 2 — the identity encoder (claim 3): recognisers behind one `IdentityEncoder` interface (dlib's
ResNet and OpenCV Zoo's SFace as torch ops, or a timm network trained here with a margin loss in
`training`), verification metrics and the held-out report (`evaluation`)."""
from factory.identity.encoders import (  # noqa: F401
    DlibEncoder,
    IdentityEncoder,
    SFaceEncoder,
    TimmEncoder,
    embed_batched,
)
