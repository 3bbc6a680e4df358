"""``POST /api/jobs/{job_id}/mixes`` through a real aiohttp client, the real web app, Redis
and the in-process workers (the mix is rendered on the download queue, without the model).

Every JSON body is checked against the schema /api/openapi.json documents for it.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bots.api import add_api_routes
from bots.web import create_app
from shared import keys, limits
from tests.bots.test_api import ALICE, BOB, KEYS, Client, form
from tests.support.audio import make_audio
from tests.support.service import Service
from tests.support.web import serving
from tests.worker.test_render import Forwards, counter

pytestmark = pytest.mark.filterwarnings(
    r"ignore:unread_data\(\) is deprecated:DeprecationWarning:aiohttp.multipart"
)


class MixClient(Client):
    """The API tests' client (it checks every body against the OpenAPI, mixes included)."""


@contextlib.asynccontextmanager
async def mix_client(
    svc: Service,
    *,
    limits_defaults: limits.Limits | None = None,
    idle_queue: bool = False,
    **changes: Any,
) -> AsyncIterator[MixClient]:
    """The web app with the API; the real queues (a mix renders on the download queue), or
    with ``idle_queue`` a separation queue nobody works on; ``changes``: limit settings."""
    settings = copy.deepcopy(svc.settings)
    if idle_queue:
        settings.redis.queue_name = "test:queue:nobody"
    for name, value in changes.items():
        setattr(settings.limits, name, value)
    app = create_app(settings, svc.storage, run_cleanup=False)
    add_api_routes(
        app,
        settings=settings,
        storage=svc.storage,
        redis=svc.redis,
        api_keys=KEYS,
        limits_defaults=limits_defaults,
    )
    async with serving(app) as base, aiohttp.ClientSession() as http:
        async with http.get(base + "/api/openapi.json") as resp:
            doc = await resp.json()
        client = MixClient(svc, base, http, doc)
        yield client
        assert client.validated > 0


async def done_song(api: MixClient, song: Path, **fields: str) -> str:
    body, _ = await api.call("POST", "/api/stemify", 202, data=form(song, **fields))
    done = await api.poll(body["job_id"], {"done", "failed", "cancelled", "expired"})
    assert done["state"] == "done", done
    return str(body["job_id"])


async def test_a_mix_is_a_job_to_poll_made_in_seconds_without_the_model(
    service: Service, tmp_path: Path
) -> None:
    song = make_audio(tmp_path / "My Song.wav", seconds=3.0)
    forwards = await Forwards.of(service)
    # one song an hour, one at a time: a mix is not a song, and passes
    one_song = limits.Limits(jobs_per_hour=1, active_jobs=1)
    async with mix_client(service, limits_defaults=one_song) as api:
        job_id = await done_song(api, song, format="flac")
        forwards.calls = 0
        path = f"/api/jobs/{job_id}/mixes"
        body, _ = await api.call("POST", path, 202, json={"stems": ["bass", "drums"]})
        mix_id = body["job_id"]
        assert mix_id != job_id and body["status_url"] == f"/api/jobs/{mix_id}"
        assert body["state"] in {"queued", "encoding", "done"}
        await api.call("GET", f"/api/jobs/{mix_id}", 404, key=BOB)
        done = await api.poll(mix_id, {"done", "failed", "cancelled", "expired"})
        assert done["state"] == "done", done
        result = done["result"]
        assert (result["title"], result["stems_mode"], result["format"]) == (
            "My Song",
            "mix",
            "flac",
        )
        [mix] = result["stems"]
        assert (mix["name"], mix["filename"]) == ("mix_drums_bass", "mix_drums_bass.flac")
        assert result["zip"] is None  # one file: no zip of it
        async with api.http.get(mix["url"]) as resp:
            assert resp.status == 200
            assert len(await resp.read()) == mix["size_bytes"] > 0
        assert forwards.calls == 0
        assert await counter(service, "stembot_separations_total") == 1
        assert await counter(service, "stembot_renders_total") == 1

        # the same mix again (and in another order): from the cache, 200, no new render
        body, _ = await api.call("POST", path, 200, json={"stems": ["drums", "bass"]})
        assert body["state"] == "done" and body["result"]["stems"] == [mix]
        # another format is another file
        body, _ = await api.call(
            "POST", path, 202, json={"stems": ["drums", "bass"], "format": "mp3"}
        )
        done = await api.poll(body["job_id"], {"done", "failed", "cancelled", "expired"})
        assert [s["filename"] for s in done["result"]["stems"]] == ["mix_drums_bass.mp3"]
        assert await counter(service, "stembot_renders_total") == 2
        assert forwards.calls == 0
        # the mixes held no song slot and counted no song
        assert await service.redis.zcard(limits.active_key("api:alice")) == 0
        assert await service.redis.zcard(limits.window_key("api:alice")) == 1


