"""The HTTP API through a real aiohttp client, a real web app, Redis and the in-process worker.

Every JSON body a test gets is checked against the schema that /api/openapi.json documents for
that path, method and status.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bots.api import RECORD_PREFIX, add_api_routes
from bots.web import create_app
from shared import limits
from shared.errors import Cancelled, MalformedRequest, NotAudio
from tests.support.audio import make_audio
from tests.support.service import Service
from tests.support.waiting import until
from tests.support.web import serving

ALICE, BOB = "alice-key-0123456789", "bob-key-9876543210"
KEYS = {ALICE: "alice", BOB: "bob"}
LINK = "https://youtu.be/dQw4w9WgXcQ"
DOC_URI = "urn:stembot:openapi"

# aiohttp's own multipart reader calls its deprecated StreamReader.unread_data() each time it
# meets a boundary (aiohttp 3.14, multipart.py): not something this code can avoid.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:unread_data\(\) is deprecated:DeprecationWarning:aiohttp.multipart"
)


@dataclass
class Client:
    svc: Service
    base: str
    http: aiohttp.ClientSession
    doc: dict[str, Any]
    validated: int = 0

    async def call(
        self, method: str, path: str, status: int, *, key: str | None = ALICE, **kwargs: Any
    ) -> tuple[dict[str, Any], aiohttp.ClientResponse]:
        """Send, check the status, validate the JSON body against the documented schema."""
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers.setdefault("Authorization", f"Bearer {key}")
        async with self.http.request(method, self.base + path, headers=headers, **kwargs) as resp:
            body = await resp.json()
            assert resp.status == status, body
        self.validate(method, path, status, body)
        return body, resp

    def validate(self, method: str, path: str, status: int, body: dict[str, Any]) -> None:
        template = re.sub(r"^/api/jobs/[^/]+(/mixes)?$", r"/api/jobs/{job_id}\1", path)
        responses = self.doc["paths"][template][method.lower()]["responses"]
        response = responses[str(status)]
        if "$ref" in response:
            response = self.doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema = response["content"]["application/json"]["schema"]
        registry: Registry[Any] = Registry().with_resource(
            DOC_URI, Resource.from_contents(self.doc, default_specification=DRAFT202012)
        )
        ref = schema["$ref"] if "$ref" in schema else None
        target = {"$ref": DOC_URI + ref} if ref else schema
        Draft202012Validator(target, registry=registry).validate(body)
        self.validated += 1

    async def poll(self, job_id: str, states: set[str], timeout_s: float = 60) -> dict[str, Any]:
        """Until the job is in one of ``states``, as a client polls: a look every 0.1 s."""

        async def reached() -> dict[str, Any] | None:
            body, _ = await self.call("GET", f"/api/jobs/{job_id}", 200)
            return body if body["state"] in states else None

        what = f"job {job_id} to be {' or '.join(sorted(states))}"
        return await until(reached, timeout_s=timeout_s, what=what, every_s=0.1)


@contextlib.asynccontextmanager
async def api_client(
    svc: Service,
    *,
    limits_defaults: limits.Limits | None = None,
    idle_queue: bool = False,
    **changes: Any,
) -> AsyncIterator[Client]:
    """The web app with the API on a free port. YouTube links wait on a download queue nobody
    works on (no network needed), and with ``idle_queue`` uploads too; ``changes`` sets limit
    settings of the API's copy."""
    settings = copy.deepcopy(svc.settings)
    settings.redis.download_queue_name = "test:download:nobody"
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
            assert resp.status == 200
            doc = await resp.json()
        Draft202012Validator.check_schema(doc["components"]["schemas"]["Job"])
        client = Client(svc, base, http, doc)
        yield client
        assert client.validated > 0


def form(path: Path | None = None, data: bytes | None = None, /, **fields: str) -> aiohttp.FormData:
    body = aiohttp.FormData(quote_fields=False, default_to_multipart=True)
    for name, value in fields.items():
        body.add_field(name, value)
    if path is not None:
        body.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name)
    elif data is not None:  # a file object: aiohttp warns about large raw bytes bodies
        body.add_field("file", io.BytesIO(data), filename="song.mp3")
    return body


