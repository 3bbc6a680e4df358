"""Mixes with volumes (shared.mixes: a gain per stem, in percent), through the real web server,
Redis, core and workers: the HTTP API's ``volumes``, and the results page's "Download this
mix" (``POST /r/<job key>/mix`` under the page's signed query: bots.page.mix). The files are
compared with the sum of the song's kept master at those gains."""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import numpy as np
import pytest

from bots.page import PAGE_STATE, page_url
from bots.web import create_app
from shared import keys, masters, mixes
from shared.links import sign_path, with_lang
from shared.schemas import (
    AudioFormat,
    JobOptions,
    JobRequest,
    JobResult,
    JobState,
    Source,
    delivery_key,
)
from tests.bots.test_api_mixes import done_song, mix_client
from tests.support.audio import make_audio
from tests.support.service import Service
from tests.support.web import serving
from tests.worker.test_mixes import as_delivered, master_floats, staged
from tests.worker.test_render import counter, pcm
from worker import audio
from worker.mixdown import sum_stems

pytestmark = pytest.mark.filterwarnings(
    r"ignore:unread_data\(\) is deprecated:DeprecationWarning:aiohttp.multipart"
)

EVERY = (
    "A mix of every stem is the whole song: leave out at least one stem (for example the "
    "vocals, for karaoke)."
)
EXPIRED = "The stems of this song are no longer kept, so I can't mix them. Please send it again."
VOLUMES_FIELD = (
    "The field 'volumes' must be an object of stem names and volumes in percent, such as "
    '{"drums": 50, "bass": 100}.'
)
DONE = {"done", "failed", "cancelled", "expired"}


def expected_mix(service: Service, song: JobRequest, gains: dict[str, float]) -> np.ndarray:
    """What a mix at ``gains`` must hold: the master's stems at those gains, summed, as the
    stems' encoder makes 16 bits of it."""
    folder = service.storage.job_dir(masters.storage_key(song.separation_key))
    total = np.zeros_like(master_floats(folder, next(iter(gains))))
    for name, gain in gains.items():
        total += gain * master_floats(folder, name)
    return as_delivered(total)


# --- the options and keys -------------------------------------------------------------------


def test_gains_are_part_of_a_mix_key_and_only_of_a_mix_key() -> None:
    source = Source(kind="youtube", identity="abc", title="t")
    song = JobOptions()
    plain = mixes.options(song, ["drums", "bass"], None)
    same = mixes.options(song, ["bass", "drums"], None, {"drums": 100, "bass": 100})
    softer = mixes.options(song, ["drums", "bass"], None, {"drums": 50})
    zero = mixes.options(song, ["drums", "bass", "vocals"], None, {"drums": 50, "vocals": 0})
    # all at 100 is no gains at all: one mix, one key (the key it had before gains existed)
    assert plain.mix_gains is None and same == plain
    assert delivery_key(source, same) == delivery_key(source, plain)
    assert "mix_gains" not in plain.model_dump_json(exclude_defaults=True)
    assert (softer.mix, softer.mix_gains) == (("drums", "bass"), (50, 100))
    assert delivery_key(source, softer) != delivery_key(source, plain)
    # a stem at 0 % is not in the mix
    assert zero == softer
    # a plain job's key ignores the new field (as it ignores ``mix``)
    assert "mix_gains" not in JobOptions().model_dump(exclude_defaults=True)
    assert delivery_key(source, song) == delivery_key(source, JobOptions(mix_gains=None))
    # gains normalised by the options themselves: all 100 is stored as None
    assert JobOptions(mix=("drums",), mix_gains=(100,)).mix_gains is None
    # every stem is a mix when one of them is softer
    every = mixes.options(song, ["drums", "bass", "other", "vocals"], None, {"vocals": 30})
    assert every.mix == ("drums", "bass", "other", "vocals")
    assert every.mix_gains == (100, 100, 100, 30)
    assert mixes.name(every) == "mix_drums_bass_other_vocals"
    for gains in ((0,), (201,), (100, 100)):
        with pytest.raises(ValueError):
            JobOptions(mix=("drums",), mix_gains=gains)
    with pytest.raises(ValueError):
        JobOptions(mix_gains=(50,))