async def test_what_a_mix_request_is_refused_for(service: Service, tmp_path: Path) -> None:
    song = make_audio(tmp_path / "song.wav", seconds=2.0)
    async with mix_client(service) as api:
        job_id = await done_song(api, song)
        path = f"/api/jobs/{job_id}/mixes"
        unknown_stem = (
            "The model htdemucs has no 'flute' stem. Choose one of: drums, bass, other, vocals."
        )
        every = (
            "A mix of every stem is the whole song: leave out at least one stem (for example "
            "the vocals, for karaoke)."
        )
        stems_list = 'The field \'stems\' must be a list of stem names, such as ["bass", "drums"].'
        cases: list[tuple[dict[str, Any], int, str, str]] = [
            ({"json": {"stems": ["bass", "flute"]}}, 422, "invalid_option", unknown_stem),
            ({"json": {"stems": []}}, 422, "invalid_option", "Choose at least one stem to mix."),
            (
                {"json": {"stems": ["vocals", "drums", "bass", "other"]}},
                422,
                "invalid_option",
                every,
            ),
            (
                {"json": {"stems": ["bass"], "format": "ogg"}},
                422,
                "invalid_option",
                "Unknown format 'ogg'. Choose one of: mp3, flac, wav.",
            ),
            ({"json": {"stems": "bass"}}, 422, "invalid_option", stems_list),
            ({"json": {}}, 422, "invalid_option", stems_list),
            (
                {"json": {"stems": ["bass"], "volume": 2}},
                422,
                "invalid_option",
                "Unknown field 'volume': use stems, format, volumes.",
            ),
            (
                {"data": "stems=bass", "headers": {"Content-Type": "text/plain"}},
                415,
                "unsupported_media_type",
                'Send application/json: an object such as {"stems": ["bass", "drums"]}.',
            ),
            (
                {"data": "{", "headers": {"Content-Type": "application/json"}},
                400,
                "bad_request",
                "The body is not valid JSON.",
            ),
        ]
        for kwargs, status, code, message in cases:
            body, _ = await api.call("POST", path, status, **kwargs)
            assert body["error"] == {"code": code, "message": message}, kwargs
        # an unknown job, or another owner's: the same answer
        for rid, key in (("0" * 32, ALICE), ("nope", ALICE), (job_id, BOB)):
            body, _ = await api.call(
                "POST", f"/api/jobs/{rid}/mixes", 404, key=key, json={"stems": ["bass"]}
            )
            assert body["error"] == {"code": "not_found", "message": "No such job."}
        # without a key
        await api.call("POST", path, 401, key=None, json={"stems": ["bass"]})
        # in the client's language
        body, resp = await api.call(
            "POST", path, 422, json={"stems": []}, headers={"Accept-Language": "fr"}
        )
        assert resp.headers["Content-Language"] == "fr"
        assert body["error"]["code"] == "invalid_option"
        assert body["error"]["message"] == "Choisissez au moins une piste à mixer."
        assert await counter(service, "stembot_renders_total") == 0

        # the song's links expired: Redis dropped its result
        rec = await service.redis.hgetall(keys.api_job(job_id))
        await service.redis.delete(keys.result(rec[b"key"].decode()))
        body, _ = await api.call("POST", path, 410, json={"stems": ["bass"]})
        expired = (
            "The stems of this song are no longer kept, so I can't mix them. Please send it again."
        )
        assert body["error"] == {"code": "expired", "message": expired}


async def test_a_song_in_work_or_cancelled_cannot_be_mixed(
    service: Service, tmp_path: Path
) -> None:
    song = make_audio(tmp_path / "song.wav", seconds=2.0)
    async with mix_client(service, idle_queue=True) as api:
        body, _ = await api.call("POST", "/api/stemify", 202, data=form(song))
        job_id, path = body["job_id"], f"/api/jobs/{body['job_id']}/mixes"
        body, _ = await api.call("POST", path, 409, json={"stems": ["bass"]})
        assert body["error"] == {
            "code": "not_ready",
            "message": "This song isn't finished yet. Ask for the mix once its stems are ready.",
        }
        await api.call("DELETE", f"/api/jobs/{job_id}", 200)
        body, _ = await api.call("POST", path, 409, json={"stems": ["bass"]})
        assert body["error"] == {
            "code": "no_stems",
            "message": "This song has no stems to mix: it failed or was cancelled. "
            "Please send it again.",
        }


async def test_over_the_mixes_limit_gives_429_with_retry_after(
    service: Service, tmp_path: Path
) -> None:
    song = make_audio(tmp_path / "song.wav", seconds=2.0)
    async with mix_client(service, mixes_per_hour=1) as api:
        job_id = await done_song(api, song)
        path = f"/api/jobs/{job_id}/mixes"
        await api.call("POST", path, 202, json={"stems": ["vocals"]})
        body, resp = await api.call("POST", path, 429, json={"stems": ["drums"]})
        assert 3590 <= int(resp.headers["Retry-After"]) <= 3600
        assert body["error"] == {
            "code": "limit_mix_hourly",
            "message": "You can make 1 mix an hour. Try again in 1 h.",
        }
        # a ban holds for mixes too
        await limits.ban(service.redis, "api:alice", "test:admin")
        body, _ = await api.call("POST", path, 403, json={"stems": ["drums"]})
        assert body["error"] == {
            "code": "banned",
            "message": "You are banned from using this bot.",
        }
