"""One measured run in its own process, so its peak RSS (and GPU memory) is its own.

``python -m bench.child MODE JSON`` prints one JSON object on its last stdout line:

- ``worker``: our worker's path on a file: model load, ffmpeg decode, separation streamed to
  staged files, mp3 encode of every stem. Phase times, peak RSS, peak GPU memory.
- ``demucs``: demucs' own ``Separator.separate_tensor`` (what ``python -m demucs`` runs) on
  the same decoded samples: separation time and peak RSS.
- ``service``: the real queue: a private redis-server, an arq worker with the model warm
  (and the download-queue worker, where renders from kept masters run), files submitted
  through the core; end-to-end time of one track, the same track in another format and as
  a two-stem mix (made from its master, without Demucs), then a queue of tracks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import torch

from shared.schemas import AudioFormat
from worker.audio import decode, encode_stems
from worker.cpu_runtime import Runtime, prepare
from worker.overlap_add import Precision
from worker.precision import cpu_precision
from worker.separation import ModelCache, Tuning, cpu_threads, pick_device, separate_to_files
from worker.staging import mix_staged


class ForwardTimer:
    """Seconds spent inside the model's own forward passes (the rest is our overhead)."""

    def __init__(self, model: Any) -> None:
        self.total = 0.0
        self._start = 0.0
        for part in model.models if hasattr(model, "models") else [model]:
            part.register_forward_pre_hook(self._before)
            part.register_forward_hook(self._after)

    def _before(self, *_: Any) -> None:
        self._start = time.perf_counter()

    def _after(self, *_: Any) -> None:
        self.total += time.perf_counter() - self._start


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def peak_gpu_mb() -> float | None:
    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def run_worker(args: dict[str, Any]) -> dict[str, Any]:
    device = pick_device(args.get("device", "auto"))
    torch.set_num_threads(cpu_threads())
    track = Path(args["track"])
    started = time.perf_counter()
    model = ModelCache(Path(args["repo"]), device).get(args.get("model", "htdemucs"))
    runtime: Runtime = args.get("runtime", "torch") if device == "cpu" else "torch"
    built = prepare(model, runtime) if runtime != "torch" else True  # as on_startup does
    loaded = time.perf_counter()
    wav = decode(track, model.samplerate, model.audio_channels, src_channels=2, demuxer="mp3")
    decoded = time.perf_counter()
    # CUDA: as asked ("auto": fp32, the setting's default); CPU: "auto" as a worker resolves it
    asked = args.get("precision", "fp32")
    precision: Precision
    if device == "cuda":
        precision = "fp32" if asked == "auto" else asked
    else:
        precision = cpu_precision(asked) if runtime == "torch" else "fp32"
    tuning = Tuning(
        batch=args.get("batch", 1) if device == "cuda" else 1,
        precision=precision,
        cpu_runtime=runtime,
    )
    random.seed(args.get("seed", 0))  # the same shift in every variant, for their deviation
    timer = ForwardTimer(model)
    with tempfile.TemporaryDirectory(prefix="stembot-bench-") as tmp:
        stems = separate_to_files(
            model,
            wav,
            Path(tmp) / "stems",
            shifts=args["shifts"],
            overlap=0.25,
            segment=None,
            device=device,
            tuning=tuning,
        )
        separated = time.perf_counter()
        del wav
        if args.get("stems_out"):  # for the deviation between variants (bench --variants)
            torch.save(
                {name: torch.cat([b.t() for b in f.frames()], 1) for name, f in stems.items()},
                args["stems_out"],
            )
        out = Path(tmp) / "out"
        out.mkdir()
        encode_stems(mix_staged(stems, "all"), out, AudioFormat.MP3, model.samplerate)
        encoded = time.perf_counter()
    return {
        "device": device,
        "runtime": runtime if built else "torch",
        "precision": precision,
        "load_s": round(loaded - started, 3),
        "decode_s": round(decoded - loaded, 3),
        "separate_s": round(separated - decoded, 3),
        # (the hooks see demucs' own forward only: not timed through another runtime)
        "outside_model_s": round(separated - decoded - timer.total, 3)
        if runtime == "torch"
        else None,
        "encode_s": round(encoded - separated, 3),
        "file_s": round(encoded - loaded, 3),
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": peak_gpu_mb(),
    }


def run_demucs(args: dict[str, Any]) -> dict[str, Any]:
    from demucs.api import Separator

    device = pick_device(args.get("device", "auto"))
    torch.set_num_threads(cpu_threads())
    separator = Separator(
        model=args.get("model", "htdemucs"),
        repo=Path(args["repo"]),
        shifts=args["shifts"],
        overlap=0.25,
        device=device,
        progress=False,
    )
    wav = decode(Path(args["track"]), separator.samplerate, 2, src_channels=2, demuxer="mp3")
    timer = ForwardTimer(separator.model)
    started = time.perf_counter()
    separator.separate_tensor(wav)
    elapsed = time.perf_counter() - started
    return {
        "device": device,
        "separate_s": round(elapsed, 3),
        "outside_model_s": round(elapsed - timer.total, 3),
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": peak_gpu_mb(),
    }


