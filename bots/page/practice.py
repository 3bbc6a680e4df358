"""The practice player's controls on the results page: tempo, pitch, an A-B loop, the keys.

bots/static/player.js plays the stems from their <audio> elements (streamed, never decoded
whole) through Web Audio: the tempo is the browser's pitch-preserving ``playbackRate``, the
pitch SoundTouch's AudioWorklet (vendored from npm: bots/static/vendor/README.md), whose
module and processor URLs the panel carries. The values are shown by page.js, formatted
for the page's language.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from functools import cache

from shared.i18n import Texts

#: The pitch shifter, vendored from npm; the version is in the path, so its module imports
#: its neighbours by names that can be cached for good.
SOUNDTOUCH = "vendor/soundtouchjs-audio-worklet-2.1.1"
SHIFTER_NODE = f"{SOUNDTOUCH}/SoundTouchNode.js"
SHIFTER_PROCESSOR = f"{SOUNDTOUCH}/soundtouch-processor.js"
SHIFTER_FILES = (SHIFTER_NODE, f"{SOUNDTOUCH}/constants.js", SHIFTER_PROCESSOR)
#: Tempo and pitch ranges (player.js clamps to the same).
TEMPO_MIN, TEMPO_MAX, TEMPO_STEP = 0.5, 1.5, 0.05
PITCH_MIN, PITCH_MAX = -6, 6
esc = html.escape


@cache
def practice_texts(t: Texts) -> dict[str, str]:
    """The texts page.js shows for the practice controls, by key."""
    return {
        # TRANSLATORS: shown where the A-B loop's times go while no loop is set
        "loop_hint": t._("Set A and B to repeat a part."),
        "no_pitch": t._("This browser cannot change the pitch here; tempo and loop still work."),
    }


def _knob(
    name: str,
    label: str,
    down: str,
    up: str,
    reset: str,
    limits: tuple[float, float, float, float],
) -> str:
    low, high, step, value = limits
    return f"""<div class="knob" id="{name}-knob">
<label for="{name}">{esc(label)}</label>
<button type="button" class="step" id="{name}-down" aria-label="{esc(down)}" \
title="{esc(down)}">−</button>
<input type="range" id="{name}" min="{low:g}" max="{high:g}" step="{step:g}" value="{value:g}">
<button type="button" class="step" id="{name}-up" aria-label="{esc(up)}" \
title="{esc(up)}">+</button>
<button type="button" class="value" id="{name}-value" title="{esc(reset)}"></button>
</div>"""


def practice_panel(t: Texts, static_url: Callable[[str], str]) -> str:
    """Tempo and pitch (a slider, a step down and up, the value: a click resets it), the
    A-B loop and a line on the keys; shown only when JavaScript runs."""
    # TRANSLATORS: the practice controls of the results page (tempo, pitch, loop)
    practice = t.p_("player", "Practice")
    tempo = _knob(
        "tempo",
        t.p_("player", "Tempo"),
        t._("Slower"),
        t._("Faster"),
        # TRANSLATORS: on the tempo's value (such as "75%"): a click sets it back
        t._("Back to the original tempo"),
        (TEMPO_MIN, TEMPO_MAX, TEMPO_STEP, 1),
    )
    pitch = _knob(
        "pitch",
        # TRANSLATORS: the pitch slider, in semitones from -6 to +6
        t._("Pitch (semitones)"),
        t._("Lower the pitch"),
        t._("Raise the pitch"),
        t._("Back to the original key"),
        (PITCH_MIN, PITCH_MAX, 1, 0),
    )
    # TRANSLATORS: the A-B loop: repeats the part of the song between two points, A and B
    loop = esc(t.p_("player", "Loop"))
    set_a, set_b = esc(t._("Loop from here (A)")), esc(t._("Loop up to here (B)"))
    clear = esc(t._("Clear the loop (L)"))
    # TRANSLATORS: the button that removes the A-B loop
    clear_label = esc(t.p_("loop button", "Clear"))
    hint = esc(practice_texts(t)["loop_hint"])
    keys = esc(
        # TRANSLATORS: the keyboard shortcuts; keep ←/→, [ ], -/+, A, B and L as they are, and
        # name Space and Shift as keyboards in your language do
        t._(
            "Keys: Space play/pause · ←/→ back/forward 5 s · [ ] or -/+ tempo · "
            "Shift+arrows pitch · A and B set the loop, L clears it"
        )
    )
    node, processor = esc(static_url(SHIFTER_NODE)), esc(static_url(SHIFTER_PROCESSOR))
    return f"""<section class="practice js-only" id="practice" aria-label="{esc(practice)}" \
data-shifter="{node}" data-processor="{processor}">
{tempo}
{pitch}
<div class="loop" role="group" aria-label="{loop}"><span class="name">{loop}</span>
<button type="button" id="loop-a" aria-pressed="false" title="{set_a}" \
aria-label="{set_a}">A</button><button type="button" id="loop-b" aria-pressed="false" \
title="{set_b}" aria-label="{set_b}">B</button><button type="button" id="loop-clear" \
title="{clear}">{clear_label}</button>
<output id="loop-value" class="loop-value">{hint}</output></div>
<p class="keys">{keys}</p>
</section>"""
