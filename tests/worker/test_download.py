"""YouTube links through the whole service: download queue -> separation -> links.

YouTube is faked on the server side (tests/support/fake_youtube.py): yt-dlp's real
extractor, downloader and our options run against a local server.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared import jobs
from shared.errors import LiveStream, PlaylistLink, PrivateVideo, TooLong, UnsafeUrl
from shared.intake import submit_youtube
from shared.jobs import Submitted
from shared.redis_server import PrivateRedis
from shared.schemas import JobState
from tests.support.audio import make_audio
from tests.support.fake_youtube import PRIVATE, FakeYouTube
from tests.support.service import Service, running_service
from tests.support.waiting import until

VID = "dQw4w9WgXcQ"


@pytest.fixture(scope="module")
def m4a(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_audio(tmp_path_factory.mktemp("yt") / "a.m4a", seconds=3).read_bytes()


@pytest.fixture
async def service(
    redis_server: PrivateRedis, storage_dir: Path, model_repo: Path
) -> AsyncIterator[Service]:
    async with running_service(
        redis_server.url,
        storage_dir,
        model_repo,
        download_retry_backoff_s=0.5,
        download_socket_timeout_s=2,
    ) as svc:
        await svc.redis.flushall()
        yield svc


@pytest.fixture
async def youtube(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeYouTube]:
    async with FakeYouTube().running(monkeypatch) as fake:
        yield fake


async def send(service: Service, url: str, user: str = "u1") -> tuple[Submitted, str]:
    stream = f"test:events:{uuid.uuid4().hex}"
    submitted = await submit_youtube(
        redis=service.redis,
        settings=service.settings,
        url=url,
        frontend="test",
        user_id=f"test:{user}",
        reply_to=stream,
        options=service.options(),
    )
    return submitted, stream


async def test_link_forms_share_one_download_and_separation(
    service: Service, youtube: FakeYouTube, m4a: bytes
) -> None:
    youtube.add_video(VID, m4a, title="Never Gonna Give You Up")
    first, s1 = await send(service, f"https://youtu.be/{VID}?t=42", user="a")
    second, s2 = await send(service, f"https://www.youtube.com/watch?v={VID}&list=PLx", "b")
    assert (first.outcome, second.outcome) == ("queued", "joined")
    events = await service.events_until_final(s1)
    done2 = (await service.events_until_final(s2))[-1]

    states = [e.state for e in events]
    assert states[-1] == JobState.DONE, events[-1]
    downloading = [e.percent for e in events if e.state == JobState.DOWNLOADING]
    assert downloading and downloading == sorted(p for p in downloading if p is not None)
    assert states.index(JobState.DOWNLOADING) < states.index(JobState.SEPARATING)
    result = events[-1].result
    assert result is not None
    assert result.title == "Never Gonna Give You Up"
    assert result.duration_s == pytest.approx(3.0, abs=0.1)
    assert done2.result == result
    assert len(youtube.media[VID].requests) == 1  # downloaded once for both requests

    third, _ = await send(service, f"music.youtube.com/watch?v={VID}", user="c")
    assert third.outcome == "cached"
    assert third.result == result
    assert service.uploads() == []
    assert service.tmp_leftovers() == []


async def test_transient_failure_is_retried_through_arq(
    service: Service, youtube: FakeYouTube, m4a: bytes
) -> None:
    youtube.add_video(VID, m4a)
    youtube.api_status = 503
    submitted, stream = await send(service, f"https://youtu.be/{VID}")
    arq_id = (await service.redis.hget(jobs.job_key(submitted.job_id), "arq_id")).decode()
    queue = service.settings.redis.download_queue_name

    async def deferred() -> bool:
        score = await service.redis.zscore(queue, arq_id + jobs.DOWNLOAD_SUFFIX)
        return score is not None and score > time.time() * 1000 and bool(youtube.api_calls)

    await until(deferred, timeout_s=30, what="arq to hold the job back for a retry")
    youtube.api_status = 200
    events = await service.events_until_final(stream)
    assert events[-1].state == JobState.DONE, events[-1]
    assert len(youtube.api_calls) >= 2


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda yt, m4a: yt.add_unplayable(VID, PRIVATE), PrivateVideo().user_message),
        (lambda yt, m4a: yt.add_video(VID, m4a, duration=601.0), TooLong(601, 600).user_message),
        (
            lambda yt, m4a: yt.add_video(VID, m4a, live_status="is_live", duration=None),
            LiveStream().user_message,
        ),
    ],
    ids=["private", "too-long", "live"],
)
async def test_refused_from_metadata_before_download(
    service: Service, youtube: FakeYouTube, m4a: bytes, setup: object, message: str
) -> None:
    setup(youtube, m4a)  # type: ignore[operator]
    _, stream = await send(service, f"https://www.youtube.com/watch?v={VID}")
    final = (await service.events_until_final(stream))[-1]
    assert (final.state, final.error_message) == (JobState.FAILED, message)
    if VID in youtube.media:
        assert youtube.media[VID].requests == []  # not one media byte was asked for
    assert service.uploads() == []
    assert service.tmp_leftovers() == []


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("https://www.youtube.com/playlist?list=PL1234567890", PlaylistLink),
        ("http://127.0.0.1:8080/watch?v=dQw4w9WgXcQ", UnsafeUrl),
    ],
)
async def test_bad_links_are_refused_before_queueing(
    service: Service, url: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await send(service, url)
    assert await service.redis.zcard(service.settings.redis.download_queue_name) == 0
