"""Benchmark detectors on factory shards or on any real/fake folder: metrics overall, per method and
per perturbation type × level, a detector × method AUC matrix, calibration, and a report."""
from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Callable

import numpy as np
from sklearn.metrics import brier_score_loss

from detector.calibration import apply_temperature, fit_temperature
from detector.metrics import binary_metrics, ece, reliability
from factory.common.shards import iter_samples
from factory.common.thresholds import best_threshold


def load_shard_faces(root: str, split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    faces, metas = [], []
    for s in iter_samples(root, split):
        faces.append(s["jpg"])
        metas.append(s["json"])
        if limit and len(faces) >= limit:
            break
    if not faces:
        raise ValueError(f"no samples in {root} split {split}")
    return np.stack(faces), np.array([m["label"] for m in metas], int), metas


def val_fit(scorer: Callable, root: str | None, split: str = "val", limit: int | None = None) -> dict:
    """What a detector takes from the val split: the threshold maximising balanced accuracy and the
    calibrating temperature (empty without val data)."""
    if not root:
        return {}
    try:
        faces, labels, _ = load_shard_faces(root, split, limit)
    except (KeyError, FileNotFoundError, ValueError):
        return {}
    p = np.asarray(scorer(faces), np.float64)
    return {"threshold": best_threshold(p, labels.astype(bool)), "temperature": fit_temperature(p, labels)}


def breakdown(y: np.ndarray, p: np.ndarray, metas: list[dict], threshold: float | None, n_boot: int, seed: int) -> dict:
    """Overall, per method (its fakes vs all reals), per perturbation type × level (both classes)."""
    out = {"overall": binary_metrics(y, p, threshold, n_boot, seed), "per_method": {}, "per_perturbation": {},
           "per_source": {}}
    sources = np.array([m.get("target_dataset", "") for m in metas])
    for source in sorted(set(sources) - {""}):  # both classes on that source's backgrounds (cross-source protocol)
        sel = sources == source
        if len(np.unique(y[sel])) == 2:
            out["per_source"][source] = binary_metrics(y[sel], p[sel], threshold, n_boot, seed)
    methods = np.array([m["method"] for m in metas])
    for method in sorted(set(methods) - {"real"}):
        sel = (methods == method) | (y == 0)
        out["per_method"][method] = binary_metrics(y[sel], p[sel], threshold, n_boot, seed)
    pert = np.array([f'{m["perturbation"]["type"]}:{m["perturbation"]["level"]}' for m in metas])
    for key in sorted(set(pert)):
        sel = pert == key
        out["per_perturbation"][key] = binary_metrics(y[sel], p[sel], threshold, n_boot, seed)
    out["reliability"] = reliability(y, p)
    return out


def robustness(result: dict) -> dict[str, list]:
    """AUC vs level per perturbation type; level 0 is the unperturbed samples. The sweep's curves
    (every level applied to the same clean faces) when the report has them, else the dataset's own
    perturbed samples."""
    if result.get("sweep"):
        return {k: v for k, v in sorted(result["sweep"].items()) if k != "faces"}
    per = result["per_perturbation"]
    clean = per.get("none:0", {}).get("auc")
    curves = defaultdict(lambda: [None] * 6)
    for key, m in per.items():
        kind, level = key.split(":")
        if kind != "none":
            curves[kind][int(level)] = m["auc"]
    for kind in curves:
        curves[kind][0] = clean
    return dict(sorted(curves.items()))


def plots(results: dict[str, dict], scores: dict[str, tuple[np.ndarray, np.ndarray]], out_dir: str) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    files = {}
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, (y, p) in scores.items():
        if len(np.unique(y)) == 2:
            fpr, tpr, _ = roc_curve(y, p)
            ax.plot(fpr, tpr, label=f'{name} (AUC {results[name]["overall"]["auc"]:.3f})')
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate (reals called fake)", ylabel="true positive rate", title="ROC")
    ax.legend(fontsize=7)
    files["roc"] = os.path.join(out_dir, "roc.png")
    fig.tight_layout(), fig.savefig(files["roc"], dpi=120), plt.close(fig)

    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 4), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items()):
        for kind, aucs in robustness(r).items():
            lv = [i for i, a in enumerate(aucs) if a is not None]
            ax.plot(lv, [aucs[i] for i in lv], marker="o", label=kind)
        ax.set(xlabel="perturbation level (0 = none)", ylabel="AUC", title=f"robustness: {name}", ylim=(0.4, 1.01))
        ax.legend(fontsize=7)
    files["robustness"] = os.path.join(out_dir, "robustness.png")
    fig.tight_layout(), fig.savefig(files["robustness"], dpi=120), plt.close(fig)

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, r in results.items():
        rel = r["reliability"]
        ax.plot(rel["predicted"], rel["observed"], marker="o", label=f'{name} (ECE {r["overall"]["ece"]:.3f})')
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="predicted p(fake)", ylabel="observed fake rate", title="reliability")
    ax.legend(fontsize=7)
    files["reliability"] = os.path.join(out_dir, "reliability.png")
    fig.tight_layout(), fig.savefig(files["reliability"], dpi=120), plt.close(fig)
    return {k: os.path.basename(v) for k, v in files.items()}  # beside report.json: no machine's path in it


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def leave_one_method_out(matrix: dict[str, dict]) -> dict[str, tuple[str, float | None]]:
    """Detector → (its held-out method, its AUC on that method's fakes), from the per-method AUC matrix,
    for detectors named `without_<method>` (any suffix, e.g. `without_swap_big`); several detectors may
    hold out the same method (e.g. two recipes compared on it)."""
    lomo = {}
    for name, row in matrix.items():
        held = [m for m in row if name.startswith(f"without_{m}")]
        if held:
            method = max(held, key=len)  # the longest match: a method named like another's prefix
            lomo[name] = (method, row[method])
    return lomo


