"""`generate`: the factory (claim 4). Planned jobs → fakes and reals through one code path → shards.

Runs as Lightning prediction. One prediction batch is one output shard: the `ShardJobs` dataset
decodes that shard's target/source crops, `FactoryModule.predict_step` runs the manipulation methods,
blends, perturbs and encodes every sample, and the `ShardWriter` callback writes the shard
atomically. Shards are dealt to ranks by index (`RankShards`), so 1 or N ranks write the same files;
finished shards are skipped on a rerun.

Reals and fakes share everything after the method: the same downscale of the 128 px store to
`size`, the same perturbation distribution, the same JPEG encoder and quality. With `output: image` or
`both`, every sample's crop (real or fake) is also pasted back into its target's original photo
(`factory.dataset.paste_back`), perturbed and encoded there the same way.
"""
from __future__ import annotations

import json
import time
from collections import Counter

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn as nn
from pytorch_lightning.callbacks import BasePredictionWriter, TQDMProgressBar
from torch.utils.data import DataLoader, Dataset, Sampler

from factory.common import storage
from factory.common.images import resize
from factory.common.memory import release_free_memory
from factory.common.masks import encode_mask
from factory.common.paths import portable, portable_tree
from factory.common.shards import atomic_write_json, dump_json, encode_jpeg, iter_samples, write_shard
from factory.dataset import perturbations
from factory.dataset.methods import Method, Pair
from factory.dataset.paste_back import load_photo, paste_back, placement
from factory.dataset.plan import REAL
from factory.identity.encoders import IdentityEncoder, embed_batched
from factory.ingest.facedata import decode, load_faces

WORK = "_work"  # per-shard sidecars: the 'done' markers and summaries


def hard_release(jobs: list[dict], difficulty: dict[str, float], min_difficulty: float) -> tuple[list[dict], dict]:
    """A hard release keeps the reals and only the fakes whose difficulty (from `evaluate`'s
    difficulty.json for the same plan) reaches `min_difficulty`; fakes the file does not score are kept.
    Returns the kept jobs and the count of dropped fakes per method."""
    if not difficulty:
        return jobs, {}
    keep = [j["label"] == 0 or difficulty.get(j["key"], 1.0) >= min_difficulty for j in jobs]
    return [j for j, k in zip(jobs, keep) if k], dict(Counter(j["method"] for j, k in zip(jobs, keep) if not k))


def _only(batch: list):
    return batch[0]


