"""A fake YouTube whose media server answers with redirects, and a stand-in internal service.

:class:`RedirectingYouTube` is :class:`~tests.support.fake_youtube.FakeYouTube` with one
addition: a media name listed in ``redirects`` is answered ``302 Location: <target>`` (what a
compromised or misconfigured media server could send). :class:`InternalService` stands for
what such a redirect must never reach (a metadata endpoint, an admin port) and records every
request it gets.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from tests.support.fake_youtube import FakeYouTube


class RedirectingYouTube(FakeYouTube):
    def __init__(self) -> None:
        super().__init__()
        #: media name -> Location to answer with (absolute or relative).
        self.redirects: dict[str, str] = {}

    async def _videoplayback(self, request: web.Request) -> web.StreamResponse:
        target = self.redirects.get(request.match_info["name"])
        if target is not None:
            raise web.HTTPFound(target)
        return await super()._videoplayback(request)


class InternalService:
    """Listens on 127.0.0.1 and serves audio-looking bytes to anyone who asks."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.port = 0

    async def _any(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        return web.Response(body=b"internal secret " * 512, content_type="audio/mp4")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[InternalService]:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._any)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.port = runner.addresses[0][1]
        try:
            yield self
        finally:
            await runner.cleanup()
