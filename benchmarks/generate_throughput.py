"""Factory throughput against this machine's FLOP bound, shard-writing share, and memory at N vs 4N.

    python -m benchmarks.generate_throughput [N] [overrides ...]

Runs `generate` (default config: trained swapper, prepared store) on the train split in fresh
output folders, each in its own process so peak memory (max RSS) is per run:
1. `swap` fakes only at N samples — achieved GFLOP/s vs the matmul GFLOP/s this CPU sustains;
2. the default method mix at N and at 4N samples — faces/s, shard-writing share, peak memory.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

import torch

import factory  # noqa: F401


def matmul_gflops(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def swap_flops(checkpoint: str, size: int = 64) -> dict:
    """FLOPs per swapped face: identity encoder on the source, texture encoder, decoder."""
    from torch.utils.flop_counter import FlopCounterMode

    from factory.swapper.networks import load_swapper

    sw = load_swapper(checkpoint)
    x = torch.rand(1, 3, size, size)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as total:
            sw.swap(x, x)
        with FlopCounterMode(display=False) as ident:
            sw.identity(x)
    return {"swap": total.get_total_flops(), "identity": ident.get_total_flops()}


CHILD = """
import json, resource, sys
from hydra import compose, initialize_config_dir
import pipelines
from factory.dataset.generate import run
from factory.common.paths import CONF_DIR
with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
    cfg = compose("generate", overrides=sys.argv[1:])
stats = run(cfg, progress=False)
print("RESULT" + json.dumps({"run": stats["run"], "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(out: str, n: int, extra: list[str]) -> dict:
    args = [sys.executable, "-c", CHILD, f"out_dir={out}", "~samples", f"+samples={{train: {n}}}", "audit_samples=500",
            *extra]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.split("RESULT", 1)[1])


def main(n: int = 1000, extra: list[str] | None = None) -> None:
    from hydra import compose, initialize_config_dir

    from factory.common.paths import CONF_DIR

    extra = list(extra or [])
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("generate", overrides=extra)
    gflops = matmul_gflops()
    flops = swap_flops(cfg.methods.swap.checkpoint, cfg.size)
    per_face = flops["swap"] + 2 * flops["identity"]  # + the identity-similarity score (source and result)
    print(f"matmul: {gflops:.1f} GFLOP/s (fp32, {torch.get_num_threads()} threads)")
    print(f"swapper: {flops['swap'] / 1e9:.3f} GFLOP per swapped face (identity encoder {flops['identity'] / 1e9:.3f}); "
          f"with the identity-similarity score {per_face / 1e9:.3f} GFLOP")
    with tempfile.TemporaryDirectory() as tmp:
        swap = generate(f"{tmp}/swap", n, extra + ["real_share=0", "~methods.warp_blend", "~methods.self_blend"])
        r = swap["run"]
        achieved = r["faces_per_s"] * per_face / 1e9
        print(f"swap only, {n} faces: {r['faces_per_s']:.1f} faces/s = {achieved:.1f} GFLOP/s = "
              f"{achieved / gflops:.0%} of the matmul bound ({gflops / per_face * 1e9:.0f} faces/s); "
              f"shard writing {r['write_share']:.1%} of generation time; peak RSS {swap['max_rss_mb']:.0f} MB")
        for k in (n, 4 * n):
            res = generate(f"{tmp}/mix{k}", k, extra)
            r = res["run"]
            print(f"default mix, {k} samples: {r['faces_per_s']:.1f} faces/s while generating "
                  f"({r['predict_time_s']:.0f}s of {r['wall_time_s']:.0f}s wall), shard writing {r['write_share']:.1%}, "
                  f"peak RSS {res['max_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, sys.argv[2:])
