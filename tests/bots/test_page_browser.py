"""The results page in a real headless Chromium: waveforms drawn, the mixer plays, mute works,
and the page and page.js speak each of our languages (the practice player's own features:
test_player_browser).

Needs Debian's ``chromium`` (driven by Playwright's async API with its executable, so no
browser download). Leaves a screenshot at ``test-output/results-page.png``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from shared.i18n import ENGLISH, LANGUAGES, texts
from shared.links import with_lang
from shared.redis_server import PrivateRedis
from tests.bots.test_page import finished_page

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "test-output" / "results-page.png"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


async def test_results_page_in_chromium(
    redis_server: PrivateRedis, storage_dir: Path, model_repo: Path, tmp_path: Path
) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed: apt-get install chromium")
    playwright_api = pytest.importorskip(
        "playwright.async_api", reason="playwright is not installed: pip install playwright"
    )
    async with finished_page(redis_server, storage_dir, model_repo, tmp_path) as page_site:
        names = [s.name for s in page_site.result.stems]
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=chromium,
                headless=True,
                args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
            )
            try:
                context = await browser.new_context(
                    viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
                )
                page = await context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on(
                    "console",
                    lambda msg: errors.append(msg.text) if msg.type == "error" else None,
                )
                external: list[str] = []
                page.on(
                    "request",
                    lambda req: (
                        None if req.url.startswith(page_site.base) else external.append(req.url)
                    ),
                )
                await page.goto(page_site.url, timeout=20_000)
                await page.wait_for_function(
                    "() => window.stembotMixer && window.stembotMixer.peaksReady", timeout=20_000
                )

                # a player and a drawn waveform for every stem
                for name in names:
                    row = f'.stem[data-name="{name}"]'
                    assert await page.locator(f"{row} audio[controls]").count() == 1
                    assert await page.locator(f"{row} canvas").count() == 1
                    assert await page.locator(f"{row} a[download]").count() == 1
                drawn = await page.evaluate(
                    """() => [...document.querySelectorAll('.stem canvas')].map(c => {
                        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                        let n = 0;
                        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                        return n;
                    })"""
                )
                assert len(drawn) == len(names)
                assert all(n > 100 for n in drawn), drawn

                # the mixer: every stem streamed by its <audio> element into one AudioContext
                await page.click("#play")
                await page.wait_for_function(
                    "() => window.stembotMixer.playing && !window.stembotMixer.starting"
                    " && window.stembotMixer.ctx.state === 'running'",
                    timeout=30_000,
                )
                t0 = await page.evaluate("() => window.stembotMixer.ctx.currentTime")
                await page.wait_for_timeout(400)
                t1 = await page.evaluate("() => window.stembotMixer.ctx.currentTime")
                assert t1 > t0
                loaded = await page.evaluate(
                    "() => window.stembotMixer.tracks"
                    ".map(t => [t.name, !!t.source, t.audio.paused, t.gain.gain.value])"
                )
                assert loaded == [[n, True, False, 1] for n in names]
                assert await page.evaluate("() => window.stembotMixer.position()") > 0

                # mute one stem, solo another
                await page.click(f'.stem[data-name="{names[0]}"] .mute')
                gains = await page.evaluate(
                    "() => window.stembotMixer.tracks.map(t => t.gain.gain.value)"
                )
                assert gains == [0, 1, 1, 1]
                assert (
                    await page.get_attribute(f'.stem[data-name="{names[0]}"] .mute', "aria-pressed")
                    == "true"
                )
                await page.click(f'.stem[data-name="{names[3]}"] .solo')
                gains = await page.evaluate(
                    "() => window.stembotMixer.tracks.map(t => t.gain.gain.value)"
                )
                assert gains == [0, 0, 0, 1]
                await page.click(f'.stem[data-name="{names[3]}"] .solo')
                await page.fill(f'.stem[data-name="{names[1]}"] .vol', "0.5")
                gains = await page.evaluate(
                    "() => window.stembotMixer.tracks.map(t => t.gain.gain.value)"
                )
                assert gains == [0, 0.5, 1, 1]

                # the playhead moved on the waveforms; pause keeps the position. From 0.2 s, and
                # the button clicked in the page: the track is 2 s long, and on a busy machine
                # the steps above (or a click from here) can take longer than that
                await page.evaluate("() => window.stembotMixer.seek(0.2)")
                await page.wait_for_timeout(300)
                was, playing, offset = await page.evaluate(
                    """() => {
                        const m = window.stembotMixer, was = m.playing;
                        document.getElementById('play').click();
                        return [was, m.playing, m.offset];
                    }"""
                )
                assert (was, playing) == (True, False)
                assert offset > 0.2

                await page.evaluate("() => window.scrollTo(0, 0)")
                SCREENSHOT.parent.mkdir(exist_ok=True)
                await page.screenshot(path=str(SCREENSHOT), full_page=True)

                shown = {lang: await page_in(page, page_site.url, lang) for lang in LANGUAGES}
                assert errors == []
                assert external == []
            finally:
                await browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
    # each language's own words, not English: fails until the catalogues translate them
    english = ENGLISH.p_("button", "Play all")
    assert [lang for lang in LANGUAGES[1:] if shown[lang] == english] == []


#: Records every text the mixer's status line shows, even one replaced in the same task.
WATCH_STATUS = """() => {
    const status = document.getElementById('status');
    window.statusSeen = [];
    new MutationObserver(records => records.forEach(r => r.type === 'characterData'
            ? window.statusSeen.push(r.target.textContent)
            : r.addedNodes.forEach(n => window.statusSeen.push(n.textContent))))
        .observe(status, {childList: true, characterData: true, subtree: true});
}"""


async def page_in(page: Any, url: str, lang: str) -> str:
    """Open the page in ``lang`` and check what page.js writes there; returns the label it
    gives the play button after a pause."""
    t = texts(lang)
    await page.goto(with_lang(url, lang), timeout=20_000)
    await page.wait_for_function(
        "() => window.stembotMixer && window.stembotMixer.peaksReady", timeout=20_000
    )
    assert await page.get_attribute("html", "lang") == t.tag
    assert await page.text_content("#play") == t.p_("button", "Play all")  # from the server
    await page.evaluate(WATCH_STATUS)
    await page.click("#play")
    await page.wait_for_function(
        "() => window.stembotMixer.playing && !window.stembotMixer.starting", timeout=30_000
    )
    # written by page.js, in the page's language, with the numbers filled in
    loading = await page.evaluate("() => window.statusSeen")
    total = await page.locator(".stem").count()
    assert t._("Loading stems… {done}/{total}", done=total, total=total) in loading, loading
    await page.evaluate("() => window.stembotMixer.seek(0)")
    assert await page.text_content("#play") == t.p_("button", "Pause")
    await page.evaluate("() => window.stembotMixer.pause()")
    played = await page.text_content("#play")
    assert played == t.p_("button", "Play all")
    return str(played)
