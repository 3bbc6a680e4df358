"""The scale bench's processes: each `stembot` part in its own process, as deployed, and the
memory (RSS) of each sampled over the run.

Every process gets its settings from the environment (``STEMBOT_*``), runs in the bench's
work folder (so no ``.env`` of the checkout is read) and logs to ``logs/<name>.log`` there.
They are stopped as a service manager would: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
STEMBOT = [sys.executable, "-m", "stembot.cli"]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Processes:
    """Start, watch and stop the bench's child processes."""

    work: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Proc:
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        log = logs / f"{name}.log"
        full_env = {**os.environ, **self.env, **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
        with log.open("wb") as out:
            popen = subprocess.Popen(
                cmd, cwd=self.work, env=full_env, stdout=out, stderr=subprocess.STDOUT
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stembot(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        return self.start(name, [*STEMBOT, *args], env)

    def check(self) -> None:
        """Fail at once, with its log, if a child process has ended."""
        for proc in self.procs:
            code = proc.popen.poll()
            if code is not None:
                raise RuntimeError(f"{proc.name} exited ({code}):\n{proc.tail()}")

    def stop(self, grace_s: float = 60.0) -> dict[str, tuple[int | None, float]]:
        """SIGTERM to each, SIGKILL to those still running after ``grace_s``; each one's exit
        code (None: killed) and seconds it took to exit."""
        started = time.monotonic()
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        codes: dict[str, tuple[int | None, float]] = {}
        while len(codes) < len(self.procs) and time.monotonic() - started < grace_s:
            for proc in self.procs:
                code = proc.popen.poll()
                if proc.name not in codes and code is not None:
                    codes[proc.name] = (code, round(time.monotonic() - started, 1))
            time.sleep(0.05)  # polling exits: no event to wait on for several processes
        for proc in self.procs:
            if proc.name not in codes:
                proc.popen.kill()
                proc.popen.wait()
                codes[proc.name] = (None, round(time.monotonic() - started, 1))
        return codes


@dataclass
class MemorySampler:
    """RSS (MiB) of named processes, every ``every_s``, with a mark where the burst starts."""

    pids: dict[str, int]
    every_s: float = 0.5
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    #: CPU seconds (user + system) of each process, sampled with its RSS
    cpu: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    mark: float | None = None

    def sample(self) -> None:
        now = time.monotonic()
        for name, pid in self.pids.items():
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                rss = proc.memory_info().rss / 2**20
                times = proc.cpu_times()
                self.samples.setdefault(name, []).append((now, round(rss, 1)))
                self.cpu.setdefault(name, []).append((now, times.user + times.system))

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.every_s)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per process: RSS when the burst started, half-way, at the end, the peak, and the
        growth over the second half (a leak keeps growing; a warm-up does not)."""
        out: dict[str, dict[str, float]] = {}
        for name, points in self.samples.items():
            after = [p for p in points if self.mark is None or p[0] >= self.mark] or points
            start, end = after[0], after[-1]
            half = start[0] + (end[0] - start[0]) / 2
            mid = next(p for p in after if p[0] >= half)
            out[name] = {
                "start_mb": start[1],
                "mid_mb": mid[1],
                "end_mb": end[1],
                "peak_mb": max(v for _, v in after),
                "growth_second_half_mb": round(end[1] - mid[1], 1),
                "cpu_s": self._cpu_since_mark(name),
            }
        return out

    def _cpu_since_mark(self, name: str) -> float:
        """CPU seconds the process used from the burst's start to its last sample."""
        points = self.cpu.get(name) or [(0.0, 0.0)]
        before = [p for p in points if self.mark is not None and p[0] <= self.mark]
        first = before[-1] if before else points[0]
        return round(points[-1][1] - first[1], 2)