def test_gains_scale_each_stem_and_a_loud_sum_is_rescaled_not_clipped(tmp_path: Path) -> None:
    """Drums at 200 % and bass at 50 %: the sum peaks past full scale, and is scaled down as a
    whole by 1.01 times its peak, as any loud stem."""
    t = np.arange(44100) / 44100
    wave = np.sin(2 * np.pi * 110 * t)
    a, b = np.stack([0.7 * wave, 0.7 * wave]), np.stack([0.6 * wave, 0.6 * wave])
    total = sum_stems(
        {"drums": staged(tmp_path, "drums", a), "bass": staged(tmp_path, "bass", b)},
        tmp_path / "mix" / "both.f32",
        {"drums": 2.0, "bass": 0.5},
    )
    summed = 2.0 * a + 0.5 * b
    peak = float(np.abs(summed).max())
    assert float(total.peak) == pytest.approx(peak, abs=1e-6) and peak > 1.69
    got = pcm(audio.encode(total, tmp_path / "both", AudioFormat.WAV, 44100))
    expected = (summed.T / (1.01 * peak) * (2**15 - 1)).astype(np.int16).astype(np.int32)
    assert int(np.abs(got - expected).max()) <= 1
    assert 32000 < int(np.abs(got).max()) < 32767  # full, not clipped


# --- the HTTP API ---------------------------------------------------------------------------


async def test_a_mix_with_volumes_through_the_api(service: Service, tmp_path: Path) -> None:
    song_file = make_audio(tmp_path / "song.wav", seconds=3.0)
    async with mix_client(service) as api:
        job_id = await done_song(api, song_file, format="wav")
        path = f"/api/jobs/{job_id}/mixes"
        ask = {"stems": ["drums", "bass"], "volumes": {"drums": 50, "bass": 100}}
        body, _ = await api.call("POST", path, 202, json=ask)
        done = await api.poll(body["job_id"], DONE)
        assert done["state"] == "done", done
        [mix] = done["result"]["stems"]
        assert mix["filename"] == "mix_drums_bass.wav"
        async with api.http.get(mix["url"]) as resp:
            assert resp.status == 200
            (tmp_path / "got.wav").write_bytes(await resp.read())
        song = await mixes.find_song(service.redis, job_id)
        assert song is not None
        got = pcm(tmp_path / "got.wav")
        expected = expected_mix(service, song, {"drums": 0.5, "bass": 1.0})
        assert got.shape == expected.shape
        assert int(np.abs(got - expected).max()) <= 1
        # and not the plain sum
        plain = expected_mix(service, song, {"drums": 1.0, "bass": 1.0})
        assert int(np.abs(got - plain).max()) > 1

        # the same volumes again (a float, and a stem at 0 % named too): from the cache
        again = {"stems": ["bass", "drums", "other"], "volumes": {"drums": 50.2, "other": 0}}
        body, _ = await api.call("POST", path, 200, json=again)
        assert body["result"]["stems"] == [mix]
        # all at 100 is the mix without volumes: another file, then that one from the cache
        body, _ = await api.call("POST", path, 202, json={"stems": ["drums", "bass"]})
        await api.poll(body["job_id"], DONE)
        full = {"stems": ["drums", "bass"], "volumes": {"drums": 100}}
        body, _ = await api.call("POST", path, 200, json=full)
        assert body["result"]["stems"][0]["url"] != mix["url"]
        # every stem, one of them softer, is a mix
        every = {"stems": ["drums", "bass", "other", "vocals"], "volumes": {"vocals": 20}}
        body, _ = await api.call("POST", path, 202, json=every)
        done = await api.poll(body["job_id"], DONE)
        assert done["state"] == "done", done
        assert done["result"]["stems"][0]["name"] == "mix_drums_bass_other_vocals"
        assert await counter(service, "stembot_renders_total") == 3


