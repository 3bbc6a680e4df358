"""Redirects yt-dlp may follow: through yt-dlp's real handlers against local servers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from yt_dlp.networking import Request
from yt_dlp.networking._requests import RequestsRH
from yt_dlp.networking._urllib import UrllibRH
from yt_dlp.networking._websockets import WebsocketsRH

from worker import redirects
from worker.redirects import UnsafeRedirect, check_redirect, guarded_handlers, is_public_host
from worker.youtube import _YoutubeDL, ydl_options


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1",
        "0x7f.1",
        "2130706433",
        "0.0.0.0",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",
        "[::1]",
        "::1",
        "fc00::1",
        "fe80::1%eth0",
        "::ffff:127.0.0.1",
        "localhost",
        "LOCALHOST.",
        "printer.local",
        "metadata.google.internal",
        "intranet",
        "",
    ],
)
def test_local_and_internal_hosts_are_not_public(host: str) -> None:
    assert not is_public_host(host)


@pytest.mark.parametrize("host", ["8.8.8.8", "2a00:1450:4001:82a::200e", "[2606:4700::1111]"])
def test_public_addresses_are_public(host: str) -> None:
    assert is_public_host(host)


def test_names_are_judged_by_what_they_resolve_to(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {
        "rebound.example.com": ["93.184.216.34", "10.0.0.5"],
        "media.example.com": ["93.184.216.34", "2606:2800:220:1::1"],
    }

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 0)) for ip in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert not is_public_host("rebound.example.com")  # one private answer is enough
    assert is_public_host("media.example.com")
    assert is_public_host("nowhere.example.com")  # unresolvable: nothing can be reached


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("/videoplayback/other?x=1", True),
        ("http://127.0.0.1:8000/elsewhere", True),  # same scheme, host and port
        ("https://8.8.8.8/videoplayback", True),
        ("http://127.0.0.1:9000/admin", False),
        ("https://127.0.0.1:8000/", False),  # another scheme: another service
        ("http://localhost:8000/", False),
        ("http://169.254.169.254/latest/meta-data/", False),
        ("http://user:pw@8.8.8.8/", False),
        ("file:///etc/passwd", False),
        ("gopher://8.8.8.8/", False),
        ("http://8.8.8.8:99999/", False),
    ],
)
def test_check_redirect(target: str, allowed: bool) -> None:
    origin = "http://127.0.0.1:8000/videoplayback/x"
    if allowed:
        check_redirect(origin, target)
    else:
        with pytest.raises(UnsafeRedirect):
            check_redirect(origin, target)


def test_our_handlers_replace_yt_dlp_s() -> None:
    handlers = guarded_handlers([UrllibRH, RequestsRH, WebsocketsRH])
    assert handlers == [redirects.UrllibRH, redirects.RequestsRH, WebsocketsRH]
    assert [h.RH_KEY for h in handlers] == ["Urllib", "Requests", "Websockets"]
    ydl = _YoutubeDL(ydl_options(max_bytes=1))
    assert {type(h) for h in ydl._request_director.handlers.values()} == {
        redirects.UrllibRH,
        redirects.RequestsRH,
        WebsocketsRH,
    }


class Servers:
    """A media server that redirects, and an internal service it redirects to."""

    def __init__(self) -> None:
        self.internal_hits: list[str] = []
        self.media = ""
        self.internal = ""

    async def start(self, stack: list[web.AppRunner]) -> None:
        async def internal(request: web.Request) -> web.Response:
            self.internal_hits.append(request.path)
            return web.Response(text="secret")

        async def media(request: web.Request) -> web.Response:
            if request.path == "/away":
                raise web.HTTPFound(f"{self.internal}/admin")
            if request.path == "/moved":
                raise web.HTTPFound("/audio")
            return web.Response(body=b"audio bytes")

        for handler, name in ((internal, "internal"), (media, "media")):
            app = web.Application()
            app.router.add_get("/{tail:.*}", handler)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            stack.append(runner)
            setattr(self, name, f"http://127.0.0.1:{runner.addresses[0][1]}")


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    found, stack = Servers(), list[web.AppRunner]()
    await found.start(stack)
    yield found
    for runner in stack:
        await runner.cleanup()


def fetch(handler: type, url: str) -> bytes:
    with _YoutubeDL(ydl_options(max_bytes=1, timeout_s=5)) as ydl:
        director = ydl.build_request_director([handler])
        try:
            return bytes(director.send(Request(url)).read())
        finally:
            director.close()


@pytest.mark.parametrize("handler", [RequestsRH, UrllibRH], ids=["requests", "urllib"])
async def test_redirects_to_other_local_services_are_refused(
    servers: Servers, handler: type
) -> None:
    with pytest.raises(UnsafeRedirect, match=r"non-public address refused \(127\.0\.0\.1\)"):
        await asyncio.to_thread(fetch, handler, f"{servers.media}/away")
    assert servers.internal_hits == []
    # the same server's own redirects are followed
    assert await asyncio.to_thread(fetch, handler, f"{servers.media}/moved") == b"audio bytes"
