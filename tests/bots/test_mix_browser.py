"""The mixer's "Download this mix" in a real headless Chromium, on the real web server with
the real workers: mute a stem, turn one down, press the button, and the mix downloads (a
file of the master's stems at those volumes); the whole song and silence are told without
asking the server. Needs Debian's ``chromium`` and Playwright, like test_page_browser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared import masters, mixes
from shared.errors import MixExpired
from shared.i18n import texts
from shared.links import with_lang
from tests.bots.test_mix_volumes import EVERY, expected_mix, mix_page
from tests.bots.test_page_browser import find_chromium
from tests.bots.test_player_browser import OUTPUT
from tests.support.service import Service
from tests.worker.test_render import counter, pcm


async def set_volume(page: Any, stem: str, value: float) -> None:
    """Move a stem's volume slider as a user's drag does (its input event)."""
    await page.evaluate(
        """([stem, value]) => {
            const el = document.querySelector(`li[data-name="${stem}"] .vol`);
            el.value = String(value);
            el.dispatchEvent(new Event('input', {bubbles: true}));
        }""",
        [stem, value],
    )


async def test_download_this_mix_in_chromium(service: Service, tmp_path: Path) -> None:
    executable = find_chromium()
    if executable is None:
        pytest.skip("chromium is not installed: apt-get install chromium")
    api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
    async with mix_page(service, tmp_path) as site, api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            context = await browser.new_context(accept_downloads=True, locale="en-US")
            page = await context.new_page()
            errors: list[str] = []
            posted: list[Any] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on(
                "request",
                lambda req: (
                    posted.append(json.loads(req.post_data or "null"))
                    if req.method == "POST"
                    else None
                ),
            )
            await page.goto(site.url, timeout=20_000)
            await page.wait_for_function("() => window.stembotMixer.peaksReady", timeout=20_000)
            button, status = page.locator("#mix-download"), page.locator("#mix-status")
            assert await button.text_content() == "Download this mix"
            assert await page.locator("#mix-format").input_value() == "wav"  # the song's

            # everything at full volume is the song itself: said at once, nothing asked
            await button.click()
            assert await status.text_content() == EVERY
            # everything silent (a solo on a muted stem): nothing to mix
            await page.locator('li[data-name="bass"] .mute').click()
            await page.locator('li[data-name="bass"] .solo').click()
            await button.click()
            assert await status.text_content() == mixes.EMPTY
            assert posted == []
            await page.locator('li[data-name="bass"] .solo').click()
            await page.locator('li[data-name="bass"] .mute').click()

            # mute the vocals, solo nothing, the other stem muted, the drums at half
            await page.locator('li[data-name="vocals"] .mute').click()
            await page.locator('li[data-name="other"] .mute').click()
            await set_volume(page, "drums", 0.5)
            async with page.expect_download(timeout=60_000) as waiting:
                await button.click()
            download = await waiting.value
            assert (
                download.suggested_filename == "My Song - mix_drums_bass.wav"
            )  # the server names it
            assert posted == [
                {"volumes": {"drums": 50, "bass": 100, "other": 0, "vocals": 0}, "format": "wav"}
            ]
            link = page.locator("#mix-link")
            assert await link.get_attribute("download") == "mix_drums_bass.wav"
            assert (await link.get_attribute("href") or "").startswith("/files/")
            text = await status.text_content()
            assert text == "Your mix is ready: its download has started."
            OUTPUT.mkdir(exist_ok=True)
            await page.screenshot(path=str(OUTPUT / "mix-download.png"), full_page=True)
            saved = tmp_path / "downloaded.wav"
            await download.save_as(saved)
            expected = expected_mix(service, site.song, {"drums": 0.5, "bass": 1.0})
            assert int(np.abs(pcm(saved) - expected).max()) <= 1

            # a solo is what plays: the bass alone, in FLAC
            await page.locator('li[data-name="bass"] .solo').click()
            await page.locator("#mix-format").select_option("flac")
            async with page.expect_download(timeout=60_000) as waiting:
                await button.click()
            assert (await waiting.value).suggested_filename == "My Song - mix_bass.flac"
            assert posted[-1] == {
                "volumes": {"drums": 0, "bass": 100, "other": 0, "vocals": 0},
                "format": "flac",
            }
            assert await counter(service, "stembot_renders_total") == 2
            assert errors == []
        finally:
            await browser.close()


async def test_a_refusal_is_shown_in_the_pages_language(service: Service, tmp_path: Path) -> None:
    executable = find_chromium()
    if executable is None:
        pytest.skip("chromium is not installed: apt-get install chromium")
    api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
    async with mix_page(service, tmp_path) as site, api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(with_lang(site.url, "fr"), timeout=20_000)
            await page.wait_for_function("() => window.stembotMixer.peaksReady", timeout=20_000)
            # the song's kept stems expired while the page was open
            await masters.delete(service.redis, service.storage, site.song.separation_key)
            await page.locator('li[data-name="vocals"] .mute').click()
            await page.locator("#mix-download").click()
            await page.wait_for_function(
                "() => !document.getElementById('mix-download').disabled"
                " && document.getElementById('mix-status').textContent !== ''",
                timeout=30_000,
            )
            expired = MixExpired().message(texts("fr"))
            assert expired != MixExpired().user_message
            assert await page.locator("#mix-status").text_content() == expired
            assert await page.locator("#mix-link").count() == 0
        finally:
            await browser.close()
