"""YouTube downloads against a fake YouTube (tests/support/fake_youtube.py): our options,
yt-dlp's real YouTube extractor code, format selection and HTTP downloader all run."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yt_dlp

from shared.errors import (
    AgeRestricted,
    BotCheck,
    Cancelled,
    DownloadFailed,
    LiveStream,
    PrivateVideo,
    RegionBlocked,
    StembotError,
    TooLarge,
    TooLong,
    UnsupportedSite,
    VideoUnavailable,
    YoutubeFailed,
)
from shared.youtube import parse_youtube_url
from tests.support import fake_youtube as yt_pages
from tests.support.audio import make_audio
from tests.support.fake_youtube import FakeYouTube
from worker import youtube
from worker.youtube import VideoInfo, download_audio, map_error, probe_video, ydl_options

VID = "dQw4w9WgXcQ"
MB = 1024 * 1024
#: Fast retries: the counts are real, the waits are not.
NET: dict[str, Any] = {"retries": 2, "retry_sleep_s": 0.001, "timeout_s": 5}

MESSAGES: dict[type[StembotError], str] = {
    PrivateVideo: "That video is private or only for some viewers (channel members, Premium), "
    "so I can't get it. Ask for a public link, or send the audio file instead.",
    VideoUnavailable: "That video isn't available on YouTube: it was removed, or the link is "
    "wrong. Check the link, or send the audio file instead.",
    AgeRestricted: "That video is age-restricted: YouTube only plays it for signed-in adults, "
    "so I can't get it. Please send the audio file instead.",
    RegionBlocked: "That video is blocked in the country this server is in, so I can't get "
    "it. Please send the audio file instead.",
    BotCheck: "YouTube is blocking this server right now (it asks to prove we're not a bot), "
    "so I can't get videos from it. Please send the audio file instead, or try the link later.",
    LiveStream: "That's a live stream or a premiere that hasn't finished yet, so its length "
    "isn't known. Send the link again once the full video is up.",
    DownloadFailed: "I couldn't download that video from YouTube (network trouble or YouTube "
    "is slowing us down). Please try again in a few minutes, or send the audio file instead.",
}


@pytest.fixture(scope="module")
def m4a(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_audio(tmp_path_factory.mktemp("media") / "a.m4a", seconds=3).read_bytes()


@pytest.fixture(scope="module")
def webm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("media") / "a.webm"
    return make_audio(path, seconds=3, rate=48000, extra=["-c:a", "libopus"]).read_bytes()


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeYouTube]:
    async with FakeYouTube().running(monkeypatch) as server:
        yield server


async def probe(video_id: str = VID, **kwargs: Any) -> VideoInfo:
    kwargs = {"max_duration_s": 600, "max_bytes": 50 * MB, **NET, **kwargs}
    return await asyncio.to_thread(probe_video, video_id, **kwargs)


async def download(video: str | VideoInfo, dest: Path, **kwargs: Any) -> Path:
    kwargs = {"max_bytes": 50 * MB, "max_duration_s": 600, **NET, **kwargs}
    return await asyncio.to_thread(download_audio, video, dest, **kwargs)


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


# --- the happy path ----------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["m4a", "webm"])
async def test_probe_then_download_gets_the_served_audio(
    fake: FakeYouTube, tmp_path: Path, m4a: bytes, webm: bytes, ext: str
) -> None:
    data = m4a if ext == "m4a" else webm
    acodec = "mp4a.40.2" if ext == "m4a" else "opus"
    fake.add_video(
        VID, data, title="Never Gonna / Give: You Up", duration=212, ext=ext, acodec=acodec
    )

    info = await probe()
    assert info == VideoInfo(
        video_id=VID,
        title="Never Gonna / Give: You Up",
        duration_s=212.0,
        url=f"https://www.youtube.com/watch?v={VID}",
        size_bytes=len(data),
    )
    percents: list[float] = []
    path = await download(info, tmp_path / "job", on_progress=percents.append)

    assert path == tmp_path / "job" / f"youtube-{VID}.{ext}"
    assert path.read_bytes() == data
    assert leftovers(tmp_path / "job") == [path.name]  # no .part, no .ytdl
    assert percents == sorted(percents) and len(percents) >= 2
    assert percents[-1] == 100.0 and percents[0] < 100.0
    # the best audio format only: the worse audio (249) and the muxed video (18) are 404s
    assert fake.media[VID].requests == [None]
    # the probed formats were reused: one player API call for probe + download
    assert fake.api_calls == [VID]


async def test_download_by_id_extracts_and_checks_itself(
    fake: FakeYouTube, tmp_path: Path, m4a: bytes
) -> None:
    fake.add_video(VID, m4a)
    path = await download(VID, tmp_path)
    assert path.read_bytes() == m4a
    assert fake.api_calls == [VID]


async def test_chunked_download_like_youtube_formats(
    fake: FakeYouTube, tmp_path: Path, m4a: bytes
) -> None:
    """YouTube's formats ask yt-dlp for Range chunks (http_chunk_size); they add up."""
    fake.add_video(VID, m4a, chunk_size=16 * 1024)
    percents: list[float] = []
    path = await download(VID, tmp_path, on_progress=percents.append)
    assert path.read_bytes() == m4a
    ranges = fake.media[VID].requests
    # yt-dlp picks each chunk between 95% and 100% of http_chunk_size
    assert len(ranges) >= len(m4a) // (16 * 1024)
    assert ranges[0] is not None and ranges[0].startswith("bytes=0-")
    assert all(r and r.startswith("bytes=") for r in ranges)
    assert percents[-1] == 100.0 and percents == sorted(percents)


