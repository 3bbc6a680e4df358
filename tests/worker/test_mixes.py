"""Custom mixes through the real core, queue, workers and storage: some stems of a finished
song summed into one file from its kept master, without running the model, with the
stems' encoders and clipping care; every refusal with its exact text."""

from __future__ import annotations

import copy
import json
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from shared import keys, limits, masters, mixes
from shared.core import Accepted, Core, Requester
from shared.errors import InvalidOption, MixExpired, MixNotReady, NoStemsToMix
from shared.gate import LimitReached
from shared.schemas import AudioFormat, JobRequest, JobResult, JobState, LocalReply
from tests.support.audio import make_audio
from tests.support.service import Service
from tests.worker.test_render import Forwards, counter, damage, mp3_of, pcm, snr_db, stem_file
from worker import audio
from worker.master import GAIN_TAG
from worker.mixdown import sum_stems
from worker.staging import StagedStem

FULL_24 = 2**23 - 1


def master_floats(folder: Path, name: str) -> np.ndarray:
    """A stem of the kept master as floats [samples, channels], read with ffmpeg alone."""
    path = folder / f"{name}.flac"
    entries = f"format_tags={GAIN_TAG}"
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", str(path)],
        check=True,
        capture_output=True,
    )
    gain = float(json.loads(probe.stdout)["format"]["tags"][GAIN_TAG])
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s32le", "-"],
        check=True,
        capture_output=True,
    )
    ints = np.frombuffer(out.stdout, dtype="<i4").reshape(-1, 2) >> 8
    return ints.astype(np.float64) * gain / FULL_24


def as_delivered(total: np.ndarray) -> np.ndarray:
    """What the stems' encoder makes of a float signal: demucs' rescale when it is loud
    (by 1.01 times its peak), then 16 bits."""
    loud = 1.01 * float(np.abs(total).max())
    scale = 1.0 if loud < 1 else loud
    return (np.clip(total / scale, -1, 1) * (2**15 - 1)).astype(np.int16).astype(np.int32)


async def split(service: Service, song: Path, fmt: str = "wav") -> tuple[JobRequest, JobResult]:
    """The song separated: its stored request and its result."""
    accepted, stream = await service.submit(song, options=service.options(fmt=fmt))
    seen = await service.events_until_final(stream)
    assert seen[-1].state == JobState.DONE and seen[-1].result is not None, seen[-1]
    found = await mixes.find_song(service.redis, accepted.request_id, accepted.job_id)
    assert found is not None
    return found, seen[-1].result


async def mix(
    service: Service,
    song: JobRequest,
    stems: list[str],
    fmt: str | None = None,
    *,
    requester: Requester | None = None,
    core: Core | None = None,
) -> tuple[Accepted, str]:
    stream = f"test:events:{uuid.uuid4().hex}"
    core = core or Core(service.redis, service.storage, service.settings)
    accepted = await core.mix(
        requester,
        song,
        stems,
        fmt,
        LocalReply(frontend="test"),
        user_id=None if requester else "test:u1",
        reply_to=stream,
    )
    return accepted, stream


