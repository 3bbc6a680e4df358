"""`stembot models pull --legacy` as an operator runs it, against a local mirror.

The mirror is an aiohttp server with demucs' old download layout, serving random-weight
checkpoints of the real architectures (worker/demo_models.py) described by a catalog in
demucs' own format; with demucs' shipped catalog it is asked for the released files. These are
pickles: refused unless STEMBOT_ALLOW_PICKLED_WEIGHTS allows them, when pulled and when loaded.
What was pulled is loaded through the worker's own ModelCache. The first test starts the
installed command; the others run the same `main` in this process (tests/support/cli.py).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import yaml
from aiohttp import web
from demucs import pretrained
from demucs.apply import BagOfModels
from demucs.states import load_model

from shared.config import MODELS, Settings, env_names
from shared.errors import ModelUnavailable
from shared.redis_server import free_port
from tests.support.cli import in_process, installed
from tests.support.web import serving
from worker.models import PICKLES_REFUSED, Catalog, ModelSource
from worker.separation import ModelCache
from worker.weights import WeightsRefused

#: Where each test model sits on the mirror (demucs' two download roots).
ROOTS = {
    "a1b2c3d4": "hybrid_transformer/",
    "f1000001": "hybrid_transformer/",
    "f1000002": "hybrid_transformer/",
    "b6b6b6b6": "hybrid_transformer/",
    "c0ffee01": "mdx_final/",
    "d0d0d0d1": "mdx_final/",
    "d0d0d0d2": "mdx_final/",
}


@dataclass
class Mirror:
    base_url: str
    catalog: Path
    #: relative path -> bytes served
    files: dict[str, bytes]
    requests: list[str] = field(default_factory=list)
    #: paths served with wrong bytes
    corrupt: set[str] = field(default_factory=set)
    #: every other path gets these bytes (for demucs' real catalog)
    fallback: bytes | None = None

    def path_of(self, model_repo: Path, sig: str) -> str:
        return ROOTS[sig] + next(model_repo.glob(f"{sig}-*.th")).name


def write_catalog(model_repo: Path, folder: Path) -> dict[str, bytes]:
    """A catalog in demucs' remote format for the test repo; returns the mirror's files."""
    folder.mkdir()
    lines, files, root = ["# test models"], {}, ""
    for sig, sig_root in ROOTS.items():
        if sig_root != root:
            root = sig_root
            lines.append(f"root: {root}")
        path = next(model_repo.glob(f"{sig}-*.th"))
        lines.append(path.name)
        files[root + path.name] = path.read_bytes()
    (folder / "files.txt").write_text("\n".join(lines) + "\n")
    for bag in model_repo.glob("*.yaml"):
        shutil.copy(bag, folder / bag.name)
    return files


@pytest.fixture
async def mirror(model_repo: Path, tmp_path: Path) -> AsyncIterator[Mirror]:
    found = Mirror("", tmp_path / "catalog", write_catalog(model_repo, tmp_path / "catalog"))

    async def serve(request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        found.requests.append(path)
        body = found.files.get(path, found.fallback)
        if body is None:
            return web.Response(status=404)
        if path in found.corrupt:
            body = body[:-1] + bytes([body[-1] ^ 1])
        return web.Response(body=body, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/demucs/{path:.+}", serve)
    async with serving(app) as base:
        found.base_url = f"{base}/demucs/"
        yield found


@pytest.fixture
def env(tmp_path: Path, mirror: Mirror) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in env_names()}
    return dict(
        clean,
        STEMBOT_MODEL_REPO=str(tmp_path / "models"),
        STEMBOT_MODEL_BASE_URL=mirror.base_url,
        STEMBOT_ALLOW_PICKLED_WEIGHTS="true",
    )


async def stembot(
    *args: str, env: dict[str, str], cwd: Path, process: bool = False
) -> tuple[int, str]:
    """`stembot ARGS`: exit code and stderr (stdout stays empty); in this process unless
    ``process`` (the installed command)."""
    ran = await (installed if process else in_process)(*args, env=env, cwd=cwd)
    assert ran.out == ""
    return ran.code, ran.err


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


async def test_pull_downloads_verifies_and_the_worker_loads_it(
    mirror: Mirror, env: dict[str, str], tmp_path: Path, model_repo: Path
) -> None:
    repo = tmp_path / "models"
    code, err = await stembot(
        "models", "pull", "--legacy", "htdemucs", "htdemucs_ft", "--catalog", str(mirror.catalog),
        env=env, cwd=tmp_path, process=True,
    )  # fmt: skip
    assert code == 0, err
    names = {sig: Path(mirror.path_of(model_repo, sig)).name for sig in ROOTS}
    assert err.splitlines() == [
        f"htdemucs: {names['a1b2c3d4']} downloaded, checksum ok ({mb(repo / names['a1b2c3d4'])})",
        f"htdemucs: ready in {repo}",
        f"htdemucs_ft: {names['f1000001']} downloaded, checksum ok "
        f"({mb(repo / names['f1000001'])})",
        f"htdemucs_ft: {names['f1000002']} downloaded, checksum ok "
        f"({mb(repo / names['f1000002'])})",
        f"htdemucs_ft: ready in {repo}",
    ]
    assert mirror.requests == [
        mirror.path_of(model_repo, s) for s in ("a1b2c3d4", "f1000001", "f1000002")
    ]
    pulled = [names[s] for s in ("a1b2c3d4", "f1000001", "f1000002")]
    assert listing(repo) == sorted(
        [".stembot-downloaded", "htdemucs.yaml", "htdemucs_ft.yaml", *pulled]
    )
    assert (repo / ".stembot-downloaded").read_text().split() == pulled

    # the worker's model cache loads what was pulled, with the served weights, when allowed
    cache = ModelCache(repo, "cpu", source=ModelSource(repo, allow_pickled=True))
    bag = cache.get("htdemucs_ft")
    assert isinstance(bag, BagOfModels)
    served = yaml.safe_load((model_repo / "htdemucs_ft.yaml").read_text())
    assert bag.weights == served["weights"]
    for model, sig in zip(bag.models, ("f1000001", "f1000002"), strict=True):
        original = load_model(model_repo / names[sig])
        for (key, got), (_, want) in zip(
            model.state_dict().items(), original.state_dict().items(), strict=True
        ):
            assert torch.equal(got, want), key
    assert cache.get("htdemucs").sources == ["drums", "bass", "other", "vocals"]
    with pytest.raises(ModelUnavailable):
        cache.get("htdemucs_6s")  # not pulled


async def test_a_second_pull_fetches_nothing_and_a_damaged_file_is_fetched_again(
    mirror: Mirror, env: dict[str, str], tmp_path: Path, model_repo: Path
) -> None:
    repo = tmp_path / "models"
    args = ("models", "pull", "--legacy", "hdemucs_mmi", "--catalog", str(mirror.catalog))
    assert (await stembot(*args, env=env, cwd=tmp_path))[0] == 0
    path = mirror.path_of(model_repo, "c0ffee01")
    name = Path(path).name
    assert mirror.requests == [path]
    before = (repo / name).stat().st_mtime_ns

    code, err = await stembot(*args, env=env, cwd=tmp_path)
    assert code == 0, err
    assert err == f"hdemucs_mmi: {name} already present\nhdemucs_mmi: ready in {repo}\n"
    assert mirror.requests == [path]
    assert (repo / name).stat().st_mtime_ns == before

    (repo / name).write_bytes(b"truncated")
    code, err = await stembot(*args, env=env, cwd=tmp_path)
    assert code == 0, err
    assert err.splitlines() == [
        f"hdemucs_mmi: {name} is damaged, fetching it again",
        f"hdemucs_mmi: {name} downloaded, checksum ok ({mb(repo / name)})",
        f"hdemucs_mmi: ready in {repo}",
    ]
    assert (repo / name).read_bytes() == mirror.files[path]
    assert mirror.requests == [path, path]


async def test_a_download_failing_its_checksum_is_not_kept(
    mirror: Mirror, env: dict[str, str], tmp_path: Path, model_repo: Path
) -> None:
    bad = mirror.path_of(model_repo, "f1000002")
    mirror.corrupt.add(bad)
    code, err = await stembot(
        "models", "pull", "--legacy", "htdemucs_ft", "--catalog", str(mirror.catalog),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert code == 1
    name = Path(bad).name
    assert err.splitlines()[-1].startswith(
        f"stembot: {name} from {mirror.base_url}{bad} failed its checksum (sha256 "
    )
    assert err.endswith(f"expected {name[9:17]}...): nothing was kept\n")
    # the good model stays (a later pull skips it); no bag, no partial file
    good = Path(mirror.path_of(model_repo, "f1000001")).name
    assert listing(tmp_path / "models") == [".stembot-downloaded", good]


async def test_unknown_names_fail_before_any_download(
    mirror: Mirror, env: dict[str, str], tmp_path: Path
) -> None:
    code, err = await stembot(
        "models", "pull", "--legacy", "htdemucs", "spleeter", "--catalog", str(mirror.catalog),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert code == 1
    assert err == (
        "stembot: unknown model 'spleeter' "
        "(known: htdemucs, htdemucs_ft, htdemucs_6s, hdemucs_mmi, mdx_extra_q)\n"
    )
    assert mirror.requests == []
    assert not (tmp_path / "models").exists()


async def test_no_network_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = dict(env, STEMBOT_MODEL_BASE_URL=f"http://127.0.0.1:{port}/demucs")
    code, err = await stembot("models", "pull", "--legacy", "htdemucs", env=env, cwd=tmp_path)
    assert code == 1
    assert err.startswith(f"stembot: cannot reach 127.0.0.1:{port} (")
    assert err.endswith("): no network?\n")
    assert err.count("\n") == 1
    assert listing(tmp_path / "models") == []


async def test_without_a_model_folder_it_says_which_setting(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in env.items() if k != "STEMBOT_MODEL_REPO"}
    code, err = await stembot("models", "pull", "--legacy", "htdemucs", env=env, cwd=tmp_path)
    assert code == 1
    assert err == (
        "stembot: no model folder: set STEMBOT_MODEL_REPO (the folder the workers load "
        "models from) or pass --dir\n"
    )


async def test_the_real_names_ask_the_mirror_for_demucs_released_files(
    mirror: Mirror, env: dict[str, str], tmp_path: Path
) -> None:
    """With demucs' own catalog: the released file's path, and its checksum enforced."""
    mirror.fallback = b"not the released weights"
    code, err = await stembot("models", "pull", "--legacy", "htdemucs", env=env, cwd=tmp_path)
    assert code == 1
    assert mirror.requests == ["hybrid_transformer/955717e8-8726e21a.th"]
    assert err.startswith(
        f"stembot: 955717e8-8726e21a.th from {mirror.base_url}"
        "hybrid_transformer/955717e8-8726e21a.th failed its checksum"
    )
    assert listing(tmp_path / "models") == []


def test_every_offered_model_resolves_in_demucs_catalog() -> None:
    catalog = Catalog.load()
    plans = {name: [f.path for f in catalog.plan(name)] for name in MODELS}
    ht, mdx = "hybrid_transformer/", "mdx_final/"
    assert plans == {
        "htdemucs": [ht + "955717e8-8726e21a.th"],
        "htdemucs_ft": [
            ht + "f7e0c4bc-ba3fe64a.th",
            ht + "d12395a8-e57c48e6.th",
            ht + "92cfc3b6-ef3bcb9c.th",
            ht + "04573f0d-f3cf25b2.th",
        ],
        "htdemucs_6s": [ht + "5c90dfd2-34c22ccb.th"],
        "hdemucs_mmi": [ht + "75fc33f5-1941ce65.th"],
        "mdx_extra_q": [
            mdx + "83fc094f-4a16d450.th",
            mdx + "464b36d7-e5a9386e.th",
            mdx + "14fc6a69-a89dd0ee.th",
            mdx + "7fd6ef75-a905dd85.th",
        ],
    }
    assert Settings().separation.model_base_url == pretrained.ROOT_URL
    assert Settings(model_base_url="https://mirror.example/d").separation.model_base_url == (
        "https://mirror.example/d/"
    )


async def test_downloaded_pickles_are_refused_unless_allowed(
    mirror: Mirror, env: dict[str, str], tmp_path: Path
) -> None:
    """Without STEMBOT_ALLOW_PICKLED_WEIGHTS: one line, before anything is asked for."""
    env = {k: v for k, v in env.items() if k != "STEMBOT_ALLOW_PICKLED_WEIGHTS"}
    code, err = await stembot(
        "models", "pull", "--legacy", "htdemucs", "--catalog", str(mirror.catalog),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert code == 1
    assert err == f"stembot: {PICKLES_REFUSED}\n"
    assert err == (
        "stembot: pickled weights (.th) from a download run code when loaded: refused "
        "(STEMBOT_ALLOW_PICKLED_WEIGHTS=true allows them; `stembot models pull` without "
        "--legacy fetches safetensors from the HuggingFace hub)\n"
    )
    assert mirror.requests == []
    assert not (tmp_path / "models").exists()


async def test_pulled_pickles_do_not_load_once_the_setting_is_off(
    mirror: Mirror, env: dict[str, str], tmp_path: Path, model_repo: Path
) -> None:
    """The folder remembers what was downloaded; the operator's own files still load."""
    repo = tmp_path / "models"
    code, err = await stembot(
        "models", "pull", "--legacy", "hdemucs_mmi", "--catalog", str(mirror.catalog),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    name = Path(mirror.path_of(model_repo, "c0ffee01")).name
    assert (repo / ".stembot-downloaded").read_text() == f"{name}\n"
    with pytest.raises(ModelUnavailable) as caught:
        ModelCache(repo, "cpu").get("hdemucs_mmi")
    assert isinstance(caught.value.__cause__, WeightsRefused)
    assert str(caught.value.__cause__) == (
        f"{name} in {repo} was downloaded (`stembot models pull --legacy`) and is a pickle, "
        "which runs code when loaded: refused (STEMBOT_ALLOW_PICKLED_WEIGHTS=true allows it)"
    )
    # by signature too, not only by bag name
    with pytest.raises(ModelUnavailable):
        ModelCache(repo, "cpu").get("c0ffee01")
    # a file the operator put there is theirs: it loads
    shutil.copy(model_repo / "htdemucs.yaml", repo)
    shutil.copy(next(model_repo.glob("a1b2c3d4-*.th")), repo)
    assert ModelCache(repo, "cpu").get("htdemucs").sources == ["drums", "bass", "other", "vocals"]