# --- refused from the metadata, before any media request ---------------------------------


@pytest.mark.parametrize(
    ("playability", "error"),
    [
        (yt_pages.PRIVATE, PrivateVideo),
        (yt_pages.MEMBERS_ONLY, PrivateVideo),
        (yt_pages.REMOVED, VideoUnavailable),
        (yt_pages.UNAVAILABLE, VideoUnavailable),
        (yt_pages.AGE_RESTRICTED, AgeRestricted),
        (yt_pages.REGION_BLOCKED, RegionBlocked),
        (yt_pages.BOT_CHECK, BotCheck),
        (yt_pages.UPCOMING, LiveStream),
        (yt_pages.PREMIERE, LiveStream),
    ],
)
async def test_unplayable_videos_fail_at_once_with_their_message(
    fake: FakeYouTube, tmp_path: Path, playability: dict[str, Any], error: type[StembotError]
) -> None:
    fake.add_unplayable(VID, playability)
    with pytest.raises(error) as caught:
        await probe()
    assert type(caught.value) is error
    assert caught.value.user_message == MESSAGES[error]
    assert not caught.value.transient
    with pytest.raises(error):
        await download(VID, tmp_path / "job")
    assert leftovers(tmp_path / "job") == []
    assert fake.api_calls == [VID, VID]  # no retry of a permanent answer


async def test_unknown_video_is_unavailable(fake: FakeYouTube) -> None:
    with pytest.raises(VideoUnavailable) as caught:
        await probe("aaaaaaaaaaa")
    assert caught.value.user_message == MESSAGES[VideoUnavailable]


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"live_status": "is_live", "duration": None}, "live_status=is_live"),
        ({"live_status": "is_upcoming", "duration": None}, "live_status=is_upcoming"),
        ({"live_status": "post_live", "duration": 3600}, "live_status=post_live"),
        ({"live_status": "not_live", "duration": None}, "no duration"),
        ({"live_status": None, "duration": 0}, "no duration"),
    ],
)
async def test_live_upcoming_and_unknown_length_are_refused(
    fake: FakeYouTube, tmp_path: Path, m4a: bytes, fields: dict[str, Any], detail: str
) -> None:
    fake.add_video(VID, m4a, **fields)
    with pytest.raises(LiveStream) as caught:
        await probe()
    assert caught.value.user_message == MESSAGES[LiveStream]
    assert detail in str(caught.value)
    with pytest.raises(LiveStream):
        await download(VID, tmp_path)
    assert fake.media[VID].requests == []


async def test_finished_stream_is_a_video(fake: FakeYouTube, m4a: bytes) -> None:
    fake.add_video(VID, m4a, live_status="was_live", duration=120)
    assert (await probe()).duration_s == 120


