"""/forget of an API key's owner: after a run and a cached answer, no key names them."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import keys
from shared.forget import forget
from tests.bots.test_api import api_client, form
from tests.support import redis_scan
from tests.support.audio import make_audio
from tests.support.service import Service

pytestmark = pytest.mark.filterwarnings(
    r"ignore:unread_data\(\) is deprecated:DeprecationWarning:aiohttp.multipart"
)


async def test_forget_an_api_owner_leaves_no_key_naming_them(
    service: Service, tmp_path: Path
) -> None:
    wav = make_audio(tmp_path / "Song.wav", seconds=2.0)
    redis = service.redis
    async with api_client(service) as api:
        body, _ = await api.call("POST", "/api/stemify", 202, data=form(wav))
        assert (await api.poll(body["job_id"], {"done", "failed"}))["state"] == "done"
        cached, _ = await api.call("POST", "/api/stemify", 200, data=form(wav))
        assert cached["state"] == "done"
    before = await redis_scan.naming(redis, "alice")
    assert keys.api_job(cached["job_id"]) in before  # no request record leads to this one
    assert keys.limit_window("api:alice") in before
    assert await redis_scan.undocumented(redis, service.settings, "test:*:nobody") == []

    await forget(redis, service.storage, "api:alice")

    assert await redis_scan.naming(redis, "alice") == {}
