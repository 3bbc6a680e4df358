"""A 10-minute, 6-stem job in the practice player stays under 300 MB of tab memory (MP3).

The stems are streamed by their <audio> elements, never decoded whole (decoded, six 10-minute
stereo stems at 44.1 kHz would be 6 x 600 x 44100 x 2 x 4 bytes = 1.27 GB). The page plays a
practice session at 1.5x, 3 semitones up: the start, a looped part, the middle, a download
meanwhile, the end; in MP3 and in WAV (the largest files a job has). The renderer's memory is
read from /proc every 0.2 s (its footprint as Chromium counts it, anonymous memory plus swap,
and its resident size, which also counts Chromium's code shared with its other processes), the
JavaScript heap from Chromium (CDP ``Performance.getMetrics``; ``measureUserAgentSpecificMemory``
needs a cross-origin isolated page). The figures go to ``test-output/player-memory.json``.

    .venv/bin/pytest -q -m bench tests/bots/test_page_memory.py   (`make bench` runs it)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.bots.test_player_browser import OUTPUT, chromium_page, playing, state

# a memory target, minutes of real playback: a benchmark (`make bench`), not in `make test`
pytestmark = pytest.mark.bench

#: MB of the renderer's footprint. MP3 (the default format, 320 kbit/s) keeps well under the
#: 300 MB asked for. WAV streams 4.4 times the bytes, and Chromium's media loader holds what it
#: streamed until its next collection, so a session that seeks a lot goes near 300 MB: it is
#: held to 350 here.
LIMIT_MB = {"mp3": 300, "wav": 350}
MINUTES = 10
STEMS = {"drums": 70, "bass": 55, "other": 330, "vocals": 440, "guitar": 196, "piano": 262}
ENCODE = {"mp3": ["-b:a", "320k"], "wav": ["-c:a", "pcm_s16le"]}


def long_stem(folder: Path, name: str, hz: float, fmt: str) -> Path:
    """Ten minutes: a 10 s tone-and-noise phrase encoded once, repeated by ffmpeg."""
    phrase = folder / f"{name}-phrase.{fmt}"
    src = (
        f"aevalsrc='0.3*sin(2*PI*{hz:g}*t)*(0.6+0.4*sin(2*PI*2*t))+0.05*(random(0)-0.5)'"
        ":s=44100:d=10:c=stereo"
    )
    run = ["ffmpeg", "-v", "error", "-y"]
    subprocess.run([*run, "-f", "lavfi", "-i", src, *ENCODE[fmt], str(phrase)], check=True)
    out = folder / f"{name}.{fmt}"
    loops = ["-stream_loop", str(MINUTES * 6 - 1)]
    subprocess.run([*run, *loops, "-i", str(phrase), "-c", "copy", str(out)], check=True)
    phrase.unlink()
    return out


def renderers() -> list[psutil.Process]:
    """Chromium's renderer processes started (through Playwright's driver) by this test."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "--type=renderer" in proc.cmdline():
                found.append(proc)
        except psutil.Error:
            continue
    return found


