"""Out of memory during separation: retried smaller, then a clear failure; the worker lives.

The memory is really exhausted: the separation runs under a lowered RLIMIT_DATA (our
``STEMBOT_JOB_MEMORY_MB`` cap) in a child process, so torch's own CPU allocator fails inside
the model, and our ladder catches that error. glibc is told to map every allocation over
128 KiB on its own (``MALLOC_MMAP_THRESHOLD_``) so freed tensors leave the data segment at once
and the memory a run needs is the same from one run to the next.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from arq.connections import RedisSettings, create_pool

from shared.config import Settings
from shared.errors import OutOfMemory
from shared.intake import build_options
from shared.redis_server import PrivateRedis
from shared.storage import build_storage
from tests.support.audio import make_audio
from tests.support.service import Service
from worker.memory import is_out_of_memory
from worker.overlap_add import Plan
from worker.separation import ModelCache, Tuning, attempts

ROOT = Path(__file__).resolve().parents[2]
FIXED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "131072"}

OOM_MESSAGE = (
    "This track needs more memory than the server has free right now, even in smaller "
    "pieces. Try a shorter track or cut, or try again later."
)


@pytest.mark.timeout(300)
def test_out_of_memory_retries_with_a_shorter_segment_then_fails_clearly(
    model_repo: Path,
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tests.worker.oom_child", str(model_repo)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **FIXED_MALLOC},
        check=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    # the premise: an 8 s segment needs clearly more than a 4 s one
    assert report["need_long_mb"] > report["need_short_mb"] + 80, report
    # under a cap between the two, the 8 s attempt ran out and the 4 s one gave the result
    assert report["retried_equal"] is True, (report, out.stderr)
    warning = next(line for line in out.stderr.splitlines() if line.startswith("WARNING"))
    assert warning.startswith("WARNING separation out of memory (cpu, segment 8 s, batch 1): ")
    assert "DefaultCPUAllocator: can't allocate memory" in warning
    assert warning.endswith("; trying cpu, segment 4 s, batch 1")
    # under a cap nothing fits in: our error, with its message
    assert report["failure"] == {"code": "out_of_memory", "message": OOM_MESSAGE}
    assert "ERROR separation out of memory after 2 attempts" in out.stderr
    assert report["limits_restored"] is True
    assert report["after_ok"] is True


@pytest.fixture
def capped_worker(
    redis_server: PrivateRedis, model_repo: Path, tmp_path: Path
) -> Iterator[tuple[Settings, subprocess.Popen[bytes]]]:
    """A real `stembot worker` process whose separations may add 110 MiB to it."""
    settings = Settings(
        redis_url=redis_server.url,
        queue_name=f"test:queue:{uuid.uuid4().hex[:8]}",
        storage_dir=tmp_path / "storage",
        model_repo=model_repo,
        signing_key="test-signing-key-not-a-secret",
        default_model="hdemucs_mmi",
        segment=8.0,
        shifts=0,
    )
    env = {
        **os.environ,
        **FIXED_MALLOC,
        "STEMBOT_REDIS_URL": redis_server.url,
        "STEMBOT_QUEUE_NAME": settings.redis.queue_name,
        "STEMBOT_STORAGE_DIR": str(settings.storage.storage_dir),
        "STEMBOT_MODEL_REPO": str(model_repo),
        "STEMBOT_SIGNING_KEY": "test-signing-key-not-a-secret",
        "STEMBOT_DEFAULT_MODEL": "hdemucs_mmi",
        "STEMBOT_DEVICE": "cpu",
        "STEMBOT_TORCH_THREADS": "1",
        "STEMBOT_JOB_MEMORY_MB": "110",
    }
    with (tmp_path / "worker.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stembot.cli", "worker", "--queue", "separate"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield settings, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(300)
async def test_worker_survives_a_job_that_runs_out_of_memory(
    capped_worker: tuple[Settings, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    settings, proc = capped_worker
    redis = await create_pool(RedisSettings.from_dsn(settings.redis.redis_url or ""))
    svc = Service(settings, redis, build_storage(settings), None, "")  # type: ignore[arg-type]
    options = build_options(settings)
    try:
        # 16 s at 8 s segments needs ~300 MiB, at 4 s ~150 MiB: both past the 110 MiB cap
        big = make_audio(tmp_path / "big.wav", seconds=16.0)
        _, stream = await svc.submit(big, user="big", options=options)
        events = await svc.events_until_final(stream, timeout_s=240)
        final = events[-1]
        assert (final.state.value, final.error_code) == ("failed", "out_of_memory")
        assert final.error_message == OOM_MESSAGE
        # the same worker process goes on to the next song (1 s: ~60 MiB)
        small = make_audio(tmp_path / "small.wav", seconds=1.0)
        _, stream = await svc.submit(small, user="small", options=options)
        events = await svc.events_until_final(stream, timeout_s=120)
        assert events[-1].state.value == "done"
        assert [s.name for s in events[-1].result.stems] == ["drums", "bass", "other", "vocals"]  # type: ignore[union-attr]
        assert proc.poll() is None  # still running
        log = (tmp_path / "worker.log").read_text()
        assert "separation out of memory after 2 attempts" in log
    finally:
        await redis.aclose()


def test_the_ladder_goes_smaller_then_to_the_cpu(model_repo: Path) -> None:
    models = ModelCache(model_repo, "cpu", keep=10)
    gpu = Tuning(batch=4, precision="fp16", cpu_fallback=True)
    assert attempts(models.get("hdemucs_mmi"), "cuda", None, gpu) == [
        Plan("cuda", None, 4, "fp16"),
        Plan("cuda", None, 1, "fp16"),
        Plan("cuda", 1.0, 1, "fp16"),  # half the model's 2 s segment
        Plan("cpu", None, 1, "fp32"),
    ]
    # HTDemucs runs its trained segment length whatever segment it is given: no shorter step
    assert attempts(models.get("htdemucs"), "cuda", None, Tuning(batch=2)) == [
        Plan("cuda", None, 2, "fp32"),
        Plan("cuda", None, 1, "fp32"),
    ]
    assert attempts(models.get("mdx_extra_q"), "cpu", 3.0, Tuning()) == [
        Plan("cpu", 3.0, 1, "fp32"),
        Plan("cpu", 1.5, 1, "fp32"),
    ]


def test_what_counts_as_out_of_memory() -> None:
    with pytest.raises(RuntimeError) as cpu:
        torch.empty(2**50, dtype=torch.uint8)  # 1 PiB: torch's CPU allocator refuses
    assert is_out_of_memory(cpu.value)
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert OutOfMemory().user_message == OOM_MESSAGE


def test_tuning_keeps_the_gpu_knobs_off_on_cpu() -> None:
    settings = Settings(
        cuda_batch=8, cuda_precision="bf16", job_memory_mb=2048, cpu_precision="fp32"
    )
    assert Tuning.for_device(settings.separation, "cpu") == Tuning(job_memory_mb=2048)
    assert Tuning.for_device(settings.separation, "cuda") == Tuning(
        batch=8, precision="bf16", cpu_fallback=True
    )
