"""python -m pipelines.evaluate: benchmark detectors on factory shards or a real/fake folder."""
import json
import os

import hydra
from omegaconf import DictConfig, OmegaConf

import pipelines
from detector.adapters import load_scorer, pick
from detector.evaluation import evaluate, load_shard_faces, val_fit
from detector.shipped import figures_of, ship_detector, write_manifest
from detector.faces_in import FaceReader
from factory.common.paths import CONF_DIR, portable


def throughput(report: str, detector: str) -> dict | None:
    """The training and scoring rate `benchmarks.detector_throughput` measured for this backbone and size."""
    if not os.path.exists(report):
        return None
    from detector.shipped import load_detector

    model = load_detector(detector)
    rows = [r for r in json.load(open(report)) if (r["backbone"], r["size"]) == (model.backbone_name, model.input_size)]
    return {k: rows[-1][k] for k in ("train_faces_per_s", "score_faces_per_s", "threads")} if rows else None


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
@pipelines.refusing
def main(cfg: DictConfig) -> dict:
    roots = {"output_dir": cfg.paths.output_dir, "data_dir": cfg.paths.data_dir}  # what reported paths are relative to
    specs = {name: pick(spec, cfg.trained_detector, cfg.shipped_detector) for name, spec in cfg.detectors.items()}
    if cfg.ship_dir:  # the shipped file itself is what gets measured
        if len(specs) != 1:
            raise SystemExit(f"ship_dir ships one detector; {len(specs)} are named in detectors")
        (name, spec), = specs.items()
        ship_detector(spec, cfg.ship_dir, {"throughput": throughput(cfg.throughput_report, spec)})
        specs = {name: os.path.join(cfg.ship_dir, "detector.pt")}
    scorers = {name: load_scorer(spec, cfg.batch_size) for name, spec in specs.items()}
    if cfg.data.folder:
        reader = FaceReader(cfg.size, cfg.jpeg_quality, OmegaConf.to_container(cfg.align))
        faces, labels, metas, read = reader.folder(cfg.data.folder)
        data = {"source": portable(cfg.data.folder, roots), "skipped": read["skipped"], "skipped_by_reason": read["skipped_by_reason"],
                "skips": read["skips"], "padded": read["padded"]}
    elif cfg.data.get("image_key"):  # full-image shards: each face found and aligned as in any photo
        reader = FaceReader(cfg.size, cfg.jpeg_quality, OmegaConf.to_container(cfg.align))
        faces, labels, metas, read = reader.shards(cfg.data.shards, cfg.data.split, cfg.data.image_key, cfg.data.limit)
        data = {"source": f"{portable(cfg.data.shards, roots)} [{cfg.data.split}, {cfg.data.image_key}]",
                **{k: read[k] for k in ("skipped", "skipped_by_reason", "skipped_by_method", "skips")}}
    else:
        faces, labels, metas = load_shard_faces(cfg.data.shards, cfg.data.split, cfg.data.limit)
        data = {"source": f"{portable(cfg.data.shards, roots)} [{cfg.data.split}]"}
    data["detectors"] = {name: portable(spec, roots) for name, spec in specs.items()}
    fits = {name: val_fit(s, cfg.data.shards, cfg.threshold_split) for name, s in scorers.items()}
    report = evaluate(scorers, faces, labels, metas, cfg.out_dir, data, {n: f.get("threshold") for n, f in fits.items()},
                      cfg.bootstrap, cfg.seed, {n: f.get("temperature") for n, f in fits.items()},
                      cfg.robustness_faces, cfg.jpeg_quality)
    if cfg.ship_dir:
        manifest = json.load(open(os.path.join(cfg.ship_dir, "detector.json")))
        write_manifest(cfg.ship_dir, {**manifest, "figures": figures_of(report, name)})
        print(f"shipped to {cfg.ship_dir}/detector.pt (manifest detector.json)")
    for name, r in report["detectors"].items():
        o = r["overall"]
        print(f"{name}: AUC {o['auc']} EER {o['eer']} AP {o['ap']} ECE {o['ece']:.4f} "
              f"per method {report['method_matrix'][name]}")
    print(f"report: {cfg.out_dir}/report.md")
    return json.loads(json.dumps(report["method_matrix"]))


if __name__ == "__main__":
    main()
