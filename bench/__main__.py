"""`make bench`: the worker's separation and the end-to-end path against bare Demucs.

One process, one input, alternating runs, best of N each:

- bare:    demucs.apply.apply_model on the normalized mix (what demucs' Separator does)
- worker:  worker.separation.separate (our path, progress callback and stop check on)
- e2e:     a file submitted through the real core -> Redis queue -> arq worker -> ffmpeg
           decode -> Demucs -> mp3 encode -> zip -> signed links (a fresh file each run, so
           the result cache never answers)

Model: the full-size htdemucs architecture with random weights (same compute as the
released weights). Writes bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from demucs.apply import apply_model

from shared.redis_server import PrivateRedis
from tests.support.audio import make_audio
from tests.support.model_repo import write_model_repo
from tests.support.service import running_service
from worker.audio import decode
from worker.separation import ModelCache, separate

RESULTS = Path(__file__).with_name("results.json")


def bare(model: Any, wav: torch.Tensor) -> None:
    with torch.no_grad():
        ref = wav.mean(0)
        mean, std = ref.mean(), ref.std() + 1e-8
        out = apply_model(
            model,
            ((wav - mean) / std)[None],
            shifts=1,
            split=True,
            overlap=0.25,
            device="cpu",
            num_workers=0,
            progress=False,
        )
        out * std + mean


def ours(model: Any, wav: torch.Tensor) -> None:
    separate(
        model,
        wav,
        shifts=1,
        overlap=0.25,
        segment=None,
        device="cpu",
        on_progress=lambda p: None,
        should_stop=lambda: False,
    )


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


async def end_to_end(repo: Path, work: Path, seconds: float, rounds: int) -> list[float]:
    times = []
    with PrivateRedis() as redis:
        async with running_service(redis.url, work / "storage", repo, shifts=1) as svc:
            for i in range(rounds + 1):  # the first run warms the worker up; not counted
                # a few ms longer each time: new bytes, so the result cache never answers
                song = make_audio(work / f"e2e-{i}.mp3", seconds=seconds + 0.01 * i)
                start = time.perf_counter()
                _, stream = await svc.submit(song, user=f"bench{i}")
                events = await svc.events_until_final(stream, timeout_s=3600)
                elapsed = time.perf_counter() - start
                assert events[-1].state.value == "done", events[-1]
                if i:
                    times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory(prefix="stembot-bench-") as tmp:
        work = Path(tmp)
        repo = write_model_repo(work / "models", full_size=True)
        model = ModelCache(repo, "cpu").get("htdemucs")
        clip = make_audio(work / "clip.mp3", seconds=args.seconds)
        wav = decode(clip, model.samplerate, model.audio_channels, src_channels=2)
        bare_s, worker_s = [], []
        for _ in range(args.rounds):
            bare_s.append(timed(bare, model, wav))
            worker_s.append(timed(ours, model, wav))
        e2e_s = asyncio.run(end_to_end(repo, work, args.seconds, args.rounds))
    best_bare, best_worker, best_e2e = min(bare_s), min(worker_s), min(e2e_s)
    results = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip()
        + f", {torch.get_num_threads()} torch threads, torch {torch.__version__}, CPU",
        "clip_s": args.seconds,
        "model": "htdemucs (full-size architecture, random weights)",
        "shifts": 1,
        "rounds": args.rounds,
        "bare_s": round(best_bare, 3),
        "worker_s": round(best_worker, 3),
        "e2e_s": round(best_e2e, 3),
        "worker_over_bare": round(best_worker / best_bare, 3),
        "e2e_over_bare": round(best_e2e / best_bare, 3),
        "realtime_factor_worker": round(best_worker / args.seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "all_runs_s": {"bare": bare_s, "worker": worker_s, "e2e": e2e_s},
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'measure':<22}{'value':>12}")
    for key in (
        "bare_s",
        "worker_s",
        "e2e_s",
        "worker_over_bare",
        "e2e_over_bare",
        "realtime_factor_worker",
        "peak_rss_mb",
    ):
        print(f"{key:<22}{results[key]:>12}")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
