"""The whole path with real parts: submit -> queue -> worker -> events -> files -> download."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import librosa
import pytest

from shared import jobs
from shared.errors import EmptyFile, NotAudio, StembotError, TooLarge, TooLong
from shared.music import TempoSource
from shared.redis_server import PrivateRedis
from shared.schemas import JobResult, JobState
from tests.support.audio import make_audio
from tests.support.fast_model import write_fast_repo
from tests.support.music import MAJOR, MINOR, Song, write_song
from tests.support.service import Service, running_service
from tests.support.waiting import until


def duration_of(data: bytes, tmp: Path, name: str) -> float:
    path = tmp / name
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", str(path)],
        check=True,
        capture_output=True,
    )
    return float(json.loads(out.stdout)["format"]["duration"])


async def test_song_becomes_stems_with_working_links(service: Service, tmp_path: Path) -> None:
    song = make_audio(tmp_path / "My Song.mp3", seconds=4.0)
    submitted, stream = await service.submit(song)
    assert submitted.outcome == "queued"
    assert submitted.position == 0

    seen = await service.events_until_final(stream)
    states = [e.state for e in seen]
    assert states[-1] == JobState.DONE, seen[-1]
    for state in (JobState.DECODING, JobState.SEPARATING, JobState.ENCODING):
        assert state in states
    assert states.index(JobState.DECODING) < states.index(JobState.SEPARATING)
    assert states.index(JobState.SEPARATING) < states.index(JobState.ENCODING)
    assert all(e.request_ids == [submitted.request_id] for e in seen)

    result = seen[-1].result
    assert result is not None
    assert [s.name for s in result.stems] == ["drums", "bass", "other", "vocals"]
    assert result.title == "My Song"
    assert result.duration_s == pytest.approx(4.0, abs=0.1)
    async with aiohttp.ClientSession() as http:
        for stem in result.stems:
            assert stem.url.startswith(service.base_url + "/files/")
            async with http.get(stem.url) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == "audio/mpeg"
                assert f"My Song - {stem.name}.mp3" in resp.headers["Content-Disposition"]
                data = await resp.read()
            assert len(data) == stem.size_bytes
            # mp3 adds encoder padding of a few ms at most
            assert duration_of(data, tmp_path, stem.filename) == pytest.approx(4.0, abs=0.06)
        assert result.zip is not None
        async with http.get(result.zip.url) as resp:
            assert resp.status == 200
            names = zipfile.ZipFile(io.BytesIO(await resp.read())).namelist()
    assert sorted(names) == sorted(
        f"My Song - {s}.mp3" for s in ("drums", "bass", "other", "vocals")
    )
    # nothing the user sent is kept, no temporary file left behind
    assert service.uploads() == []
    assert service.tmp_leftovers() == []


async def test_progress_is_reported_during_separation(service: Service, tmp_path: Path) -> None:
    song = make_audio(tmp_path / "long.wav", seconds=30.0)
    _, stream = await service.submit(song)
    seen = await service.events_until_final(stream)
    percents = [e.percent for e in seen if e.state == JobState.SEPARATING and e.percent is not None]
    assert seen[-1].state == JobState.DONE
    assert percents == sorted(percents)
    assert any(p is not None and 0 < p < 100 for p in percents), percents


async def test_two_stem_flac(service: Service, tmp_path: Path) -> None:
    song = make_audio(tmp_path / "karaoke.ogg", seconds=3.0, channels=1, rate=22050)
    options = service.options(stems="vocals", fmt="flac")
    _, stream = await service.submit(song, options=options)
    seen = await service.events_until_final(stream)
    result = seen[-1].result
    assert result is not None, seen[-1]
    assert [(s.name, s.filename) for s in result.stems] == [
        ("vocals", "vocals.flac"),
        ("instrumental", "instrumental.flac"),
    ]


async def test_same_song_is_reused_and_identical_requests_join(
    service: Service, tmp_path: Path
) -> None:
    song = make_audio(tmp_path / "a.wav", seconds=3.0)
    copy = tmp_path / "same bytes, other name.wav"
    copy.write_bytes(song.read_bytes())

    first, s1 = await service.submit(song, user="alice")
    second, s2 = await service.submit(copy, user="bob")
    assert (first.outcome, second.outcome) == ("queued", "joined")
    assert first.job_id == second.job_id
    done1 = (await service.events_until_final(s1))[-1]
    done2 = (await service.events_until_final(s2))[-1]
    assert done1.state == done2.state == JobState.DONE
    assert done1.result == done2.result

    third, _ = await service.submit(song, user="carol")
    assert third.outcome == "cached"
    assert third.result == done1.result
    assert await service.redis.zcard(service.settings.redis.queue_name) == 0
    assert service.uploads() == []


async def test_cancel_stops_the_run_and_frees_the_worker(service: Service, tmp_path: Path) -> None:
    long_song = make_audio(tmp_path / "long.wav", seconds=60.0)
    submitted, stream = await service.submit(long_song)

    async def running() -> bool:
        raw = await service.redis.hget(jobs.job_key(submitted.job_id), "percent")
        return bool(raw and float(raw) > 0)

    await until(running, timeout_s=60, what="Demucs to be really running")
    [request] = await jobs.waiting_requests(service.redis, submitted.job_id)
    assert await jobs.cancel_request(service.redis, request)
    seen = await service.events_until_final(stream, timeout_s=10)
    assert seen[-1].state == JobState.CANCELLED
    assert seen[-1].error_message == "Cancelled. Nothing was kept."

    short = make_audio(tmp_path / "next.wav", seconds=2.0)
    _, stream2 = await service.submit(short, user="next")
    assert (await service.events_until_final(stream2, timeout_s=30))[-1].state == JobState.DONE
    assert service.tmp_leftovers() == []
    assert service.uploads() == []


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda p: p.write_bytes(b"") or p,
            EmptyFile,
            "That file is empty (0 bytes). Please send the audio file again.",
        ),
        (
            lambda p: write(p, b"just some text, not a song\n" * 50),
            NotAudio,
            NotAudio().user_message,
        ),
        (
            lambda p: make_audio(p, seconds=3.0),
            TooLong,
            "That track is 0:03 long; the limit is 0:02. Send a shorter cut of the song.",
        ),
    ],
    ids=["empty", "text", "too-long"],
)
async def test_rejections_before_queueing(
    service: Service, tmp_path: Path, make: object, error: type[StembotError], message: str
) -> None:
    service.settings.limits.max_duration_s = 2
    path = make(tmp_path / "upload.mp3")  # type: ignore[operator]
    with pytest.raises(error) as info:
        await service.submit(path)
    assert info.value.user_message == message
    assert await service.redis.zcard(service.settings.redis.queue_name) == 0
    assert service.uploads() == []
    assert service.tmp_leftovers() == []


async def test_too_large_is_rejected_while_reading(service: Service, tmp_path: Path) -> None:
    service.settings.limits.max_upload_mb = 0.5
    big = make_audio(tmp_path / "big.wav", seconds=10.0)  # ~1.7 MB
    with pytest.raises(TooLarge) as info:
        await service.submit(big)
    assert info.value.user_message.startswith("That file is too large")
    assert "The limit is 0.5 MB" in info.value.user_message
    assert service.uploads() == []
    assert service.tmp_leftovers() == []


async def test_a_job_over_its_time_limit_is_stopped_and_the_user_told(
    redis_server: PrivateRedis, storage_dir: Path, model_repo: Path, tmp_path: Path
) -> None:
    async with running_service(redis_server.url, storage_dir, model_repo, job_timeout_s=2) as svc:
        song = make_audio(tmp_path / "long.wav", seconds=120.0)
        _, stream = await svc.submit(song)
        final = (await svc.events_until_final(stream, timeout_s=60))[-1]
        assert (final.state, final.error_code, final.error_message) == (
            JobState.FAILED,
            "timed_out",
            "This job took too long and was stopped. Please try again later.",
        )
        assert svc.uploads() == []
        assert svc.tmp_leftovers() == []


async def test_a_run_whose_workers_kept_dying_fails_with_a_reference(
    service: Service, tmp_path: Path
) -> None:
    """arq re-runs a job whose worker died; past our tries the user hears it, not silence."""
    song = make_audio(tmp_path / "a.wav", seconds=2.0)
    queue = service.settings.redis.queue_name
    service.settings.redis.queue_name = "test:no-worker-here"  # park the first try
    try:
        submitted, stream = await service.submit(song)
    finally:
        service.settings.redis.queue_name = queue
    arq_id = (await service.redis.hget(jobs.job_key(submitted.job_id), "arq_id")).decode()
    await service.redis.delete(f"arq:job:{arq_id}")
    # what a worker sees after three tries that died with their workers (arq counts them)
    await service.redis.enqueue_job(
        jobs.JOB_FUNCTION,
        submitted.job_id,
        arq_id,
        _job_id=arq_id,
        _queue_name=queue,
        _job_try=4,
    )
    final = (await service.events_until_final(stream))[-1]
    assert final.state == JobState.FAILED
    assert final.error_code == "internal"
    assert (final.error_message or "").startswith("Something went wrong on our side (reference ")
    assert service.uploads() == []
    assert service.tmp_leftovers() == []


@pytest.fixture
async def standin(
    redis_server: PrivateRedis, storage_dir: Path, tmp_path: Path
) -> AsyncIterator[Service]:
    """The service with the stand-in model (each stem is the mix at a quarter of its level):
    stems that are audio, where the random-weight test models give noise."""
    repo = write_fast_repo(tmp_path / "models")
    async with running_service(redis_server.url, storage_dir, repo) as svc:
        await svc.redis.flushall()
        yield svc


@pytest.mark.parametrize(
    "song",
    [Song("A", MINOR, 85, "arpeggio", "syncopated"), Song("G", MAJOR, 140, "block", "rock")],
    ids=str,
)
async def test_the_result_has_the_songs_key_and_tempo(
    standin: Service, tmp_path: Path, song: Song
) -> None:
    path = write_song(tmp_path / "song.wav", song, seed=1)
    _, stream = await standin.submit(path)
    final = (await standin.events_until_final(stream))[-1]
    assert final.state == JobState.DONE, final
    assert final.result is not None and final.result.analysis is not None
    key, tempo = final.result.analysis.key, final.result.analysis.tempo
    assert key is not None and tempo is not None
    assert (key.name, key.confidence >= 0.5) == (song.key, True)
    assert tempo.bpm == pytest.approx(song.bpm, abs=2.0)
    assert tempo.source is TempoSource.DRUMS  # measured on the drums stem
    # what the bots read back from Redis has them too
    stored = await standin.redis.get(jobs.result_key(final.result.key))
    assert JobResult.model_validate_json(stored).analysis == final.result.analysis
    assert standin.tmp_leftovers() == []


async def test_a_failed_analysis_leaves_the_stems_to_the_user(
    standin: Service,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("librosa broke")

    monkeypatch.setattr(librosa, "stft", broken)  # the key's spectrogram
    path = write_song(tmp_path / "song.wav", Song("C", MAJOR, 70, "block", "rock"))
    _, stream = await standin.submit(path)
    final = (await standin.events_until_final(stream))[-1]
    assert final.state == JobState.DONE, final
    assert final.result is not None and len(final.result.stems) == 4
    assert final.result.analysis is None
    assert "key and tempo analysis failed, going on without" in caplog.text
