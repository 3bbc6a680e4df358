"""Local storage: uploads, publishing, safe names, expiry."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from shared import storage as storage_module
from shared.config import Settings
from shared.errors import SourceGone
from shared.links import LinkCheck, verify
from shared.storage import LocalStorage, Storage, build_storage

DAY = 24 * 3600
HOUR = 3600
KEY = b"k" * 32


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "root", "http://stems.test/", KEY, upload_ttl_s=DAY)


def file(path: Path, data: bytes = b"data") -> Path:
    path.write_bytes(data)
    return path


def age(path: Path, seconds: float, now: float) -> None:
    os.utime(path, (now - seconds, now - seconds), follow_symlinks=False)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- uploads ----------------------------------------------------------------------------


async def test_upload_round_trip_and_delete(storage: LocalStorage, tmp_path: Path) -> None:
    key = await storage.save_upload(file(tmp_path / "in", b"song"), "abc123")
    assert key == "uploads/abc123"
    assert not (tmp_path / "in").exists()
    got = await storage.fetch_upload(key, tmp_path / "copy")
    assert got == tmp_path / "copy"
    assert got.read_bytes() == b"song"
    assert got.stat().st_ino == (storage.uploads / "abc123").stat().st_ino  # a hard link
    await storage.delete(key)
    await storage.delete(key)  # idempotent
    assert listing(storage.uploads) == []
    assert got.read_bytes() == b"song"  # the worker's copy outlives the upload
    with pytest.raises(SourceGone):
        await storage.fetch_upload(key, tmp_path / "again")
    assert not (tmp_path / "again").exists()


async def test_fetch_upload_replaces_an_existing_destination(
    storage: LocalStorage, tmp_path: Path
) -> None:
    key = await storage.save_upload(file(tmp_path / "in", b"new"), "abc")
    await storage.fetch_upload(key, file(tmp_path / "dest", b"old bytes"))
    assert (tmp_path / "dest").read_bytes() == b"new"


async def test_moves_and_links_fall_back_to_copies_across_filesystems(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    real_replace = os.replace

    def replace(src: str | Path, dest: str | Path) -> None:
        if Path(src) == tmp_path / "in":
            cross_device()
        real_replace(src, dest)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "link", cross_device)
    key = await storage.save_upload(file(tmp_path / "in", b"song"), "abc")
    assert not (tmp_path / "in").exists()
    assert listing(storage.uploads) == ["abc"]  # no partial copy left behind
    got = await storage.fetch_upload(key, tmp_path / "copy")
    assert got.read_bytes() == b"song"
    assert got.stat().st_ino != (storage.uploads / "abc").stat().st_ino


@pytest.mark.parametrize(
    "name", ["../x", "a/b", "", ".", "..", "a..b", ".hidden", "a\\b", "a\n", "x" * 300, "é", "a b"]
)
async def test_unsafe_names_are_refused(storage: LocalStorage, tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="unsafe storage name"):
        await storage.save_upload(file(tmp_path / "in"), name)
    assert (tmp_path / "in").exists()
    with pytest.raises(ValueError):
        storage.job_dir(name)
    with pytest.raises(ValueError):
        storage.url_for(name, "vocals.mp3", 10)
    with pytest.raises(ValueError):
        storage.url_for("job", name, 10)
    with pytest.raises(ValueError):
        await storage.job_exists(name)
    with pytest.raises(ValueError):
        await storage.publish_job(name, [("a", tmp_path / "in")], title="t", expires_at=10)
    assert (tmp_path / "in").exists()
    assert await storage.find_file(name, "vocals.mp3") is None
    assert await storage.find_file("job", name) is None


@pytest.mark.parametrize(
    "key", ["uploads/../jobs", "uploads/a/b", "jobs/abc", "abc", "/etc/passwd", "uploads/"]
)
async def test_unsafe_storage_keys_are_refused(
    storage: LocalStorage, tmp_path: Path, key: str
) -> None:
    with pytest.raises(ValueError):
        await storage.fetch_upload(key, tmp_path / "out")
    with pytest.raises(ValueError):
        await storage.delete(key)


# --- publishing -------------------------------------------------------------------------


async def test_publish_job_moves_files_writes_meta_and_links(
    storage: LocalStorage, tmp_path: Path
) -> None:
    files = [
        ("vocals", file(tmp_path / "vocals.mp3", b"v" * 10)),
        ("no_vocals", file(tmp_path / "no_vocals.mp3", b"n" * 3)),
        ("all", file(tmp_path / "stems.zip", b"z")),
    ]
    stems = await storage.publish_job("job1", files, title="Song", expires_at=5_000.7)
    assert [(s.name, s.filename, s.size_bytes) for s in stems] == [
        ("vocals", "vocals.mp3", 10),
        ("no_vocals", "no_vocals.mp3", 3),
        ("all", "stems.zip", 1),
    ]
    assert not any(p.exists() for _, p in files)
    assert listing(storage.job_dir("job1")) == [
        "meta.json",
        "no_vocals.mp3",
        "stems.zip",
        "vocals.mp3",
    ]
    assert (storage.job_dir("job1") / "vocals.mp3").read_bytes() == b"v" * 10
    url = urlsplit(stems[0].url)
    assert (url.scheme, url.netloc, url.path) == ("http", "stems.test", "/files/job1/vocals.mp3")
    query = parse_qs(url.query)
    assert query["exp"] == ["5000"]
    check = verify(KEY, "/files/job1/vocals.mp3", query["exp"][0], query["sig"][0], now=4_999)
    assert check is LinkCheck.OK
    assert stems[0].url == storage.url_for("job1", "vocals.mp3", 5_000.7)
    meta = json.loads((storage.job_dir("job1") / "meta.json").read_text())
    assert meta == {
        "title": "Song",
        "expires_at": 5000.7,
        "files": {"vocals.mp3": "vocals", "no_vocals.mp3": "no_vocals", "stems.zip": "all"},
    }
    assert await storage.job_exists("job1")
    assert not await storage.job_exists("job2")
    assert listing(storage.tmp) == []

    copy = await storage.fetch_job_file("job1", "vocals.mp3", tmp_path / "out.mp3")
    assert copy.read_bytes() == b"v" * 10
    with pytest.raises(SourceGone):
        await storage.fetch_job_file("job1", "drums.mp3", tmp_path / "x.mp3")
    with pytest.raises(SourceGone):
        await storage.fetch_job_file("job2", "vocals.mp3", tmp_path / "x.mp3")

    found = await storage.find_file("job1", "stems.zip")
    assert found is not None
    assert (found.path, found.title, found.stem, found.expires_at) == (
        storage.job_dir("job1") / "stems.zip",
        "Song",
        "all",
        5000.7,
    )
    assert await storage.find_file("job1", "meta.json") is None
    (storage.job_dir("job1") / "stems.zip").unlink()
    (storage.job_dir("job1") / "stems.zip").symlink_to(tmp_path / "out.mp3")
    assert await storage.find_file("job1", "stems.zip") is None
    assert await storage.find_file("job1", "drums.mp3") is None
    assert await storage.find_file("job2", "vocals.mp3") is None


async def test_publish_replaces_an_existing_job(storage: LocalStorage, tmp_path: Path) -> None:
    await storage.publish_job(
        "job1", [("a", file(tmp_path / "a.mp3", b"old"))], title="1", expires_at=1
    )
    await storage.publish_job(
        "job1", [("b", file(tmp_path / "b.mp3", b"new"))], title="2", expires_at=2
    )
    assert listing(storage.job_dir("job1")) == ["b.mp3", "meta.json"]
    assert json.loads((storage.job_dir("job1") / "meta.json").read_text())["title"] == "2"
    assert listing(storage.tmp) == []


async def test_the_live_folder_is_untouched_until_the_new_one_is_complete(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await storage.publish_job("job1", [("a", file(tmp_path / "a.mp3"))], title="1", expires_at=9)
    seen: list[list[str]] = []
    real_move = storage_module._move

    def move(src: Path, dest: Path) -> None:
        seen.append(listing(storage.job_dir("job1")))
        real_move(src, dest)

    monkeypatch.setattr(storage_module, "_move", move)
    files = [("b", file(tmp_path / "b.mp3")), ("c", file(tmp_path / "c.mp3"))]
    await storage.publish_job("job1", files, title="2", expires_at=9)
    assert seen == [["a.mp3", "meta.json"]] * 2
    assert listing(storage.job_dir("job1")) == ["b.mp3", "c.mp3", "meta.json"]


async def test_a_failed_publish_leaves_the_old_job_and_no_scratch(
    storage: LocalStorage, tmp_path: Path
) -> None:
    await storage.publish_job("job1", [("a", file(tmp_path / "a.mp3"))], title="1", expires_at=9)
    files = [("b", file(tmp_path / "b.mp3")), ("c", tmp_path / "missing.mp3")]
    with pytest.raises(FileNotFoundError):
        await storage.publish_job("job1", files, title="2", expires_at=9)
    assert listing(storage.job_dir("job1")) == ["a.mp3", "meta.json"]
    assert listing(storage.tmp) == []


@pytest.mark.parametrize("names", [["x.mp3", "x.mp3"], ["meta.json"]])
async def test_duplicate_or_reserved_file_names_are_refused(
    storage: LocalStorage, tmp_path: Path, names: list[str]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    files = [(f"s{i}", file(tmp_path / "ab"[i] / n)) for i, n in enumerate(names)]
    with pytest.raises(ValueError, match="duplicate or reserved"):
        await storage.publish_job("job1", files, title="t", expires_at=9)
    assert listing(storage.jobs) == []
    assert all(p.exists() for _, p in files)


async def test_concurrent_publishes_of_one_key_all_finish(
    storage: LocalStorage, tmp_path: Path
) -> None:
    async def publish(i: int) -> None:
        (tmp_path / str(i)).mkdir()
        src = file(tmp_path / str(i) / "vocals.mp3", str(i).encode())
        await storage.publish_job("job1", [("vocals", src)], title=str(i), expires_at=9)

    await asyncio.gather(*(publish(i) for i in range(8)))
    folder = storage.job_dir("job1")
    assert listing(folder) == ["meta.json", "vocals.mp3"]
    meta = json.loads((folder / "meta.json").read_text())
    assert (folder / "vocals.mp3").read_bytes() == meta["title"].encode()
    assert listing(storage.tmp) == []


# --- expiry -----------------------------------------------------------------------------


async def test_cleanup_removes_only_what_expired(storage: LocalStorage, tmp_path: Path) -> None:
    now = time.time()
    await storage.publish_job(
        "old", [("a", file(tmp_path / "a.mp3"))], title="o", expires_at=now - 1
    )
    await storage.publish_job(
        "new", [("a", file(tmp_path / "b.mp3"))], title="n", expires_at=now + HOUR
    )
    await storage.save_upload(file(tmp_path / "u1"), "stale")
    await storage.save_upload(file(tmp_path / "u2"), "fresh")
    age(storage.uploads / "stale", DAY + 10, now)
    age(storage.uploads / "fresh", DAY - 10, now)
    for name, seconds in [("broken-old", 2 * HOUR), ("broken-new", 60)]:
        (storage.jobs / name).mkdir()
        age(storage.jobs / name, seconds, now)
    (storage.jobs / "corrupt").mkdir()
    (storage.jobs / "corrupt" / "meta.json").write_text("{not json")
    age(storage.jobs / "corrupt", 2 * HOUR, now)
    for name, seconds in [
        ("publish-job-1", 2 * HOUR),  # our own leftovers: an hour
        ("replaced-job-2", 2 * HOUR),
        ("publish-job-3", 60),
        ("worker-dead", 7 * HOUR),  # other processes' scratch: six hours
        ("worker-live", 2 * HOUR),
    ]:
        (storage.tmp / name).mkdir()
        file(storage.tmp / name / "x")
        age(storage.tmp / name, seconds, now)

    assert await storage.cleanup(now=now) == 7
    assert listing(storage.jobs) == ["broken-new", "new"]
    assert listing(storage.uploads) == ["fresh"]
    assert listing(storage.tmp) == ["publish-job-3", "worker-live"]
    assert await storage.cleanup(now=now) == 0

    # a day later everything published then has expired
    assert await storage.cleanup(now=now + DAY) == 5
    assert listing(storage.jobs) == listing(storage.uploads) == listing(storage.tmp) == []


async def test_cleanup_deletes_links_not_what_they_point_at(
    storage: LocalStorage, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    file(outside / "meta.json", json.dumps({"expires_at": 0}).encode())
    file(outside / "keep.mp3")
    now = time.time()
    for folder in (storage.jobs, storage.uploads, storage.tmp):
        (folder / "link").symlink_to(outside, target_is_directory=True)
        age(folder / "link", 30 * DAY, now)
    assert await storage.cleanup(now=now) == 3
    assert listing(outside) == ["keep.mp3", "meta.json"]


async def test_cleanup_puts_back_a_job_republished_under_it(
    storage: LocalStorage, tmp_path: Path
) -> None:
    """Cleanup saw an expired meta, then a publish replaced the folder: the new one stays."""
    now = time.time()
    await storage.publish_job(
        "job1", [("a", file(tmp_path / "a.mp3"))], title="new", expires_at=now + HOUR
    )
    assert not storage._remove_job(storage.job_dir("job1"), now)
    assert listing(storage.job_dir("job1")) == ["a.mp3", "meta.json"]
    assert listing(storage.tmp) == []


def test_build_storage_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        storage_dir=tmp_path / "st",
        public_url="https://stems.example/",
        signing_key="secret",
        link_ttl_h=2,
    )
    built: Storage = build_storage(settings)
    assert isinstance(built, LocalStorage)
    assert (built.root, built.public_url, built.signing_key, built.upload_ttl_s) == (
        tmp_path / "st",
        "https://stems.example",
        b"secret",
        2 * HOUR,
    )
    assert built.url_for("k", "a.mp3", 10).startswith("https://stems.example/files/k/a.mp3?exp=10&")
    assert listing(tmp_path / "st") == ["jobs", "tmp", "uploads"]