async def test_what_volumes_are_refused_for(service: Service, tmp_path: Path) -> None:
    song = make_audio(tmp_path / "song.wav", seconds=2.0)
    async with mix_client(service) as api:
        job_id = await done_song(api, song)
        path = f"/api/jobs/{job_id}/mixes"
        unknown = (
            "The model htdemucs has no 'flute' stem. Choose one of: drums, bass, other, vocals."
        )
        cases: list[tuple[dict[str, Any], str]] = [
            ({"stems": ["bass"], "volumes": [50]}, VOLUMES_FIELD),
            ({"stems": ["bass"], "volumes": {"bass": "50"}}, VOLUMES_FIELD),
            ({"stems": ["bass"], "volumes": {"bass": True}}, VOLUMES_FIELD),
            ({"stems": ["bass"], "volumes": {"bass": None}}, VOLUMES_FIELD),
            (
                {"stems": ["bass"], "volumes": {"bass": 201}},
                "The volume of 'bass' must be from 0 to 200 (percent), not 201.",
            ),
            (
                {"stems": ["bass"], "volumes": {"bass": -0.5}},
                "The volume of 'bass' must be from 0 to 200 (percent), not -0.5.",
            ),
            ({"stems": ["bass"], "volumes": {"flute": 50}}, unknown),
            (
                {"stems": ["bass"], "volumes": {"drums": 50}},
                "The stem 'drums' has a volume but is not in the mix: add it to the stems, or "
                "leave its volume out.",
            ),
            ({"stems": ["bass", "drums"], "volumes": {"bass": 0, "drums": 0.4}}, mixes.EMPTY),
            (
                {"stems": ["vocals", "drums", "bass", "other"], "volumes": {"bass": 100}},
                EVERY,
            ),
            (
                {"stems": ["bass"], "volume": {"bass": 50}},
                "Unknown field 'volume': use stems, format, volumes.",
            ),
        ]
        for ask, message in cases:
            body, _ = await api.call("POST", path, 422, json=ask)
            assert body["error"] == {"code": "invalid_option", "message": message}, ask
        # in the client's language
        body, _ = await api.call(
            "POST",
            path,
            422,
            json={"stems": ["bass"], "volumes": {"bass": 300}},
            headers={"Accept-Language": "de"},
        )
        assert body["error"]["code"] == "invalid_option"
        assert "'bass'" in body["error"]["message"] and "300" in body["error"]["message"]
        assert await counter(service, "stembot_renders_total") == 0


# --- the results page's "Download this mix" -------------------------------------------------


@dataclass
class MixPage:
    svc: Service
    song: JobRequest
    result: JobResult
    base: str
    #: the page's path and signed query, on the test server
    url: str
    http: aiohttp.ClientSession
    app: Any

    @property
    def mix_url(self) -> str:
        parts = urlsplit(self.url)
        return f"{self.base}{parts.path}/mix?{parts.query}"

    async def post(
        self, body: Any, status: int, url: str | None = None, **kwargs: Any
    ) -> tuple[dict[str, Any], aiohttp.ClientResponse]:
        kwargs = {"json": body} | kwargs if body is not None else kwargs
        async with self.http.post(url or self.mix_url, **kwargs) as resp:
            got = await resp.json()
            assert resp.status == status, (resp.status, got)
            assert resp.headers["Cache-Control"] == "no-store"
            assert "connect-src 'self'" in resp.headers["Content-Security-Policy"]
            return got, resp


@contextlib.asynccontextmanager
async def mix_page(
    service: Service,
    tmp_path: Path,
    *,
    stems: str = "all",
    idle_renders: bool = False,
    **changes: Any,
) -> AsyncIterator[MixPage]:
    """A song separated by the real workers (in wav, with ``stems``), and the web app (with
    Redis: it can mix) serving its page; with ``idle_renders`` its mixes go to a download
    queue nobody works on; ``changes``: limit settings."""
    audio = make_audio(tmp_path / "My Song.wav", seconds=3.0)
    accepted, stream = await service.submit(audio, options=service.options(fmt="wav", stems=stems))
    final = (await service.events_until_final(stream))[-1]
    assert final.state == JobState.DONE and final.result is not None, final
    result = final.result
    song = await mixes.find_song(service.redis, None, result.key)  # as the page finds it
    assert song is not None and song.request_id == accepted.request_id
    settings = copy.deepcopy(service.settings)
    if idle_renders:
        settings.redis.download_queue_name = "test:queue:nobody"
    for name, value in changes.items():
        setattr(settings.limits, name, value)
    app = create_app(settings, service.storage, run_cleanup=False, redis=service.redis)
    async with serving(app) as base, aiohttp.ClientSession() as http:
        link = page_url(settings, result)
        url = base + link.removeprefix(settings.storage.public_url)
        yield MixPage(service, song, result, base, url, http, app)