async def test_too_long_is_refused_before_download(
    fake: FakeYouTube, tmp_path: Path, m4a: bytes
) -> None:
    fake.add_video(VID, m4a, duration=601)
    with pytest.raises(TooLong) as caught:
        await probe(max_duration_s=600)
    assert caught.value.user_message == (
        "That track is 10:01 long; the limit is 10:00. Send a shorter cut of the song."
    )
    with pytest.raises(TooLong):
        await download(VID, tmp_path, max_duration_s=600)
    assert fake.media[VID].requests == []
    assert (await probe(max_duration_s=601)).duration_s == 601


async def test_advertised_size_over_the_cap_is_refused_at_probe(
    fake: FakeYouTube, m4a: bytes
) -> None:
    fake.add_video(VID, m4a, filesize=3 * MB)
    with pytest.raises(TooLarge) as caught:
        await probe(max_bytes=2 * MB)
    assert caught.value.user_message == (
        "That file is too large (3 MB). The limit is 2 MB: send a shorter or more compressed file."
    )
    assert fake.media[VID].requests == []


# --- the size cap while downloading ------------------------------------------------------


@pytest.mark.parametrize(
    ("advertised", "mode", "chunk"),
    [
        (1000, "ok", None),  # YouTube's size lies; Content-Length tells the truth
        (None, "ok", None),  # no advertised size; Content-Length
        (None, "no_length", None),  # no size anywhere: counted as bytes arrive
        (None, "ok", 8 * 1024),  # Range chunks: each small, the sum too large
    ],
)
async def test_size_cap_holds_while_downloading(
    fake: FakeYouTube,
    tmp_path: Path,
    m4a: bytes,
    advertised: int | None,
    mode: str,
    chunk: int | None,
) -> None:
    cap = 20_000
    assert len(m4a) > 2 * cap
    fake.add_video(VID, m4a, filesize=advertised, chunk_size=chunk)
    fake.media[VID].mode = mode  # type: ignore[assignment]
    info = await probe(max_bytes=cap)
    with pytest.raises(TooLarge) as caught:
        await download(info, tmp_path / "job", max_bytes=cap)
    assert caught.value.user_message.endswith(
        "The limit is 0.0190735 MB: send a shorter or more compressed file."
    )
    assert leftovers(tmp_path / "job") == []
    assert len(fake.media[VID].requests) <= 3  # refused, not retried


# --- transient failures: bounded retries, then DownloadFailed (arq retries the job) -------


async def test_server_error_is_retried_a_bounded_number_of_times(
    fake: FakeYouTube, tmp_path: Path, m4a: bytes
) -> None:
    fake.add_video(VID, m4a)
    fake.media[VID].mode = "status"
    fake.media[VID].status = 503
    with pytest.raises(DownloadFailed) as caught:
        await download(VID, tmp_path / "job", retries=2)
    assert caught.value.transient
    assert caught.value.user_message == MESSAGES[DownloadFailed]
    assert "HTTP Error 503" in str(caught.value)
    assert len(fake.media[VID].requests) == 3  # 1 + 2 retries
    assert leftovers(tmp_path / "job") == []


@pytest.mark.parametrize("status", [429, 503])
async def test_throttled_or_failing_youtube_api_is_transient(
    fake: FakeYouTube, m4a: bytes, status: int
) -> None:
    fake.add_video(VID, m4a)
    fake.api_status = status
    with pytest.raises(DownloadFailed) as caught:
        await probe()
    assert caught.value.transient
    assert f"HTTP Error {status}" in str(caught.value)


async def test_youtube_rate_limit_answer_is_transient(fake: FakeYouTube) -> None:
    fake.add_unplayable(VID, yt_pages.RATE_LIMITED)
    with pytest.raises(DownloadFailed) as caught:
        await probe()
    assert caught.value.transient


async def test_dropped_connections_fail_after_bounded_retries(
    fake: FakeYouTube, tmp_path: Path, m4a: bytes
) -> None:
    fake.add_video(VID, m4a)
    fake.media[VID].mode = "drop"
    with pytest.raises(DownloadFailed) as caught:
        await download(VID, tmp_path / "job", retries=2)
    assert caught.value.transient
    assert len(fake.media[VID].requests) == 3
    assert leftovers(tmp_path / "job") == []


