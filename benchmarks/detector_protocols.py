"""Detector protocols as standard tables: leave-one-method-out and a detector zoo at equal CPU budget.

    python -m benchmarks.detector_protocols lomo [minutes_per_detector] [train_detector overrides ...]
    python -m benchmarks.detector_protocols zoo  [minutes_per_detector] [train_detector overrides ...]

An override `dataset_dir=<shards>` picks the dataset for training and evaluation alike; `name=<suffix>`
is appended to every detector's and report's name (e.g. `dataset_dir=outputs/dataset_big name=_big`).

`lomo`: for every method in the dataset, a detector trained (and validated) without that method's fakes
(`train_detector holdout=<method>`, named `without_<method>`), then one `evaluate` of all of them: the
report's leave-one-method-out table is each detector's AUC on the method it never saw.
`zoo`: resnet10t, resnet18, efficientnet_b0 and xception41 from scratch, each for the same wall-clock
budget (`trainer.max_time`), evaluated together. The default dataset is `outputs/dataset_128`; the 64 px
tables were made with `dataset_dir=outputs/dataset resolution=px64 detector_model=resnet10t module=scratch`. Every run is its own process, one at a time (two cores).
Reports land in `outputs/reports/detectors/<protocol>/`.
"""
from __future__ import annotations

import json
import subprocess
import sys

import factory  # noqa: F401
from factory.common.paths import OUTPUT_ROOT, REPO_ROOT

ZOO = ("resnet10t", "resnet18", "efficientnet_b0", "xception41")


def methods_in(dataset: str) -> list[str]:
    with open(f"{dataset}/stats.json") as f:
        stats = json.load(f)
    return sorted({m for s in stats["splits"].values() for m in s["methods"]} - {"real"})


def run(args: list[str]) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", *args], check=True, cwd=REPO_ROOT)


def main(protocol: str, minutes: int = 10, *overrides: str) -> None:
    out = OUTPUT_ROOT
    ours = {"dataset_dir", "name"}  # read here; every other override goes to train_detector as given
    options = dict(o.split("=", 1) for o in overrides if o.split("=", 1)[0] in ours)
    dataset, suffix = options.get("dataset_dir", str(out / "dataset_128")), options.get("name", "")
    overrides = (f"dataset_dir={dataset}", *(o for o in overrides if o.split("=", 1)[0] not in ours))
    budget = [f"++trainer.max_time=00:00:{minutes:02d}:00", "trainer.max_epochs=100", "early_stopping.patience=100"]
    if protocol == "lomo":
        names = {f"without_{m}{suffix}": m for m in methods_in(dataset)}
        for name, method in names.items():
            run(["pipelines.train_detector", f"holdout={method}", f"name={name}", *budget, *overrides])
    elif protocol == "zoo":
        names = {f"zoo_{b}{suffix}": b for b in ZOO}
        for name, backbone in names.items():
            run(["pipelines.train_detector", f"detector_model={backbone}", "module=scratch", f"name={name}", *budget,
                 *overrides])
    else:
        raise SystemExit("protocol: lomo or zoo")
    detectors = ",".join(f"{n}:{out}/detectors/{n}/checkpoints/best.ckpt" for n in names)
    sweep = "robustness_faces=0" if protocol == "lomo" else "robustness_faces=2000"  # LOMO asks one question
    run(["pipelines.evaluate", f"data.shards={dataset}", "~detectors", f"+detectors={{{detectors}}}", sweep,
         f"out_dir={out}/reports/detectors/{protocol}{suffix}"])


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:3]), *sys.argv[3:])
