"""The deployment files: Dockerfile, .dockerignore and docker-compose.yml.

No Docker engine is needed: the compose file is validated against the Compose
Specification's JSON schema (vendored by check-jsonschema), the Dockerfile is linted by
hadolint, and the promises the files make (ports, health checks, GPU reservation, commands,
settings) are checked against the code that has to keep them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from stembot.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
HADOLINT_CONFIG = ROOT / ".hadolint.yaml"
LOCK = ROOT / "requirements.lock"
BIN = Path(sys.executable).parent

REDIS_URL = "redis://redis:6379/0"
STEMBOT_SERVICES = ("worker-gpu", "worker-cpu", "worker-download", "web", "discord", "telegram")
BOTS = ("discord", "telegram")
LOOPBACK = ("127.0.0.1", "::1", "[::1]", "localhost")


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def tool(name: str) -> str:
    """A dev tool installed next to this interpreter (the project venv), else on PATH."""
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return path


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, either syntax (map or list of KEY=VALUE)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def published(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(host_ip, published port) for each port a service publishes; host_ip '' = all."""
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            yield str(port.get("host_ip", "")), str(port.get("published", ""))
            continue
        spec = str(port).split("/", 1)[0]  # drop /tcp, /udp
        if spec.startswith("["):  # [::1]:6379:6379
            host, _, rest = spec[1:].partition("]:")
            yield host, rest.split(":", 1)[0]
            continue
        parts = spec.split(":")
        if len(parts) == 3:
            yield parts[0], parts[1]
        elif len(parts) == 2:
            yield "", parts[0]
        else:  # a container port only: docker picks a random port on every interface
            yield "", ""


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined, comments dropped), by stage."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[str]] = []
    for line in logical:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def torch_spec_in_makefile() -> str:
    match = re.search(r"^TORCH_SPEC \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "Makefile has no TORCH_SPEC"
    return match.group(1)


# --- schema and lint -----------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_compose_file(tmp_path: Path) -> None:
    broken = COMPOSE.read_text().replace("    healthcheck:\n", "    health_check:\n", 1)
    assert broken != COMPOSE.read_text()
    path = tmp_path / "docker-compose.yml"
    path.write_text(broken)
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", path)
    assert result.returncode != 0
    assert "health_check" in result.stdout + result.stderr


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return run(
        tool("hadolint"),
        "--config",
        HADOLINT_CONFIG,
        "--failure-threshold",
        "style",
        "--no-color",
        path,
    )


def test_dockerfile_passes_hadolint() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text('FROM python:latest\nRUN cd /tmp && pip install requests\nCMD ["python"]\n')
    result = hadolint(path)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # :latest


# --- the Dockerfile ------------------------------------------------------------------------


def test_dockerfile_builds_a_venv_in_a_builder_and_ships_it_in_a_slim_runtime() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: a builder and a runtime"
    builder, runtime = stages[0], stages[-1]
    assert re.match(r"FROM python:\$\{PYTHON_VERSION\}-slim AS builder", builder[0])
    assert re.match(r"FROM python:\$\{PYTHON_VERSION\}-slim AS runtime", runtime[0])
    builder_text = "\n".join(builder)
    torch = builder_text.index('pip install --index-url "${TORCH_INDEX}" "${TORCH_SPEC}"')
    lock = builder_text.index("pip install --no-deps --require-hashes -r requirements.lock")
    project = builder_text.index("pip install --no-deps --no-build-isolation .")
    assert torch < lock < project
    assert "COPY requirements.lock ./" in builder_text
    assert "pip check" in builder_text[project:]  # the lock, torch and the project agree
    runtime_text = "\n".join(runtime)
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime_text
    assert re.search(r"apt-get install .*\bffmpeg\b", runtime_text)
    assert "pip install" not in runtime_text


def test_dockerfile_default_python_satisfies_requires_python() -> None:
    match = re.search(r"^ARG PYTHON_VERSION=(\d+)\.(\d+)$", DOCKERFILE.read_text(), re.M)
    assert match
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    low = re.fullmatch(r">=(\d+)\.(\d+)", project["requires-python"])
    assert low
    assert (int(match[1]), int(match[2])) >= (int(low[1]), int(low[2]))


def test_the_image_ships_the_python_minor_the_tests_run_on() -> None:
    """CI runs `make test` in the venv the Makefile makes with the image's Python: the same
    minor version everywhere, and the linters target it too."""
    match = re.search(r"^ARG PYTHON_VERSION=(\d+\.\d+)$", DOCKERFILE.read_text(), re.M)
    assert match
    image = match[1]
    assert image == f"{sys.version_info.major}.{sys.version_info.minor}"
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert tool["ruff"]["target-version"] == "py" + image.replace(".", "")
    assert tool["mypy"]["python_version"] == image
    makefile = (ROOT / "Makefile").read_text()
    assert "PYTHON_VERSION := $(shell sed -n 's/^ARG PYTHON_VERSION=//p' Dockerfile)" in makefile
    assert "--python-version $(PYTHON_VERSION)" in makefile  # `make lock` resolves for it


# --- requirements.lock ---------------------------------------------------------------------


def locked() -> dict[str, tuple[Version, list[str]]]:
    """Each pinned package of the lock: its version and hashes."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    text = LOCK.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spec, *options = line.split(" --hash=")
        name, _, version = spec.strip().partition("==")
        assert version, f"not pinned: {line[:60]}"
        pins[canonicalize_name(name)] = (Version(version), [h.strip() for h in options])
    return pins


def test_the_lock_pins_every_main_dependency_with_hashes_and_no_torch() -> None:
    pins = locked()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        wanted = Requirement(line)
        name = canonicalize_name(wanted.name)
        if name == "torch":
            continue
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        version, _ = pins[name]
        assert wanted.specifier.contains(version, prereleases=True), (
            f"requirements.lock has {name}=={version}, pyproject asks {wanted.specifier}: "
            "run `make lock`"
        )
    for pinned, (_, hashes) in pins.items():
        assert hashes and all(h.startswith("sha256:") for h in hashes), pinned
    # each image installs its own torch build first; the lock must not replace it, nor bring
    # CUDA libraries into the CPU image
    assert not [n for n in pins if n in ("torch", "triton") or n.startswith("nvidia-")]
    assert not {"pytest", "ruff", "mypy", "deptry", "moto", "playwright"} & pins.keys()  # dev


def test_dockerfile_torch_defaults_match_the_makefile_and_compose(
    services: dict[str, dict[str, Any]],
) -> None:
    spec = torch_spec_in_makefile()
    text = DOCKERFILE.read_text()
    assert f"ARG TORCH_SPEC={spec}\n" in text
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu\n" in text
    for name in STEMBOT_SERVICES:
        assert services[name]["build"]["args"]["TORCH_SPEC"] == spec, name
    assert services["worker-cpu"]["build"]["args"]["TORCH_INDEX"].endswith("/whl/cpu")
    assert "/whl/cu" in services["worker-gpu"]["build"]["args"]["TORCH_INDEX"]


def test_dockerfile_runs_stembot_as_a_non_root_user() -> None:
    runtime = dockerfile_stages()[-1]
    users = [line.split(None, 1)[1] for line in runtime if line.upper().startswith("USER ")]
    assert users, "the runtime stage sets no USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    entrypoints = [line for line in runtime if line.upper().startswith("ENTRYPOINT ")]
    assert entrypoints == ['ENTRYPOINT ["stembot"]']
    text = "\n".join(runtime)
    for setting in ("HF_HOME=/models/hf", "STEMBOT_STORAGE_DIR=/data", "STEMBOT_WEB_HOST=0.0.0.0"):
        assert setting in text


def test_dockerfile_copies_every_package_the_project_installs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", DOCKERFILE.read_text(), re.M))
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
    assert "COPY pyproject.toml README.md ./" in DOCKERFILE.read_text()  # readme = README.md


def test_dockerignore_keeps_secrets_out_and_the_sources_in() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", ".git", "data"} <= patterns
    needed_files = ("pyproject.toml", "README.md", "requirements.lock")
    for needed in (*needed_files, "shared", "worker", "bots", "stembot"):
        assert needed not in patterns, needed


# --- docker-compose.yml --------------------------------------------------------------------


def test_compose_has_every_service(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"redis", *STEMBOT_SERVICES}


def test_redis_persists_and_reports_health(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    command = redis["command"]
    words = command.split() if isinstance(command, str) else command
    assert words[words.index("--appendonly") + 1] == "yes"
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    volume = next(v for v in redis["volumes"] if v.endswith(":/data"))
    assert volume.split(":")[0] in compose["volumes"]  # a named volume, not a bind mount


def test_only_web_is_public_and_redis_only_on_loopback(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for host_ip, port in published(service):
            if name == "web":
                assert port == "8080"
                continue
            assert host_ip in LOOPBACK, f"{name} publishes {port} on {host_ip or 'every interface'}"
            assert name == "redis", f"{name} publishes a port"
    assert list(published(services["web"])) == [("", "8080")]


def test_worker_gpu_reserves_an_nvidia_gpu_behind_a_profile(
    services: dict[str, dict[str, Any]],
) -> None:
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert environment(gpu)["STEMBOT_DEVICE"] == "cuda"
    for name in STEMBOT_SERVICES:
        if name != "worker-gpu":
            assert "profiles" not in services[name], f"{name} would not start by default"
            assert "deploy" not in services[name], name


def test_bots_restart_on_failure_only_and_a_bounded_number_of_times(
    services: dict[str, dict[str, Any]],
) -> None:
    """A bot without its token exits 0 and must stay down; one that fails is retried a few
    times, not for ever (a rejected token would loop)."""
    for name in BOTS:
        policy = re.fullmatch(r"on-failure:(\d+)", str(services[name]["restart"]))
        assert policy, f"{name}: restart {services[name]['restart']!r}"
        assert 1 <= int(policy[1]) <= 20, name
    for name in set(STEMBOT_SERVICES) - set(BOTS):
        assert services[name]["restart"] == "unless-stopped", name


def test_worker_cpu_scales(services: dict[str, dict[str, Any]]) -> None:
    cpu = services["worker-cpu"]
    assert "container_name" not in cpu
    assert not cpu.get("ports")
    assert environment(cpu)["STEMBOT_DEVICE"] == "cpu"
    assert cpu["image"] != services["worker-gpu"]["image"]  # CPU and CUDA builds differ


def test_everything_waits_for_a_healthy_redis(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on")
        if name == "redis":
            assert depends is None
            continue
        assert isinstance(depends, dict), f"{name}: depends_on needs the long syntax"
        assert depends["redis"]["condition"] == "service_healthy", name
        for other, condition in depends.items():
            assert condition["condition"] == "service_healthy", f"{name} -> {other}"


@pytest.mark.parametrize("name", STEMBOT_SERVICES)
def test_service_command_is_a_stembot_subcommand(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    command = services[name]["command"]
    assert isinstance(command, list), "exec form: no shell word splitting"
    parser = build_parser()
    # argparse reports a bad command on stderr and exits 2
    try:
        args = parser.parse_args(command)
    except SystemExit as exc:
        pytest.fail(f"{name}: `stembot {' '.join(command)}` is not a valid command ({exc})")
    expected = {"worker-gpu": "worker", "worker-cpu": "worker", "worker-download": "worker"}
    assert args.command == expected.get(name, name)


def test_workers_split_the_queues(services: dict[str, dict[str, Any]]) -> None:
    queues = {
        name: build_parser().parse_args(services[name]["command"]).queues
        for name in ("worker-gpu", "worker-cpu", "worker-download")
    }
    assert queues == {
        "worker-gpu": ["separate"],
        "worker-cpu": ["separate"],
        "worker-download": ["download"],
    }


def test_stembot_services_share_redis_env_file_and_volumes(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    for name in STEMBOT_SERVICES:
        service = services[name]
        env = environment(service)
        assert env["STEMBOT_REDIS_URL"] == REDIS_URL, name
        assert env["STEMBOT_STORAGE_DIR"] == "/data", name
        assert env["HF_HOME"] == "/models/hf", name
        assert service["env_file"] == [{"path": ".env", "required": False}], name
        assert set(service["volumes"]) == {"stems:/data", "models:/models"}, name
        assert service.get("init") is True, name  # SIGTERM reaches stembot, not a PID-1 shell
    assert {"stems", "models", "redis-data"} <= set(compose["volumes"])


def test_every_stembot_variable_is_a_real_setting(services: dict[str, dict[str, Any]]) -> None:
    documented = set(
        re.findall(r"^#?(STEMBOT_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    assert "STEMBOT_REDIS_URL" in documented
    used = {key for s in services.values() for key in environment(s) if key.startswith("STEMBOT_")}
    assert used, "the compose file sets no STEMBOT_ variable"
    assert used <= documented, f"not settings: {sorted(used - documented)}"
    dockerfile = set(re.findall(r"\b(STEMBOT_[A-Z0-9_]+)=", DOCKERFILE.read_text()))
    assert dockerfile <= documented, f"not settings: {sorted(dockerfile - documented)}"


def test_web_listens_on_every_interface_and_checks_healthz(
    services: dict[str, dict[str, Any]],
) -> None:
    web = services["web"]
    env = environment(web)
    assert env["STEMBOT_WEB_HOST"] == "0.0.0.0"
    port = env["STEMBOT_WEB_PORT"]
    assert web["ports"] == [f"{port}:{port}"]
    test = web["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]  # python:*-slim has no curl or wget
    assert f"http://127.0.0.1:{port}/healthz" in test[3]
    compile(test[3], "<healthcheck>", "exec")
