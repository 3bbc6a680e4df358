"""Signed links: one path, one expiry, checked in constant time, never a crash on bad input."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.links import LinkCheck, page_url, sign_path, verify, with_lang

KEY = b"k" * 32
PATH = "/files/job/vocals.mp3"


def parts(query: str) -> tuple[str, str]:
    q = parse_qs(query)
    return q["exp"][0], q["sig"][0]


def test_query_string_format() -> None:
    query = sign_path(KEY, PATH, 2_000)
    assert re.fullmatch(r"exp=2000&sig=[0-9a-f]{64}", query)
    assert sign_path(KEY, PATH, 2_000) == query  # deterministic
    with pytest.raises(ValueError):
        sign_path(KEY, PATH, -1)


def test_good_link_verifies_until_its_expiry() -> None:
    exp, sig = parts(sign_path(KEY, PATH, 2_000))
    assert verify(KEY, PATH, exp, sig, now=1_000) is LinkCheck.OK
    assert verify(KEY, PATH, exp, sig, now=2_000) is LinkCheck.OK
    assert verify(KEY, PATH, exp, sig, now=2_000.5) is LinkCheck.EXPIRED
    assert verify(KEY, PATH, exp, sig) is LinkCheck.EXPIRED  # real clock: 1970 is long gone


def test_tampering_is_invalid() -> None:
    exp, sig = parts(sign_path(KEY, PATH, 2_000))
    assert verify(KEY, "/files/job/drums.mp3", exp, sig, now=0) is LinkCheck.INVALID
    assert verify(KEY, "/files/other/vocals.mp3", exp, sig, now=0) is LinkCheck.INVALID
    assert verify(KEY, "/files/job/vocals.mp3x", exp, sig, now=0) is LinkCheck.INVALID
    assert verify(KEY, PATH, "3000", sig, now=0) is LinkCheck.INVALID
    flipped = sig[:-1] + ("1" if sig[-1] == "0" else "0")
    assert verify(KEY, PATH, exp, flipped, now=0) is LinkCheck.INVALID
    assert verify(b"other-key" * 4, PATH, exp, sig, now=0) is LinkCheck.INVALID


def test_tampered_and_expired_is_invalid_not_expired() -> None:
    exp, sig = parts(sign_path(KEY, PATH, 2_000))
    assert verify(KEY, "/files/job/drums.mp3", exp, sig, now=5_000) is LinkCheck.INVALID


@pytest.mark.parametrize(
    ("exp", "sig"),
    [
        (None, "SIG"),
        ("2000", None),
        ("", ""),
        ("2000", ""),
        ("-5", "SIG"),
        ("+2000", "SIG"),
        ("02000", "SIG"),  # not the canonical spelling that was signed
        (" 2000", "SIG"),
        ("2000\n", "SIG"),
        ("1e9", "SIG"),
        ("²", "SIG"),  # str.isdigit() says yes, int() says no
        ("٢٠٠٠", "SIG"),  # Arabic-Indic digits
        ("9" * 20, "SIG"),
        ("2000", "é" * 64),  # hmac.compare_digest refuses non-ASCII str
        ("2000", "UPPER"),
        ("2000", "SHORT"),
        ("2000", "SIG0"),
        ("2000", "zz" * 32),
    ],
)
def test_missing_or_malformed_parameters(exp: str | None, sig: str | None) -> None:
    good_exp, good_sig = parts(sign_path(KEY, PATH, 2_000))
    if sig is not None:
        tweaks = {"UPPER": good_sig.upper(), "SHORT": good_sig[:-1]}
        sig = tweaks.get(sig, sig.replace("SIG", good_sig))
    assert verify(KEY, PATH, exp, sig, now=0) is LinkCheck.INVALID
    assert verify(KEY, PATH, good_exp, good_sig, now=0) is LinkCheck.OK


def test_the_page_language_is_outside_the_signature() -> None:
    """A page link names its language in ``lang``, which is not signed: setting, changing or
    dropping it leaves ``exp`` and ``sig`` exactly as they were, and the link valid."""
    plain = page_url("https://s.example", KEY, "job", 2_000)
    assert plain == f"https://s.example/r/job?{sign_path(KEY, '/r/job', 2_000)}"
    german = page_url("https://s.example", KEY, "job", 2_000, "de")
    assert german == plain + "&lang=de"
    assert with_lang(german, "pt_BR") == plain + "&lang=pt-BR"
    assert with_lang(german, "es-MX") == plain + "&lang=es"
    assert with_lang(german, None) == plain
    assert with_lang(with_lang(plain, "ru"), "ru") == plain + "&lang=ru"  # never twice
    relative = "/r/job?" + sign_path(KEY, "/r/job", 2_000)
    assert with_lang(relative, "fr") == relative + "&lang=fr"
    for url in (german, with_lang(german, "ru"), with_lang(german, "xx")):
        query = parse_qs(urlsplit(url).query)
        assert verify(KEY, "/r/job", query["exp"][0], query["sig"][0], now=0) is LinkCheck.OK
    # the parameter is no way into another job's page or a longer life
    exp, sig = parts(sign_path(KEY, "/r/job", 2_000))
    assert verify(KEY, "/r/other", exp, sig, now=0) is LinkCheck.INVALID
    assert verify(KEY, "/r/job", "3000", sig, now=0) is LinkCheck.INVALID
