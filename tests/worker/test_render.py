"""Separate once, deliver many: later formats and stems modes of a song come from its kept
master, through the real core, queue, workers and storage, without running the model."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import lameenc
import numpy as np
import pytest

from shared import keys, masters
from shared.intake import submit_youtube
from shared.redis_server import PrivateRedis
from shared.schemas import JobOptions, JobResult, JobState, ProgressEvent, Source, separation_key
from tests.support.audio import make_audio
from tests.support.fake_youtube import FakeYouTube
from tests.support.service import Service, running_service
from tests.support.waiting import until
from worker.master import GAIN_TAG

FOUR = ["drums", "bass", "other", "vocals"]


class Forwards:
    """Forward passes of the separation worker's own model (hooks on the real model)."""

    def __init__(self, model: Any) -> None:
        self.calls = 0
        for part in getattr(model, "models", None) or [model]:
            part.register_forward_pre_hook(self._count)

    def _count(self, *_: Any) -> None:
        self.calls += 1

    @classmethod
    async def of(cls, service: Service) -> Forwards:
        """Once the worker has started, with its default model loaded."""
        ctx = service.worker.ctx
        deps = await until(lambda: ctx.get("deps"), what="the worker to start")
        return cls(deps.models.get(service.settings.separation.default_model))


async def counter(service: Service, name: str) -> float:
    raw = await service.redis.hget(keys.METRICS, name)
    return float(raw) if raw else 0.0


def master_key(song: Path, options: JobOptions) -> str:
    identity = hashlib.sha256(song.read_bytes()).hexdigest()
    return separation_key(Source(kind="upload", identity=identity, title="-"), options)


def pcm(path: Path) -> np.ndarray:
    """The file's samples as int16, [samples, channels]."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "2", "-"],
        check=True,
        capture_output=True,
    )
    return np.frombuffer(out.stdout, dtype="<i2").reshape(-1, 2).astype(np.int32)


def stem_file(service: Service, result: JobResult, name: str) -> Path:
    [stem] = [s for s in result.stems if s.name == name]
    return service.storage.job_dir(result.key) / stem.filename


async def run(service: Service, song: Path, **options: Any) -> tuple[str, list[ProgressEvent]]:
    """Submit ``song`` with ``options``; its outcome and every event to the final one."""
    submitted, stream = await service.submit(song, options=service.options(**options))
    seen = await service.events_until_final(stream)
    assert seen[-1].state == JobState.DONE, seen[-1]
    return submitted.outcome, seen


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = float(((reference - other).astype(np.float64) ** 2).sum())
    return 10 * np.log10(float((reference.astype(np.float64) ** 2).sum()) / max(noise, 1.0))


def mp3_of(samples: np.ndarray, path: Path) -> np.ndarray:
    """16-bit samples through the encoder as the worker runs it (LAME 320 kbps, quality 2),
    decoded again."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(320)
    encoder.set_in_sample_rate(44100)
    encoder.set_channels(2)
    encoder.set_quality(2)
    encoder.silence()
    path.write_bytes(encoder.encode(samples.astype("<i2").tobytes()) + encoder.flush())
    return pcm(path)


