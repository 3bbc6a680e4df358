"""Run by tests/worker/test_out_of_memory.py in a child process (RLIMIT_DATA is per process).

Measures what one separation of a 16 s mix needs with 8 s and with 4 s segments, caps the
next separation in between, and runs the real ladder under that cap; then under a cap nothing
fits in; then with no cap. Prints one JSON line with what happened.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
from pathlib import Path

import torch

from shared.errors import OutOfMemory
from worker.separation import ModelCache, Tuning, separate

SR = 44100


def status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    torch.set_num_threads(1)
    model = ModelCache(Path(sys.argv[1]), "cpu").get("hdemucs_mmi")  # memory follows segment
    wav = (0.3 * torch.randn(2, 16 * SR, generator=torch.Generator().manual_seed(3))).clamp(-1, 1)

    def run(segment: float, cap_mb: int | None = None) -> dict[str, torch.Tensor]:
        return separate(
            model,
            wav,
            shifts=0,
            overlap=0.25,
            segment=segment,
            device="cpu",
            tuning=Tuning(job_memory_mb=cap_mb),
        )

    def need_mb(segment: float) -> float:
        Path("/proc/self/clear_refs").write_text("5")  # peak RSS counts from here
        before = status_mb("VmRSS")
        run(segment)
        return status_mb("VmHWM") - before

    run(8.0), run(4.0)  # warm up: threads, allocator
    need_long, need_short = max(need_mb(8.0), need_mb(8.0)), max(need_mb(4.0), need_mb(4.0))
    cap = int((need_long + need_short) / 2)
    expected = run(4.0)
    limits_before = resource.getrlimit(resource.RLIMIT_DATA)

    got = run(8.0, cap_mb=cap)  # 8 s runs out of memory; the ladder's 4 s fits
    retried_equal = all(torch.equal(got[s], expected[s]) for s in expected)

    failure: dict[str, str] = {}
    try:
        run(8.0, cap_mb=1)
    except OutOfMemory as exc:
        failure = {"code": exc.code, "message": exc.user_message}

    after = run(8.0)  # the process carries on, uncapped again
    print(
        json.dumps(
            {
                "need_long_mb": need_long,
                "need_short_mb": need_short,
                "cap_mb": cap,
                "retried_equal": retried_equal,
                "failure": failure,
                "limits_restored": resource.getrlimit(resource.RLIMIT_DATA) == limits_before,
                "after_ok": list(after) == list(expected),
            }
        )
    )


if __name__ == "__main__":
    main()
