"""The bad-input corpus: everything a user can send that we must refuse, or survive.

Every case goes through the real core (shared.intake -> Redis -> the in-process arq workers
-> storage -> the web server), one service for the whole module: after each case nothing is
left in storage's tmp/uploads folders and no job waits in a queue, and at the end the same
service still splits a good song. Files are generated (tests/support/bad_files.py).
"""

from __future__ import annotations

import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import pytest
import pytest_asyncio

from shared import jobs
from shared.errors import (
    Archive,
    EmptyFile,
    NoDuration,
    NotAudio,
    ReferencesOtherFiles,
    StembotError,
    TooLarge,
    TooManyChannels,
    Unreadable,
    UnsafeUrl,
    UnsupportedSite,
    YoutubeFailed,
)
from shared.intake import file_chunks, submit_upload, submit_youtube
from shared.links import sign_path
from shared.redis_server import PrivateRedis
from shared.schemas import JobResult, JobState, StemFile
from tests.support import bad_files as bad
from tests.support.audio import make_audio
from tests.support.hostile_files import HOSTILE, Canary, canary, write_hostile
from tests.support.redirecting_youtube import InternalService, RedirectingYouTube
from tests.support.service import Service, running_service
from tests.support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_MB = 1
MAX_S = 20
NOT_AUDIO = ("not_audio", NotAudio().user_message)
UNREADABLE = ("unreadable", Unreadable().user_message)
ARCHIVE = ("archive", Archive().user_message)
REFERENCES = ("references_other_files", ReferencesOtherFiles().user_message)
NO_SOUND = ("zero_length", NoDuration().user_message)
DONE = ("done", None)


def too_many(n: int) -> tuple[str, str]:
    return ("too_many_channels", TooManyChannels(n, 8).user_message)


@dataclass(frozen=True)
class Outcome:
    code: str
    message: str | None
    result: JobResult | None = None


@dataclass(frozen=True)
class Songs:
    """Good files the damaged ones are made from (never sent as they are)."""

    folder: Path
    mp3: Path
    ogg: Path
    flac: Path


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad-input")


