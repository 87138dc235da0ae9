"""Factory throughput against this machine's FLOP bound, shard-writing share, memory at N vs 10N, and
2 ranks against 1.

    python -m benchmarks.generate_throughput [N] [overrides ...]

Runs `generate` (default config: trained swapper, prepared store) on the train split in fresh
output folders, each in its own process so peak memory (max RSS, the process and its ranks) is per run:
1. `swap` fakes only at N samples — achieved GFLOP/s vs the matmul GFLOP/s this CPU sustains
   (1 process on all cores, then 2 ranks);
2. the default method mix at N and at 10N samples — faces/s, shard-writing share, peak memory;
3. the default mix at 10N on 1 rank of 1 core against 2 ranks (`trainer=ddp_cpu`, Lightning gives each
   rank cores / ranks threads): the scaling a multi-node run gets per added rank.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

import torch

import factory  # noqa: F401
from factory.common.model_files import choose


def matmul_gflops(sizes: tuple[int, ...] = (1024, 2048), repeats: int = 5) -> float:
    """This CPU's fp32 matmul rate: warmed, the best of `repeats` timings at each size, the best size.
    A single timing is noise (another process, a frequency step) and can read far below what the
    CPU sustains, which once put a measured rate above 100 % of the "bound"."""
    best = 0.0
    for n in sizes:
        a, b = torch.rand(n, n), torch.rand(n, n)
        reps = max(1, int(2e10 // (2 * n**3)))  # about 20 GFLOP per timing
        for _ in range(3):
            a @ b
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(reps):
                a @ b
            best = max(best, 2 * n**3 * reps / (time.perf_counter() - t) / 1e9)
    return best


def swap_flops(checkpoint: str, size: int = 64) -> dict:
    """FLOPs per swapped face: identity encoder on the source, texture encoder, decoder."""
    from torch.utils.flop_counter import FlopCounterMode

    from factory.swapper.training import load_swapper

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
rss = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print("RESULT" + json.dumps({"run": stats["run"], "max_rss_mb": rss / 1024}))
"""


def generate(out: str, n: int, extra: list[str], threads: int | None = None) -> dict:
    """One `generate` run in a fresh process (`threads`: OMP/torch threads, default all cores)."""
    import os

    args = [sys.executable, "-c", CHILD, f"out_dir={out}", "~samples", f"+samples={{train: {n}}}", "audit_samples=500",
            *extra]
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
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
    swap = cfg.methods.swap  # the swapper generate itself would use: named, else trained here, else shipped
    flops = swap_flops(choose(swap.checkpoint, swap.trained, swap.fallback, "swapper"), cfg.size)
    per_face = flops["swap"] + 2 * flops["identity"]  # + the identity-similarity score (source and result)
    print(f"matmul: {gflops:.1f} GFLOP/s (fp32, {torch.get_num_threads()} threads)")
    print(f"swapper: {flops['swap'] / 1e9:.3f} GFLOP per swapped face (identity encoder {flops['identity'] / 1e9:.3f}); "
          f"with the identity-similarity score {per_face / 1e9:.3f} GFLOP")
    swap_only = ["real_share=0"] + [f"~methods.{m}" for m in cfg.methods if m != "swap"]
    with tempfile.TemporaryDirectory() as tmp:
        for label, args in (("1 process", []), ("2 ranks", ["trainer=ddp_cpu"])):
            swap = generate(f"{tmp}/swap_{len(args)}", n, extra + swap_only + args)
            r = swap["run"]
            achieved = r["faces_per_s"] * per_face / 1e9
            share = f"shard writing {r['write_share']:.1%} of generation time; " if r["write_share"] else ""
            print(f"swap only, {n} faces, {label}: {r['faces_per_s']:.1f} faces/s = {achieved:.1f} GFLOP/s = "
                  f"{achieved / gflops:.0%} of the matmul bound ({gflops / per_face * 1e9:.0f} faces/s); "
                  f"{share}peak RSS {swap['max_rss_mb']:.0f} MB")
            if achieved > gflops:
                print("  above the matmul bound: the machine was busy while the bound was timed; re-run it idle")
        for k in (n, 10 * n):
            res = generate(f"{tmp}/mix{k}", k, extra)
            r = res["run"]
            print(f"default mix, {k} samples: {r['faces_per_s']:.1f} faces/s while generating "
                  f"({r['predict_time_s']:.0f}s of {r['wall_time_s']:.0f}s wall), shard writing {r['write_share']:.1%}, "
                  f"peak RSS {res['max_rss_mb']:.0f} MB")
        # ranks at 10N: every rank then writes many shards, as in a real run (at N each rank's process
        # start-up — re-loading the models — is a large share of its time)
        one = generate(f"{tmp}/rank1", 10 * n, extra, threads=1)["run"]["faces_per_s"]
        two = generate(f"{tmp}/rank2", 10 * n, extra + ["trainer=ddp_cpu"])["run"]["faces_per_s"]
        print(f"default mix, {10 * n} samples: 1 rank on 1 core {one:.1f} faces/s, 2 ranks {two:.1f} faces/s "
              f"= {two / one:.2f}x (rank start-up included)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, sys.argv[2:])
