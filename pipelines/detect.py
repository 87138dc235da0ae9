"""python -m pipelines.detect <image or folder> [detector=...]: fake probability per face found."""
import os
import sys

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

import pipelines
from detector.adapters import load_scorer, pick
from detector.calibration import apply_temperature
from detector.faces_in import FaceReader, list_images
from detector.shipped import shipped_temperature
from factory.common.images import Skip
from factory.common.paths import CONF_DIR


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="detect")
@pipelines.refusing
def main(cfg: DictConfig) -> list:
    if not cfg.input or not os.path.exists(cfg.input):
        raise SystemExit(f"usage: python -m pipelines.detect <image or folder> [detector=...]; got {cfg.input!r}")
    spec = pick(cfg.detector, cfg.trained_detector, cfg.shipped_detector)
    scorer, temperature = load_scorer(spec), shipped_temperature(spec)
    reader = FaceReader(cfg.size, cfg.jpeg_quality, OmegaConf.to_container(cfg.align))
    paths = list_images(cfg.input) if os.path.isdir(cfg.input) else [cfg.input]
    rows = []
    for path in paths:
        try:
            found = reader.all_faces(path)
        except Skip as s:
            print(f"{path}\tno usable face ({s.reason})")
            rows.append({"file": path, "skipped": s.reason})
            continue
        probs = scorer(np.stack([crop for crop, _ in found]))
        if temperature:  # the shipped detector's calibration (temperature fitted on val by evaluate)
            probs = apply_temperature(probs, temperature)
        for k, ((_, box), p) in enumerate(zip(found, probs)):
            print(f"{path}\tface {k} box {box}\tp(fake) {p:.4f}" + (" (calibrated)" if temperature else ""))
            rows.append({"file": path, "face": k, "box": box, "p_fake": float(p)})
    return rows


if __name__ == "__main__":
    # a bare first argument is the input: `python -m pipelines.detect photo.jpg detector=model.onnx`
    if len(sys.argv) > 1 and "=" not in sys.argv[1] and not sys.argv[1].startswith("-"):
        sys.argv[1] = f"input={sys.argv[1]}"
    main()