async def test_a_mix_is_the_sum_of_its_stems_made_without_demucs(
    service: Service, tmp_path: Path
) -> None:
    song_file = make_audio(tmp_path / "My Song.wav", seconds=4.0)
    forwards = await Forwards.of(service)
    song, separated = await split(service, song_file)
    assert forwards.calls > 0
    forwards.calls = 0

    accepted, stream = await mix(service, song, ["drums", "bass", "bass"], "wav")
    assert accepted.outcome == "queued" and accepted.first.state == JobState.QUEUED
    seen = await service.events_until_final(stream)
    made = seen[-1].result
    assert seen[-1].state == JobState.DONE and made is not None
    states = [e.state for e in seen]
    assert JobState.DECODING not in states and JobState.SEPARATING not in states
    # the proof: the model never ran, no separation was counted, one render was
    assert forwards.calls == 0
    assert await counter(service, "stembot_separations_total") == 1
    assert await counter(service, "stembot_renders_total") == 1

    # one file, linked like the stems, for as long
    assert [(s.name, s.filename) for s in made.stems] == [("mix_drums_bass", "mix_drums_bass.wav")]
    assert made.key == accepted.job_id != separated.key
    assert (made.stems_mode, made.format, made.title) == ("mix", AudioFormat.WAV, "My Song")
    assert made.duration_s == separated.duration_s and made.analysis == separated.analysis
    assert made.expires_at >= separated.expires_at
    assert f"/files/{made.key}/mix_drums_bass.wav?" in made.stems[0].url
    # and nothing else kept: no zip of one file
    assert made.zip is None
    assert sorted(
        p.name for p in service.storage.job_dir(made.key).iterdir() if p.suffix in (".wav", ".zip")
    ) == ["mix_drums_bass.wav"]
    assert made.page_url is not None and f"/r/{made.key}?" in made.page_url

    # its samples are the sum of the chosen stems, kept losslessly in the master: within one
    # 16-bit step, after the same rescale as a stem gets
    folder = service.storage.job_dir(masters.storage_key(song.separation_key))
    total = master_floats(folder, "drums") + master_floats(folder, "bass")
    got = pcm(stem_file(service, made, "mix_drums_bass"))
    expected = as_delivered(total)
    assert got.shape == expected.shape
    assert int(np.abs(got - expected).max()) <= 1
    # and not just any sum: leaving out a stem shows
    assert int(np.abs(got - as_delivered(total + master_floats(folder, "other"))).max()) > 1

    # the same mix again, stems in any order: answered from the cache, no new render
    again, _ = await mix(service, song, ["bass", "drums"], "wav")
    assert again.outcome == "cached" and again.result is not None
    assert again.job_id == made.key and again.result.stems == made.stems
    assert await counter(service, "stembot_renders_total") == 1
    assert service.uploads() == [] and service.tmp_leftovers() == []


async def test_karaoke_in_mp3_matches_the_sum_through_the_same_encoder(
    service: Service, tmp_path: Path
) -> None:
    song, _ = await split(service, make_audio(tmp_path / "song.wav", seconds=3.0), fmt="mp3")
    _, stream = await mix(service, song, ["drums", "bass", "other"])  # the song's format
    made = (await service.events_until_final(stream))[-1].result
    assert made is not None and made.format == AudioFormat.MP3
    assert [s.filename for s in made.stems] == ["instrumental.mp3"]
    folder = service.storage.job_dir(masters.storage_key(song.separation_key))
    drums, bass, other = (master_floats(folder, n) for n in ("drums", "bass", "other"))
    total = drums + bass + other
    reference = mp3_of(as_delivered(total), tmp_path / "reference.mp3")
    got = pcm(stem_file(service, made, "instrumental"))
    assert got.shape == reference.shape
    assert snr_db(reference, got) > 30


def staged(folder: Path, name: str, samples: np.ndarray) -> StagedStem:
    stem = StagedStem(folder / f"{name}.f32", 2)
    stem.append(torch.from_numpy(samples.astype(np.float32)))
    return stem


def test_a_sum_past_full_scale_is_scaled_down_not_clipped(tmp_path: Path) -> None:
    """Two loud stems in phase: their sum peaks at 1.7; the mix keeps its shape, scaled by
    1.01 times that peak, as demucs saves a loud stem."""
    t = np.arange(44100) / 44100
    wave = np.sin(2 * np.pi * 110 * t)
    a, b = np.stack([0.9 * wave, 0.9 * wave]), np.stack([0.8 * wave, 0.8 * wave])
    total = sum_stems(
        {"drums": staged(tmp_path, "drums", a), "bass": staged(tmp_path, "bass", b)},
        tmp_path / "mix" / "both.f32",
    )
    peak = float(np.abs(a + b).max())
    assert float(total.peak) == pytest.approx(peak, abs=1e-6) and peak > 1.69
    assert not (tmp_path / "drums.f32").exists()  # the parts are removed as they are used
    path = audio.encode(total, tmp_path / "both", AudioFormat.WAV, 44100)
    got = pcm(path)
    expected = ((a + b).T / (1.01 * peak) * (2**15 - 1)).astype(np.int16).astype(np.int32)
    assert int(np.abs(got - expected).max()) <= 1
    assert 32000 < int(np.abs(got).max()) < 32767  # full, not clipped: no sample at the rail