class ShardJobs(Dataset):
    """Item i = shard i's jobs with their decoded target and source crops at the output size (and, when
    `photo_roots` is given, the targets' original photos)."""

    def __init__(self, shards: list[tuple[str, list[dict]]], faces: dict[str, dict], size: int,
                 photo_roots: dict[str, str] | None = None):
        self.shards, self.faces, self.size, self.photo_roots = shards, faces, size, photo_roots

    def __len__(self) -> int:
        return len(self.shards)

    def _crop(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        item = self.faces[key]
        image = decode(item["jpg"])
        scale = self.size / image.shape[0]
        return resize(image, self.size), np.asarray(item["meta"]["landmarks"], np.float32) * scale

    def __getitem__(self, i: int) -> dict:
        name, jobs = self.shards[i]
        crops = {k: self._crop(k) for k in sorted({j["target"] for j in jobs} | {j["source"] for j in jobs})}
        photos = {}
        if self.photo_roots is not None:
            photos = {k: load_photo(self.faces[k]["meta"], self.photo_roots) for k in sorted({j["target"] for j in jobs})}
        return {"shard": name, "jobs": jobs, "crops": crops, "photos": photos,
                "metas": {k: self.faces[k]["meta"] for k in crops}}


class RankShards(Sampler):
    """Shard indices dealt round-robin to ranks: rank r of w gets r, r + w, …, whatever w is."""

    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class FactoryModule(pl.LightningModule):
    """Holds the manipulation methods and the identity encoder that scores identity similarity."""

    def __init__(self, methods: dict[str, Method], identity: IdentityEncoder, jpeg_quality: int = 95,
                 batch_size: int = 8, roots: dict[str, str] | None = None, output: str = "face",
                 feather: float = 0.08):
        super().__init__()
        if output not in ("face", "image", "both"):
            raise ValueError(f"output must be face, image or both, got {output!r}")
        self.output, self.feather = output, feather
        self.roots = roots or {}  # folders the metadata names paths relative to (never a machine's own path)
        self.methods = nn.ModuleDict(methods)
        self.identity = identity.eval().requires_grad_(False)
        self.jpeg_quality, self.batch_size = jpeg_quality, batch_size

    def _similarity(self, a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
        def t(images):
            return torch.from_numpy(np.stack(images)).to(self.device).permute(0, 3, 1, 2).float().div_(255)

        ea, eb = (embed_batched(self.identity, t(x), self.batch_size) for x in (a, b))
        return (ea * eb).sum(1).cpu().numpy()

    @torch.inference_mode()
    def predict_step(self, batch: dict, batch_idx: int = 0) -> dict:
        jobs, crops = batch["jobs"], batch["crops"]
        images, masks, infos = [None] * len(jobs), [None] * len(jobs), [{}] * len(jobs)
        for name in sorted({j["method"] for j in jobs}):
            idx = [i for i, j in enumerate(jobs) if j["method"] == name]
            if name == REAL:
                for i in idx:
                    images[i], masks[i] = crops[jobs[i]["target"]][0], np.zeros(crops[jobs[i]["target"]][0].shape[:2],
                                                                               np.float32)
                continue
            if name not in self.methods:
                raise KeyError(f"plan asks for method {name!r} but this run has {sorted(self.methods)}")
            pairs = [Pair(target=crops[jobs[i]["target"]][0], source=crops[jobs[i]["source"]][0],
                          target_lm=crops[jobs[i]["target"]][1], source_lm=crops[jobs[i]["source"]][1],
                          rng=np.random.default_rng(jobs[i]["seed"])) for i in idx]
            for i, (image, mask, *info) in zip(idx, self.methods[name](pairs)):
                images[i], masks[i], infos[i] = image, mask, (info[0] if info else {})
        wholes = [self.whole(job, image, mask, batch) for job, image, mask in zip(jobs, images, masks)] \
            if self.output != "face" else [None] * len(jobs)
        finals, jpgs = [], []
        for job, image in zip(jobs, images):
            image = perturbations.apply(image, job["perturbation"], job["seed"])
            jpg = encode_jpeg(image, self.jpeg_quality)
            jpgs.append(jpg)
            finals.append(decode(jpg))
        sims = self._similarity([crops[j["source"]][0] for j in jobs], finals)
        samples = []
        for job, jpg, mask, sim, info, whole in zip(jobs, jpgs, masks, sims, infos, wholes):
            meta = self.metadata(job, batch["metas"], mask, float(sim))
            if info:
                meta["manipulation"] = info
            sample = {"__key__": job["key"]}
            if self.output != "image":
                sample.update({"jpg": jpg, "mask.png": encode_mask(mask)})
            if whole is not None:
                sample.update({"image.jpg": whole[0], "image_mask.png": whole[1]})
                meta["image"] = whole[2]
            samples.append({**sample, "json": dump_json(meta)})
        return {"shard": batch["shard"], "samples": samples, "jobs": jobs, "sims": sims.tolist(),
                "upscales": [w[2]["upscale"] for w in wholes if w is not None]}

    def whole(self, job: dict, crop: np.ndarray, mask: np.ndarray, batch: dict) -> tuple[bytes, bytes, dict]:
        """The sample as a full image: `crop` pasted back into the target's photo, then perturbed and
        encoded as the crop is; its full-frame label mask; where the face sits in the photo."""
        meta = batch["metas"][job["target"]]
        where = placement(meta, crop.shape[0])
        image, label = paste_back(batch["photos"][job["target"]], crop, mask, where, self.feather)
        image = perturbations.apply(image, job["perturbation"], job["seed"])
        landmarks = where.to_photo(np.asarray(meta["landmarks"], np.float64) * crop.shape[0] / meta["size"])
        info = {"file": f'{meta["source"]}/{meta["file"]}', "width": where.photo_size[0], "height": where.photo_size[1],
                "box": meta["box"], "landmarks": np.round(landmarks, 2).tolist(),
                "eye_distance_px": meta["eye_distance_px"], "upscale": round(where.upscale, 4),
                "matrix": np.round(where.matrix, 6).tolist(), "feather": self.feather,  # photo → crop, as pasted
                "mask_area": round(float(label.mean()), 5)}
        return encode_jpeg(image, self.jpeg_quality), encode_mask(label), info

    def _provenance(self, method: Method | None) -> dict:
        prov = method.provenance() if method is not None else {"checkpoint": "", "sha256": ""}
        return {**prov, "checkpoint": portable(prov.get("checkpoint", ""), self.roots)}

    def metadata(self, job: dict, metas: dict, mask: np.ndarray, sim: float) -> dict:
        t, s = metas[job["target"]], metas[job["source"]]
        method = self.methods[job["method"]] if job["method"] in self.methods else None
        return {
            "key": job["key"], "label": job["label"], "method": job["method"], "split": job["split"],
            "source_id": s["identity"], "target_id": t["identity"], "source_key": job["source"],
            "target_key": job["target"], "source_dataset": s["source"], "target_dataset": t["source"],
            "pairing": job["pairing"], "pairing_fallback": job["pairing_fallback"],
            "generator": self._provenance(method),
            "seed": job["seed"], "perturbation": job["perturbation"], "id_similarity": round(sim, 4),
            "mask_area": round(float(mask.mean()), 4), "size": int(mask.shape[0]), "jpeg_quality": self.jpeg_quality,
            "target_out_of_frame": t.get("out_of_frame", 0.0),
        }


def shard_summary(out: dict) -> dict:
    """What the dataset card needs from one shard, without re-reading it."""
    jobs = out["jobs"]
    return {
        "shard": out["shard"], "split": jobs[0]["split"], "num_samples": len(jobs),
        "labels": dict(Counter(str(j["label"]) for j in jobs)),
        "methods": dict(Counter(j["method"] for j in jobs)),
        "perturbations": dict(Counter(f'{j["perturbation"]["type"]}:{j["perturbation"]["level"]}' for j in jobs)),
        "pairing_fallbacks": sum(j["pairing_fallback"] for j in jobs),
        "id_similarity": {m: [s for j, s in zip(jobs, out["sims"]) if j["method"] == m]
                          for m in sorted({j["method"] for j in jobs})},
        **({"upscales": out["upscales"]} if out.get("upscales") else {}),
    }


class ShardWriter(BasePredictionWriter):
    """Writes each predicted shard atomically, then its sidecar (the 'done' marker), on its own rank."""

    def __init__(self, out_dir: str):
        super().__init__(write_interval="batch")
        self.out_dir = out_dir
        self.samples_written = 0
        self.write_seconds = 0.0

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        start = time.perf_counter()
        write_shard(storage.join(self.out_dir, prediction["shard"]), prediction["samples"])
        name = prediction["shard"].replace("/", "__").replace(".tar", ".json")
        atomic_write_json(storage.join(self.out_dir, WORK, name), {**shard_summary(prediction), "rank": trainer.global_rank})
        self.write_seconds += time.perf_counter() - start
        self.samples_written += len(prediction["samples"])
        release_free_memory()  # keeps the resident size flat over thousands of shards


class FacesPerSecond(TQDMProgressBar):
    """Lightning's progress bar (one step = one shard) with faces/s in the postfix."""

    def __init__(self, writer: ShardWriter):
        super().__init__()
        self.writer, self.start = writer, None

    def on_predict_start(self, trainer, pl_module):
        super().on_predict_start(trainer, pl_module)
        self.start = time.perf_counter()

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
        rate = self.writer.samples_written / (time.perf_counter() - self.start)
        self.predict_progress_bar.set_postfix({"faces": self.writer.samples_written, "faces/s": f"{rate:.1f}"})


class ShardData(pl.LightningDataModule):
    """The to-do shards, dealt to this rank by `RankShards` (Lightning's distributed sampler is off)."""

    def __init__(self, shards, faces, size: int, num_workers: int = 0, photo_roots: dict[str, str] | None = None):
        super().__init__()
        self.dataset = ShardJobs(shards, faces, size, photo_roots)
        self.num_workers = num_workers

    def predict_dataloader(self) -> DataLoader:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        return DataLoader(self.dataset, batch_size=1, sampler=RankShards(len(self.dataset), rank, world),
                          collate_fn=_only, num_workers=self.num_workers)


def read_summaries(out_dir: str) -> list[dict]:
    work = storage.join(out_dir, WORK)
    return [json.loads(storage.read_bytes(storage.join(work, name))) for name in storage.listdir(work)
            if name.endswith(".json")]


def done_shards(out_dir: str) -> set[str]:
    """Shards whose tar and sidecar both exist (the sidecar is written after the rename)."""
    return {s["shard"] for s in read_summaries(out_dir) if storage.exists(storage.join(out_dir, s["shard"]))}


def run(cfg, progress: bool = True) -> dict:
    """The whole stage from a composed `generate` config (see conf/generate.yaml)."""
    import hashlib

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from factory.common.shards import remove_partials, write_index
    from factory.dataset.audit import leakage_audit
    from factory.dataset.card import card, contact, dataset_stats
    from factory.dataset.plan import plan_split, shard_jobs
    from factory.ingest.facedata import to_tensor

    start = time.time()
    out_dir = cfg.out_dir
    roots = {"output_dir": cfg.paths.output_dir, "data_dir": cfg.paths.data_dir}  # what written paths are relative to
    pl.seed_everything(cfg.seed, workers=True)
    identity = instantiate(cfg.identity)
    methods = {name: instantiate(m) for name, m in cfg.methods.items()}
    pairing = instantiate(cfg.pairing)
    perturb = OmegaConf.to_container(cfg.perturb, resolve=True)
    output = cfg.get("output", "face")
    whole = OmegaConf.to_container(cfg.image, resolve=True) if output != "face" else None
    target_ok, unusable = None, Counter()
    if whole is not None:
        from factory.dataset.paste_back import photo_roots, usable_target

        whole["roots"] = photo_roots(cfg.faces_dir, whole.get("roots"))

        def target_ok(meta):
            why = usable_target(meta, cfg.size, whole["roots"], whole["sources"], whole["max_upscale"])
            unusable[why or "kept"] += 1
            return why is None

    hard = OmegaConf.to_container(cfg.get("hard", {}) or {}, resolve=True)
    difficulty = {}
    if hard.get("difficulty"):
        difficulty = json.loads(storage.read_bytes(hard["difficulty"]))["difficulty"]
    faces, shards, dropped = {}, [], {}
    for split, n in cfg.samples.items():
        pool = load_faces(cfg.faces_dir, split)
        faces.update({it["meta"]["key"]: it for it in pool})
        metas = [it["meta"] for it in pool]

        def embed(idx, pool=pool):
            batch = torch.stack([to_tensor(resize(decode(pool[i]["jpg"]), cfg.size)) for i in idx])
            return embed_batched(identity, batch).numpy()

        jobs = plan_split(split, metas, int(n), cfg.real_share, {k: m.uses_source for k, m in methods.items()},
                          cfg.get("method_weights"), pairing, embed, perturb, cfg.seed, cfg.max_out_of_frame, target_ok)
        jobs, dropped[split] = hard_release(jobs, difficulty, hard.get("min_difficulty", 0.0))
        shards += shard_jobs(jobs, split, cfg.shard_size)

    plan_hash = hashlib.sha256(json.dumps(shards, sort_keys=True).encode()).hexdigest()
    fingerprint = {"plan_sha256": plan_hash, "size": cfg.size, "jpeg_quality": cfg.jpeg_quality,
                   "methods": {k: {**OmegaConf.to_container(v, resolve=True), **m.provenance()}
                               for (k, v), m in zip(cfg.methods.items(), methods.values())},
                   "identity": OmegaConf.to_container(cfg.identity, resolve=True)}
    if whole is not None:  # a face-only dataset keeps the fingerprint it always had
        fingerprint["output"] = {"output": output, **{k: v for k, v in whole.items() if k != "roots"}}
    fingerprint = portable_tree(fingerprint, roots)  # it travels with the dataset: no machine paths
    storage.makedirs(storage.join(out_dir, WORK))
    fp_path = storage.join(out_dir, "_generate.json")
    if storage.exists(fp_path) and json.loads(storage.read_bytes(fp_path)) != json.loads(json.dumps(fingerprint)):
        raise RuntimeError(f"{out_dir} holds a dataset made with a different config or generator: "
                           "set out_dir elsewhere or delete that folder")
    atomic_write_json(fp_path, fingerprint)
    remove_partials(out_dir)
    done = done_shards(out_dir)
    todo = [s for s in shards if s[0] not in done]

    writer = ShardWriter(out_dir)
    is_zero, predict_s = True, 0.0
    if todo:
        t0 = time.time()
        module = FactoryModule(methods, identity, cfg.jpeg_quality, cfg.batch_size, roots, output,
                               whole["feather"] if whole else 0.08)
        trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False, use_distributed_sampler=False,
                              callbacks=[writer, FacesPerSecond(writer)] if progress else [writer],
                              enable_progress_bar=progress, enable_model_summary=False,
                              default_root_dir=out_dir)
        trainer.predict(module, datamodule=ShardData(todo, faces, cfg.size, cfg.num_workers, whole and whole["roots"]),
                        return_predictions=False)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            trainer.strategy.barrier()  # ranks launched as scripts (strategy=ddp) all get here; rank 0 finishes
        is_zero, predict_s = trainer.is_global_zero, time.time() - t0
    if not is_zero:
        return {}
    wall = time.time() - start

    summaries = read_summaries(out_dir)
    missing = sorted({s[0] for s in shards} - {s["shard"] for s in summaries})
    if missing:
        raise RuntimeError(f"{len(missing)} planned shards were not written (first: {missing[0]}); rerun to finish")
    by_name = {s["shard"]: s for s in summaries}
    write_index(out_dir, "swap-factory-dataset",
                {split: [(name, by_name[name]["num_samples"]) for name, _ in shards if name.startswith(f"{split}/")]
                 for split in cfg.samples}, size=cfg.size, seed=cfg.seed)
    stats = dataset_stats([by_name[name] for name, _ in shards])
    audit_split = "test" if "test" in cfg.samples else list(cfg.samples)[0]
    keys = (["jpg"] if output != "image" else []) + (["image.jpg"] if whole is not None else [])
    audit_samples = {key: [] for key in keys}
    for n, sample in enumerate(iter_samples(out_dir, audit_split, decode=False)):  # one pass for every product
        if n >= cfg.audit_samples:
            break
        meta = json.loads(sample["json"])
        for key in keys:
            audit_samples[key].append((sample[key], meta))
    audits = {key: {"split": audit_split, **leakage_audit(found, cfg.seed, boundary=key == "image.jpg")}
              for key, found in audit_samples.items()}
    if difficulty:
        stats["hard_release"] = {"difficulty": portable(hard["difficulty"], roots), "min_difficulty": hard.get("min_difficulty", 0.0),
                                 "dropped_fakes": dropped}
    stats["leakage_audit"] = audits[keys[0]]
    if whole is not None:
        stats["image"] = {**full_image_stats([by_name[name] for name, _ in shards], whole, dict(unusable)),
                          "leakage_audit": audits["image.jpg"]}
    made = sum(by_name[name]["num_samples"] for name, _ in todo)
    # write time is only seen when the shards were written in this process (not by spawned ranks)
    share = round(writer.write_seconds / predict_s, 4) if writer.samples_written else None
    stats["run"] = {"wall_time_s": round(wall, 1), "predict_time_s": round(predict_s, 1), "shards_written": len(todo),
                    "shards_total": len(shards), "samples_written": made,
                    "faces_per_s": round(made / predict_s, 2) if made else 0.0, "write_share": share}
    atomic_write_json(storage.join(out_dir, "stats.json"), stats)
    info = {"size": cfg.size, "jpeg_quality": cfg.jpeg_quality, "real_share": cfg.real_share,
            "pairing": pairing.name, "max_out_of_frame": cfg.max_out_of_frame, "perturb_share": perturb["share"],
            "seed": cfg.seed, "faces_dir": portable(cfg.faces_dir, roots)}
    storage.write_bytes(storage.join(out_dir, "README.md"), card(stats, info, stats["leakage_audit"]).encode())
    if output != "image":
        contact(out_dir, audit_split, cfg.contact_faces)
    if whole is not None:
        contact(out_dir, audit_split, cfg.contact_faces, "image.jpg", "image_mask.png", "contact_sheet_images.png", tile=192)
    return stats


def full_image_stats(summaries: list[dict], whole: dict, targets: dict[str, int]) -> dict:
    """The full-image product's card entry: which store faces could be targets (and why not), and the
    distribution of the paste-back enlargement over the written samples."""
    ups = [u for s in summaries for u in s.get("upscales", [])]
    q = np.quantile(ups, [0.0, 0.1, 0.5, 0.9, 1.0]).round(3).tolist() if ups else []
    return {"sources": whole["sources"], "max_upscale": whole["max_upscale"], "feather": whole["feather"],
            "target_faces": targets, "samples": len(ups), "upscale_quantiles": dict(zip(["min", "p10", "p50", "p90", "max"], q)),
            "upscaled_share": round(float(np.mean(np.asarray(ups) > 1.0)), 4) if ups else 0.0}


def summary_text(stats: dict) -> str:
    lines = [f"samples: {stats['samples']}"]
    for split, s in stats["splits"].items():
        lines.append(f"  {split}: {s['samples']} in {s['shards']} shards; {s['methods']}")
    r = stats["run"]
    lines.append(f"  wall {r['wall_time_s']}s, {r['shards_written']}/{r['shards_total']} shards this run, "
                 f"{r['faces_per_s']} faces/s while generating" + (f", shard writing {r['write_share']:.1%} of that time" if r["write_share"] else ""))
    a = stats["leakage_audit"]
    lines.append(f"  leakage audit AUC (all fakes vs reals): " +
                 ", ".join(f"{k} {v['all']}" for k, v in a["auc"].items()))
    return "\n".join(lines)