async def test_the_page_makes_a_file_of_the_mixer(service: Service, tmp_path: Path) -> None:
    async with mix_page(service, tmp_path) as page:
        # the page offers it, in the song's format by default
        async with page.http.get(page.url) as resp:
            html = await resp.text()
        assert 'id="mix-download"' in html and '<option value="wav" selected>' in html
        volumes = {"drums": 50, "bass": 100, "other": 0, "vocals": 0}
        made, _ = await page.post({"volumes": volumes}, 200)
        assert made["name"] == "mix_drums_bass.wav" and made["url"].startswith("/files/")
        async with page.http.get(page.base + made["url"]) as resp:
            assert resp.status == 200
            data = await resp.read()
        assert len(data) == made["size"] > 0 and made["size_label"].endswith("KB")
        (tmp_path / "mix.wav").write_bytes(data)
        got = pcm(tmp_path / "mix.wav")
        expected = expected_mix(service, page.song, {"drums": 0.5, "bass": 1.0})
        assert got.shape == expected.shape
        assert int(np.abs(got - expected).max()) <= 1
        # the owner's mixes are counted, as theirs
        assert await service.redis.zcard(keys.limit_mixes(page.song.user_id)) == 1
        # the same again: from the cache, the same file; in another format: another file
        again, _ = await page.post({"volumes": volumes}, 200)
        assert again == made
        flac, _ = await page.post({"volumes": volumes, "format": "flac"}, 200)
        assert flac["name"] == "mix_drums_bass.flac"
        async with page.http.get(page.base + flac["url"]) as resp:
            (tmp_path / "mix.flac").write_bytes(await resp.read())
        assert int(np.abs(pcm(tmp_path / "mix.flac") - expected).max()) <= 1
        assert await counter(service, "stembot_renders_total") == 2


async def test_a_two_stem_page_mixes_the_stems_its_tracks_hold(
    service: Service, tmp_path: Path
) -> None:
    """A karaoke page's tracks are vocals and instrumental: the instrumental at 50 % is the
    drums, bass and other at 50 % (the master keeps every stem)."""
    async with mix_page(service, tmp_path, stems="vocals") as page:
        assert page.result.stems_mode == "vocals"
        made, _ = await page.post({"volumes": {"vocals": 0, "instrumental": 50}}, 200)
        assert made["name"] == "instrumental.wav"
        async with page.http.get(page.base + made["url"]) as resp:
            (tmp_path / "half.wav").write_bytes(await resp.read())
        expected = expected_mix(service, page.song, {"drums": 0.5, "bass": 0.5, "other": 0.5})
        assert int(np.abs(pcm(tmp_path / "half.wav") - expected).max()) <= 1
        # both at full volume: the whole song
        whole = {"volumes": {"vocals": 100, "instrumental": 100}}
        assert (await page.post(whole, 400))[0] == {"error": EVERY}