async def test_a_dropped_connection_resumes(fake: FakeYouTube, tmp_path: Path, m4a: bytes) -> None:
    fake.add_video(VID, m4a)
    fake.media[VID].mode = "drop"
    fake.media[VID].drop_times = 1
    path = await download(VID, tmp_path)
    assert path.read_bytes() == m4a
    # yt-dlp retried once: resuming with a Range (urllib backend) or from the start (requests)
    assert len(fake.media[VID].requests) == 2
    assert fake.media[VID].requests[1] in (None, "bytes=1000-")


async def test_stalled_server_times_out(fake: FakeYouTube, tmp_path: Path, m4a: bytes) -> None:
    fake.add_video(VID, m4a)
    fake.media[VID].mode = "stall"
    with pytest.raises(DownloadFailed) as caught:
        await download(VID, tmp_path / "job", timeout_s=0.3, retries=1)
    assert caught.value.transient
    assert "timed out" in str(caught.value)
    assert leftovers(tmp_path / "job") == []


async def test_no_connection_is_left_open_after_failures(
    fake: FakeYouTube, tmp_path: Path, m4a: bytes
) -> None:
    """yt-dlp leaves responses open when a download stops early; our session closes them
    (a leak shows up here as a ResourceWarning, an error under our warning filter)."""
    fake.add_video(VID, m4a)
    media = fake.media[VID]
    failures = [
        ("status", MB, DownloadFailed),
        ("stall", MB, DownloadFailed),
        ("ok", 20_000, TooLarge),  # stopped by max_filesize (Content-Length)
        ("no_length", 20_000, TooLarge),  # stopped by our hook
    ]
    for mode, cap, error in failures:
        media.mode = mode  # type: ignore[assignment]
        with pytest.raises(error):
            await download(VID, tmp_path / mode, timeout_s=0.3, retries=1, max_bytes=cap)
    fake.api_status = 429
    with pytest.raises(DownloadFailed):
        await probe()
    gc.collect()


# --- cancellation ------------------------------------------------------------------------


async def test_should_stop_cancels_mid_download(
    fake: FakeYouTube, tmp_path: Path, m4a: bytes
) -> None:
    fake.add_video(VID, m4a)
    stop = threading.Event()
    percents: list[float] = []

    def on_progress(percent: float) -> None:
        percents.append(percent)
        stop.set()

    with pytest.raises(Cancelled):
        await download(VID, tmp_path / "job", on_progress=on_progress, should_stop=stop.is_set)
    assert len(percents) == 1 and percents[0] < 100
    assert leftovers(tmp_path / "job") == []


async def test_stopped_before_start_fetches_nothing(fake: FakeYouTube, tmp_path: Path) -> None:
    with pytest.raises(Cancelled):
        await download(VID, tmp_path, should_stop=lambda: True)
    assert fake.api_calls == []


# --- what yt-dlp may fetch ---------------------------------------------------------------


async def test_generic_extractor_is_never_used(fake: FakeYouTube, tmp_path: Path) -> None:
    page = fake.url("/some/page.html")
    # Our parsing refuses the link before yt-dlp sees anything ...
    with pytest.raises(UnsupportedSite):
        parse_youtube_url("https://example.com/page.html")
    # ... and even given straight to yt-dlp with our options, no extractor takes it.
    options = ydl_options(max_bytes=MB, dest_dir=tmp_path)
    for url in (page, "https://www.youtube.com/playlist?list=PL590L5WQmH8fJ54F369BLDSqIwcs"):
        with yt_dlp.YoutubeDL(options) as ydl:
            with pytest.raises(yt_dlp.utils.DownloadError, match="No suitable extractor"):
                await asyncio.to_thread(ydl.extract_info, url, download=False)
    assert fake.other_requests == []
    assert leftovers(tmp_path) == []


async def test_only_a_valid_video_id_reaches_yt_dlp(fake: FakeYouTube, tmp_path: Path) -> None:
    for bad in ("../../../etc", f"{VID}&list=PL1", "https://example.com/x"):
        with pytest.raises(StembotError):
            await probe(bad)
        with pytest.raises(StembotError):
            await download(bad, tmp_path)
    assert fake.api_calls == [] and fake.other_requests == []


