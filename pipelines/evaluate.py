"""python -m pipelines.evaluate: benchmark detectors on factory shards or a real/fake folder."""
import json

import hydra
from omegaconf import DictConfig, OmegaConf

import pipelines
from detector.adapters import load_scorer, pick
from detector.evaluation import evaluate, load_shard_faces, val_fit
from detector.faces_in import FaceReader
from factory.common.paths import CONF_DIR, portable


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
@pipelines.refusing
def main(cfg: DictConfig) -> dict:
    roots = {"output_dir": cfg.paths.output_dir, "data_dir": cfg.paths.data_dir}  # what reported paths are relative to
    specs = {name: pick(spec, cfg.trained_detector, cfg.shipped_detector) for name, spec in cfg.detectors.items()}
    scorers = {name: load_scorer(spec, cfg.batch_size) for name, spec in specs.items()}
    if cfg.data.folder:
        reader = FaceReader(cfg.size, cfg.jpeg_quality, OmegaConf.to_container(cfg.align))
        faces, labels, metas, read = reader.folder(cfg.data.folder)
        data = {"source": portable(cfg.data.folder, roots), "skipped": read["skipped"], "skipped_by_reason": read["skipped_by_reason"],
                "skips": read["skips"], "padded": read["padded"]}
    else:
        faces, labels, metas = load_shard_faces(cfg.data.shards, cfg.data.split, cfg.data.limit)
        data = {"source": f"{portable(cfg.data.shards, roots)} [{cfg.data.split}]"}
    data["detectors"] = {name: portable(spec, roots) for name, spec in specs.items()}
    fits = {name: val_fit(s, cfg.data.shards, cfg.threshold_split) for name, s in scorers.items()}
    report = evaluate(scorers, faces, labels, metas, cfg.out_dir, data, {n: f.get("threshold") for n, f in fits.items()},
                      cfg.bootstrap, cfg.seed, {n: f.get("temperature") for n, f in fits.items()},
                      cfg.robustness_faces, cfg.jpeg_quality)
    for name, r in report["detectors"].items():
        o = r["overall"]
        print(f"{name}: AUC {o['auc']} EER {o['eer']} AP {o['ap']} ECE {o['ece']:.4f} "
              f"per method {report['method_matrix'][name]}")
    print(f"report: {cfg.out_dir}/report.md")
    return json.loads(json.dumps(report["method_matrix"]))


if __name__ == "__main__":
    main()
