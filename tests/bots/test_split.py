"""The CLI frontend's core, in process: files and YouTube links through the same queue."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bots.split import SplitFailed, describe, looks_like_url, result_lines, split_file
from shared.schemas import JobState, ProgressEvent
from tests.support.audio import make_audio
from tests.support.fake_youtube import FakeYouTube
from tests.support.music import MINOR, Song, write_song
from tests.support.service import Service

VID = "dQw4w9WgXcQ"


async def test_youtube_link_is_split_into_files(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m4a = make_audio(tmp_path / "a.m4a", seconds=2.0).read_bytes()
    async with FakeYouTube().running(monkeypatch) as youtube:
        youtube.add_video(VID, m4a, title="Some Video", duration=2.0)
        progress = io.StringIO()
        result, written = await split_file(
            redis=service.redis,
            storage=service.storage,
            settings=service.settings,
            source=f"youtu.be/{VID}",
            options=service.options(stems="vocals"),
            out_dir=tmp_path / "out",
            progress=progress,
        )
    assert result.title == "Some Video"
    assert sorted(p.name for p in written.values()) == ["instrumental.mp3", "vocals.mp3"]
    assert all(p.stat().st_size > 0 for p in written.values())
    assert "downloading" in progress.getvalue()
    assert progress.getvalue().rstrip().endswith("done")


async def test_a_file_is_split_and_the_song_s_key_and_tempo_printed(
    service: Service, tmp_path: Path
) -> None:
    song = write_song(tmp_path / "Etude.wav", Song("E", MINOR, 140, "pad", "rock"), seed=3)
    result, written = await split_file(
        redis=service.redis,
        storage=service.storage,
        settings=service.settings,
        source=str(song),
        options=service.options(),
        out_dir=tmp_path / "out",
        progress=io.StringIO(),
    )
    assert list(written) == ["drums", "bass", "other", "vocals"]
    lines = result_lines(result, written, valid_h=24)
    assert lines[-1] == "Key and tempo: E minor · 140 BPM"


async def test_refused_link_is_one_reason(service: Service, tmp_path: Path) -> None:
    with pytest.raises(SplitFailed) as info:
        await split_file(
            redis=service.redis,
            storage=service.storage,
            settings=service.settings,
            source="https://vimeo.com/12345",
            options=service.options(),
            out_dir=tmp_path / "out",
            progress=io.StringIO(),
        )
    assert str(info.value) == (
        "I can only fetch songs from YouTube links. For any other site, download the audio "
        "yourself and send me the file."
    )


def test_what_counts_as_a_link() -> None:
    assert looks_like_url("https://youtu.be/x")
    assert looks_like_url("youtube.com/watch?v=x")
    assert not looks_like_url("song.mp3")
    assert not looks_like_url("music/youtube mix.mp3")


def test_progress_lines() -> None:
    def ev(state: JobState, **kw: object) -> ProgressEvent:
        return ProgressEvent(job_id="k", request_ids=[], state=state, **kw)  # type: ignore[arg-type]

    assert describe(ev(JobState.QUEUED, position=0, eta_s=75)) == (
        "queued: next up, about 1m15s to go"
    )
    assert describe(ev(JobState.QUEUED, position=3)) == "queued: 3 ahead of you"
    assert describe(ev(JobState.SEPARATING, percent=50.0, eta_s=9)) == (
        "separating  [###############...............]  50.0% ~9s left"
    )
    assert describe(ev(JobState.ENCODING)) == "encoding..."
    assert describe(ev(JobState.FAILED, error_message="Too long.")) == "failed: Too long."
