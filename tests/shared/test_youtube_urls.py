"""YouTube links: every accepted form gives the same video id; every rejection says why."""

from __future__ import annotations

import pytest

from shared.errors import (
    NotAUrl,
    NotAVideoLink,
    PlaylistLink,
    StembotError,
    UnsafeUrl,
    UnsupportedSite,
)
from shared.youtube import canonical_url, find_url, find_youtube_url, parse_youtube_url

VID = "dQw4w9WgXcQ"
EDGY = "a-_Z09zz-_9"  # "-" and "_" are id characters too, also at the end


@pytest.mark.parametrize(
    "link",
    [
        f"https://www.youtube.com/watch?v={VID}",
        f"http://www.youtube.com/watch?v={VID}",
        f"https://youtube.com/watch?v={VID}",
        f"https://m.youtube.com/watch?v={VID}",
        f"https://music.youtube.com/watch?v={VID}",
        f"https://music.youtube.com/watch?v={VID}&list=RDAMVM{VID}",
        f"https://www.youtube.com/watch?v={VID}&t=42s",
        f"https://www.youtube.com/watch?v={VID}&si=AbCdEf123",
        f"https://www.youtube.com/watch?v={VID}&list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs&index=3",
        f"https://www.youtube.com/watch?feature=share&v={VID}",
        f"https://www.youtube.com/watch?app=desktop&v={VID}#t=30",
        f"https://www.youtube.com/watch/?v={VID}",
        f"https://youtu.be/{VID}",
        f"https://youtu.be/{VID}?si=xyz&t=10",
        f"https://youtu.be/{VID}?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs",
        f"https://youtu.be/{VID}/",
        f"https://www.youtube.com/shorts/{VID}",
        f"https://youtube.com/shorts/{VID}?feature=share",
        f"https://www.youtube.com/shorts/{VID}/",
        f"https://www.youtube.com/live/{VID}?si=abc",
        f"https://www.youtube.com/embed/{VID}",
        f"https://www.youtube.com/embed/{VID}?start=30&rel=0",
        f"https://www.youtube-nocookie.com/embed/{VID}",
        f"https://youtube-nocookie.com/embed/{VID}?autoplay=1",
        f"https://www.youtube.com/v/{VID}",
        # no scheme, odd case, default port, trailing dot, whitespace around
        f"youtu.be/{VID}",
        f"www.youtube.com/watch?v={VID}",
        f"youtube.com/watch?v={VID}",
        f"m.youtube.com/watch?v={VID}",
        f"//www.youtube.com/watch?v={VID}",
        f"HTTPS://WWW.YOUTUBE.COM/watch?v={VID}",
        f"https://WWW.YouTube.com/Shorts/{VID}",
        f"https://www.youtube.com:443/watch?v={VID}",
        f"http://www.youtube.com:80/watch?v={VID}",
        f"https://www.youtube.com./watch?v={VID}",
        f"  https://youtu.be/{VID}\n",
    ],
)
def test_every_form_of_a_video_link_gives_its_id(link: str) -> None:
    assert parse_youtube_url(link) == VID


def test_ids_keep_their_case_and_dashes() -> None:
    assert parse_youtube_url(f"https://youtu.be/{EDGY}") == EDGY
    assert parse_youtube_url(f"https://www.youtube.com/watch?v={EDGY}&t=1") == EDGY


def test_canonical_url_is_the_only_url_we_build() -> None:
    assert canonical_url(VID) == f"https://www.youtube.com/watch?v={VID}"
    with pytest.raises(NotAVideoLink):
        canonical_url("../../etc/x")
    with pytest.raises(NotAVideoLink):
        canonical_url(VID + "&list=x")


