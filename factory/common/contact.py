"""Contact sheets: a grid of face crops as one PNG, for a person to look at."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from factory.common import storage


def contact_sheet(faces: Sequence[np.ndarray], path: str, columns: int = 8, captions: Sequence[str] | None = None,
                  points: Sequence[np.ndarray] | None = None) -> None:
    """Save faces (HxWx3 uint8, same size) as a grid PNG (a path or a URL), optionally with captions and
    landmark dots."""
    if not faces:
        raise ValueError("contact sheet needs at least one face")
    h, w = faces[0].shape[:2]
    cap = 12 if captions else 0
    rows = (len(faces) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * w, rows * (h + cap)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, face in enumerate(faces):
        x, y = (i % columns) * w, (i // columns) * (h + cap)
        sheet.paste(Image.fromarray(face), (x, y))
        if points is not None:
            for px, py in points[i]:
                draw.ellipse([x + px - 1.5, y + py - 1.5, x + px + 1.5, y + py + 1.5], fill=(0, 255, 0))
        if captions:
            draw.text((x + 2, y + h), str(captions[i])[: w // 6], fill=(0, 0, 0))
    storage.save_with(path, lambda buf: sheet.save(buf, format="PNG"))