async def run_service(args: dict[str, Any]) -> dict[str, Any]:
    from arq.connections import RedisSettings, create_pool

    from shared.config import Settings
    from shared.core import Core
    from shared.intake import build_options
    from shared.redis_server import PrivateRedis
    from shared.storage import build_storage
    from worker.main import build_download_worker, build_worker

    work = Path(args["work"])
    with PrivateRedis() as server:
        settings = Settings(
            redis_url=server.url,
            queue_name=f"bench:queue:{uuid.uuid4().hex[:8]}",
            download_queue_name=f"bench:download:{uuid.uuid4().hex[:8]}",
            storage_dir=work / "storage",
            model_repo=Path(args["repo"]),
            device=args.get("device", "auto"),
            shifts=args["shifts"],
            signing_key="bench-signing-key-not-a-secret",
            queue_cap=1000,
        )
        storage = build_storage(settings)
        redis = await create_pool(RedisSettings.from_dsn(server.url))
        worker = build_worker(
            settings,
            await create_pool(RedisSettings.from_dsn(server.url)),
            handle_signals=False,
            progress_interval_s=0.5,
        )
        downloader = build_download_worker(
            settings,
            await create_pool(RedisSettings.from_dsn(server.url)),
            handle_signals=False,
            progress_interval_s=0.5,
        )
        tasks = [asyncio.create_task(w.async_run()) for w in (worker, downloader)]
        svc = _Submitter(Core(redis, storage, settings), redis)
        options = build_options(settings)
        try:
            # a short track warms the worker up (model loaded, threads started): not counted
            await _one(svc, Path(args["warmup"]), "warmup", options)
            e2e, stages = await _one(svc, Path(args["track"]), "e2e", options)
            # the same song again, from the master its separation kept: no Demucs
            flac = build_options(settings, fmt="flac")
            second_s, second_stages = await _one(svc, Path(args["track"]), "e2e", flac)
            karaoke = build_options(settings, stems="vocals")
            mix_s, mix_stages = await _one(svc, Path(args["track"]), "e2e", karaoke)
            master = _master_bytes(storage, Path(args["track"]), options)
            queue = [Path(p) for p in args["queue"]]
            started = time.perf_counter()
            streams = [
                (await svc.submit(p, user=f"q{i}", options=options))[1] for i, p in enumerate(queue)
            ]
            for stream in streams:
                events = await svc.events_until_final(stream, timeout_s=24 * 3600)
                assert events[-1].state.value == "done", events[-1]
            queue_s = time.perf_counter() - started
            # the last job tidies up after its final event (timings, arq's records)
            running = [t for w in (worker, downloader) for t in w.tasks.values()]
            if running:
                await asyncio.wait(running, timeout=30)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await worker.close()
            await downloader.close()
            await redis.aclose()
    return {
        "e2e_s": round(e2e, 3),
        "e2e_stages_s": stages,
        "second_format_s": round(second_s, 3),
        "second_format_stages_s": second_stages,
        "mix_s": round(mix_s, 3),
        "mix_stages_s": mix_stages,
        "master": master,
        "queue_tracks": len(queue),
        "queue_s": round(queue_s, 3),
        "jobs_per_hour": round(len(queue) * 3600 / queue_s, 1),
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": peak_gpu_mb(),
    }


def _master_bytes(storage: Any, track: Path, options: Any) -> dict[str, int]:
    """The size of each file of the master a track's separation kept (shared.masters)."""
    import hashlib

    from shared import masters
    from shared.schemas import Source, separation_key

    identity = hashlib.sha256(track.read_bytes()).hexdigest()
    key = separation_key(Source(kind="upload", identity=identity, title=""), options)
    folder = storage.job_dir(masters.storage_key(key))
    return {p.stem: p.stat().st_size for p in sorted(folder.glob("*.flac"))}


class _Submitter:
    """Songs through the core (as the CLI sends them), each followed on its own stream."""

    def __init__(self, core: Any, redis: Any) -> None:
        self.core, self.redis = core, redis

    async def submit(self, path: Path, *, user: str, options: Any) -> tuple[Any, str]:
        from shared.core import Upload
        from shared.intake import file_chunks
        from shared.schemas import LocalReply

        stream = f"bench:events:{uuid.uuid4().hex}"
        accepted = await self.core.submit(
            None,
            Upload(file_chunks(path), path.name),
            options,
            LocalReply(frontend="bench"),
            user_id=f"bench:{user}",
            reply_to=stream,
        )
        return accepted, stream

    async def events_until_final(self, stream: str, timeout_s: float) -> list[Any]:
        from shared import events

        seen: list[Any] = []
        last = "0"
        async with asyncio.timeout(timeout_s):
            while not seen or not seen[-1].state.final:
                for _, entries in await self.redis.xread({stream: last}, block=500):
                    for entry_id, fields in entries:
                        last = entry_id.decode()
                        seen.append(events.decode_entry(fields))
        return seen


async def _one(svc: Any, track: Path, user: str, options: Any) -> tuple[float, dict[str, float]]:
    """Seconds from submitting ``track`` to its links, and the time spent in each state."""
    started, wall = time.perf_counter(), time.time()
    _, stream = await svc.submit(track, user=user, options=options)
    events = await svc.events_until_final(stream, timeout_s=24 * 3600)
    assert events[-1].state.value == "done", events[-1]
    elapsed = time.perf_counter() - started
    firsts: dict[str, float] = {}
    for event in events:
        firsts.setdefault(event.state.value, event.ts)
    marks = [("submit", wall), *firsts.items()]
    stages = {
        name: round(following - at, 3) for (name, at), (_, following) in itertools.pairwise(marks)
    }
    return elapsed, stages


def main() -> None:
    mode, raw = sys.argv[1], sys.argv[2]
    args = json.loads(raw)
    if mode == "worker":
        result = run_worker(args)
    elif mode == "demucs":
        result = run_demucs(args)
    elif mode == "service":
        result = asyncio.run(run_service(args))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