async def test_a_second_format_is_made_from_the_master_without_demucs(
    service: Service, tmp_path: Path
) -> None:
    song = make_audio(tmp_path / "My Song.wav", seconds=4.0)
    forwards = await Forwards.of(service)
    outcome, seen = await run(service, song, fmt="mp3")
    first = seen[-1].result
    assert first is not None and outcome == "queued"
    assert forwards.calls > 0
    forwards.calls = 0

    outcome, seen = await run(service, song, fmt="flac")
    second = seen[-1].result
    assert second is not None
    assert outcome == "queued" and second.key != first.key  # its own job, not the cached one
    states = [e.state for e in seen]
    assert JobState.DECODING not in states and JobState.SEPARATING not in states
    assert JobState.ENCODING in states
    # the proof: the model never ran, and the service counted no second separation
    assert forwards.calls == 0
    assert await counter(service, "stembot_separations_total") == 1
    assert await counter(service, "stembot_renders_total") == 1

    # the same result shape as a separation: stems, zip, page, peaks, what the song is
    assert [(s.name, s.filename) for s in second.stems] == [(n, f"{n}.flac") for n in FOUR]
    assert second.format.value == "flac"
    assert second.zip is not None and second.zip.filename == "stems.zip"
    same = ("title", "model", "stems_mode", "duration_s", "analysis")
    assert {f: getattr(second, f) for f in same} == {f: getattr(first, f) for f in same}
    assert second.page_url is not None and f"/r/{second.key}?" in second.page_url
    assert second.expires_at > first.expires_at
    for stem in second.stems:
        peaks = await service.storage.read_peaks(second.key, stem.filename)
        assert peaks is not None and len(peaks) == 800
    # its stems are the first job's: through the same mp3 encoder they come out within 30 dB
    # (mp3's own error on these stems is 10 to 20 dB; a one-step difference in a few samples
    # changes some of LAME's choices, no more)
    for name in FOUR:
        flac = pcm(stem_file(service, second, name))
        again = mp3_of(flac, tmp_path / f"{name}.mp3")
        delivered = pcm(stem_file(service, first, name))
        assert again.shape == delivered.shape
        assert snr_db(delivered, again) > 30, name
    assert service.uploads() == []
    assert service.tmp_leftovers() == []


async def test_renders_match_the_separation_and_make_mixes_too(
    service: Service, tmp_path: Path
) -> None:
    """Lossless to lossless: the samples a render makes are the separation's (a sample on
    the edge of a 16-bit step may land one step off); a two-stem mix needs no model either."""
    song = make_audio(tmp_path / "song.wav", seconds=3.0)
    forwards = await Forwards.of(service)
    _, seen = await run(service, song, fmt="flac")
    separated = seen[-1].result
    assert separated is not None and forwards.calls > 0
    forwards.calls = 0

    _, seen = await run(service, song, fmt="wav")
    rendered = seen[-1].result
    assert rendered is not None
    for name in FOUR:
        a, b = pcm(stem_file(service, separated, name)), pcm(stem_file(service, rendered, name))
        assert a.shape == b.shape
        # 24 bits hold each float sample within 2^-24 of its gain: 0.4 % of the samples may
        # sit that close to a 16-bit step's edge
        assert int(np.abs(a - b).max()) <= 1, name
        assert float((a != b).mean()) < 0.01, name

    _, seen = await run(service, song, stems="vocals", fmt="mp3")
    karaoke = seen[-1].result
    assert karaoke is not None
    assert [s.name for s in karaoke.stems] == ["vocals", "instrumental"]
    assert karaoke.stems_mode == "vocals"
    assert forwards.calls == 0
    assert await counter(service, "stembot_separations_total") == 1
    assert await counter(service, "stembot_renders_total") == 2


async def test_the_master_holds_every_stem_and_expires_with_the_links(
    service: Service, tmp_path: Path
) -> None:
    song = make_audio(tmp_path / "song.wav", seconds=3.0)
    options = service.options(stems="drums", fmt="mp3")
    _, seen = await run(service, song, stems="drums", fmt="mp3")
    first = seen[-1].result
    assert first is not None and [s.name for s in first.stems] == ["drums", "no_drums"]

    key = master_key(song, options)
    kept = await masters.find(service.redis, key)
    assert kept is not None
    assert kept.expires_at == first.expires_at
    assert kept.files == {n: f"{n}.flac" for n in FOUR}  # the model's stems, not the mix
    left_s = first.expires_at - time.time()
    pttl_s = await service.redis.pttl(keys.master(key)) / 1000
    assert left_s - 5 < pttl_s <= left_s + 0.01  # Redis counts whole ms
    folder = service.storage.job_dir(masters.storage_key(key))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["meta.json", *(f"{n}.flac" for n in FOUR)]
    )
    assert json.loads((folder / "meta.json").read_text())["expires_at"] == first.expires_at
    entries = "stream=bits_per_raw_sample:format_tags"
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", folder / "bass.flac"],
        check=True,
        capture_output=True,
    )
    info = json.loads(probe.stdout)
    assert info["streams"][0]["bits_per_raw_sample"] == "24"
    assert float(info["format"]["tags"][GAIN_TAG]) >= 1.0

    # a render keeps the master as long as its own links
    _, seen = await run(service, song, fmt="flac")
    second = seen[-1].result
    assert second is not None
    kept = await masters.find(service.redis, key)
    assert kept is not None and kept.expires_at >= second.expires_at
    assert json.loads((folder / "meta.json").read_text())["expires_at"] == kept.expires_at

    # the storage cleanup counts it: nothing goes before its time, then the first job, then
    # the second job and the master together
    storage = service.storage
    assert service.tmp_leftovers() == [] and service.uploads() == []
    assert await storage.cleanup(now=first.expires_at - 1) == 0
    assert first.expires_at < second.expires_at
    assert await storage.cleanup(now=(first.expires_at + second.expires_at) / 2) == 1
    assert not await storage.job_exists(first.key) and folder.is_dir()
    assert await storage.cleanup(now=kept.expires_at + 1) == 2
    assert not folder.exists() and not await storage.job_exists(second.key)


