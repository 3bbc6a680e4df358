"""The practice player in a real headless Chromium, on the real web server: tempo keeps the
pitch, pitch keeps the tempo (measured on the mix's output), the A-B loop, mute and solo, the
keys, the stems on one clock, and the page at phone width.

Stems are tones synthesised with ffmpeg and published as a job (no worker needed: the page
only reads what storage holds). Needs Debian's ``chromium`` and Playwright, like
test_page_browser. Leaves ``test-output/player-desktop.png`` and ``player-phone.png``.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bots.web import create_app
from shared.config import Settings
from shared.i18n import LANGUAGES
from shared.links import sign_path, with_lang
from shared.storage import build_storage
from tests.bots.test_page_browser import ROOT, find_chromium
from tests.support.web import serving
from worker import peaks as peaks_mod

OUTPUT = ROOT / "test-output"
#: Each stem a tone of its own (Hz); the vocals' 440 Hz is what the pitch tests measure.
TONES = {"drums": 220.0, "bass": 110.0, "other": 660.0, "vocals": 440.0}
SEMITONE = 2 ** (1 / 12)


def tone(path: Path, hz: float, seconds: float) -> Path:
    """A stereo mp3 of a sine at ``hz``, made by ffmpeg."""
    src = f"sine=frequency={hz:g}:sample_rate=44100:duration={seconds:g}"
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src, "-ac", "2", "-b:a", "128k"]
    subprocess.run([*cmd, str(path)], check=True)
    return path


@dataclass
class Browser:
    """A Chromium page on a published job, recording errors and requests elsewhere."""

    page: Any
    url: str
    errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    media: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def published(tmp_path: Path, stems: dict[str, Path]) -> AsyncIterator[tuple[str, str]]:
    """The real web server with ``stems`` published as job ``song``: (base URL, page URL)."""
    settings = Settings(
        storage_dir=tmp_path / "storage", public_url="http://127.0.0.1", signing_key="player-k"
    )
    storage = build_storage(settings)
    expires = time.time() + 3600
    peaks = {p.name: await peaks_mod.compute_peaks(p) for p in stems.values()}
    await storage.publish_job(
        "song", list(stems.items()), title="Practice", expires_at=expires, peaks=peaks
    )
    app = create_app(settings, storage, run_cleanup=False)
    async with serving(app) as base:
        yield base, f"{base}/r/song?{sign_path(storage.signing_key, '/r/song', int(expires))}"


@contextlib.asynccontextmanager
async def chromium_page(
    tmp_path: Path, stems: dict[str, Path], init_script: str = "", **context: Any
) -> AsyncIterator[Browser]:
    """Chromium on the page of ``stems`` (``init_script`` run before the page's own);
    skips without chromium or Playwright."""
    executable = find_chromium()
    if executable is None:
        pytest.skip("chromium is not installed: apt-get install chromium")
    api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
    async with published(tmp_path, stems) as (base, url), api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
        )
        try:
            page = await (await browser.new_context(**context)).new_page()
            seen = Browser(page, url)
            page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
            page.on(
                "console", lambda msg: seen.errors.append(msg.text) if msg.type == "error" else None
            )

            def request(req: Any) -> None:
                if not req.url.startswith(base):
                    seen.external.append(req.url)
                elif "/files/" in req.url:
                    seen.media.append(req.url)

            page.on("request", request)
            if init_script:
                await page.add_init_script(init_script)
            await page.goto(url, timeout=20_000)
            await page.wait_for_function("() => window.stembotMixer.peaksReady", timeout=20_000)
            yield seen
        finally:
            await browser.close()


@pytest.fixture
def tones(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "tones"
    folder.mkdir()
    return {name: tone(folder / f"{name}.mp3", hz, 12.0) for name, hz in TONES.items()}


async def state(page: Any, expression: str) -> Any:
    return await page.evaluate(f"() => {{ const m = window.stembotMixer; return {expression}; }}")


async def playing(page: Any) -> None:
    await page.wait_for_function(
        "() => { const m = window.stembotMixer; return m.playing && !m.starting"
        " && m.ctx.state === 'running' && m.tracks.every(t => !t.audio.paused); }",
        timeout=30_000,
    )


#: The strongest frequency of the mix's output over 0.74 s (the analyser's window), and how
#: fast the clock ran meanwhile against the wall clock.
MEASURE = """async () => {
    const m = window.stembotMixer, an = m.ctx.createAnalyser();
    an.fftSize = 32768;
    an.smoothingTimeConstant = 0;
    m.out.connect(an);
    const p0 = m.position(), t0 = performance.now();
    await new Promise(done => setTimeout(done, 1000));
    const rate = (m.position() - p0) / ((performance.now() - t0) / 1000);
    const d = new Float32Array(an.frequencyBinCount);
    an.getFloatFrequencyData(d);
    m.out.disconnect(an);
    let best = 1;
    for (let i = 2; i < d.length - 1; i++) if (d[i] > d[best]) best = i;
    const [a, b, c] = [d[best - 1], d[best], d[best + 1]];
    const bin = best + 0.5 * (a - c) / (a - 2 * b + c);
    return [bin * m.ctx.sampleRate / an.fftSize, rate];
}"""


async def measure(page: Any) -> tuple[float, float]:
    """(Hz of the loudest tone in the output, seconds of song per second)."""
    hz, rate = await page.evaluate(MEASURE)
    return float(hz), float(rate)


async def test_tempo_pitch_loop_and_mixing(tmp_path: Path, tones: dict[str, Path]) -> None:
    OUTPUT.mkdir(exist_ok=True)
    async with chromium_page(tmp_path, tones, viewport={"width": 1280, "height": 800}) as b:
        page = b.page
        # nothing streams before Play; then every stem plays from its own <audio> element
        assert b.media == []
        assert await state(page, "m.tracks.map(t => t.audio.preload)") == ["none"] * 4
        await page.click("#play")
        await playing(page)
        assert await state(page, "m.tracks.map(t => t.name)") == list(TONES)
        assert await state(page, "m.tracks.map(t => t.audio.preload)") == ["auto"] * 4
        assert await state(page, "m.tracks.map(t => t.gain.gain.value)") == [1, 1, 1, 1]
        assert await state(page, "m.tracks.every(t => !('buffer' in t))")

        # mute and solo: the vocals alone, so the output is their 440 Hz
        await page.click('.stem[data-name="drums"] .mute')
        assert await state(page, "m.tracks.map(t => t.gain.gain.value)") == [0, 1, 1, 1]
        assert await page.get_attribute('.stem[data-name="drums"] .mute', "aria-pressed") == "true"
        await page.click('.stem[data-name="vocals"] .solo')
        assert await state(page, "m.tracks.map(t => t.gain.gain.value)") == [0, 0, 0, 1]
        await page.fill('.stem[data-name="vocals"] .vol', "0.5")
        assert await state(page, "m.tracks.map(t => t.gain.gain.value)") == [0, 0, 0, 0.5]
        await page.fill('.stem[data-name="vocals"] .vol', "1")
        hz, rate = await measure(page)
        assert hz == pytest.approx(440, abs=3)
        assert rate == pytest.approx(1, abs=0.12)

        # tempo 0.75: the browser's playbackRate, the pitch kept
        for _ in range(5):
            await page.click("#tempo-down")
        assert await state(page, "m.tempo") == 0.75
        assert await page.text_content("#tempo-value") == "75%"
        rates = await state(
            page, "m.tracks.map(t => [t.audio.playbackRate, t.audio.preservesPitch])"
        )
        assert rates == [[0.75, True]] * 4
        hz, rate = await measure(page)
        assert hz == pytest.approx(440, abs=3)
        assert rate == pytest.approx(0.75, abs=0.12)

        # pitch +2 semitones: SoundTouch's worklet on the mix, the tempo kept
        await page.click("#pitch-up")
        await page.click("#pitch-up")
        await page.wait_for_function("() => window.stembotMixer.pitchState === 'ready'")
        assert await state(page, "[m.pitch, m.shifter.pitchSemitones.value, m.routed]") == [
            2,
            2,
            True,
        ]
        assert await page.text_content("#pitch-value") == "+2"
        hz, rate = await measure(page)
        assert hz == pytest.approx(440 * SEMITONE**2, abs=3)
        assert rate == pytest.approx(0.75, abs=0.12)

        # the A-B loop: from 3 s to 4 s, back to A each time the clock reaches B
        await state(page, "m.seek(3)")
        await page.wait_for_function("() => !window.stembotMixer.starting")
        await page.click("#loop-a")
        await state(page, "m.seek(4)")
        await page.wait_for_function("() => !window.stembotMixer.starting")
        await page.click("#loop-b")
        a, b_ = await state(page, "[m.loop.a, m.loop.b]")
        assert a == pytest.approx(3, abs=0.2)
        assert b_ == pytest.approx(4, abs=0.2)
        assert await page.text_content("#loop-value") == "0:03 – 0:04"
        await page.wait_for_function("() => window.stembotMixer.loops >= 2", timeout=20_000)
        await page.wait_for_function("() => !window.stembotMixer.starting")
        assert a - 0.05 <= await state(page, "m.position()") < b_ + 0.1
        await page.screenshot(path=str(OUTPUT / "player-desktop.png"), full_page=True)
        await page.click("#loop-clear")
        assert await state(page, "[m.loop.a, m.loop.b, m.loopOn()]") == [None, None, False]

        # back to the original tempo and key from their values
        await page.click("#tempo-value")
        await page.click("#pitch-value")
        assert await state(page, "[m.tempo, m.pitch, m.routed]") == [1, 0, False]
        assert await state(page, "m.tracks.map(t => t.audio.playbackRate)") == [1] * 4
        assert b.errors == []
        assert b.external == []
    assert (OUTPUT / "player-desktop.png").stat().st_size > 10_000


async def press(page: Any, key: str) -> None:
    await page.keyboard.press(key)


async def test_keys(tmp_path: Path, tones: dict[str, Path]) -> None:
    async with chromium_page(tmp_path, tones, viewport={"width": 1280, "height": 800}) as b:
        page = b.page
        await press(page, "Space")
        await playing(page)
        # Space on a focused button plays/pauses, and does not press the button
        await page.focus('.stem[data-name="bass"] .mute')
        await press(page, "Space")
        await page.wait_for_function("() => !window.stembotMixer.playing")
        assert await page.get_attribute('.stem[data-name="bass"] .mute', "aria-pressed") == "false"
        assert await page.text_content("#play") == "Play all"
        await page.focus("body")
        at = await state(page, "m.position()")
        await press(page, "ArrowRight")
        assert await state(page, "m.position()") == pytest.approx(at + 5, abs=0.01)
        await press(page, "ArrowLeft")
        await press(page, "ArrowLeft")
        assert await state(page, "m.position()") == pytest.approx(max(0, at - 5), abs=0.01)

        tempi = []
        for key in ("]", "]", "[", "-", "-", "+", "="):
            await press(page, key)
            tempi.append(await state(page, "m.tempo"))
        assert tempi == [1.05, 1.1, 1.05, 1, 0.95, 1, 1.05]
        pitches = []
        for key in ("Shift+ArrowUp", "Shift+ArrowRight", "Shift+ArrowDown", "Shift+ArrowLeft"):
            await press(page, key)
            pitches.append(await state(page, "m.pitch"))
        assert pitches == [1, 2, 1, 0]
        for _ in range(8):
            await press(page, "Shift+ArrowUp")
        assert await state(page, "m.pitch") == 6  # the range's end

        await state(page, "m.seek(2)")
        await press(page, "a")
        await state(page, "m.seek(5)")
        await press(page, "B")
        assert await state(page, "[m.loop.a, m.loop.b, m.loopOn()]") == [2, 5, True]
        await press(page, "l")
        assert await state(page, "[m.loop.a, m.loop.b]") == [None, None]
        # B before A: the loop still runs from the earlier to the later
        await state(page, "m.seek(2)")
        await press(page, "b")
        await state(page, "m.seek(4)")
        await press(page, "a")
        assert await state(page, "[m.loop.a, m.loop.b]") == [2, 4]

        # the keys are told on the page
        keys = await page.text_content(".keys")
        assert keys is not None and "Space" in keys and "Shift" in keys
        assert await page.is_visible(".keys")
        assert b.errors == []


async def test_stems_stay_on_one_clock(tmp_path: Path, tones: dict[str, Path]) -> None:
    async with chromium_page(tmp_path, tones, viewport={"width": 1280, "height": 800}) as b:
        page = b.page
        await page.click("#play")
        await playing(page)
        # one stem jumps 0.4 s ahead (a seek: it waits for data), one runs fast: each time
        # all of them are brought back within 50 ms of the first stem's clock
        cases = (
            ("stalls", "m.tracks[2].audio.currentTime += 0.4"),
            ("resyncs", "m.tracks[1].audio.playbackRate = 1.25"),
        )
        for counter, push in cases:
            before = await state(page, f"m.{counter}")
            await state(page, f"({push})")
            await page.wait_for_function(
                f"""() => {{ const m = window.stembotMixer;
                    if (m.{counter} <= {before} || m.starting) return false;
                    const now = m.tracks[0].audio.currentTime;
                    return m.tracks.every(t => !t.audio.paused && t.audio.playbackRate === 1
                        && Math.abs(t.audio.currentTime - now) <= 0.05); }}""",
                timeout=20_000,
            )
        assert b.errors == []


async def test_without_audio_worklets_the_rest_works(
    tmp_path: Path, tones: dict[str, Path]
) -> None:
    """A page served over plain HTTP from another machine gets no AudioWorklet: no pitch,
    said so, and tempo, loop and mixing as usual."""
    no_worklets = "delete BaseAudioContext.prototype.audioWorklet;"
    desktop: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
    async with chromium_page(tmp_path, tones, init_script=no_worklets, **desktop) as b:
        page = b.page
        await page.click("#play")
        await playing(page)
        assert await state(page, "[m.pitchState, m.shifter, m.routed]") == [
            "unavailable",
            None,
            False,
        ]
        assert await page.text_content("#pitch-note") == (
            "This browser cannot change the pitch here; tempo and loop still work."
        )
        assert await page.is_disabled("#pitch-up")
        assert await page.is_disabled("#pitch")
        await page.click("#tempo-up")
        assert await state(page, "m.tracks.map(t => t.audio.playbackRate)") == [1.05] * 4
        await page.click('.stem[data-name="vocals"] .solo')
        assert await state(page, "m.tracks.map(t => t.gain.gain.value)") == [0, 0, 0, 1]
        hz, _ = await measure(page)
        assert hz == pytest.approx(440, abs=3)
        assert b.errors == []


async def test_phone_layout(tmp_path: Path, tones: dict[str, Path]) -> None:
    OUTPUT.mkdir(exist_ok=True)
    phone: dict[str, Any] = {
        "viewport": {"width": 375, "height": 800},
        "is_mobile": True,
        "has_touch": True,
    }
    async with chromium_page(tmp_path, tones, device_scale_factor=2, **phone) as b:
        page = b.page
        await page.tap("#play")
        await playing(page)
        await page.tap("#tempo-down")
        await page.tap("#pitch-up")
        await state(page, "m.seek(2)")
        await page.tap("#loop-a")
        await state(page, "m.seek(6)")
        await page.tap("#loop-b")
        await page.tap('.stem[data-name="drums"] .mute')
        await fits_a_phone(page)
        assert not await page.is_visible(".keys")  # no keyboard on a phone
        await state(page, "m.pause()")
        await page.evaluate("() => window.scrollTo(0, 0)")
        # the phone's screen (a full-page shot would drop the touch emulation)
        await page.screenshot(path=str(OUTPUT / "player-phone.png"))
        # and in every language (longer words, other number formats)
        for lang in LANGUAGES[1:]:
            await page.goto(with_lang(b.url, lang), timeout=20_000)
            await page.wait_for_function("() => window.stembotMixer.peaksReady")
            await fits_a_phone(page)
            # the tempo as the language writes a percentage ("100 %" in German...)
            assert await page.text_content("#tempo-value") == await page.evaluate(
                "() => new Intl.NumberFormat(document.documentElement.lang,"
                " {style: 'percent'}).format(1)"
            )
        assert b.errors == []
    assert (OUTPUT / "player-phone.png").stat().st_size > 10_000


async def fits_a_phone(page: Any) -> None:
    """Nothing wider than the screen, and every control big enough for a finger."""
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375
    small = await page.evaluate(
        """() => [...document.querySelectorAll('#app button, #app input, #app a')]
            .filter(el => el.getClientRects().length)
            .map(el => [el.id || el.className || el.textContent, el.getBoundingClientRect()])
            .filter(([, r]) => r.width < 40 || r.height < 40)
            .map(([name, r]) => [name, Math.round(r.width), Math.round(r.height)])"""
    )
    assert small == []
