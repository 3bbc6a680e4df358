"""A local stand-in for the HuggingFace hub: the part of its API huggingface_hub downloads with.

``HEAD``/``GET /{namespace}/{repo}/resolve/{revision}/{file}`` answer as the hub does: the
commit in ``X-Repo-Commit``; a weights file (git LFS on the hub) with its sha256 in
``X-Linked-Etag`` and its size in ``X-Linked-Size``; a small file with its git blob sha1 as
``ETag``; errors with the hub's ``X-Error-Code``. Repositories hold demucs' hub format (the bag
yaml and one ``SIG.safetensors`` per model, the model class and arguments in its metadata, as
demucs' ``tools/export_hf.py`` writes them), made from the random-weight test models.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from aiohttp import web
from safetensors.torch import save

from tests.support.web import serving
from worker.hub import repo_id


def safetensors_bytes(package: dict[str, Any], klass: str | None = None) -> bytes:
    """A demucs model package (klass, args, kwargs, state) in demucs' hub format."""
    cls = package["klass"]
    metadata = {
        "klass": klass or f"{cls.__module__}.{cls.__name__}",
        "args": json.dumps(list(package["args"])),
        "kwargs": json.dumps(package["kwargs"]),
    }
    state = {k: v.contiguous() for k, v in package["state"].items()}
    return save(state, metadata)


def hub_repos(model_repo: Path) -> dict[str, dict[str, bytes]]:
    """The test model folder as hub repositories: repo id -> file name -> bytes."""
    repos: dict[str, dict[str, bytes]] = {}
    for bag_path in sorted(model_repo.glob("*.yaml")):
        name = bag_path.stem
        files = {bag_path.name: bag_path.read_bytes()}
        for sig in yaml.safe_load(bag_path.read_text())["models"]:
            th = next(model_repo.glob(f"{sig}-*.th"))
            package = torch.load(th, "cpu", weights_only=False)  # the tests' own file
            files[f"{sig}.safetensors"] = safetensors_bytes(package)
        repos[repo_id(name)] = files
    return repos


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass
class FakeHub:
    url: str = ""
    #: repo id -> commit -> file name -> bytes
    commits: dict[str, dict[str, dict[str, bytes]]] = field(default_factory=dict)
    #: repo id -> branch -> commit
    refs: dict[str, dict[str, str]] = field(default_factory=dict)
    #: (method, "repo_id/revision/file") for every request
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: (repo id, file): served with one byte changed (the headers keep the true hash)
    corrupt: set[tuple[str, str]] = field(default_factory=set)

    def publish(self, rid: str, files: dict[str, bytes], branch: str = "main") -> str:
        """A new commit on ``branch`` holding ``files``; returns its hash."""
        seed = json.dumps([rid, len(self.commits.get(rid, {}))]).encode()
        commit = hashlib.sha1(seed, usedforsecurity=False).hexdigest()
        self.commits.setdefault(rid, {})[commit] = dict(files)
        self.refs.setdefault(rid, {})[branch] = commit
        return commit

    async def resolve(self, request: web.Request) -> web.Response:
        rid = f"{request.match_info['ns']}/{request.match_info['repo']}"
        revision, filename = request.match_info["revision"], request.match_info["file"]
        self.requests.append((request.method, f"{rid}/{revision}/{filename}"))
        if rid not in self.commits:
            return web.Response(status=401, headers={"X-Error-Code": "RepoNotFound"})
        commit = self.refs[rid].get(revision, revision)
        if commit not in self.commits[rid]:
            return web.Response(status=404, headers={"X-Error-Code": "RevisionNotFound"})
        headers = {"X-Repo-Commit": commit}
        data = self.commits[rid][commit].get(filename)
        if data is None:
            return web.Response(status=404, headers={**headers, "X-Error-Code": "EntryNotFound"})
        if filename.endswith(".safetensors"):
            digest = hashlib.sha256(data).hexdigest()
            headers.update({"X-Linked-Etag": f'"{digest}"', "X-Linked-Size": str(len(data))})
            headers["ETag"] = f'"{digest}"'
        else:
            headers["ETag"] = f'"{git_blob_sha1(data)}"'
        if (rid, filename) in self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        return web.Response(body=data, headers=headers, content_type="application/octet-stream")


async def serve_hub(hub: FakeHub) -> AsyncIterator[FakeHub]:
    app = web.Application()
    route = "/{ns}/{repo}/resolve/{revision}/{file:.+}"
    app.router.add_route("HEAD", route, hub.resolve)
    app.router.add_get(route, hub.resolve, allow_head=False)
    async with serving(app) as base:
        hub.url = base
        yield hub
