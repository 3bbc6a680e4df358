"""A worker tells only its own requests how their run goes: the places of the runs still
waiting are read where they are shown (the bots, the API), never published by a worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.schemas import JobState
from tests.support.audio import make_audio
from tests.support.fake_youtube import FakeYouTube
from tests.support.service import Service
from tests.worker.test_download import VID, send


@pytest.fixture
async def youtube(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeYouTube]:
    async with FakeYouTube().running(monkeypatch) as fake:
        yield fake


async def test_a_starting_run_publishes_nothing_to_the_requests_that_wait(
    service: Service, tmp_path: Path
) -> None:
    songs = [make_audio(tmp_path / f"Song {i}.wav", seconds=1.0 + i / 2) for i in range(3)]
    sent = [await service.submit(song, user=f"u{i}") for i, song in enumerate(songs)]
    streams = [stream for _, stream in sent]
    seen = await asyncio.gather(*(service.events_until_final(s) for s in streams))

    for (accepted, _), events in zip(sent, seen, strict=True):
        states = [e.state for e in events]
        assert JobState.QUEUED not in states, states  # no place was published to anyone
        assert states[0] == JobState.DECODING and states[-1] == JobState.DONE, states
        assert {e.job_id for e in events} == {accepted.job_id}  # only its own run's news


async def test_a_downloaded_video_waits_again_with_its_place_before_separating(
    service: Service, youtube: FakeYouTube, tmp_path: Path
) -> None:
    youtube.add_video(VID, make_audio(tmp_path / "a.m4a", seconds=3).read_bytes(), title="Vid")
    _, stream = await send(service, f"https://youtu.be/{VID}")
    events = await service.events_until_final(stream)

    states = [e.state for e in events]
    queued = states.index(JobState.QUEUED)
    assert set(states[:queued]) == {JobState.DOWNLOADING}
    assert (events[queued].position, events[queued].eta_s) == (0, 60.0)  # next, 1 job's time
    assert JobState.DOWNLOADING not in states[queued:]
    assert states[queued + 1] == JobState.DECODING and states[-1] == JobState.DONE