async def test_what_a_mix_cannot_be(service: Service, tmp_path: Path) -> None:
    song, _ = await split(service, make_audio(tmp_path / "song.wav", seconds=2.0))
    cases = {
        "flute": (["bass", "flute"], None),
        "none": ([], None),
        "every": (["vocals", "drums", "bass", "other"], None),
        "format": (["bass"], "ogg"),
    }
    texts = {
        "flute": "The model htdemucs has no 'flute' stem. Choose one of: drums, bass, other, "
        "vocals.",
        "none": "Choose at least one stem to mix.",
        "every": "A mix of every stem is the whole song: leave out at least one stem (for "
        "example the vocals, for karaoke).",
        "format": "Unknown format 'ogg'. Choose one of: mp3, flac, wav.",
    }
    for case, (stems, fmt) in cases.items():
        with pytest.raises(InvalidOption) as caught:
            await mix(service, song, stems, fmt)
        assert caught.value.user_message == texts[case], case
    # nothing was queued or counted for them
    assert await counter(service, "stembot_renders_total") == 0


async def test_a_song_that_is_not_done_or_kept_cannot_be_mixed(
    service: Service, tmp_path: Path
) -> None:
    song, _ = await split(service, make_audio(tmp_path / "song.wav", seconds=2.0))
    redis = service.redis
    # its links expired: Redis dropped the result
    saved = await redis.get(keys.result(song.key))
    assert saved is not None
    await redis.delete(keys.result(song.key))
    with pytest.raises(MixExpired) as caught:
        await mix(service, song, ["bass"])
    text = "The stems of this song are no longer kept, so I can't mix them. Please send it again."
    assert caught.value.user_message == text
    # its master is gone (expired, or found damaged) while its links still work
    await redis.set(keys.result(song.key), saved, px=60_000 * 60)
    kept = await masters.find(redis, song.separation_key)
    assert kept is not None
    await redis.delete(keys.master(song.separation_key))
    with pytest.raises(MixExpired):
        await mix(service, song, ["bass"])
    await masters.record(redis, kept)

    # still in work, or ended without stems
    other = song.model_copy(update={"options": service.options(fmt="flac")})
    await redis.hset(keys.job(other.key), mapping={"state": "separating"})
    with pytest.raises(MixNotReady) as not_ready:
        await mix(service, other, ["bass"])
    assert not_ready.value.user_message == (
        "This song isn't finished yet. Ask for the mix once its stems are ready."
    )
    for state in ("failed", "cancelled"):
        await redis.hset(keys.job(other.key), mapping={"state": state})
        with pytest.raises(NoStemsToMix) as no_stems:
            await mix(service, other, ["bass"])
        assert no_stems.value.user_message == (
            "This song has no stems to mix: it failed or was cancelled. Please send it again."
        )
    assert await counter(service, "stembot_renders_total") == 0


