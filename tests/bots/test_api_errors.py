"""A job's recorded end is rendered in the reader's language from its code and values, and
falls back to the stored English text where they do not render (records written before)."""

from __future__ import annotations

import pytest

from bots.api_errors import (
    EXPIRED_TEXT,
    FAILED_TEXT,
    expired_error,
    final_record,
    recorded_error,
    run_error,
)
from shared.errors import Cancelled, InternalError, TooLong
from shared.i18n import ENGLISH, LANGUAGES, texts


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_recorded_failure_in_each_language(lang: str) -> None:
    t = texts(lang)
    error = TooLong(700.0, 600)
    record = final_record("failed", error.code, error.params, error.user_message)
    assert recorded_error(t, record) == {"code": "too_long", "message": error.message(t)}
    assert error.message(t) == t._(TooLong.text, duration="11:40", limit="10:00")
    cancelled = final_record("cancelled", "cancelled", {}, Cancelled().user_message)
    assert recorded_error(t, cancelled)["message"] == Cancelled().message(t)
    if lang != "en":  # fails until the catalogue translates it
        assert error.message(t) != error.user_message


def test_an_internal_failure_keeps_its_reference() -> None:
    error = InternalError("ab12cd34")
    record = final_record("failed", error.code, error.params, error.user_message)
    assert recorded_error(ENGLISH, record)["message"] == error.user_message
    assert "ab12cd34" in recorded_error(texts("de"), record)["message"]


def test_what_does_not_render_falls_back() -> None:
    t = texts("fr")
    # a record from before the values were kept: its English text
    old = {"final_state": "failed", "error_code": "too_long", "error_message": "Too long (9:00)."}
    assert recorded_error(t, old) == {"code": "too_long", "message": "Too long (9:00)."}
    broken = old | {"error_params": "not json"}
    assert recorded_error(t, broken)["message"] == "Too long (9:00)."
    # a code nobody knows, no text: the general failure, in the language
    bare = {"final_state": "failed", "error_code": "", "error_message": ""}
    assert recorded_error(t, bare) == {"code": "failed", "message": t._(FAILED_TEXT)}
    assert run_error(t, "failed", None) == {"code": "failed", "message": t._(FAILED_TEXT)}
    assert run_error(t, "cancelled", "") == {
        "code": "cancelled",
        "message": Cancelled().message(t),
    }
    assert expired_error(t) == {"code": "expired", "message": t._(EXPIRED_TEXT)}
