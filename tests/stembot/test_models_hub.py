"""`stembot models pull` from the HuggingFace hub, and the workers loading what it pulled.

huggingface_hub's own client pointed (HF_ENDPOINT) at a local server speaking the hub's
download API (tests/support/fake_hub.py), serving the random-weight test models in demucs' hub
format. The first test starts the installed command; the others run the same `main` in this
process (tests/support/cli.py: seconds less each). The worker side is the worker's own
ModelCache over the cache the pull filled, offline.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import torch
from demucs.apply import BagOfModels

from shared.config import Settings, env_names
from shared.errors import ModelUnavailable
from shared.redis_server import free_port
from tests.support.cli import in_process, installed
from tests.support.fake_hub import FakeHub, hub_repos, serve_hub
from worker.hub import Hub, NotCached
from worker.models import ModelSource
from worker.separation import ModelCache
from worker.weights import WeightsRefused, load_safetensors_model

HT, FT = "adefossez/HTDemucs", "adefossez/HTDemucs-ft"


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    from worker.demo_models import write_model_repo

    return hub_repos(write_model_repo(tmp_path_factory.mktemp("models")))


@pytest.fixture
async def hub(repos: dict[str, dict[str, bytes]]) -> AsyncIterator[FakeHub]:
    fake = FakeHub()
    for rid, files in repos.items():
        fake.publish(rid, files)
    async for served in serve_hub(fake):
        yield served


@pytest.fixture
def env(tmp_path: Path, hub: FakeHub) -> dict[str, str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in env_names() and not k.startswith("HF_")
    }
    return dict(clean, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"))


def cache(tmp_path: Path) -> Path:
    return tmp_path / "hf" / "hub"


def offline(tmp_path: Path, **kw: object) -> ModelCache:
    """The worker's model cache, never downloading (STEMBOT_MODEL_OFFLINE)."""
    hub = Hub(cache_dir=cache(tmp_path), endpoint="http://127.0.0.1:9", **kw)  # type: ignore[arg-type]
    return ModelCache(None, "cpu", source=ModelSource(hub=hub, offline=True))


async def stembot(
    *args: str, env: dict[str, str], cwd: Path, process: bool = False
) -> tuple[int, str]:
    """`stembot ARGS`: exit code and stderr (stdout stays empty); in this process unless
    ``process`` (the installed command)."""
    ran = await (installed if process else in_process)(*args, env=env, cwd=cwd)
    assert ran.out == ""
    return ran.code, ran.err


def mb(data: bytes) -> str:
    return f"{len(data) / 1e6:.1f} MB"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_weights(model: torch.nn.Module, data: bytes, tmp_path: Path) -> None:
    """``model`` holds exactly the weights of the served safetensors ``data``."""
    path = tmp_path / f"expected-{sha(data)[:8]}.safetensors"
    path.write_bytes(data)
    want = load_safetensors_model(path)
    for (key, got), (_, expected) in zip(
        model.state_dict().items(), want.state_dict().items(), strict=True
    ):
        assert torch.equal(got, expected), key


