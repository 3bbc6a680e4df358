"""Decoding with ffmpeg and encoding the stems the way the demucs CLI does."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch
from demucs.audio import convert_audio_channels, save_audio

from shared.errors import Unreadable
from shared.schemas import AudioFormat
from tests.support.audio import make_audio
from worker.audio import decode, encode, encode_stems, make_zip

SR = 44100
DEMUXERS = {".mp3": "mp3", ".ogg": "ogg", ".flac": "flac", ".m4a": "mov", ".wav": "wav"}


@pytest.mark.parametrize(
    ("name", "rate", "channels"),
    [
        ("a.mp3", 44100, 2),
        ("a.ogg", 22050, 1),
        ("a.flac", 96000, 2),
        ("a.m4a", 48000, 2),
        ("a.wav", 8000, 1),
    ],
)
def test_decode_resamples_to_model_rate_and_stereo(
    tmp_path: Path, name: str, rate: int, channels: int
) -> None:
    path = make_audio(tmp_path / name, seconds=2.0, rate=rate, channels=channels)
    wav = decode(path, SR, 2, src_channels=channels, demuxer=DEMUXERS[path.suffix])
    assert wav.dtype == torch.float32
    assert wav.shape[0] == 2
    assert wav.shape[1] == pytest.approx(2.0 * SR, abs=0.03 * SR)  # codec padding
    if channels == 1:
        assert torch.equal(wav[0], wav[1])  # demucs duplicates mono


def test_decode_16bit_wav_is_exact(tmp_path: Path) -> None:
    original = (torch.rand(2, SR) * 2 - 1) * 0.5
    path = tmp_path / "exact.wav"
    save_audio(original, path, SR, clip="none")
    wav = decode(path, SR, 2, src_channels=2, demuxer="wav")
    expected = (original.clamp(-1, 1) * (2**15 - 1)).to(torch.int16).float() / 2**15
    assert torch.equal(wav, expected)


def test_decode_many_channels_keeps_the_first_two(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "surround.wav", seconds=1.0, channels=6)
    wav = decode(path, SR, 2, src_channels=6, demuxer="wav")
    full = decode(path, SR, 6, src_channels=6, demuxer="wav")
    assert torch.equal(wav, convert_audio_channels(full, 2))


def test_decode_garbage_is_unreadable(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "x.mp3", seconds=1.0)
    path.write_bytes(b"ID3" + bytes(range(256)) * 20)
    with pytest.raises(Unreadable) as info:
        decode(path, SR, 2, src_channels=2, demuxer="mp3")
    assert info.value.code == "unreadable"


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    return json.loads(out.stdout)


def test_encode_formats_like_the_demucs_cli(tmp_path: Path) -> None:
    wav = (torch.rand(2, SR) * 2 - 1) * 0.9
    mp3 = encode(wav, tmp_path / "s", AudioFormat.MP3, SR)
    info = ffprobe(mp3)
    assert info["streams"][0]["codec_name"] == "mp3"
    assert int(info["format"]["bit_rate"]) == pytest.approx(320_000, rel=0.02)
    for fmt in (AudioFormat.WAV, AudioFormat.FLAC):
        ours = encode(wav, tmp_path / "ours", fmt, SR)
        theirs = tmp_path / f"theirs.{fmt.value}"
        save_audio(wav, theirs, SR, bitrate=320, clip="rescale", bits_per_sample=16, preset=2)
        assert ours.read_bytes() == theirs.read_bytes()
        stream = ffprobe(ours)["streams"][0]
        assert stream.get("bits_per_sample") in (16, 0) or stream["sample_fmt"] == "s16"


def test_encode_stems_keeps_order_and_zip(tmp_path: Path) -> None:
    stems = {n: torch.zeros(2, SR // 10) for n in ("drums", "bass", "other", "vocals")}
    files = encode_stems(stems, tmp_path, AudioFormat.FLAC, SR)
    assert list(files) == list(stems)
    assert [p.name for p in files.values()] == [f"{n}.flac" for n in stems]
    zipped = make_zip({f"Song - {n}.flac": p for n, p in files.items()}, tmp_path / "all.zip")
    with zipfile.ZipFile(zipped) as zf:
        assert zf.namelist() == [f"Song - {n}.flac" for n in stems]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    assert not (tmp_path / "all.zip.part").exists()