def markdown(report: dict) -> str:
    lines = [f"# Detector benchmark", "", f"Data: `{report['data']['source']}` ({report['data']['n']} faces: "
             f"{report['data']['n_real']} real, {report['data']['n_fake']} fake).", ""]
    if report["data"].get("skipped"):
        lines += [f"Unusable images, counted: {report['data']['skipped_by_reason']}", ""]
    if report["data"].get("padded"):
        pad = report["data"]["padded"]
        lines += [f"Reflect-padded share of the aligned crops (tight input crops): mean {pad['mean']:.1%}, "
                  f"max {pad['max']:.1%}, {pad['faces_over_10pct']} faces over 10 %.", ""]
    lines += ["| detector | AUC [95 % CI] | EER | AP | acc@0.5 | acc@val thr. | ECE | Brier |", "|---|---|---|---|---|---|---|---|"]
    for name, r in report["detectors"].items():
        o = r["overall"]
        ci = f" [{o['auc_ci95'][0]:.3f}, {o['auc_ci95'][1]:.3f}]" if o.get("auc_ci95") else ""
        lines.append(f"| {name} | {_fmt(o['auc'])}{ci} | {_fmt(o['eer'])} | {_fmt(o['ap'])} | {_fmt(o['acc@0.5'])} | "
                     f"{_fmt(o.get('acc@threshold'))} | {_fmt(o['ece'])} | {_fmt(o['brier'])} |")
    hard = report.get("hardness")
    if hard:
        lines += ["", f"Hardest third of the fakes (difficulty = 1 − mean p(fake) of {', '.join(hard['detectors'])}; "
                      f"≥ {hard['hardest_third_min_difficulty']:.3f}) against all reals — AUC: " +
                  ", ".join(f"{n} {_fmt(a)}" for n, a in hard["auc_hardest_third"].items()) + ". Mean difficulty by "
                  "method: " + ", ".join(f"{m} {d:.3f}" for m, d in hard["mean_difficulty_by_method"].items()) + "."]
    lines += ["", "Calibration: temperature T fitted on val, applied to the test scores:", "",
              "| detector | T | ECE before → after | Brier before → after |", "|---|---|---|---|"]
    for name, r in report["detectors"].items():
        c = r.get("calibration", {})
        t = c.get("temperature")
        lines.append(f"| {name} | {'–' if t is None else f'{t:.2f}'} | {_fmt(c.get('ece_before'))} → "
                     f"{_fmt(c.get('ece_after'))} | {_fmt(c.get('brier_before'))} → {_fmt(c.get('brier_after'))} |")
    per_source = {n: r.get("per_source", {}) for n, r in report["detectors"].items()}
    names = sorted({src for v in per_source.values() for src in v})
    if names:
        lines += ["", "AUC by background source (both classes on that source's faces; a cross-source detector "
                      "trained with `sources=` is scored on the others here):", "",
                  "| detector | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        lines += [f"| {n} | " + " | ".join(_fmt(v.get(src, {}).get("auc")) for src in names) + " |"
                  for n, v in per_source.items()]
    matrix = report.get("method_matrix")
    lomo = leave_one_method_out(matrix or {})
    if lomo:
        lines += ["", "Leave-one-method-out: AUC of the detector trained without a method on that method's fakes vs all reals:",
                  "", "| detector | held-out method | AUC |", "|---|---|---|",
                  *(f"| {d} | {m} | {_fmt(a)} |" for d, (m, a) in sorted(lomo.items(), key=lambda kv: (kv[1][0], kv[0])))]
    if matrix:
        methods = sorted({m for row in matrix.values() for m in row})
        lines += ["", "AUC per detector (rows) and test method (columns; that method's fakes vs all reals):", "",
                  "| detector | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for name, row in matrix.items():
            lines.append(f"| {name} | " + " | ".join(_fmt(row.get(m)) for m in methods) + " |")
    for name, r in report["detectors"].items():
        curves = robustness(r)
        if curves:
            how = (f"each level applied to the same {r['sweep']['faces']} unperturbed test faces, re-encoded"
                   if r.get("sweep") else "the dataset's own perturbed samples; 0 = unperturbed")
            lines += ["", f"Robustness of `{name}`: AUC by perturbation level ({how}):", "",
                      "| type | 0 | 1 | 2 | 3 | 4 | 5 |", "|---|---|---|---|---|---|---|"]
            for kind, aucs in curves.items():
                lines.append(f"| {kind} | " + " | ".join(_fmt(a) for a in aucs) + " |")
    lines += ["", "![ROC](roc.png) ![robustness](robustness.png) ![reliability](reliability.png)", ""]
    return "\n".join(lines)


def calibration(y: np.ndarray, p: np.ndarray, overall: dict, temperature: float | None) -> dict:
    """ECE and Brier before (the `overall` figures of these scores) and after temperature scaling (the
    temperature fitted on val)."""
    out = {"temperature": temperature, "ece_before": overall["ece"], "brier_before": overall["brier"]}
    if temperature is not None:
        q = apply_temperature(p, temperature)
        out.update({"ece_after": ece(y, q), "brier_after": float(brier_score_loss(y, q))})
    return out


def hardness(labels: np.ndarray, probs: dict[str, np.ndarray], metas: list[dict], out_dir: str, n_boot: int,
             seed: int) -> dict:
    """Every fake's `difficulty`: 1 − the mean fake-probability the evaluated (reference) detectors give
    it (1 = all call it real). Written per sample key to `difficulty.json` (what `generate`'s hard release
    reads); each detector's AUC on the hardest third of the fakes against all reals."""
    fake = labels == 1
    if not fake.any() or not probs:
        return {}
    difficulty = 1 - np.mean(list(probs.values()), axis=0)
    keys = [m.get("key", m.get("file")) for m in metas]
    with open(os.path.join(out_dir, "difficulty.json"), "w") as f:
        json.dump({"detectors": sorted(probs), "difficulty": {k: round(float(d), 4) for k, d, y in
                                                               zip(keys, difficulty, labels) if y == 1}}, f)
    cut = np.quantile(difficulty[fake], 2 / 3)
    hard = (fake & (difficulty >= cut)) | ~fake
    return {"detectors": sorted(probs), "hardest_third_min_difficulty": float(cut),
            "mean_difficulty_by_method": {m: float(difficulty[np.array([x["method"] == m for x in metas]) & fake].mean())
                                          for m in sorted({x["method"] for x, y in zip(metas, labels) if y == 1})},
            "auc_hardest_third": {n: binary_metrics(labels[hard], p[hard], None, n_boot, seed)["auc"]
                                  for n, p in probs.items()}}


def evaluate(scorers: dict[str, Callable], faces: np.ndarray, labels: np.ndarray, metas: list[dict], out_dir: str,
             data: dict, thresholds: dict[str, float | None] | None = None, n_boot: int = 1000, seed: int = 0,
             temperatures: dict[str, float | None] | None = None, sweep_faces: int = 0,
             jpeg_quality: int = 95) -> dict:
    """Score every detector on the same faces; write report.json, report.md and the PNGs. With
    `sweep_faces`, also the robustness sweep on that many unperturbed faces (`detector.robustness`)."""
    from detector.robustness import sweep

    os.makedirs(out_dir, exist_ok=True)
    results, scores = {}, {}
    for name, scorer in scorers.items():
        p = np.asarray(scorer(faces), np.float64)
        if p.shape != (len(faces),) or not np.all((p >= 0) & (p <= 1)):
            raise ValueError(f"detector {name} broke the protocol: want {len(faces)} probabilities in [0, 1]")
        results[name] = breakdown(labels, p, metas, (thresholds or {}).get(name), n_boot, seed)
        results[name]["calibration"] = calibration(labels, p, results[name]["overall"], (temperatures or {}).get(name))
        scores[name] = (labels, p)
    clean = {n: p for n, (_, p) in scores.items()}
    for name, curves in sweep(scorers, faces, labels, metas, jpeg_quality, sweep_faces, seed, clean).items():
        results[name]["sweep"] = curves
    report = {"data": {**data, "n": int(len(labels)), "n_fake": int(labels.sum()), "n_real": int((labels == 0).sum())},
              "detectors": results,
              "method_matrix": {n: {m: r["auc"] for m, r in res["per_method"].items()} for n, res in results.items()}}
    report["hardness"] = hardness(labels, {n: p for n, (_, p) in scores.items()}, metas, out_dir, n_boot, seed)
    report["plots"] = plots(results, scores, out_dir)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(markdown(report))
    return report