async def test_upload_poll_download_then_cached(service: Service, tmp_path: Path) -> None:
    wav = make_audio(tmp_path / "My Song.wav", seconds=2.0)
    async with api_client(service) as api:
        fields = {"model": "htdemucs", "stems": "vocals", "format": "wav"}
        body, _ = await api.call("POST", "/api/stemify", 202, data=form(wav, **fields))
        job_id = body["job_id"]
        assert body["status_url"] == f"/api/jobs/{job_id}"
        assert body["state"] in {"queued", "decoding", "separating", "encoding", "done"}
        # another owner's job is not there for bob, with either header
        await api.call("GET", f"/api/jobs/{job_id}", 404, key=BOB)
        await api.call("DELETE", f"/api/jobs/{job_id}", 404, key=None, headers={"X-API-Key": BOB})
        done = await api.poll(job_id, {"done", "failed", "cancelled", "expired"})
        assert done["state"] == "done", done
        result = done["result"]
        assert result["title"] == "My Song"
        assert [s["name"] for s in result["stems"]] == ["vocals", "instrumental"]
        assert result["format"] == "wav"
        assert (result["key"], result["tempo"]) == (None, None)  # 2 s: too short to tell
        assert 0 < result["expires_in_s"] <= 24 * 3600
        # the results page first, as in the chats: signed, and it opens
        page = result["page_url"]
        assert page.startswith(f"{service.base_url}/r/{result['zip']['url'].split('/')[4]}?exp=")
        async with api.http.get(page) as resp:
            assert resp.status == 200
            assert "My Song" in await resp.text()
        async with api.http.get(result["zip"]["url"]) as resp:
            assert resp.status == 200
            assert len(await resp.read()) == result["zip"]["size_bytes"]
        async with api.http.get(result["stems"][0]["url"]) as resp:
            assert resp.status == 200
        # the slot is free and the event consumer recorded the end
        assert await service.redis.zcard(limits.active_key("api:alice")) == 0

        async def recorded() -> bool:
            return await service.redis.hget(RECORD_PREFIX + job_id, "final_state") == b"done"

        await until(recorded, timeout_s=10, what="the event consumer to record the end")
        body, _ = await api.call("DELETE", f"/api/jobs/{job_id}", 409)
        assert body["error"]["code"] == "already_finished"
        # the same file with the same options: answered from the cache at once
        body, _ = await api.call("POST", "/api/stemify", 200, data=form(wav, **fields))
        assert body["state"] == "done"
        assert body["job_id"] != job_id
        assert body["result"]["zip"]["url"] == result["zip"]["url"]
        again, _ = await api.call("GET", body["status_url"], 200)
        assert again["result"] == body["result"] | {"expires_in_s": again["result"]["expires_in_s"]}
        assert await service.redis.zcard(limits.active_key("api:alice")) == 0


async def test_auth(service: Service) -> None:
    async with api_client(service) as api:
        body, resp = await api.call("GET", "/api/jobs/" + "0" * 32, 401, key=None)
        assert body["error"]["code"] == "unauthorized"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        await api.call("POST", "/api/stemify", 401, key=None, json={"url": LINK})
        headers = {"Authorization": "Basic abc"}
        await api.call("GET", "/api/jobs/x", 401, key=None, headers=headers)
        body, _ = await api.call("GET", "/api/jobs/x", 403, key="wrong")
        assert body["error"] == {"code": "forbidden", "message": "This API key is not valid."}
        await api.call("POST", "/api/stemify", 403, key=None, headers={"X-API-Key": ALICE[:-1]})
        body, _ = await api.call("GET", "/api/jobs/" + "0" * 32, 404)
        assert body["error"]["code"] == "not_found"
        await api.call("GET", "/api/jobs/not-an-id", 404, key=None, headers={"X-API-Key": ALICE})


async def test_validation_errors(service: Service, tmp_path: Path) -> None:
    wav = make_audio(tmp_path / "a.wav", seconds=1.0)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"json": {"url": LINK, "model": "nope"}}, "Unknown model 'nope'. Choose one of: "),
        ({"json": {"url": LINK, "stems": "kazoo"}}, "Unknown stems 'kazoo'. Choose one of: "),
        ({"json": {"url": LINK, "format": "ogg"}}, "Unknown format 'ogg'. Choose one of: "),
        ({"json": {"url": LINK, "stems": "guitar"}}, "The model htdemucs has no 'guitar' stem."),
        ({"json": {}}, "Send a YouTube link in 'url'"),
        ({"json": {"url": LINK, "file": "x"}}, "Upload files as multipart/form-data"),
        ({"json": {"url": LINK, "speed": "2"}}, "Unknown field 'speed'"),
        ({"json": {"url": 5}}, "The field 'url' must be a string."),
        ({"json": ["x"]}, "The body must be a JSON object."),
        ({"json": {"url": "https://example.com/song"}}, "I can only fetch songs from YouTube"),
        ({"data": form(wav, url=LINK)}, "Send either a file or a url, not both."),
        ({"data": form(None, model="htdemucs")}, "Send an audio file in a part named 'file'"),
        ({"data": form(wav, model="demucs9")}, "Unknown model 'demucs9'."),
    ]
    async with api_client(service) as api:
        for kwargs, message in cases:
            body, _ = await api.call("POST", "/api/stemify", 422, **kwargs)
            assert body["error"]["message"].startswith(message), (kwargs, body)
        body, _ = await api.call("POST", "/api/stemify", 415, data=b"hello")
        assert body["error"]["code"] == "unsupported_media_type"
        headers = {"Content-Type": "application/json"}
        body, _ = await api.call("POST", "/api/stemify", 400, data=b"{nope", headers=headers)
        assert body["error"]["code"] == "bad_request"
        # nothing of it was counted
        assert await service.redis.zcard(limits.window_key("api:alice")) == 0
        # htdemucs_6s has a guitar stem: accepted
        fields = {"url": LINK, "model": "htdemucs_6s", "stems": "guitar", "format": "FLAC"}
        body, _ = await api.call("POST", "/api/stemify", 202, json=fields)
        assert body["state"] == "queued"


