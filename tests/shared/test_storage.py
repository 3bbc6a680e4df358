"""Storage: uploads, publishing, safe names, expiry.

The behaviours every backend shares run against LocalStorage and S3Storage (on a real
S3-compatible server, moto's); the rest are LocalStorage's own (hard links, renames, the
folder's cleanup). S3-only behaviour is in test_storage_s3.py.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.config import Settings
from shared.errors import SourceGone
from shared.links import LinkCheck, verify
from shared.schemas import StemFile
from shared.storage import JobListing, ListedFile, LocalStorage, Storage, build_storage
from shared.storage import local as storage_module
from shared.storage.s3 import S3Storage
from tests.support.s3 import new_bucket, object_names, read_object, s3_server, s3_settings

DAY = 24 * 3600
HOUR = 3600
KEY = b"k" * 32


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "root", "http://stems.test/", KEY, upload_ttl_s=DAY)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LocalStorage:
    """Each backend, built from its settings as the processes build it."""
    if request.param == "local":
        settings = Settings(storage_dir=tmp_path / "root", signing_key=KEY.decode())
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        settings = s3_settings(endpoint, new_bucket(endpoint), tmp_path / "root")
    return build_storage(settings)


def published(store: LocalStorage, job_key: str) -> list[str]:
    """The files of a published job (meta.json included), where the backend keeps them."""
    if isinstance(store, S3Storage):
        return object_names(store.client.meta.endpoint_url, store.bucket, f"jobs/{job_key}/")
    folder = store.job_dir(job_key)
    return listing(folder) if folder.exists() else []


def published_bytes(store: LocalStorage, job_key: str, filename: str) -> bytes:
    if isinstance(store, S3Storage):
        endpoint = store.client.meta.endpoint_url
        return read_object(endpoint, store.bucket, f"jobs/{job_key}/{filename}")
    return (store.job_dir(job_key) / filename).read_bytes()


def stored_uploads(store: LocalStorage) -> list[str]:
    if isinstance(store, S3Storage):
        return object_names(store.client.meta.endpoint_url, store.bucket, "uploads/")
    return listing(store.uploads)


def file(path: Path, data: bytes = b"data") -> Path:
    path.write_bytes(data)
    return path


def age(path: Path, seconds: float, now: float) -> None:
    os.utime(path, (now - seconds, now - seconds), follow_symlinks=False)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- uploads ----------------------------------------------------------------------------


async def test_upload_round_trip_and_delete(store: LocalStorage, tmp_path: Path) -> None:
    key = await store.save_upload(file(tmp_path / "in", b"song"), "abc123")
    assert key == "uploads/abc123"
    assert not (tmp_path / "in").exists()
    assert stored_uploads(store) == ["abc123"]
    got = await store.fetch_upload(key, tmp_path / "copy")
    assert got == tmp_path / "copy"
    assert got.read_bytes() == b"song"
    await store.delete(key)
    await store.delete(key)  # idempotent
    assert stored_uploads(store) == []
    assert got.read_bytes() == b"song"  # the worker's copy outlives the upload
    with pytest.raises(SourceGone):
        await store.fetch_upload(key, tmp_path / "again")
    assert listing(tmp_path) == ["copy", "root"]  # no partial download left behind


async def test_local_upload_copy_is_a_hard_link(storage: LocalStorage, tmp_path: Path) -> None:
    key = await storage.save_upload(file(tmp_path / "in", b"song"), "abc123")
    got = await storage.fetch_upload(key, tmp_path / "copy")
    assert got.stat().st_ino == (storage.uploads / "abc123").stat().st_ino


async def test_fetch_upload_replaces_an_existing_destination(
    store: LocalStorage, tmp_path: Path
) -> None:
    key = await store.save_upload(file(tmp_path / "in", b"new"), "abc")
    await store.fetch_upload(key, file(tmp_path / "dest", b"old bytes"))
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
async def test_unsafe_names_are_refused(store: LocalStorage, tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="unsafe storage name"):
        await store.save_upload(file(tmp_path / "in"), name)
    assert (tmp_path / "in").exists()
    with pytest.raises(ValueError):
        store.job_dir(name)
    with pytest.raises(ValueError):
        store.url_for(name, "vocals.mp3", 10)
    with pytest.raises(ValueError):
        store.url_for("job", name, 10)
    with pytest.raises(ValueError):
        await store.job_exists(name)
    with pytest.raises(ValueError):
        await store.publish_job(name, [("a", tmp_path / "in")], title="t", expires_at=10)
    with pytest.raises(ValueError):
        await store.fetch_job_file("job", name, tmp_path / "out")
    assert (tmp_path / "in").exists()
    assert await store.find_file(name, "vocals.mp3") is None
    assert await store.find_file("job", name) is None
    assert stored_uploads(store) == []


@pytest.mark.parametrize(
    "key", ["uploads/../jobs", "uploads/a/b", "jobs/abc", "abc", "/etc/passwd", "uploads/"]
)
async def test_unsafe_storage_keys_are_refused(
    store: LocalStorage, tmp_path: Path, key: str
) -> None:
    with pytest.raises(ValueError):
        await store.fetch_upload(key, tmp_path / "out")
    with pytest.raises(ValueError):
        await store.delete(key)


# --- publishing -------------------------------------------------------------------------


async def publish_three(store: LocalStorage, tmp_path: Path, expires_at: float) -> list[StemFile]:
    files = [
        ("vocals", file(tmp_path / "vocals.mp3", b"v" * 10)),
        ("no_vocals", file(tmp_path / "no_vocals.mp3", b"n" * 3)),
        ("all", file(tmp_path / "stems.zip", b"z")),
    ]
    stems = await store.publish_job("job1", files, title="Song", expires_at=expires_at)
    assert not any(p.exists() for _, p in files)
    return stems


async def test_publish_job_stores_files_and_meta(store: LocalStorage, tmp_path: Path) -> None:
    stems = await publish_three(store, tmp_path, 5_000.7)
    assert [(s.name, s.filename, s.size_bytes) for s in stems] == [
        ("vocals", "vocals.mp3", 10),
        ("no_vocals", "no_vocals.mp3", 3),
        ("all", "stems.zip", 1),
    ]
    assert published(store, "job1") == ["meta.json", "no_vocals.mp3", "stems.zip", "vocals.mp3"]
    assert published_bytes(store, "job1", "vocals.mp3") == b"v" * 10
    assert json.loads(published_bytes(store, "job1", "meta.json")) == {
        "title": "Song",
        "expires_at": 5000.7,
        "files": {"vocals.mp3": "vocals", "no_vocals.mp3": "no_vocals", "stems.zip": "all"},
    }
    assert await store.job_exists("job1")
    assert not await store.job_exists("job2")
    assert listing(store.tmp) == []

    copy = await store.fetch_job_file("job1", "vocals.mp3", tmp_path / "out.mp3")
    assert copy.read_bytes() == b"v" * 10
    with pytest.raises(SourceGone):
        await store.fetch_job_file("job1", "drums.mp3", tmp_path / "x.mp3")
    with pytest.raises(SourceGone):
        await store.fetch_job_file("job2", "vocals.mp3", tmp_path / "x.mp3")
    assert not (tmp_path / "x.mp3").exists()

    # what the web server serves: a local file with the job's title and the stem's name
    found = await store.find_file("job1", "stems.zip")
    assert found is not None
    assert (found.path, found.title, found.stem, found.expires_at) == (
        store.job_dir("job1") / "stems.zip",
        "Song",
        "all",
        5000.7,
    )
    assert found.path.read_bytes() == b"z"
    assert await store.find_file("job1", "meta.json") is None
    assert await store.find_file("job1", "drums.mp3") is None
    assert await store.find_file("job2", "vocals.mp3") is None


async def test_peaks_are_published_next_to_their_stems(store: LocalStorage, tmp_path: Path) -> None:
    files = [
        ("vocals", file(tmp_path / "vocals.mp3", b"v" * 10)),
        ("no_vocals", file(tmp_path / "no_vocals.mp3", b"n" * 3)),
        ("all", file(tmp_path / "stems.zip", b"z")),
    ]
    peaks = {"vocals.mp3": [0.0, 0.5, 1.0]}
    await store.publish_job("job1", files, title="Song", expires_at=5_000.5, peaks=peaks)
    assert published(store, "job1") == [
        "meta.json",
        "no_vocals.mp3",
        "stems.zip",
        "vocals.mp3",
        "vocals.mp3.peaks.json",
    ]
    assert json.loads(published_bytes(store, "job1", "meta.json"))["files"] == {
        "vocals.mp3": "vocals",
        "no_vocals.mp3": "no_vocals",
        "stems.zip": "all",
    }
    # what the results page reads: the listing, then the peaks (none for a stem without)
    assert await store.load_job("job1") == JobListing(
        key="job1",
        title="Song",
        expires_at=5_000.5,
        files=[
            ListedFile("vocals", "vocals.mp3", 10),
            ListedFile("no_vocals", "no_vocals.mp3", 3),
            ListedFile("all", "stems.zip", 1),
        ],
    )
    assert await store.read_peaks("job1", "vocals.mp3") == [0.0, 0.5, 1.0]
    assert await store.read_peaks("job1", "no_vocals.mp3") is None
    assert await store.read_peaks("job1", "../meta.json") is None
    # a peaks file is not one of the job's files: never served as a download
    assert await store.find_file("job1", "vocals.mp3.peaks.json") is None
    assert await store.load_job("job2") is None
    assert await store.load_job("../uploads") is None

    # a republish without peaks leaves none of the old ones behind
    files = [("vocals", file(tmp_path / "vocals.mp3", b"w" * 4))]
    await store.publish_job("job1", files, title="Song", expires_at=5_000.5)
    assert published(store, "job1") == ["meta.json", "vocals.mp3"]
    listing_now = await store.load_job("job1")
    assert listing_now is not None
    assert listing_now.files == [ListedFile("vocals", "vocals.mp3", 4)]
    assert await store.read_peaks("job1", "vocals.mp3") is None
    assert listing(store.tmp) == []


@pytest.mark.parametrize(
    ("peaks", "message"),
    [
        ({"drums.mp3": [0.5]}, "peaks of a file not published"),
        ({"vocals.mp3": [0.5, 1.5]}, "between 0 and 1"),
        ({"vocals.mp3": [float("nan")]}, "between 0 and 1"),
    ],
)
async def test_bad_peaks_are_refused_before_anything_is_published(
    store: LocalStorage, tmp_path: Path, peaks: dict[str, list[float]], message: str
) -> None:
    files = [("vocals", file(tmp_path / "vocals.mp3"))]
    with pytest.raises(ValueError, match=message):
        await store.publish_job("job1", files, title="t", expires_at=9, peaks=peaks)
    assert published(store, "job1") == []
    assert (tmp_path / "vocals.mp3").exists()


async def test_local_links_are_signed_for_the_web_server(
    storage: LocalStorage, tmp_path: Path
) -> None:
    stems = await publish_three(storage, tmp_path, 5_000.7)
    url = urlsplit(stems[0].url)
    assert (url.scheme, url.netloc, url.path) == ("http", "stems.test", "/files/job1/vocals.mp3")
    query = parse_qs(url.query)
    assert query["exp"] == ["5000"]
    check = verify(KEY, "/files/job1/vocals.mp3", query["exp"][0], query["sig"][0], now=4_999)
    assert check is LinkCheck.OK
    assert stems[0].url == storage.url_for("job1", "vocals.mp3", 5_000.7)


async def test_local_find_file_refuses_links(storage: LocalStorage, tmp_path: Path) -> None:
    await publish_three(storage, tmp_path, 5_000.7)
    (storage.job_dir("job1") / "stems.zip").unlink()
    (storage.job_dir("job1") / "stems.zip").symlink_to(tmp_path / "vocals.mp3")
    assert await storage.find_file("job1", "stems.zip") is None


async def test_delete_job_removes_it_before_its_expiry(store: LocalStorage, tmp_path: Path) -> None:
    await publish_three(store, tmp_path, time.time() + 3600)
    assert await store.find_file("job1", "vocals.mp3") is not None  # cached locally too
    assert await store.delete_job("job1")
    assert not await store.job_exists("job1")
    assert await store.find_file("job1", "vocals.mp3") is None
    with pytest.raises(SourceGone):
        await store.fetch_job_file("job1", "vocals.mp3", tmp_path / "x.mp3")
    assert listing(store.tmp) == []
    assert not await store.delete_job("job1")  # already gone
    with pytest.raises(ValueError):
        await store.delete_job("../uploads")


async def test_publish_replaces_an_existing_job(store: LocalStorage, tmp_path: Path) -> None:
    await store.publish_job(
        "job1", [("a", file(tmp_path / "a.mp3", b"old"))], title="1", expires_at=1
    )
    await store.publish_job(
        "job1", [("b", file(tmp_path / "b.mp3", b"new"))], title="2", expires_at=2
    )
    assert published(store, "job1") == ["b.mp3", "meta.json"]
    assert json.loads(published_bytes(store, "job1", "meta.json"))["title"] == "2"
    assert listing(store.tmp) == []


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
    store: LocalStorage, tmp_path: Path
) -> None:
    await store.publish_job("job1", [("a", file(tmp_path / "a.mp3"))], title="1", expires_at=9)
    files = [("b", file(tmp_path / "b.mp3")), ("c", tmp_path / "missing.mp3")]
    with pytest.raises(FileNotFoundError):
        await store.publish_job("job1", files, title="2", expires_at=9)
    assert published(store, "job1") == ["a.mp3", "meta.json"]
    assert json.loads(published_bytes(store, "job1", "meta.json"))["title"] == "1"
    assert listing(store.tmp) == []


@pytest.mark.parametrize("names", [["x.mp3", "x.mp3"], ["meta.json"], ["x.mp3.peaks.json"]])
async def test_duplicate_or_reserved_file_names_are_refused(
    store: LocalStorage, tmp_path: Path, names: list[str]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    files = [(f"s{i}", file(tmp_path / "ab"[i] / n)) for i, n in enumerate(names)]
    with pytest.raises(ValueError, match="duplicate or reserved"):
        await store.publish_job("job1", files, title="t", expires_at=9)
    assert published(store, "job1") == []
    assert all(p.exists() for _, p in files)


async def test_concurrent_publishes_of_one_key_all_finish(
    store: LocalStorage, tmp_path: Path
) -> None:
    async def publish(i: int) -> None:
        (tmp_path / str(i)).mkdir()
        src = file(tmp_path / str(i) / "vocals.mp3", str(i).encode())
        await store.publish_job("job1", [("vocals", src)], title=str(i), expires_at=9)

    await asyncio.gather(*(publish(i) for i in range(8)))
    assert published(store, "job1") == ["meta.json", "vocals.mp3"]
    meta = json.loads(published_bytes(store, "job1", "meta.json"))
    assert meta["title"] in [str(i) for i in range(8)]
    assert listing(store.tmp) == []


async def test_local_concurrent_publishes_keep_each_job_whole(
    storage: LocalStorage, tmp_path: Path
) -> None:
    """Files and meta always come from the same publish (the folder is swapped whole)."""

    async def publish(i: int) -> None:
        (tmp_path / str(i)).mkdir()
        src = file(tmp_path / str(i) / "vocals.mp3", str(i).encode())
        await storage.publish_job("job1", [("vocals", src)], title=str(i), expires_at=9)

    await asyncio.gather(*(publish(i) for i in range(8)))
    folder = storage.job_dir("job1")
    meta = json.loads((folder / "meta.json").read_text())
    assert (folder / "vocals.mp3").read_bytes() == meta["title"].encode()


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


async def test_extend_job_keeps_a_job_until_a_later_time(
    store: LocalStorage, tmp_path: Path
) -> None:
    """What keeps a master (shared.masters) alive as long as the links made from it."""
    now = time.time()
    await publish_three(store, tmp_path, now + HOUR)
    assert await store.extend_job("job1", now + DAY)
    assert json.loads(published_bytes(store, "job1", "meta.json"))["expires_at"] == now + DAY
    assert await store.extend_job("job1", now + 2 * HOUR)  # never made shorter
    meta = json.loads(published_bytes(store, "job1", "meta.json"))
    assert meta == {
        "title": "Song",
        "expires_at": now + DAY,
        "files": {"vocals.mp3": "vocals", "no_vocals.mp3": "no_vocals", "stems.zip": "all"},
    }
    assert await store.cleanup(now=now + 2 * HOUR) == 0
    assert published(store, "job1") == ["meta.json", "no_vocals.mp3", "stems.zip", "vocals.mp3"]
    assert await store.cleanup(now=now + DAY + 1) == 1
    assert not await store.job_exists("job1")
    assert not await store.extend_job("job1", now + 2 * DAY)
    assert listing(store.tmp) == []
    with pytest.raises(ValueError):
        await store.extend_job("../uploads", now + DAY)


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