async def test_mixes_have_their_own_hourly_limit(service: Service, tmp_path: Path) -> None:
    song, _ = await split(service, make_audio(tmp_path / "song.wav", seconds=2.0))
    settings = copy.deepcopy(service.settings)
    settings.limits.mixes_per_hour = 2
    core = Core(service.redis, service.storage, settings)
    alice = Requester("test", "test:alice")
    for stems in (["bass"], ["drums"]):
        _, stream = await mix(service, song, stems, requester=alice, core=core)
        assert (await service.events_until_final(stream))[-1].state == JobState.DONE
    with pytest.raises(LimitReached) as caught:
        await mix(service, song, ["vocals"], requester=alice, core=core)
    assert caught.value.code == "limit_mix_hourly"
    assert caught.value.user_message == "You can make 2 mixes an hour. Try again in 1 h."
    assert 3590 <= (caught.value.retry_after_s or 0) <= 3600
    # a refused mix counts for nothing; neither did the mixes count against songs
    assert await service.redis.zcard(keys.limit_mixes("test:alice")) == 2
    assert await service.redis.zcard(limits.window_key("test:alice")) == 0
    assert await service.redis.zcard(limits.active_key("test:alice")) == 0
    # another user has their own mixes; an exempt admin is not counted; a ban holds for mixes
    bob = Requester("test", "test:bob")
    await mix(service, song, ["vocals"], requester=bob, core=core)
    admin = Requester("test", "test:alice", admin=True)
    await mix(service, song, ["other"], requester=admin, core=core)
    assert await service.redis.zcard(keys.limit_mixes("test:alice")) == 2
    await limits.ban(service.redis, "test:bob", "test:admin")
    with pytest.raises(LimitReached) as banned:
        await mix(service, song, ["bass"], requester=bob, core=core)
    assert banned.value.user_message == "You are banned from using this bot."


async def test_admins_set_the_mixes_per_hour_like_the_songs_limits(
    service: Service, tmp_path: Path
) -> None:
    """``mixes_per_hour`` is a limit admins set from the chat: globally, and per server or
    group (which wins there), through the same layers as the songs' limits."""
    song, _ = await split(service, make_audio(tmp_path / "song.wav", seconds=2.0))
    redis = service.redis
    await limits.set_limit(redis, None, "mixes_per_hour", "1", "test:admin")
    group = "telegram:chat:-42"
    await limits.set_limit(redis, group, "mixes_per_hour", "3", "test:admin")
    try:
        carol = Requester("test", "test:carol")
        _, stream = await mix(service, song, ["bass"], requester=carol)
        await service.events_until_final(stream)
        with pytest.raises(LimitReached) as caught:
            await mix(service, song, ["drums"], requester=carol)
        assert caught.value.user_message == "You can make 1 mix an hour. Try again in 1 h."
        # in the group its own value holds: two more there
        in_group = Requester("test", "test:carol", scope=group)
        for stems in (["drums"], ["vocals"]):
            _, stream = await mix(service, song, stems, requester=in_group)
            await service.events_until_final(stream)
        with pytest.raises(LimitReached):
            await mix(service, song, ["other"], requester=in_group)
        # an admin's value out of range is refused with its range
        with pytest.raises(InvalidOption) as wrong:
            await limits.set_limit(redis, None, "mixes_per_hour", "-1", "test:admin")
        assert wrong.value.user_message == (
            "mixes_per_hour must be a whole number from 0 to 10000 (0 = unlimited); got '-1'."
        )
    finally:
        await limits.reset_limit(redis, None, "mixes_per_hour", "test:admin")
        await limits.reset_limit(redis, group, "mixes_per_hour", "test:admin")


async def test_a_damaged_master_fails_the_mix_and_never_separates(
    service: Service, tmp_path: Path
) -> None:
    song, _ = await split(service, make_audio(tmp_path / "song.wav", seconds=2.0))
    forwards = await Forwards.of(service)
    forwards.calls = 0
    damage(service.storage.job_dir(masters.storage_key(song.separation_key)))
    _, stream = await mix(service, song, ["bass", "drums"])
    seen = await service.events_until_final(stream)
    assert seen[-1].state == JobState.FAILED
    assert (seen[-1].error_code, seen[-1].error_message) == (
        "expired",
        "The stems of this song are no longer kept, so I can't mix them. Please send it again.",
    )
    assert JobState.SEPARATING not in [e.state for e in seen]
    assert forwards.calls == 0
    assert await counter(service, "stembot_separations_total") == 1
    # the master is forgotten: the next mix is refused at once
    assert await masters.find(service.redis, song.separation_key) is None
    with pytest.raises(MixExpired):
        await mix(service, song, ["bass"])
    assert service.uploads() == [] and service.tmp_leftovers() == []
