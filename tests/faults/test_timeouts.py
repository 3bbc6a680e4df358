"""A separation's wall-clock limit scales with the track; past it the user hears "too long"."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from demucs.pretrained import get_model

from shared.config import LimitSettings
from shared.errors import DownloadFailed
from shared.intake import submit_youtube
from shared.redis_server import PrivateRedis
from shared.schemas import JobOptions, JobState
from tests.support.audio import make_audio
from tests.support.fake_youtube import FakeYouTube
from tests.support.service import running_service
from worker.resilience import job_limit_s

pytestmark = pytest.mark.faults
TIMED_OUT = "This job took too long and was stopped. Please try again later."


def test_the_limit_is_base_plus_factor_times_the_work_capped_by_the_job_timeout(
    model_repo: Path,
) -> None:
    limits = LimitSettings(job_timeout_s=3600, job_timeout_base_s=120, job_timeout_factor=4.0)
    one = get_model("htdemucs", repo=model_repo)  # a bag of one model
    two = get_model("htdemucs_ft", repo=model_repo)  # a bag of two (the released one has 4)
    assert job_limit_s(limits, 30.0, JobOptions(), one) == 120 + 4 * 30
    assert job_limit_s(limits, 600.0, JobOptions(), one) == 120 + 4 * 600
    assert job_limit_s(limits, 30.0, JobOptions(shifts=3), one) == 120 + 4 * 30 * 3
    assert job_limit_s(limits, 30.0, JobOptions(), two) == 120 + 4 * 30 * 2
    assert job_limit_s(limits, 600.0, JobOptions(), two) == 3600  # JOB_TIMEOUT_S caps it


async def test_a_long_track_over_its_limit_is_stopped_while_a_short_one_finishes(
    redis_server: PrivateRedis, storage_dir: Path, model_repo: Path, tmp_path: Path
) -> None:
    # 3 s + 0.02 s per second of audio: 3.04 s for 2 s of audio (done in well under a second),
    # 5.4 s for two minutes, which take this machine about 12 s
    async with running_service(
        redis_server.url, storage_dir, model_repo, job_timeout_base_s=3, job_timeout_factor=0.02
    ) as svc:
        await svc.redis.flushall()
        short = make_audio(tmp_path / "Short.wav", seconds=2.0)
        _, stream = await svc.submit(short)
        assert (await svc.events_until_final(stream, timeout_s=30))[-1].state == JobState.DONE

        long = make_audio(tmp_path / "Long.wav", seconds=120.0)
        _, stream = await svc.submit(long, user="u2")
        seen = await svc.events_until_final(stream, timeout_s=60)
        final = seen[-1]
        assert (final.state, final.error_code, final.error_message) == (
            JobState.FAILED,
            "timed_out",
            TIMED_OUT,
        )
        separating = [e.percent or 0 for e in seen if e.state == JobState.SEPARATING]
        assert separating and max(separating) < 100  # stopped while Demucs ran
        assert svc.tmp_leftovers() == []
        assert svc.uploads() == []

        # the worker is free at once: the next short song goes through
        _, stream = await svc.submit(make_audio(tmp_path / "Next.wav", seconds=2.5), user="u3")
        assert (await svc.events_until_final(stream, timeout_s=30))[-1].state == JobState.DONE


async def test_a_stalled_youtube_download_is_cut_and_the_user_told(
    redis_server: PrivateRedis,
    storage_dir: Path,
    model_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    song = make_audio(tmp_path / "a.m4a", seconds=3.0).read_bytes()
    async with (
        FakeYouTube().running(monkeypatch) as youtube,
        running_service(
            redis_server.url,
            storage_dir,
            model_repo,
            download_socket_timeout_s=1,
            download_retry_backoff_s=0.5,
            download_tries=1,
        ) as svc,
    ):
        await svc.redis.flushall()
        youtube.add_video("dQw4w9WgXcQ", song)
        youtube.media["dQw4w9WgXcQ"].mode = "stall"  # a few bytes, then nothing, for ever
        stream = f"test:events:{uuid.uuid4().hex}"
        await submit_youtube(
            redis=svc.redis,
            settings=svc.settings,
            url="https://youtu.be/dQw4w9WgXcQ",
            frontend="test",
            user_id="test:u1",
            reply_to=stream,
            options=svc.options(),
        )
        final = (await svc.events_until_final(stream, timeout_s=60))[-1]
        assert (final.state, final.error_code, final.error_message) == (
            JobState.FAILED,
            "download_failed",
            DownloadFailed().user_message,
        )
        assert svc.tmp_leftovers() == []
        assert svc.uploads() == []