NOT_A_URL = NotAUrl().user_message
UNSUPPORTED = UnsupportedSite().user_message
UNSAFE = UnsafeUrl().user_message
PLAYLIST = PlaylistLink().user_message
NOT_A_VIDEO = NotAVideoLink().user_message


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        # not a link at all
        ("", NotAUrl, NOT_A_URL),
        ("   ", NotAUrl, NOT_A_URL),
        ("hello", NotAUrl, NOT_A_URL),
        ("please split this song", NotAUrl, NOT_A_URL),
        (VID, NotAUrl, NOT_A_URL),
        (f"https://youtu.be/{VID} and more words", NotAUrl, NOT_A_URL),
        (f"https://youtu.be/\t{VID}", NotAUrl, NOT_A_URL),
        ("https://", NotAUrl, NOT_A_URL),
        # other sites, look-alikes
        ("https://vimeo.com/12345", UnsupportedSite, UNSUPPORTED),
        ("https://soundcloud.com/artist/song", UnsupportedSite, UNSUPPORTED),
        (f"https://youtube.com.evil.com/watch?v={VID}", UnsupportedSite, UNSUPPORTED),
        (f"https://evil.com/youtube.com/watch?v={VID}", UnsupportedSite, UNSUPPORTED),
        (f"evil.com/youtube.com/watch?v={VID}", UnsupportedSite, UNSUPPORTED),
        (f"https://notyoutube.com/watch?v={VID}", UnsupportedSite, UNSUPPORTED),
        (f"https://youtube.co/watch?v={VID}", UnsupportedSite, UNSUPPORTED),
        (f"https://gaming.youtube.com/watch?v={VID}", UnsupportedSite, UNSUPPORTED),
        (f"https://%79outube.com/watch?v={VID}", UnsupportedSite, UNSUPPORTED),
        (f"https://уoutube.com/watch?v={VID}", UnsupportedSite, UNSUPPORTED),  # Cyrillic у
        # local / internal / tricky
        ("http://127.0.0.1/", UnsafeUrl, UNSAFE),
        ("http://127.0.0.1:8080/watch?v=" + VID, UnsafeUrl, UNSAFE),
        ("127.0.0.1/watch?v=" + VID, UnsafeUrl, UNSAFE),
        ("http://10.0.0.5/", UnsafeUrl, UNSAFE),
        ("http://169.254.169.254/latest/meta-data/", UnsafeUrl, UNSAFE),
        ("http://[::1]/", UnsafeUrl, UNSAFE),
        ("http://[::ffff:127.0.0.1]/", UnsafeUrl, UNSAFE),
        ("[::1]/watch", UnsafeUrl, UNSAFE),
        ("http://2130706433/", UnsafeUrl, UNSAFE),
        ("http://0x7f000001/", UnsafeUrl, UNSAFE),
        ("http://127.1/", UnsafeUrl, UNSAFE),
        ("http://localhost/", UnsafeUrl, UNSAFE),
        ("localhost:6379", UnsafeUrl, UNSAFE),
        ("http://redis:6379/", UnsafeUrl, UNSAFE),
        ("http://redis/", UnsafeUrl, UNSAFE),
        ("http://LOCALHOST./", UnsafeUrl, UNSAFE),
        (f"https://youtu.be/{VID}%00", NotAVideoLink, NOT_A_VIDEO),
        (f"https://youtu.be/{VID}\x00", UnsafeUrl, UNSAFE),
        ("http://metadata.google.internal/", UnsafeUrl, UNSAFE),
        ("http://printer.local/", UnsafeUrl, UNSAFE),
        (f"http://user:pass@youtube.com/watch?v={VID}", UnsafeUrl, UNSAFE),
        (f"https://youtube.com@evil.com/watch?v={VID}", UnsafeUrl, UNSAFE),
        (f"https://www.youtube.com:8443/watch?v={VID}", UnsafeUrl, UNSAFE),
        (f"https://www.youtube.com:80/watch?v={VID}", UnsafeUrl, UNSAFE),
        (f"https://www.youtube.com:abc/watch?v={VID}", UnsafeUrl, UNSAFE),
        ("file:///etc/passwd", UnsafeUrl, UNSAFE),
        ("file:/etc/passwd", UnsafeUrl, UNSAFE),
        ("javascript:alert(1)", UnsafeUrl, UNSAFE),
        ("javascript://youtube.com/%0aalert(1)", UnsafeUrl, UNSAFE),
        ("data:text/html,<b>x</b>", UnsafeUrl, UNSAFE),
        (f"ftp://youtube.com/watch?v={VID}", UnsafeUrl, UNSAFE),
        (f"gopher://youtube.com/watch?v={VID}", UnsafeUrl, UNSAFE),
        (f"https://youtube.com\\@evil.com/watch?v={VID}", UnsafeUrl, UNSAFE),
        # playlists, channels, albums
        (
            "https://www.youtube.com/playlist?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs",
            PlaylistLink,
            PLAYLIST,
        ),
        ("https://music.youtube.com/playlist?list=OLAK5uy_abc", PlaylistLink, PLAYLIST),
        (
            "https://www.youtube.com/watch?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs",
            PlaylistLink,
            PLAYLIST,
        ),
        ("https://www.youtube.com/embed/videoseries?list=PL590L5WQmH8fJ", PlaylistLink, PLAYLIST),
        ("https://www.youtube.com/channel/UCuAXFkgsw1L7xaCfnd5JJOw", PlaylistLink, PLAYLIST),
        ("https://www.youtube.com/@RickAstleyYT", PlaylistLink, PLAYLIST),
        ("https://www.youtube.com/@RickAstleyYT/videos", PlaylistLink, PLAYLIST),
        ("youtube.com/@handle", PlaylistLink, PLAYLIST),
        ("https://www.youtube.com/c/SomeChannel", PlaylistLink, PLAYLIST),
        ("https://www.youtube.com/user/RickAstleyVEVO", PlaylistLink, PLAYLIST),
        ("https://music.youtube.com/browse/MPREb_abc", PlaylistLink, PLAYLIST),
        # YouTube, but not a video (or a broken id)
        ("https://www.youtube.com/", NotAVideoLink, NOT_A_VIDEO),
        ("https://youtu.be/", NotAVideoLink, NOT_A_VIDEO),
        ("https://www.youtube.com/watch", NotAVideoLink, NOT_A_VIDEO),
        ("https://www.youtube.com/watch?v=", NotAVideoLink, NOT_A_VIDEO),
        ("https://www.youtube.com/watch?v=dQw4w9", NotAVideoLink, NOT_A_VIDEO),
        (f"https://www.youtube.com/watch?v={VID}x", NotAVideoLink, NOT_A_VIDEO),
        ("https://www.youtube.com/watch?v=dQw4w9WgX%2F", NotAVideoLink, NOT_A_VIDEO),
        ("https://youtu.be/dQw4w9WgX!Q", NotAVideoLink, NOT_A_VIDEO),
        (f"https://youtu.be/{VID}/extra", NotAVideoLink, NOT_A_VIDEO),
        ("https://www.youtube.com/results?search_query=rick", NotAVideoLink, NOT_A_VIDEO),
        ("https://www.youtube.com/feed/trending", NotAVideoLink, NOT_A_VIDEO),
        (
            "https://www.youtube.com/clip/UgkxU2HSeGL_NvmDJ-nQJrlLwllwMDBdGZFs",
            NotAVideoLink,
            NOT_A_VIDEO,
        ),
        (f"https://www.youtube-nocookie.com/watch?v={VID}", NotAVideoLink, NOT_A_VIDEO),
        (f"https://www.youtube.com/shorts/{VID}/more", NotAVideoLink, NOT_A_VIDEO),
    ],
)
def test_rejections_say_why(text: str, error: type[StembotError], message: str) -> None:
    with pytest.raises(error) as caught:
        parse_youtube_url(text)
    assert type(caught.value) is error
    assert caught.value.user_message == message