async def test_too_large_and_not_audio(service: Service, tmp_path: Path) -> None:
    async with api_client(service, max_upload_mb=0.125) as api:
        # clearly above the cap: refused from Content-Length before reading the body
        body, _ = await api.call("POST", "/api/stemify", 413, data=form(None, b"\0" * 1_300_000))
        assert body["error"]["code"] == "too_large"
        assert "The limit is 0.125 MB" in body["error"]["message"]
        # a little above it: the core stops reading at the cap
        body, _ = await api.call("POST", "/api/stemify", 413, data=form(None, b"\0" * 300_000))
        assert body["error"]["code"] == "too_large"
        assert body["error"]["message"].startswith("That file is too large")
        text = tmp_path / "notes.mp3"
        text.write_text("these are my lyrics, not audio\n" * 20)
        body, _ = await api.call("POST", "/api/stemify", 400, data=form(text))
        assert body["error"] == {"code": "not_audio", "message": NotAudio().user_message}
        # rejected submissions do not count
        assert await service.redis.zcard(limits.window_key("api:alice")) == 0
        assert await service.redis.zcard(limits.active_key("api:alice")) == 0
        assert service.uploads() == []
        assert service.tmp_leftovers() == []


async def test_hourly_limit_gives_429_with_retry_after(service: Service) -> None:
    defaults = limits.Limits(jobs_per_hour=2, active_jobs=10)
    async with api_client(service, limits_defaults=defaults) as api:
        for video in ("aaaaaaaaaaa", "bbbbbbbbbbb"):
            await api.call("POST", "/api/stemify", 202, json={"url": LINK[:-11] + video})
        body, resp = await api.call("POST", "/api/stemify", 429, json={"url": LINK})
        retry = int(resp.headers["Retry-After"])
        assert 3590 <= retry <= 3600
        assert body["error"]["code"] == "limit_hourly"
        message = "You can start 2 songs an hour. Try again in 1 h."
        assert body["error"]["message"] == message
        # bob has his own allowance
        await api.call("POST", "/api/stemify", 202, key=BOB, json={"url": LINK})


async def test_cancel_a_queued_youtube_job(service: Service) -> None:
    async with api_client(service) as api:
        body, _ = await api.call("POST", "/api/stemify", 202, json={"url": LINK + "?t=3"})
        job_id = body["job_id"]
        assert (body["state"], body["position"]) == ("queued", 0)
        assert body["eta_s"] > 0
        body, _ = await api.call("GET", f"/api/jobs/{job_id}", 200)
        assert (body["state"], body["position"], body["result"]) == ("queued", 0, None)
        # one song in progress at a time (the default)
        body, resp = await api.call("POST", "/api/stemify", 429, json={"url": LINK})
        assert body["error"]["code"] == "limit_active"
        assert "Retry-After" not in resp.headers
        await api.call("DELETE", f"/api/jobs/{job_id}", 404, key=BOB)
        body, _ = await api.call("DELETE", f"/api/jobs/{job_id}", 200)
        assert body == {"job_id": job_id, "state": "cancelled"}
        body, _ = await api.call("GET", f"/api/jobs/{job_id}", 200)
        assert body["state"] == "cancelled"
        assert body["error"] == {"code": "cancelled", "message": Cancelled().user_message}
        await api.call("DELETE", f"/api/jobs/{job_id}", 200)  # again: nothing to do
        assert await service.redis.zcard(limits.active_key("api:alice")) == 0
        body, _ = await api.call("POST", "/api/stemify", 202, json={"url": LINK})
        # a request withdrawn from a run that others still wait for shows cancelled too
        other, _ = await api.call("POST", "/api/stemify", 202, key=BOB, json={"url": LINK})
        run = (await api.call("GET", f"/api/jobs/{body['job_id']}", 200))[0]
        assert run["state"] == "queued"
        await api.call("DELETE", f"/api/jobs/{other['job_id']}", 200, key=BOB)
        still, _ = await api.call("GET", f"/api/jobs/{body['job_id']}", 200)
        assert still["state"] == "queued"
        gone, _ = await api.call("GET", f"/api/jobs/{other['job_id']}", 200, key=BOB)
        assert gone["state"] == "cancelled"


