"""Worker processes that die, are stopped, or have their job cancelled mid-separation.

Two real `stembot worker` processes share the queue; the one that takes the job is killed
(SIGKILL), stopped (SIGTERM) or has the job cancelled while Demucs runs. The user must get
exactly one final event, nothing temporary may stay behind, and the job must not wait for
arq's hour-long in-progress mark.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil
import pytest

from shared import jobs
from shared.schemas import JobState
from tests.faults.conftest import LEASE_S, Faults, WorkerProcess
from tests.support.audio import make_audio
from tests.support.waiting import until

pytestmark = pytest.mark.faults


async def separating(faults: Faults, job_id: str) -> str:
    """Until Demucs reports progress on the job; returns the run's arq id."""

    async def started() -> bool:
        raw = await faults.redis.hget(jobs.job_key(job_id), "percent")
        return bool(raw) and float(raw) > 0

    await until(started, timeout_s=60, what="Demucs to be separating")
    return (await faults.redis.hget(jobs.job_key(job_id), "arq_id")).decode()


async def two_workers_one_job(
    faults: Faults, song: Path
) -> tuple[WorkerProcess, WorkerProcess, str, str]:
    """Both workers up, the song submitted and separating:
    (the worker running it, the other one, the run's arq id, the reply stream)."""
    a, b = faults.start_worker("a"), faults.start_worker("b")
    await a.ready()
    await b.ready()
    submitted, stream = await faults.submit(song)
    arq_id = await separating(faults, submitted.job_id)
    first, other = (a, b) if a.took(arq_id) else (b, a)
    assert first.took(arq_id) and not other.took(arq_id)
    return first, other, arq_id, stream


async def test_a_killed_workers_job_runs_again_on_the_other_worker_once(
    faults: Faults, tmp_path: Path
) -> None:
    song = make_audio(tmp_path / "Killed mid-song.wav", seconds=24.0)
    first, other, arq_id, stream = await two_workers_one_job(faults, song)
    workdir = faults.settings.storage.storage_dir / "tmp" / arq_id

    first.proc.kill()
    assert await first.exit_code(within=10) == -9
    killed = time.monotonic()
    assert workdir.is_dir()  # what the dead run left behind

    async def taken_over() -> bool:
        return other.took(arq_id)

    await until(taken_over, timeout_s=LEASE_S + 10, what="the other worker to run the job again")
    # the 3 s lease ran out (plus 0.2 s polls), not arq's hour-long in-progress mark
    assert time.monotonic() - killed < LEASE_S + 5
    assert "try=2" in other.log()  # arq counted the killed run as a try

    finals = await faults.final_events(stream)
    await faults.idle()
    seen = await faults.stream(stream)
    assert [e.state for e in seen if e.state.final] == [JobState.DONE]
    assert finals[0].result is not None
    assert [s.name for s in finals[0].result.stems] == ["drums", "bass", "other", "vocals"]
    # the user saw the run start over: separating (first worker), then decoding again
    states = [e.state for e in seen]
    assert JobState.DECODING in states[states.index(JobState.SEPARATING) :]
    # the dead run's work folder and the upload are gone
    assert faults.tmp_leftovers() == []
    assert faults.uploads() == []


async def test_sigterm_hands_the_running_job_back_without_spending_a_try(
    faults: Faults, tmp_path: Path
) -> None:
    song = make_audio(tmp_path / "Stopped mid-song.wav", seconds=24.0)
    first, other, arq_id, stream = await two_workers_one_job(faults, song)

    first.proc.terminate()
    stopping = time.monotonic()
    assert await first.exit_code(within=30) == 0
    stopped_in = time.monotonic() - stopping
    assert stopped_in < 10, f"the worker took {stopped_in:.1f} s to stop"
    assert "cancelled, will be run again" in first.log()  # arq put it back on the queue

    async def taken_over() -> bool:
        return other.took(arq_id)

    await until(taken_over, timeout_s=5, what="the other worker to take the job at once")
    finals = await faults.final_events(stream)
    await faults.idle()
    assert [e.state for e in await faults.stream(stream) if e.state.final] == [JobState.DONE]
    assert finals[0].result is not None
    assert "try=" not in other.log()  # a job handed back did not fail: its try is not counted
    assert faults.tmp_leftovers() == []
    assert faults.uploads() == []


def cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


async def test_cancel_stops_demucs_in_the_worker_process_within_seconds(
    faults: Faults, tmp_path: Path
) -> None:
    worker = await faults.start_worker("a").ready()
    song = make_audio(tmp_path / "Long.wav", seconds=120.0)
    submitted, stream = await faults.submit(song)
    await separating(faults, submitted.job_id)
    proc = psutil.Process(worker.pid)
    [request] = await jobs.waiting_requests(faults.redis, submitted.job_id)

    assert await jobs.cancel_request(faults.redis, request)
    cancelled = time.monotonic()

    async def quiet() -> bool:
        """Under a fifth of a core over half a second (Demucs keeps one core busy)."""
        before = cpu_s(proc)
        await asyncio.sleep(0.5)
        return cpu_s(proc) - before < 0.1

    await until(quiet, timeout_s=15, what="the worker process to stop computing")
    quiet_after = time.monotonic() - cancelled
    assert quiet_after < 5, f"Demucs ran on for {quiet_after:.1f} s after the cancel"
    await faults.idle(within=5)  # arq is done with the job: the worker is free
    finals = await faults.final_events(stream)
    assert [(e.state, e.error_message) for e in finals] == [
        (JobState.CANCELLED, "Cancelled. Nothing was kept.")
    ]
    assert faults.tmp_leftovers() == []
    assert faults.uploads() == []

    short = make_audio(tmp_path / "Next.wav", seconds=3.0)
    _, stream2 = await faults.submit(short, user="next")
    assert [e.state for e in await faults.final_events(stream2, within=30)] == [JobState.DONE]