async def test_pull_verifies_pins_the_commit_and_workers_load_it_offline(
    hub: FakeHub, env: dict[str, str], tmp_path: Path
) -> None:
    code, err = await stembot(
        "models", "pull", "htdemucs", "htdemucs_ft", env=env, cwd=tmp_path, process=True
    )
    assert code == 0, err
    ht, ft = hub.refs[HT]["main"], hub.refs[FT]["main"]
    files = hub.commits[FT][ft]
    assert err.splitlines() == [
        "htdemucs: htdemucs.yaml downloaded, hash ok (0.0 MB)",
        f"htdemucs: a1b2c3d4.safetensors downloaded, hash ok "
        f"({mb(hub.commits[HT][ht]['a1b2c3d4.safetensors'])})",
        f"htdemucs: ready ({HT} at {ht[:12]}, in {cache(tmp_path)})",
        "htdemucs_ft: htdemucs_ft.yaml downloaded, hash ok (0.0 MB)",
        f"htdemucs_ft: f1000001.safetensors downloaded, hash ok "
        f"({mb(files['f1000001.safetensors'])})",
        f"htdemucs_ft: f1000002.safetensors downloaded, hash ok "
        f"({mb(files['f1000002.safetensors'])})",
        f"htdemucs_ft: ready ({FT} at {ft[:12]}, in {cache(tmp_path)})",
    ]
    # the bag at the revision, then every model file at the bag's commit
    gets = [path for method, path in hub.requests if method == "GET"]
    assert gets == [
        f"{HT}/main/htdemucs.yaml",
        f"{HT}/{ht}/a1b2c3d4.safetensors",
        f"{FT}/main/htdemucs_ft.yaml",
        f"{FT}/{ft}/f1000001.safetensors",
        f"{FT}/{ft}/f1000002.safetensors",
    ]

    # main moves on: the workers keep the commit that was pulled, and never ask the hub
    hub.publish(FT, {**files, "f1000001.safetensors": hub.commits[HT][ht]["a1b2c3d4.safetensors"]})
    asked = len(hub.requests)
    models = offline(tmp_path)
    bag = models.get("htdemucs_ft")
    assert isinstance(bag, BagOfModels)
    assert bag.weights == [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]
    assert_weights(bag.models[0], files["f1000001.safetensors"], tmp_path)
    assert_weights(bag.models[1], files["f1000002.safetensors"], tmp_path)
    assert models.get("htdemucs").sources == ["drums", "bass", "other", "vocals"]
    assert len(hub.requests) == asked

    with pytest.raises(ModelUnavailable) as caught:
        models.get("htdemucs_6s")  # never pulled
    assert isinstance(caught.value.__cause__, NotCached)
    assert str(caught.value.__cause__) == (
        f"htdemucs_6s is not in the model cache {cache(tmp_path)}: "
        "`stembot models pull htdemucs_6s` fetches it"
    )


async def test_a_second_pull_fetches_no_weights_and_a_damaged_file_is_fetched_again(
    hub: FakeHub, env: dict[str, str], tmp_path: Path
) -> None:
    ht = hub.refs[HT]["main"]
    weights = hub.commits[HT][ht]["a1b2c3d4.safetensors"]
    assert (await stembot("models", "pull", "htdemucs", env=env, cwd=tmp_path))[0] == 0
    hub.requests.clear()
    code, err = await stembot("models", "pull", "htdemucs", env=env, cwd=tmp_path)
    assert code == 0, err
    assert err.splitlines() == [
        "htdemucs: htdemucs.yaml already present, hash ok (0.0 MB)",
        f"htdemucs: a1b2c3d4.safetensors already present, hash ok ({mb(weights)})",
        f"htdemucs: ready ({HT} at {ht[:12]}, in {cache(tmp_path)})",
    ]
    assert hub.requests == [("HEAD", f"{HT}/main/htdemucs.yaml")]  # is main still there?

    # a damaged blob: the worker refuses it, the next pull replaces it
    blob = cache(tmp_path) / "models--adefossez--HTDemucs" / "blobs" / sha(weights)
    damaged = weights[:-1] + b"\0"
    blob.write_bytes(damaged)
    with pytest.raises(ModelUnavailable) as caught:
        offline(tmp_path).get("htdemucs")
    assert isinstance(caught.value.__cause__, WeightsRefused)
    assert str(caught.value.__cause__) == (
        f"{HT}/a1b2c3d4.safetensors in {cache(tmp_path)} failed its hash check "
        f"(got {sha(damaged)[:16]}..., expected {sha(weights)[:16]}...)"
    )
    code, err = await stembot("models", "pull", "htdemucs", env=env, cwd=tmp_path)
    assert code == 0, err
    assert err.splitlines()[1:3] == [
        "htdemucs: a1b2c3d4.safetensors in the cache is damaged, fetching it again",
        f"htdemucs: a1b2c3d4.safetensors downloaded, hash ok ({mb(weights)})",
    ]
    assert blob.read_bytes() == weights
    assert offline(tmp_path).get("htdemucs").sources == ["drums", "bass", "other", "vocals"]


