"""What a custom mix is: its stems, its name, its keys (the service tests are in
tests/worker/test_mixes.py and tests/bots/test_api_mixes.py)."""

from __future__ import annotations

import pytest

from shared import mixes
from shared.errors import InvalidOption
from shared.schemas import AudioFormat, JobOptions, Source, delivery_key, separation_key

SONG = Source(kind="upload", identity="a" * 64, title="Song")


def test_the_stems_come_in_the_model_s_order_each_once() -> None:
    assert mixes.check_stems("htdemucs", ["bass", "Drums ", "bass"]) == ("drums", "bass")
    assert mixes.check_stems("htdemucs_6s", ["piano", "guitar"]) == ("guitar", "piano")
    with pytest.raises(InvalidOption) as caught:
        mixes.check_stems("htdemucs", ["guitar"])
    assert caught.value.user_message == (
        "The model htdemucs has no 'guitar' stem. Choose one of: drums, bass, other, vocals."
    )


@pytest.mark.parametrize(
    ("model", "text", "stems", "name"),
    [
        ("htdemucs", "bass,drums", ("drums", "bass"), "mix_drums_bass"),
        ("htdemucs", "no_drums", ("bass", "other", "vocals"), "no_drums"),
        ("htdemucs", "no_vocals", ("drums", "bass", "other"), "instrumental"),
        ("htdemucs", "drums,bass,other", ("drums", "bass", "other"), "instrumental"),
        ("htdemucs", "vocals", ("vocals",), "mix_vocals"),
        ("htdemucs_6s", "no_piano", ("drums", "bass", "other", "vocals", "guitar"), "no_piano"),
    ],
)
def test_command_line_names_and_file_names(
    model: str, text: str, stems: tuple[str, ...], name: str
) -> None:
    assert mixes.parse(model, text) == stems
    options = mixes.options(JobOptions(model=model), stems, None)
    assert mixes.name(options) == name
    assert options.output_stems() == [name]


def test_a_mix_is_its_own_job_of_the_same_separation() -> None:
    song = JobOptions(stems="vocals", format=AudioFormat.FLAC)
    bass_drums = mixes.options(song, ["bass", "drums"], None)
    assert (bass_drums.stems, bass_drums.format, bass_drums.mix) == (
        "all",
        "flac",
        ("drums", "bass"),
    )
    # the song's master serves every mix
    assert separation_key(SONG, bass_drums) == separation_key(SONG, song)
    # the subset and the format make the job; the order asked in does not
    keys = {
        delivery_key(SONG, song),
        delivery_key(SONG, bass_drums),
        delivery_key(SONG, mixes.options(song, ["bass"], None)),
        delivery_key(SONG, mixes.options(song, ["bass", "drums"], "mp3")),
    }
    assert len(keys) == 4
    again = mixes.options(JobOptions(format=AudioFormat.FLAC), ["drums", "bass"], None)
    assert delivery_key(SONG, again) == delivery_key(SONG, bass_drums)
    # read back from a job's spec (JSON), it is the same mix
    assert JobOptions.model_validate_json(bass_drums.model_dump_json()) == bass_drums
