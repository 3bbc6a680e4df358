"""Log lines: JSON for collectors, with the job fields at the top level."""

from __future__ import annotations

import json
import logging

import pytest

from shared.logs import JsonFormatter, setup_logging


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord(
        {
            "name": "worker.pipeline",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": msg,
            "args": args,
        }
    )
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_json_line_has_message_level_and_job_fields() -> None:
    line = JsonFormatter().format(
        record("job %s: %s", "abc", "separating", job_id="abc", state="separating")
    )
    entry = json.loads(line)
    assert entry["message"] == "job abc: separating"
    assert (entry["level"], entry["logger"]) == ("info", "worker.pipeline")
    assert (entry["job_id"], entry["state"]) == ("abc", "separating")
    assert entry["ts"].endswith("Z")
    assert "\n" not in line


def test_exception_is_one_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record("failed")
        rec.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(rec))
    assert "ValueError: boom" in entry["exception"]


def test_setup_switches_formats(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        setup_logging("INFO", json_lines=True)
        logging.getLogger("x").info("hello", extra={"job_id": "j1"})
        entry = json.loads(capsys.readouterr().err.strip())
        assert (entry["message"], entry["job_id"]) == ("hello", "j1")
        setup_logging("WARNING", json_lines=False)
        logging.getLogger("x").info("hidden")
        logging.getLogger("x").warning("shown")
        err = capsys.readouterr().err
        assert "hidden" not in err
        assert "WARNING x: shown" in err
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