async def test_a_download_failing_its_hash_is_not_kept(
    hub: FakeHub, env: dict[str, str], tmp_path: Path
) -> None:
    hub.corrupt.add((FT, "f1000002.safetensors"))
    ft = hub.refs[FT]["main"]
    good = hub.commits[FT][ft]["f1000002.safetensors"]
    bad = good[:-1] + bytes([good[-1] ^ 1])
    code, err = await stembot("models", "pull", "htdemucs_ft", env=env, cwd=tmp_path)
    assert code == 1
    assert err.splitlines()[-1] == (
        f"stembot: {FT}/f1000002.safetensors failed its hash check (got {sha(bad)[:16]}..., "
        f"expected {sha(good)[:16]}...) at {ft[:12]}: removed"
    )
    blobs = cache(tmp_path) / "models--adefossez--HTDemucs-ft" / "blobs"
    assert not (blobs / sha(good)).exists()
    assert not (blobs.parent / "snapshots" / ft / "f1000002.safetensors").exists()
    with pytest.raises(ModelUnavailable):
        offline(tmp_path).get("htdemucs_ft")


async def test_a_pinned_revision_is_what_is_pulled_and_loaded(
    hub: FakeHub, env: dict[str, str], tmp_path: Path
) -> None:
    old = hub.refs[HT]["main"]
    files = hub.commits[HT][old]
    other = hub.commits[FT][hub.refs[FT]["main"]]["f1000001.safetensors"]
    new = hub.publish(HT, {**files, "a1b2c3d4.safetensors": other})
    pins = json.dumps({"htdemucs": old})
    code, err = await stembot(
        "models", "pull", "htdemucs", env=dict(env, STEMBOT_MODEL_REVISIONS=pins), cwd=tmp_path
    )
    assert code == 0, err
    assert err.splitlines()[-1] == f"htdemucs: ready ({HT} at {old[:12]}, in {cache(tmp_path)})"
    assert new != old
    model = offline(tmp_path, revisions={"htdemucs": old}).get("htdemucs")
    assert_weights(model.models[0], files["a1b2c3d4.safetensors"], tmp_path)

    code, err = await stembot(
        "models", "pull", "htdemucs", cwd=tmp_path,
        env=dict(env, STEMBOT_MODEL_REVISIONS='{"htdemucs": "deadbeef"}'),
    )  # fmt: skip
    assert code == 1
    assert err == f"stembot: {HT} has no revision 'deadbeef' on {hub.url}\n"


async def test_what_is_refused_before_any_download(
    hub: FakeHub, env: dict[str, str], tmp_path: Path
) -> None:
    code, err = await stembot("models", "pull", "htdemucs", "spleeter", env=env, cwd=tmp_path)
    assert (code, err) == (
        1,
        "stembot: unknown model 'spleeter' "
        "(known: htdemucs, htdemucs_ft, htdemucs_6s, hdemucs_mmi, mdx_extra_q)\n",
    )
    repo_env = dict(env, STEMBOT_MODEL_REPO=str(tmp_path / "mine"))
    code, err = await stembot("models", "pull", "htdemucs", env=repo_env, cwd=tmp_path)
    assert (code, err) == (
        1,
        f"stembot: STEMBOT_MODEL_REPO is set ({tmp_path / 'mine'}): the workers load that "
        "folder, not the models pulled from the hub; unset it to use them\n",
    )
    assert hub.requests == []
    port = free_port()
    code, err = await stembot(
        "models", "pull", "htdemucs", env=dict(env, HF_ENDPOINT=f"http://127.0.0.1:{port}"),
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 1
    assert err.startswith(f"stembot: cannot reach the model hub http://127.0.0.1:{port} (")
    assert err.endswith("): no network?\n")
    assert err.count("\n") == 1


async def test_a_worker_allowed_to_download_pulls_a_missing_model(
    hub: FakeHub, tmp_path: Path
) -> None:
    source = ModelSource(hub=Hub(endpoint=hub.url, cache_dir=cache(tmp_path)))
    model = await asyncio.to_thread(ModelCache(None, "cpu", source=source).get, "hdemucs_mmi")
    assert type(model.models[0]).__name__ == "HDemucs"
    gets = [path for method, path in hub.requests if method == "GET"]
    assert [p.rsplit("/", 1)[1] for p in gets] == ["hdemucs_mmi.yaml", "c0ffee01.safetensors"]


def test_revisions_name_known_models() -> None:
    assert Settings(model_revisions={"htdemucs": "abc"}).separation.model_revisions == {
        "htdemucs": "abc"
    }
    with pytest.raises(ValueError, match="unknown model 'spleeter'"):
        Settings(model_revisions={"spleeter": "abc"})
    s = Settings()
    assert (s.separation.model_offline, s.separation.allow_pickled_weights) == (False, False)