async def test_what_the_page_is_refused_for(service: Service, tmp_path: Path) -> None:
    async with mix_page(service, tmp_path) as page:
        good = {"volumes": {"drums": 50, "bass": 100, "other": 0, "vocals": 0}}
        parts = urlsplit(page.mix_url)
        query = dict(parse_qsl(parts.query))
        base_url = f"{page.base}{parts.path}"
        # the signature is checked as the page's
        tampered = urlencode(query | {"sig": "0" * len(query["sig"])})
        body, _ = await page.post(good, 403, url=f"{base_url}?{tampered}")
        assert body == {"error": "This link does not work"}
        body, _ = await page.post(good, 403, url=base_url)
        assert body == {"error": "This link does not work"}
        key = page.result.key
        past = int(time.time()) - 10
        expired = sign_path(page.svc.storage.signing_key, f"/r/{key}", past)
        body, _ = await page.post(good, 410, url=f"{base_url}?{expired}")
        assert body == {"error": "This link has expired"}
        # the mixer's states that are no mix, in the core's words
        every = {"volumes": dict.fromkeys(("drums", "bass", "other", "vocals"), 100)}
        assert (await page.post(every, 400))[0] == {"error": EVERY}
        none = {"volumes": dict.fromkeys(("drums", "bass", "other", "vocals"), 0)}
        assert (await page.post(none, 400))[0] == {"error": mixes.EMPTY}
        # bodies that are not a mixer's state
        cases: list[tuple[dict[str, Any], int, str]] = [
            (
                {"json": {"volumes": {"drums": 300}}},
                400,
                "The volume of 'drums' must be from 0 to 200 (percent), not 300.",
            ),
            ({"json": {"volumes": "drums"}}, 400, VOLUMES_FIELD),
            ({"json": {}}, 400, VOLUMES_FIELD),
            ({"json": [1]}, 400, "The body must be a JSON object."),
            ({"json": {**good, "format": 3}}, 400, "The field 'format' must be a string."),
            (
                {"json": {**good, "format": "ogg"}},
                400,
                "Unknown format 'ogg'. Choose one of: mp3, flac, wav.",
            ),
            (
                {"data": "{", "headers": {"Content-Type": "application/json"}},
                400,
                "The body is not valid JSON.",
            ),
            (
                {"data": "volumes", "headers": {"Content-Type": "text/plain"}},
                415,
                'Send application/json: an object such as {"volumes": {"drums": 50, "bass": 100}}.',
            ),
        ]
        for kwargs, status, text in cases:
            body, _ = await page.post(None, status, **kwargs)
            assert body == {"error": text}, kwargs
        # in the page's language (its link's lang, else the browser's)
        body, resp = await page.post(none, 400, url=with_lang(page.mix_url, "fr"))
        assert resp.headers["Content-Language"] == "fr"
        assert body == {"error": "Choisissez au moins une piste à mixer."}
        assert await counter(service, "stembot_renders_total") == 0
        assert await service.redis.zcard(keys.limit_mixes(page.song.user_id)) == 0

        # the song's master expired: 410, with the core's text
        await masters.delete(service.redis, service.storage, page.song.separation_key)
        body, _ = await page.post(good, 410)
        assert body == {"error": EXPIRED}
        # and its run's record too: the page cannot name the song any more
        await service.redis.delete(keys.job(page.result.key))
        body, _ = await page.post(good, 410)
        assert body == {"error": EXPIRED}


async def test_the_page_counts_the_owners_mixes(service: Service, tmp_path: Path) -> None:
    async with mix_page(service, tmp_path, mixes_per_hour=1) as page:
        await page.post({"volumes": {"drums": 50, "bass": 100, "other": 0, "vocals": 0}}, 200)
        other = {"volumes": {"drums": 0, "bass": 100, "other": 0, "vocals": 0}}
        body, resp = await page.post(other, 429)
        assert body == {"error": "You can make 1 mix an hour. Try again in 1 h."}
        assert 3590 <= int(resp.headers["Retry-After"]) <= 3600
        body, _ = await page.post(other, 429, url=with_lang(page.mix_url, "de"))
        assert body["error"] != "You can make 1 mix an hour. Try again in 1 h."
        assert await counter(service, "stembot_renders_total") == 1


async def test_a_mix_that_takes_too_long_is_told_so(service: Service, tmp_path: Path) -> None:
    async with mix_page(service, tmp_path, idle_renders=True) as page:
        page.app[PAGE_STATE].mix_wait_s = 1.0  # nobody renders it: the page stops waiting
        body, _ = await page.post({"volumes": {"drums": 50, "bass": 100}}, 504)
        assert body == {
            "error": "The mix is taking longer than usual. Please try again in a minute."
        }


async def test_a_page_without_redis_makes_no_mix(service: Service, tmp_path: Path) -> None:
    async with mix_page(service, tmp_path) as page:
        app = create_app(service.settings, service.storage, run_cleanup=False)
        async with serving(app) as base:
            async with page.http.get(
                base + urlsplit(page.url).path + "?" + urlsplit(page.url).query
            ) as resp:
                assert 'id="mix-download"' not in await resp.text()
            url = f"{base}{urlsplit(page.mix_url).path}?{urlsplit(page.mix_url).query}"
            body, _ = await page.post({"volumes": {"drums": 50}}, 503, url=url)
            assert body == {
                "error": "The service is busy or restarting. Please try again in a minute."
            }