async def test_cancelling_a_queued_upload_deletes_it_before_it_reports_cancelled(
    service: Service, tmp_path: Path
) -> None:
    wav = make_audio(tmp_path / "queued.wav", seconds=1.0)
    async with api_client(service, idle_queue=True) as api:
        body, _ = await api.call("POST", "/api/stemify", 202, data=form(wav))
        job_id = body["job_id"]
        assert (body["state"], body["position"]) == ("queued", 0)
        [upload] = service.uploads()
        assert upload.read_bytes() == wav.read_bytes()
        # nobody works on this queue: the upload goes with the cancel itself, not a worker
        body, _ = await api.call("DELETE", f"/api/jobs/{job_id}", 200)
        assert body == {"job_id": job_id, "state": "cancelled"}
        assert service.uploads() == []
        body, _ = await api.call("GET", f"/api/jobs/{job_id}", 200)
        assert body["state"] == "cancelled"
    assert service.uploads() == []
    assert service.tmp_leftovers() == []


async def test_no_route_under_api_is_an_error_body_too(service: Service) -> None:
    async with api_client(service) as api:
        async with api.http.put(api.base + "/api/stemify") as resp:
            assert (resp.status, resp.headers["Allow"]) == (405, "POST")
            body = await resp.json()
        assert body == {
            "error": {
                "code": "method_not_allowed",
                "message": "Method Not Allowed: see /api/openapi.json.",
            }
        }
        for path in ("/api/jobs/", "/api/jobs/a/b", "/api/nothing"):
            async with api.http.get(api.base + path) as resp:
                assert resp.status == 404
                body = await resp.json()
            assert body["error"] == {
                "code": "not_found",
                "message": "Not Found: see /api/openapi.json.",
            }
        await api.call("GET", "/api/openapi.json", 200)


_PART = b'--xyz\r\nContent-Disposition: form-data; name="%s"\r\n'
#: (name, body, Content-Type): each broke the server (500 and a traceback) before.
MALFORMED: list[tuple[str, bytes, str]] = [
    ("no starting boundary", b"just some bytes", "multipart/form-data; boundary=xyz"),
    ("an empty body", b"", "multipart/form-data; boundary=xyz"),
    ("an empty boundary", b"--xyz\r\n\r\nx\r\n--xyz--\r\n", "multipart/form-data; boundary="),
    ("a part header without a colon", b"--xyz\r\nno colon\r\n\r\nx\r\n--xyz--\r\n", ""),
    ("a part header too long", b"--xyz\r\nX-A: " + b"a" * 9000 + b"\r\n\r\nx\r\n--xyz--", ""),
    ("a NUL in a file name", (_PART % b'file"; filename="\0a') + b"\r\nx\r\n--xyz--\r\n", ""),
    ("a field cut short", (_PART % b"model") + b"\r\nhtdemucs", ""),
    ("a file cut short", (_PART % b'file"; filename="a.mp3') + b"\r\nID3" + b"\0" * 5000, ""),
    (
        "a nested part without a boundary",
        (_PART % b"x") + b"Content-Type: multipart/mixed\r\n\r\n--a\r\n\r\nx\r\n--a--\r\n--xyz--",
        "",
    ),
    ("JSON in an unknown charset", b'{"url": "x"}', "application/json; charset=nope"),
]


@pytest.mark.parametrize(
    ("body", "content_type"), [pytest.param(b, c, id=name) for name, b, c in MALFORMED]
)
async def test_malformed_body_is_a_400_without_error_log(
    service: Service, body: bytes, content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Content-Type": content_type or "multipart/form-data; boundary=xyz"}
    async with api_client(service) as api:
        got, _ = await api.call("POST", "/api/stemify", 400, data=body, headers=headers)
    assert got["error"] == {"code": "bad_request", "message": MalformedRequest().user_message}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert await service.redis.zcard(limits.window_key("api:alice")) == 0
    assert await service.redis.zcard(limits.active_key("api:alice")) == 0
    assert service.uploads() == []
    assert service.tmp_leftovers() == []