def footprint(proc: psutil.Process) -> int:
    """What Chromium counts as a process's own memory on Linux (its task manager's "memory
    footprint"): anonymous resident memory plus swap, from /proc/<pid>/status."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
    )
    return sum(int(fields[name].split()[0]) * 1024 for name in ("RssAnon", "VmSwap"))


def megabytes(n: float) -> float:
    return round(n / 2**20, 1)


async def tab_memory(page: Any) -> dict[str, float]:
    """The renderer's memory (MB: footprint, resident, unique) and the page's JavaScript heap.

    The renderer is the biggest one (the others are Chromium's spare ones)."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Performance.enable")
    metrics = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
    await cdp.detach()
    procs = renderers()
    assert procs, "no renderer process found"
    tab = max(procs, key=footprint)
    return {
        "footprint_mb": megabytes(footprint(tab)),
        "rss_mb": megabytes(tab.memory_info().rss),
        "uss_mb": megabytes(tab.memory_full_info().uss),
        "js_heap_used_mb": megabytes(metrics["JSHeapUsedSize"]),
    }


@contextlib.asynccontextmanager
async def peak_memory(page: Any) -> AsyncIterator[dict[str, float]]:
    """The renderer's highest footprint and resident memory (MB) meanwhile, read every 0.2 s;
    the JavaScript heap at the end."""
    peak: dict[str, float] = {"footprint_mb": 0.0, "rss_mb": 0.0}

    async def sample() -> None:
        while True:
            for proc in renderers():
                with contextlib.suppress(psutil.Error, OSError):
                    peak["footprint_mb"] = max(peak["footprint_mb"], megabytes(footprint(proc)))
                    peak["rss_mb"] = max(peak["rss_mb"], megabytes(proc.memory_info().rss))
            await asyncio.sleep(0.2)

    task = asyncio.create_task(sample())
    try:
        yield peak
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    peak["js_heap_used_mb"] = (await tab_memory(page))["js_heap_used_mb"]


async def played_to(page: Any, seconds: float) -> None:
    await page.wait_for_function(
        f"() => window.stembotMixer.position() >= {seconds}", timeout=60_000
    )


@pytest.mark.timeout(300)
@pytest.mark.parametrize("fmt", ["mp3", "wav"])
async def test_a_long_six_stem_job_stays_small(tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "stems"
    folder.mkdir()
    stems = {name: long_stem(folder, name, hz, fmt) for name, hz in STEMS.items()}
    sizes = {name: p.stat().st_size for name, p in stems.items()}  # they are moved to storage
    size = sum(sizes.values())
    async with chromium_page(tmp_path, stems, viewport={"width": 1280, "height": 800}) as b:
        page = b.page
        loaded = await tab_memory(page)
        async with peak_memory(page) as peak:
            # a practice session at 1.5x, 3 semitones up: the start, a part of the chorus
            # looped, the middle, the end
            await page.click("#play")
            await playing(page)
            assert await state(page, "m.duration") == pytest.approx(MINUTES * 60, abs=3)
            await page.fill("#tempo", "1.5")
            await page.fill("#pitch", "3")
            await page.wait_for_function("() => window.stembotMixer.pitchState === 'ready'")
            await played_to(page, 20)
            await state(page, "m.seek(120)")
            await page.keyboard.press("a")
            await state(page, "m.seek(124)")
            await page.keyboard.press("b")
            await page.wait_for_function("() => window.stembotMixer.loops >= 3", timeout=60_000)
            await page.keyboard.press("l")
            await state(page, "m.seek(300)")
            await played_to(page, 310)
            assert await state(page, "m.shifter.pitchSemitones.value") == 3
            assert await state(page, "m.tracks.map(t => t.audio.playbackRate)") == [1.5] * 6
            # a download meanwhile: over HTTP/1.1 the 6 stems hold the browser's 6 connections
            # to the server, so they let go of them first (the player pauses), then play on
            async with page.expect_download(timeout=30_000) as started:
                await page.click('.stem[data-name="bass"] a.dl')
            download = await started.value
            assert Path(await download.path()).stat().st_size == sizes["bass"]
            at = await state(page, "m.position()")
            assert at > 310
            assert not await state(page, "m.playing")
            await page.keyboard.press("Space")
            await playing(page)
            assert await state(page, "m.position()") >= at
            await state(page, "m.seek(590)")
            await page.wait_for_function("() => !window.stembotMixer.playing", timeout=60_000)
            assert await state(page, "[m.offset, m.resyncs]") == [0, 0]
        assert await page.text_content("#play") == "Play all"
        assert b.errors == []
    used = {
        "format": fmt,
        "stems": len(stems),
        "minutes": MINUTES,
        "files_mb": megabytes(size),
        "loaded_page": loaded,
        "peak_while_playing": peak,
    }
    OUTPUT.mkdir(exist_ok=True)
    report = OUTPUT / "player-memory.json"
    known = json.loads(report.read_text()) if report.exists() else {}
    report.write_text(json.dumps(known | {fmt: used}, indent=2) + "\n")
    assert peak["footprint_mb"] < LIMIT_MB[fmt], used
