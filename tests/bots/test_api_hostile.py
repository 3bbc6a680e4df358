"""The HTTP API refuses playlists and scripts that name other files, without opening them."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import limits
from shared.errors import ReferencesOtherFiles
from tests.bots.test_api import api_client, form
from tests.support.hostile_files import HOSTILE, canary, write_hostile
from tests.support.service import Service

pytestmark = pytest.mark.filterwarnings(
    r"ignore:unread_data\(\) is deprecated:DeprecationWarning:aiohttp.multipart"
)


async def test_every_hostile_file_is_refused_with_its_message(
    service: Service, tmp_path: Path
) -> None:
    expected = {"code": "references_other_files", "message": ReferencesOtherFiles().user_message}
    async with canary(tmp_path / "canary") as bait, api_client(service) as api:
        for name in sorted(HOSTILE):
            hostile = write_hostile(tmp_path / "uploads", name, bait)
            body, _ = await api.call("POST", "/api/stemify", 400, data=form(hostile))
            assert body["error"] == expected, name
            bait.assert_untouched()
    assert await service.redis.zcard(limits.window_key("api:alice")) == 0
    assert await service.redis.zcard(limits.active_key("api:alice")) == 0
    assert service.uploads() == []
    assert service.tmp_leftovers() == []