@pytest.fixture(scope="module")
def songs(root: Path) -> Songs:
    folder = root / "files"
    folder.mkdir()
    return Songs(
        folder,
        make_audio(folder / "good.mp3", seconds=6.0),
        make_audio(folder / "good.ogg", seconds=6.0, extra=["-c:a", "libvorbis"]),
        make_audio(folder / "good.flac", seconds=3.0),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def svc(redis_server: PrivateRedis, model_repo: Path, root: Path) -> AsyncIterator[Service]:
    storage = root / "storage"
    storage.mkdir()
    async with running_service(
        redis_server.url,
        storage,
        model_repo,
        max_upload_mb=MAX_MB,
        max_duration_s=MAX_S,
        download_socket_timeout_s=2,
        download_retry_backoff_s=0.2,
        cleanup_interval_s=3600,
    ) as service:
        await service.redis.flushall()
        yield service


async def final(svc: Service, stream: str) -> Outcome:
    event = (await svc.events_until_final(stream))[-1]
    if event.state == JobState.DONE:
        return Outcome("done", None, event.result)
    return Outcome(event.error_code or event.state.value, event.error_message)


async def upload(svc: Service, path: Path, filename: str | None = None) -> Outcome:
    stream = f"test:events:{uuid.uuid4().hex}"
    try:
        await submit_upload(
            redis=svc.redis,
            storage=svc.storage,
            settings=svc.settings,
            chunks=file_chunks(path),
            filename=filename or path.name,
            frontend="test",
            user_id="test:corpus",
            reply_to=stream,
            options=svc.options(),
        )
    except StembotError as exc:
        return Outcome(exc.code, exc.user_message)
    return await final(svc, stream)


async def assert_clean(svc: Service) -> None:
    """Nothing temporary kept, nothing waiting in a queue, no run left unfinished."""
    assert svc.tmp_leftovers() == []
    assert svc.uploads() == []
    queues = (svc.settings.redis.queue_name, svc.settings.redis.download_queue_name)

    async def drained() -> bool:
        return all([await jobs.waiting_arq_ids(svc.redis, queue) == [] for queue in queues])

    # arq takes a finished run off its queue just after the run published its final event
    await until(drained, timeout_s=10, what="the queues to drain")
    async for key in svc.redis.scan_iter(match="stembot:job:*"):
        assert not key.endswith(b":requests"), f"requests still waiting: {key!r}"
        assert await svc.redis.hget(key, "state") in (b"done", b"failed", b"cancelled")


# --- uploads -----------------------------------------------------------------------------

Build = Callable[[Songs], Path]
UPLOADS: list[tuple[str, Build, tuple[str, str | None]]] = [
    ("text-named-mp3", lambda s: bad.text(s.folder), NOT_AUDIO),
    ("png-named-mp3", lambda s: bad.png(s.folder), NOT_AUDIO),
    ("pdf-named-wav", lambda s: bad.pdf(s.folder), NOT_AUDIO),
    ("html-named-m4a", lambda s: bad.html(s.folder), NOT_AUDIO),
    ("executable-named-flac", lambda s: bad.elf(s.folder), NOT_AUDIO),
    ("random-bytes-named-ogg", lambda s: bad.random_bytes(s.folder), NOT_AUDIO),
    ("zip-holding-a-song", lambda s: bad.zip_archive(s.folder, s.mp3), ARCHIVE),
    ("tar-gz-holding-a-song", lambda s: bad.tar_gz_archive(s.folder, s.mp3), ARCHIVE),
    ("tar-holding-a-song", lambda s: bad.tar_archive(s.folder, s.mp3), ARCHIVE),
    ("video-without-audio", lambda s: bad.video_without_audio(s.folder), NOT_AUDIO),
    ("truncated-mp3", lambda s: bad.truncated(s.mp3, s.folder), UNREADABLE),
    ("truncated-ogg", lambda s: bad.truncated(s.ogg, s.folder), UNREADABLE),
    ("truncated-flac", lambda s: bad.truncated(s.flac, s.folder), UNREADABLE),
    ("mp3-garbage-inside", lambda s: bad.garbage(s.mp3, s.folder, 0.2, 0.95), UNREADABLE),
    ("ogg-garbage-inside", lambda s: bad.garbage(s.ogg, s.folder, 0.3, 0.6), UNREADABLE),
    ("flac-garbage-inside", lambda s: bad.garbage(s.flac, s.folder, 0.25, 0.75), UNREADABLE),
    ("flac-header-then-noise", lambda s: bad.garbage_after(s.flac, s.folder, 400), UNREADABLE),
    ("mp3-header-then-noise", lambda s: bad.garbage_after(s.mp3, s.folder, 400), UNREADABLE),
    ("mp3-garbled-header", lambda s: bad.garbage(s.mp3, s.folder, 0.0, 0.01, "-head"), DONE),
    ("zero-bytes", lambda s: bad.empty(s.folder), ("empty_file", EmptyFile().user_message)),
    ("wav-without-samples", lambda s: bad.wav_without_samples(s.folder), NO_SOUND),
    ("silent-wav", lambda s: bad.silent(s.folder, "wav"), NO_SOUND),
    ("silent-mp3", lambda s: bad.silent(s.folder, "mp3"), NO_SOUND),
    (
        "mp3-claims-1s-holds-30s",
        lambda s: bad.mp3_with_lying_length(s.folder, seconds=30, frames_claimed=40),
        ("too_long", "That track is 0:30 long; the limit is 0:20. Send a shorter cut of the song."),
    ),
    (
        "mp3-claims-1h-holds-3s",
        lambda s: bad.mp3_with_lying_length(s.folder, seconds=3, frames_claimed=140_000),
        DONE,
    ),
    ("wav-at-384khz", lambda s: bad.wav_with_rate(s.folder, 384_000, real=True), DONE),
    ("wav-header-says-1ghz", lambda s: bad.wav_with_rate(s.folder, 10**9, real=False), NO_SOUND),
    ("wav-16-channels", lambda s: bad.wav_with_channels(s.folder, 16), too_many(16)),
    ("wav-100-channels", lambda s: bad.wav_with_channels(s.folder, 100), too_many(100)),
    (
        "over-size",
        lambda s: make_audio(s.folder / "big.wav", seconds=8.0),
        ("too_large", TooLarge(MAX_MB * 1024 * 1024).user_message),
    ),
    (
        "over-length",
        lambda s: make_audio(s.folder / "long.mp3", seconds=25.0),
        ("too_long", "That track is 0:25 long; the limit is 0:20. Send a shorter cut of the song."),
    ),
]


@pytest.mark.parametrize(
    ("build", "expected"), [row[1:] for row in UPLOADS], ids=[row[0] for row in UPLOADS]
)
async def test_upload(
    svc: Service, songs: Songs, build: Build, expected: tuple[str, str | None]
) -> None:
    outcome = await upload(svc, build(songs))
    assert (outcome.code, outcome.message) == expected
    await assert_clean(svc)


@pytest_asyncio.fixture(loop_scope="module")
async def bait(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Canary]:
    """The canary song, outside the service's folders (which tests list)."""
    async with canary(tmp_path_factory.mktemp("canary")) as found:
        yield found


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_upload_naming_other_files(
    svc: Service, songs: Songs, bait: Canary, name: str
) -> None:
    """Playlists, concat scripts, manifests: refused unopened, canaries untouched."""
    outcome = await upload(svc, write_hostile(songs.folder / "hostile", name, bait))
    assert (outcome.code, outcome.message) == REFERENCES
    bait.assert_untouched()
    await assert_clean(svc)


#: (file name as the user's client sent it, title we show); each gets a song of its own length.
NAMES = [
    ("../../etc/passwd.mp3", "passwd"),
    ("C:\\Users\\me\\..\\..\\evil.wav", "evil"),
    # control and invisible formatting characters (NUL, a right-to-left override) dropped
    ("/tmp/../\u202eevil\x00名字 🎵.ogg", "evil名字 🎵"),
    ("a" * 3000 + ".mp3", "a" * 119 + "…"),
]


@pytest.mark.parametrize(
    ("index", "filename", "title"),
    [(i, *row) for i, row in enumerate(NAMES)],
    ids=["dot-dot", "windows-path", "unicode-nul-bidi", "3000-chars"],
)
async def test_odd_file_names_split_under_a_safe_title(
    svc: Service, songs: Songs, root: Path, index: int, filename: str, title: str
) -> None:
    song = make_audio(songs.folder / f"name{index}.wav", seconds=2.0 + index / 10)
    outcome = await upload(svc, song, filename)
    assert outcome.code == "done" and outcome.result is not None
    assert outcome.result.title == title
    zip_path = svc.storage.job_dir(outcome.result.key) / "stems.zip"
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
    assert len(names) == 4
    for name in names:
        assert not set(name) & set("/\\\x00:"), name
        assert len(name) <= 140
    # nothing was written next to the storage folder, whatever the name said
    assert sorted(p.name for p in root.iterdir()) == ["files", "storage"]
    await assert_clean(svc)


# --- download links ----------------------------------------------------------------------

INVALID, EXPIRED, NOT_FOUND = "This link is invalid.", "This link has expired.", "Not found."


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def finished(svc: Service, songs: Songs) -> JobResult:
    outcome = await upload(svc, make_audio(songs.folder / "linked.wav", seconds=1.5))
    assert outcome.result is not None
    return outcome.result


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def _with(url: str, **changes: str | None) -> str:
    """``url`` with query parameters replaced (None: removed)."""
    query = _query(url)
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return urlsplit(url)._replace(query=urlencode(query)).geturl()


def _flip_last(url: str) -> str:
    """The URL with the last hex digit of its signature changed."""
    return url[:-1] + ("1" if url.endswith("0") else "0")


def _resigned(svc: Service, url: str, exp: int) -> str:
    path = urlsplit(url).path
    return f"{url.split('?')[0]}?{sign_path(svc.storage.signing_key, path, exp)}"


def _zip(result: JobResult) -> StemFile:
    """A song's zip (every song has one; only a custom mix has none)."""
    assert result.zip is not None
    return result.zip


Mutate = Callable[[Service, JobResult], str]
LINKS: list[tuple[str, Mutate, int, str]] = [
    ("tampered-signature", lambda s, r: _flip_last(r.stems[0].url), 403, INVALID),
    ("expired", lambda s, r: _resigned(s, r.stems[0].url, 1_000_000_000), 403, EXPIRED),
    (
        "signature-of-another-stem",
        lambda s, r: r.stems[1].url.split("?")[0] + "?" + r.stems[0].url.split("?")[1],
        403,
        INVALID,
    ),
    ("no-signature", lambda s, r: _with(r.stems[0].url, sig=None), 403, INVALID),
    ("no-expiry", lambda s, r: _with(r.stems[0].url, exp=None), 403, INVALID),
    ("expiry-not-a-number", lambda s, r: _with(r.stems[0].url, exp="tomorrow"), 403, INVALID),
    ("expiry-negative", lambda s, r: _with(r.stems[0].url, exp="-1"), 403, INVALID),
    ("expiry-pushed-back", lambda s, r: _with(r.stems[0].url, exp="99999999999"), 403, INVALID),
    (
        "expiry-leading-zero",
        lambda s, r: _with(_zip(r).url, exp="0" + _query(_zip(r).url)["exp"]),
        403,
        INVALID,
    ),
    (
        "signature-upper-case",
        lambda s, r: _with(_zip(r).url, sig=_query(_zip(r).url)["sig"].upper()),
        403,
        INVALID,
    ),
    ("signature-cut-off", lambda s, r: _zip(r).url[:-20], 403, INVALID),
    (
        "path-traversal",
        lambda s, r: _zip(r).url.replace("/stems.zip?", "/..%2F..%2F.signing-key?"),
        403,
        INVALID,
    ),
    (
        "signed-but-gone",
        lambda s, r: s.storage.url_for("0" * 32, "stems.zip", 4_000_000_000),
        404,
        NOT_FOUND,
    ),
    ("page-tampered", lambda s, r: _flip_last(r.page_url or ""), 403, "This link does not work"),
    (
        "page-expired",
        lambda s, r: _resigned(s, r.page_url or "", 1_000_000_000),
        410,
        "This link has expired",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "status", "text"), [row[1:] for row in LINKS], ids=[row[0] for row in LINKS]
)
async def test_download_link(
    svc: Service, finished: JobResult, mutate: Mutate, status: int, text: str
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(_zip(finished).url) as good:
            assert good.status == 200 and len(await good.read()) == _zip(finished).size_bytes
        async with http.get(mutate(svc, finished)) as response:
            body = await response.text()
    assert response.status == status
    if response.content_type == "text/html":
        assert f"<h1>{text}</h1>" in body
    else:
        assert body == text
    await assert_clean(svc)


# --- YouTube links -----------------------------------------------------------------------

VID = "dQw4w9WgXcQ"
UNSAFE = ("unsafe_url", UnsafeUrl().user_message)
URLS: list[tuple[str, str, tuple[str, str]]] = [
    ("credentials", f"https://user:pass@www.youtube.com/watch?v={VID}", UNSAFE),
    ("at-sign-host", f"https://www.youtube.com@127.0.0.1/watch?v={VID}", UNSAFE),
    ("ipv4-literal", f"https://142.250.185.78/watch?v={VID}", UNSAFE),
    ("ipv6-loopback", f"https://[::1]/watch?v={VID}", UNSAFE),
    ("decimal-ip", f"http://2130706433/watch?v={VID}", UNSAFE),
    ("short-ip", f"http://127.1/watch?v={VID}", UNSAFE),
    ("localhost", f"http://localhost/watch?v={VID}", UNSAFE),
    ("youtube-dot-local", f"http://youtube.local/watch?v={VID}", UNSAFE),
    ("cloud-metadata-name", "http://metadata.google.internal/computeMetadata/v1/", UNSAFE),
    ("link-local-metadata", "http://169.254.169.254/latest/meta-data/", UNSAFE),
    ("odd-port", f"https://www.youtube.com:8443/watch?v={VID}", UNSAFE),
    ("file-scheme", "file:///etc/passwd", UNSAFE),
    ("javascript-scheme", "javascript:alert(1)", UNSAFE),
    (
        "look-alike-host",
        f"https://youtube.com.evil.example/watch?v={VID}",
        ("unsupported_site", UnsupportedSite().user_message),
    ),
]


async def send_link(svc: Service, url: str) -> Outcome:
    stream = f"test:events:{uuid.uuid4().hex}"
    try:
        await submit_youtube(
            redis=svc.redis,
            settings=svc.settings,
            url=url,
            frontend="test",
            user_id="test:corpus",
            reply_to=stream,
            options=svc.options(),
        )
    except StembotError as exc:
        return Outcome(exc.code, exc.user_message)
    return await final(svc, stream)


@pytest.mark.parametrize(("url", "expected"), [r[1:] for r in URLS], ids=[r[0] for r in URLS])
async def test_link_refused_before_queueing(
    svc: Service, url: str, expected: tuple[str, str]
) -> None:
    outcome = await send_link(svc, url)
    assert (outcome.code, outcome.message) == expected
    await assert_clean(svc)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def youtube(svc: Service) -> AsyncIterator[tuple[RedirectingYouTube, InternalService]]:
    with pytest.MonkeyPatch.context() as patch:
        async with (
            RedirectingYouTube().running(patch) as fake,
            InternalService().running() as inner,
        ):
            yield fake, inner


REFUSED = ("youtube_failed", YoutubeFailed().user_message)
REDIRECTS: list[tuple[str, str, Callable[[int], str], tuple[str, str | None]]] = [
    ("to-loopback", "redirLoop01", lambda port: f"http://127.0.0.1:{port}/admin", REFUSED),
    ("to-localhost", "redirLocal1", lambda port: f"http://localhost:{port}/admin", REFUSED),
    ("to-ipv6-loopback", "redirIPv6_1", lambda port: f"http://[::1]:{port}/admin", REFUSED),
    ("to-metadata", "redirMeta01", lambda port: "http://169.254.169.254/latest/", REFUSED),
    ("to-private-net", "redirPriv01", lambda port: "http://10.0.0.1/videoplayback", REFUSED),
    ("to-file-url", "redirFile01", lambda port: "file:///etc/passwd", REFUSED),
    ("same-server", "redirSame01", lambda port: "/videoplayback/moved-redirSame01", DONE),
]


@pytest.mark.parametrize(
    ("video_id", "target", "expected"), [r[1:] for r in REDIRECTS], ids=[r[0] for r in REDIRECTS]
)
async def test_media_redirect(
    svc: Service,
    songs: Songs,
    youtube: tuple[RedirectingYouTube, InternalService],
    video_id: str,
    target: Callable[[int], str],
    expected: tuple[str, str | None],
) -> None:
    fake, internal = youtube
    audio = make_audio(songs.folder / f"{video_id}.m4a", seconds=1.0).read_bytes()
    fake.add_video(video_id, audio)
    fake.serve(f"moved-{video_id}", audio)
    fake.redirects[video_id] = target(internal.port)
    outcome = await send_link(svc, f"https://youtu.be/{video_id}")
    assert (outcome.code, outcome.message) == expected
    assert internal.requests == []
    await assert_clean(svc)


# --- and after all that ------------------------------------------------------------------


async def test_the_corpus_is_big_enough() -> None:
    assert len(UPLOADS) + len(NAMES) + len(LINKS) + len(URLS) + len(REDIRECTS) >= 30
    assert len(HOSTILE) >= 15


async def test_the_service_still_splits_a_good_song(svc: Service, songs: Songs) -> None:
    outcome = await upload(svc, make_audio(songs.folder / "after.mp3", seconds=2.5))
    assert outcome.code == "done" and outcome.result is not None
    assert [s.name for s in outcome.result.stems] == ["drums", "bass", "other", "vocals"]
    await assert_clean(svc)
