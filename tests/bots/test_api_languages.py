"""The API answers people in the language of ``Accept-Language``: error messages (from the
request, and a job's recorded end), ``Content-Language``, the results page link; codes stay.

Expected texts come from the catalogues; the checks that a language is really shown fail while
its catalogue does not translate them."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bots.api import RECORD_PREFIX
from shared.errors import Cancelled, NotAudio, TooLong
from shared.i18n import ENGLISH, texts
from shared.models import MODELS
from tests.bots.test_api import LINK, Client, api_client, form
from tests.support.audio import make_audio
from tests.support.music import MAJOR, Song, write_song
from tests.support.service import Service

pytestmark = pytest.mark.filterwarnings(
    r"ignore:unread_data\(\) is deprecated:DeprecationWarning:aiohttp.multipart"
)


async def call(
    api: Client, method: str, path: str, status: int, accept: str | None, **kwargs: Any
) -> tuple[dict[str, Any], str]:
    """The body and the Content-Language of an answer to a client asking for ``accept``."""
    headers = {"Accept-Language": accept} if accept is not None else {}
    body, resp = await api.call(method, path, status, headers=headers, **kwargs)
    assert "Accept-Language" in resp.headers["Vary"]
    return body, resp.headers["Content-Language"]


@pytest.mark.parametrize(
    ("accept", "lang"),
    [("fr", "fr"), ("ja, de;q=0.5", "de"), (None, "en"), ("pt", "pt_BR"), ("zh, *", "en")],
)
async def test_error_messages_in_the_clients_language(
    service: Service, tmp_path: Path, accept: str | None, lang: str
) -> None:
    t = texts(lang)
    text = tmp_path / "notes.mp3"
    text.write_text("these are my lyrics, not audio\n" * 20)
    two_seconds = make_audio(tmp_path / "long.wav", seconds=2.0)
    async with api_client(service, max_duration_s=1) as api:
        body, content_language = await call(
            api, "POST", "/api/stemify", 400, accept, data=form(text)
        )
        assert content_language == t.tag
        assert body["error"] == {"code": "not_audio", "message": NotAudio().message(t)}
        messages = [body["error"]["message"]]
        # an error with values in its text
        body, _ = await call(api, "POST", "/api/stemify", 400, accept, data=form(two_seconds))
        assert body["error"] == {"code": "too_long", "message": TooLong(2.0, 1).message(t)}
        # the API's own checks
        body, _ = await call(
            api, "POST", "/api/stemify", 422, accept, json={"url": LINK, "model": "nope"}
        )
        unknown = t._(
            "Unknown model {model}. Choose one of: {models}.",
            model="'nope'",
            models=", ".join(MODELS),
        )
        assert body["error"] == {"code": "invalid_option", "message": unknown}
        messages.append(unknown)
        body, content_language = await call(api, "GET", "/api/jobs/x", 403, accept, key="wrong")
        assert content_language == t.tag
        assert body["error"]["message"] == t._("This API key is not valid.")
        messages.append(body["error"]["message"])
        # no such route
        headers = {"Accept-Language": accept} if accept else {}
        async with api.http.get(api.base + "/api/nothing", headers=headers) as resp:
            assert (resp.status, resp.headers["Content-Language"]) == (404, t.tag)
            assert (await resp.json())["error"] == {
                "code": "not_found",
                "message": t._("Not Found: see /api/openapi.json."),
            }
        # the document itself says which language too
        _, content_language = await call(api, "GET", "/api/openapi.json", 200, accept)
        assert content_language == t.tag
    # really that language: fails until the catalogue translates these texts
    english = [NotAudio().message(ENGLISH), ENGLISH._("This API key is not valid.")]
    if lang != "en":
        assert [m for m in messages if m in english] == []


async def test_a_recorded_end_is_told_in_each_readers_language(service: Service) -> None:
    """The cancel is recorded as a code and values, and each reader gets their language."""
    async with api_client(service) as api:
        body, _ = await call(api, "POST", "/api/stemify", 202, "de", json={"url": LINK})
        job_id = body["job_id"]
        await call(api, "DELETE", f"/api/jobs/{job_id}", 200, "de")
        record = await service.redis.hgetall(RECORD_PREFIX + job_id)
        assert record[b"error_code"] == b"cancelled"
        assert record[b"error_params"] == b"{}"
        assert record[b"error_message"] == Cancelled().user_message.encode()
        for accept, lang in (("es", "es"), ("ru-RU", "ru"), (None, "en")):
            body, content_language = await call(api, "GET", f"/api/jobs/{job_id}", 200, accept)
            assert content_language == texts(lang).tag
            assert body["state"] == "cancelled"
            assert body["error"] == {
                "code": "cancelled",
                "message": Cancelled().message(texts(lang)),
            }
        # a job already over: the refusal in the language too
        body, _ = await call(api, "DELETE", f"/api/jobs/{job_id}", 200, "fr")
        assert body == {"job_id": job_id, "state": "cancelled"}
    assert Cancelled().message(texts("es")) != Cancelled().user_message


async def test_the_results_page_link_in_the_clients_language(
    service: Service, tmp_path: Path
) -> None:
    wav = write_song(tmp_path / "Song.wav", Song("Bb", MAJOR, 93.5, "arpeggio", "four"), seed=3)
    async with api_client(service) as api:
        body, _ = await call(api, "POST", "/api/stemify", 202, "pt-BR", data=form(wav))
        done = await api.poll(body["job_id"], {"done", "failed", "cancelled", "expired"})
        assert done["state"] == "done", done
        # the song's key and tempo, labelled as the chats show them (no language: English)
        key, tempo = done["result"]["key"], done["result"]["tempo"]
        assert {k: key[k] for k in ("tonic", "mode", "name", "label")} == {
            "tonic": "Bb",
            "mode": "major",
            "name": "Bb major",
            "label": "B♭ major",
        }
        assert (tempo["bpm"], tempo["source"], tempo["label"]) == (93.5, "drums", "93.5 BPM")
        assert key["confidence"] >= 0.5 and tempo["confidence"] >= 0.5
        # the link as stored has no language: the page follows the browser's
        plain = done["result"]["page_url"]
        assert "lang" not in parse_qs(urlsplit(plain).query)
        body, _ = await call(api, "GET", f"/api/jobs/{body['job_id']}", 200, "pt-BR")
        page = body["result"]["page_url"]
        assert page == plain + "&lang=pt-BR"
        major = texts("pt_BR").p_("key", "{tonic} major", tonic="B♭")
        assert body["result"]["key"]["label"] == major != "B♭ major"
        assert body["result"]["tempo"]["label"] == "93,5 BPM"
        async with api.http.get(page) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Language"] == "pt-BR"
            assert '<html lang="pt-BR">' in await resp.text()
        # and another reader of the same job, in another language
        body, _ = await call(api, "GET", f"/api/jobs/{body['job_id']}", 200, "ru")
        assert body["result"]["page_url"] == plain + "&lang=ru"