def test_options_are_strict_and_bounded(tmp_path: Path) -> None:
    options = ydl_options(max_bytes=5 * MB, timeout_s=7, retries=4, dest_dir=tmp_path)
    assert options["allowed_extractors"] == ["youtube"]
    assert options["noplaylist"] is True
    assert options["format"] == "bestaudio/best"
    assert options["max_filesize"] == 5 * MB
    assert options["socket_timeout"] == 7
    assert {options[k] for k in ("retries", "fragment_retries", "extractor_retries")} == {4}
    sleep = options["retry_sleep_functions"]["http"]
    assert [sleep(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert options["cachedir"] is False and options["postprocessors"] == []
    assert options["paths"] == {"home": str(tmp_path), "temp": str(tmp_path)}
    assert "cookiefile" not in options and "proxy" not in options
    extra = ydl_options(max_bytes=1, cookies_file=tmp_path / "c.txt", proxy="socks5://p:1080")
    assert extra["cookiefile"] == str(tmp_path / "c.txt")
    assert extra["proxy"] == "socks5://p:1080"


async def test_cookies_file_is_used_but_never_rewritten(
    fake: FakeYouTube, tmp_path: Path, m4a: bytes
) -> None:
    fake.add_video(VID, m4a)
    cookies = tmp_path / "cookies.txt"
    text = "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t2000000000\tSID\tsecret\n"
    cookies.write_text(text)
    cookies.chmod(0o400)
    path = await download(VID, tmp_path / "job", cookies_file=cookies)
    assert path.read_bytes() == m4a
    assert cookies.read_text() == text


# --- error mapping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("ERROR: [youtube] x: Sign in to confirm you're not a bot. Use --cookies", BotCheck),
        ("ERROR: [youtube] x: Sign in to confirm you’re not a bot", BotCheck),
        (
            "ERROR: [youtube] x: This video is age-restricted and YouTube is requiring",
            AgeRestricted,
        ),
        ("ERROR: [youtube] x: This video is not available in your country", RegionBlocked),
        ("ERROR: [youtube] x: Video unavailable. This video is private", PrivateVideo),
        ("ERROR: [youtube] x: This video is only available to Music Premium members", PrivateVideo),
        (
            "ERROR: [youtube] x: Video unavailable. This video has been removed for violating",
            VideoUnavailable,
        ),
        ("ERROR: [youtube] x: This video is DRM protected", VideoUnavailable),
        ("ERROR: [youtube] x: Premieres in 3 hours", LiveStream),
        (
            "ERROR: \r[download] Got error: HTTP Error 502: Bad Gateway. Giving up after 3 retries",
            DownloadFailed,
        ),
        ("ERROR: unable to download video data: HTTP Error 403: Forbidden", DownloadFailed),
        (
            "ERROR: [youtube] x: Unable to download API page: <urlopen error timed out>",
            DownloadFailed,
        ),
        (
            "ERROR: [youtube] x: Unable to download webpage: HTTP Error 404: Not Found",
            YoutubeFailed,
        ),
        ("ERROR: [youtube] x: Requested format is not available", YoutubeFailed),
        ("ERROR: [youtube] x: n challenge solving failed", YoutubeFailed),
    ],
)
def test_yt_dlp_messages_map_to_domain_errors(message: str, error: type[StembotError]) -> None:
    mapped = map_error(yt_dlp.utils.DownloadError(message))
    assert type(mapped) is error
    assert mapped.transient is (error is DownloadFailed)
    assert message[:100] in str(mapped)


def test_our_own_errors_pass_through_the_mapping() -> None:
    stop = Cancelled()
    assert map_error(stop) is stop
    wrapped = yt_dlp.utils.DownloadError("ERROR: x", exc_info=(Cancelled, stop, None))
    assert map_error(wrapped) is stop


def test_check_info_alone() -> None:
    youtube.check_info({"duration": 10, "live_status": "was_live"}, 10)
    youtube.check_info({"duration": 10_000, "live_status": "not_live"}, None)
    with pytest.raises(TooLong):
        youtube.check_info({"duration": 11}, 10)
    with pytest.raises(LiveStream):
        youtube.check_info({"duration": "12"}, 10)