def test_rejection_messages_are_distinct_and_say_what_to_do() -> None:
    messages = [NOT_A_URL, UNSUPPORTED, UNSAFE, PLAYLIST, NOT_A_VIDEO]
    assert len(set(messages)) == len(messages)
    assert NOT_A_URL == (
        "That doesn't look like a link. Send a YouTube video link "
        "(youtube.com/watch?v=... or youtu.be/...) or an audio file."
    )
    assert PLAYLIST == (
        "That's a link to a playlist or a channel, not to one video. Open the song "
        "you want and send me the link of that one video."
    )


@pytest.mark.parametrize(
    ("message", "found"),
    [
        (f"split this https://youtu.be/{VID}?si=abc please", f"https://youtu.be/{VID}?si=abc"),
        (f"split this: youtu.be/{VID}.", f"youtu.be/{VID}"),
        (f"(see https://www.youtube.com/watch?v={VID})", f"https://www.youtube.com/watch?v={VID}"),
        (f"[song](https://youtu.be/{VID})", f"https://youtu.be/{VID}"),
        (f"<https://youtu.be/{VID}>", f"https://youtu.be/{VID}"),
        (f"first https://youtu.be/{VID}, then https://youtu.be/{EDGY}", f"https://youtu.be/{VID}"),
        (f"id ending in underscore youtu.be/{EDGY}!", f"youtu.be/{EDGY}"),
        (f"/stem www.youtube.com/shorts/{VID}", f"www.youtube.com/shorts/{VID}"),
        (f"HTTPS://MUSIC.YOUTUBE.COM/watch?v={VID}", f"HTTPS://MUSIC.YOUTUBE.COM/watch?v={VID}"),
        ("just words", None),
        (f"https://evil.com/youtube.com/watch?v={VID}", None),
        (f"https://youtube.com.evil.com/watch?v={VID}", None),
        (f"http://user:pass@youtube.com/watch?v={VID}", None),
        (f"notyoutube.com/watch?v={VID}", None),
        (f"ftp://youtube.com/watch?v={VID}", None),
    ],
)
def test_find_youtube_url_in_a_message(message: str, found: str | None) -> None:
    assert find_youtube_url(message) == found
    if found is not None:
        assert parse_youtube_url(found) in (VID, EDGY)


@pytest.mark.parametrize(
    ("message", "found", "error"),
    [
        ("look https://vimeo.com/123.", "https://vimeo.com/123", UnsupportedSite),
        (f"http://user:pass@youtube.com/watch?v={VID}", None, UnsafeUrl),
        ("try www.example.org/song", "www.example.org/song", UnsupportedSite),
        ("file:///etc/passwd", "file:///etc/passwd", UnsafeUrl),
        ("no links here", None, None),
    ],
)
def test_find_url_lets_a_frontend_say_why_a_link_is_refused(
    message: str, found: str | None, error: type[StembotError] | None
) -> None:
    url = find_url(message)
    if found is not None:
        assert url == found
    if error is None:
        assert url is None
    else:
        assert url is not None
        with pytest.raises(error):
            parse_youtube_url(url)