def damage(folder: Path) -> None:
    data = bytearray((folder / "bass.flac").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 200] = bytes(b ^ 0x5A for b in data[middle : middle + 200])
    (folder / "bass.flac").write_bytes(bytes(data))


@pytest.mark.parametrize("broken", ["missing", "damaged"])
async def test_a_missing_or_damaged_master_falls_back_to_a_separation(
    service: Service, tmp_path: Path, broken: str
) -> None:
    song = make_audio(tmp_path / "song.wav", seconds=3.0)
    forwards = await Forwards.of(service)
    await run(service, song, fmt="mp3")
    key = master_key(song, service.options())
    old = await masters.find(service.redis, key)
    assert old is not None
    folder = service.storage.job_dir(masters.storage_key(key))
    if broken == "missing":
        shutil.rmtree(folder)
    else:
        damage(folder)
    forwards.calls = 0

    outcome, seen = await run(service, song, fmt="flac")
    result = seen[-1].result
    assert outcome == "queued" and result is not None
    assert [(s.name, s.filename) for s in result.stems] == [(n, f"{n}.flac") for n in FOUR]
    assert JobState.SEPARATING in [e.state for e in seen]
    assert forwards.calls > 0
    assert await counter(service, "stembot_separations_total") == 2
    assert await counter(service, "stembot_renders_total") == 0
    # the separation kept a new, whole master: the next format is a render again
    new = await masters.find(service.redis, key)
    assert new is not None and new.id != old.id
    forwards.calls = 0
    await run(service, song, fmt="wav")
    assert forwards.calls == 0
    assert await counter(service, "stembot_renders_total") == 1
    assert service.uploads() == []
    assert service.tmp_leftovers() == []


VID = "dQw4w9WgXcQ"


@pytest.fixture
async def youtube(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeYouTube]:
    async with FakeYouTube().running(monkeypatch) as fake:
        yield fake


async def test_a_second_format_of_a_link_needs_no_download_either(
    redis_server: PrivateRedis,
    storage_dir: Path,
    model_repo: Path,
    youtube: FakeYouTube,
    tmp_path: Path,
) -> None:
    youtube.add_video(VID, make_audio(tmp_path / "a.m4a", seconds=3).read_bytes(), title="Clip")
    async with running_service(redis_server.url, storage_dir, model_repo) as service:
        await service.redis.flushall()

        async def send(fmt: str) -> list[ProgressEvent]:
            stream = f"test:events:{uuid.uuid4().hex}"
            await submit_youtube(
                redis=service.redis,
                settings=service.settings,
                url=f"https://youtu.be/{VID}",
                frontend="test",
                user_id="test:u1",
                reply_to=stream,
                options=service.options(fmt=fmt),
            )
            return await service.events_until_final(stream)

        first = (await send("mp3"))[-1]
        seen = await send("flac")
        assert first.result is not None and seen[-1].result is not None
        assert [e.state for e in seen][-2:] == [JobState.ENCODING, JobState.DONE]
        assert JobState.DOWNLOADING not in [e.state for e in seen]
        assert seen[-1].result.title == first.result.title == "Clip"
        assert await counter(service, "stembot_downloads_total") == 1
        assert await counter(service, "stembot_separations_total") == 1
        assert await counter(service, "stembot_renders_total") == 1
