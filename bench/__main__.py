"""`make bench`: the demucs CLI against our worker's separation and our end-to-end time.

One run, one machine, one input, each measure in its own process (so each peak RSS is its
own), every claim a ratio to the reference measured in the same run:

- cli:     ``python -m demucs`` on the track (same local model repo, shifts, mp3 320 kbps):
           the whole process, as a user would run it
- demucs:  demucs' ``Separator.separate_tensor`` (what the CLI runs) on the decoded samples
- worker:  our worker's path on the same file in one process: model load, ffmpeg decode,
           streamed separation, mp3 encode
- e2e:     the file submitted through the real core -> Redis queue -> arq worker (model warm)
           -> decode -> Demucs -> mp3 -> zip -> signed links
- second_format: the same track again as flac, then as a two-stem mix (vocals +
           instrumental, mp3), made from the master its separation kept, without Demucs:
           each one's time from submit to links against that separation's time (goal: a
           tenth at most), and the master's size on disk per minute of audio
- queue:   N tracks queued at once on one worker: jobs per hour (short tracks by default on a
           small CPU; ``--full-queue`` queues full-length ones)
- gpu:     with CUDA, the SDR deviation of fp16/bf16 from fp32 (see bench/gpu.py)

``--memory`` runs only the memory check: our worker's path on a 10-minute track in a child
process, its peak RSS against the 2.5 GB target.

Model: the full-size htdemucs architecture with random weights (the compute of the released
model) unless ``--model-repo`` points at real weights. Results go to bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import inspect
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from stembot.demo import make_demo_song as make_audio
from worker.demo_models import write_model_repo
from worker.separation import cpu_threads, pick_device

RESULTS = Path(__file__).with_name("results.json")
ROOT = Path(__file__).resolve().parents[1]
MEMORY_TARGET_MB = 2500


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": cpu_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def spawn(cmd: list[str], log: Path) -> tuple[float, float, str]:
    """Run ``cmd``; its wall time, its peak RSS (MiB, with its own children) and stdout."""
    start = time.perf_counter()
    with log.open("w") as err, tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        stdout = out.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed ({proc.returncode}); see {log}")
    return wall, usage.ru_maxrss / 1024, stdout


def child(mode: str, args: dict[str, Any], logs: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.child", mode, json.dumps(args)]
    wall, _, stdout = spawn(cmd, logs / f"{mode}.log")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["process_s"] = round(wall, 3)
    print(f"  {mode}: {result}", flush=True)
    return result


def demucs_cli(track: Path, repo: Path, out: Path, shifts: int, device: str, logs: Path) -> dict:
    cmd = [sys.executable, "-m", "demucs", "--repo", str(repo), "-n", "htdemucs"]
    cmd += ["--shifts", str(shifts), "-d", device, "--mp3", "--mp3-bitrate", "320"]
    cmd += ["--mp3-preset", "2", "-o", str(out), str(track)]
    wall, rss, _ = spawn(cmd, logs / "cli.log")
    result = {"process_s": round(wall, 3), "peak_rss_mb": round(rss, 1)}
    print(f"  cli: {result}", flush=True)
    return result


def main_run(args: argparse.Namespace, work: Path, repo: Path, device: str) -> dict[str, Any]:
    logs = work / "logs"
    logs.mkdir()
    print(f"making a {args.seconds:g} s track and {args.queue_tracks} queue tracks", flush=True)
    track = make_audio(work / "track.mp3", seconds=args.seconds)
    warmup = make_audio(work / "warmup.mp3", seconds=5.0)
    queue_s = args.seconds if args.full_queue else args.queue_seconds
    # a few ms longer each: new bytes, so the result cache never answers
    queue = [
        make_audio(work / f"queue-{i}.mp3", seconds=queue_s + 0.01 * (i + 1))
        for i in range(args.queue_tracks)
    ]
    common = {"repo": str(repo), "shifts": args.shifts, "device": device}
    cli = demucs_cli(track, repo, work / "cli-out", args.shifts, device, logs)
    tuned = {"batch": args.batch, "precision": args.precision}
    demucs_runs, worker_runs = [], []
    for _ in range(args.rounds):  # alternating, best of each: the CPU may be shared
        demucs_runs.append(child("demucs", {**common, "track": str(track)}, logs))
        worker_runs.append(child("worker", {**common, **tuned, "track": str(track)}, logs))
    demucs = min(demucs_runs, key=lambda r: r["separate_s"])
    worker = min(worker_runs, key=lambda r: r["separate_s"])
    service_args = {
        **common,
        "work": str(work / "service"),
        "track": str(track),
        "warmup": str(warmup),
        "queue": [str(p) for p in queue],
    }
    service = child("service", service_args, logs)
    seconds = args.seconds
    results: dict[str, Any] = {
        "track_s": seconds,
        "shifts": args.shifts,
        "cli": {**cli, "realtime_factor": round(cli["process_s"] / seconds, 3)},
        "demucs_separation": demucs,
        "worker": {**worker, "realtime_factor": round(worker["separate_s"] / seconds, 3)},
        "e2e": {
            "s": service["e2e_s"],
            "stages_s": service["e2e_stages_s"],
            "realtime_factor": round(service["e2e_s"] / seconds, 3),
            "service_peak_rss_mb": service["peak_rss_mb"],
        },
        "second_format": second_format(service, seconds),
        "queue": {
            "tracks": service["queue_tracks"],
            "track_s": queue_s,
            "short_tracks": not args.full_queue,
            "s": service["queue_s"],
            "jobs_per_hour_per_worker": service["jobs_per_hour"],
        },
        "rounds": {
            "n": args.rounds,
            "demucs_separate_s": [r["separate_s"] for r in demucs_runs],
            "worker_separate_s": [r["separate_s"] for r in worker_runs],
        },
        "ratios": {
            "worker_separation_over_demucs": round(worker["separate_s"] / demucs["separate_s"], 3),
            "worker_process_over_cli": round(worker["process_s"] / cli["process_s"], 3),
            "e2e_over_cli": round(service["e2e_s"] / cli["process_s"], 3),
            "worker_peak_rss_over_cli": round(worker["peak_rss_mb"] / cli["peak_rss_mb"], 3),
        },
    }
    if device == "cuda":
        from bench.gpu import precision_check
        from worker.separation import ModelCache

        model = ModelCache(repo, "cuda").get("htdemucs")
        results["gpu_precision"] = precision_check(model, batch=args.batch)
    return results


def second_format(service: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Another format, and a mix, of a separated song against its separation (the time in
    the "separating" state of the end-to-end run), each from submit to links."""
    separate_s = service["e2e_stages_s"]["separating"]
    master = service["master"]
    return {
        "first": "mp3",
        "second": "flac",
        "separate_s": separate_s,
        "render_s": service["second_format_s"],
        "render_stages_s": service["second_format_stages_s"],
        "ratio": round(service["second_format_s"] / separate_s, 3),
        "mix": {
            "stems": "vocals",
            "format": "mp3",
            "render_s": service["mix_s"],
            "ratio": round(service["mix_s"] / separate_s, 3),
        },
        "goal_ratio": 0.1,
        "master_bytes": master,
        "master_mb_per_min": round(sum(master.values()) / 1e6 / (seconds / 60), 2),
    }


def memory_run(args: argparse.Namespace, work: Path, repo: Path, device: str) -> dict[str, Any]:
    logs = work / "logs"
    logs.mkdir()
    print(f"making a {args.memory_seconds:g} s track", flush=True)
    track = make_audio(work / "long.mp3", seconds=args.memory_seconds)
    common = {"repo": str(repo), "shifts": args.shifts, "device": device, "track": str(track)}
    worker = child("worker", {**common, "batch": args.batch, "precision": args.precision}, logs)
    result: dict[str, Any] = {
        "track_s": args.memory_seconds,
        "shifts": args.shifts,
        "worker": worker,
        "target_mb": MEMORY_TARGET_MB,
        "met": worker["peak_rss_mb"] <= MEMORY_TARGET_MB,
    }
    if args.with_demucs:
        result["demucs_separation"] = child("demucs", common, logs)
    return result


def variants_run(args: argparse.Namespace, work: Path, repo: Path, device: str) -> dict[str, Any]:
    """The CPU runtimes of the per-segment call (worker.cpu_runtime) against the demucs CLI:
    rounds alternating CLI and every variant (order reversed every other round), medians and
    spreads, and each variant's deviation from the fp32 ``torch`` path (SNR of the stems)."""
    logs = work / "logs"
    logs.mkdir()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}: choose from {sorted(VARIANTS)}")
    if "torch" not in names:
        names.insert(0, "torch")  # the fp32 reference of the deviation
    print(f"making a {args.seconds:g} s track; variants {names}", flush=True)
    track = make_audio(work / "track.mp3", seconds=args.seconds)
    common = {"repo": str(repo), "shifts": args.shifts, "device": device, "track": str(track)}
    # each export (ONNX) or compilation happens once, as at a worker's first start; the rounds
    # then start like a restarted worker, with the export kept in the cache
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    builds: dict[str, float] = {}
    for name in names:
        if name != "torch":
            short = make_audio(work / "short.mp3", seconds=1.0)
            first = child("worker", {**common, "track": str(short), **VARIANTS[name]}, logs)
            builds[name] = first["load_s"]
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in ["cli", *names]}
    for r in range(args.rounds):
        order = ["cli", *names]
        for name in order if r % 2 == 0 else order[::-1]:
            if name == "cli":
                runs[name].append(
                    demucs_cli(track, repo, work / "cli-out", args.shifts, device, logs)
                )
                continue
            stems = work / f"stems-{name}.pt"
            runs[name].append(
                child("worker", {**common, **VARIANTS[name], "stems_out": str(stems)}, logs)
            )
    reference = torch.load(work / "stems-torch.pt")
    cli_s = statistics.median(r["process_s"] for r in runs["cli"])
    out: dict[str, Any] = {
        "track_s": args.seconds,
        "shifts": args.shifts,
        "rounds": args.rounds,
        "cli": {"process_s": _summary(runs["cli"], "process_s")},
    }
    for name in names:
        stems = torch.load(work / f"stems-{name}.pt")
        process = _summary(runs[name], "process_s")
        out[name] = {
            "runtime_used": runs[name][-1]["runtime"],
            "precision_used": runs[name][-1]["precision"],
            "process_s": process,
            "separate_s": _summary(runs[name], "separate_s"),
            "speedup_over_cli": round(cli_s / process["median"], 3),
            "snr_vs_fp32_db": {k: _snr_db(reference[k], v) for k, v in stems.items()},
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[name]),
            "first_build_s": builds.get(name),
        }
    out["cli"]["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs["cli"])
    # the yardstick of the deviations: what our default output format already changes
    out["mp3_320_snr_db"] = {k: mp3_roundtrip_snr_db(v, work) for k, v in reference.items()}
    return out


def mp3_roundtrip_snr_db(stem: torch.Tensor, work: Path) -> float | None:
    """The SNR of ``stem`` ([channels, samples], 44.1 kHz) after an mp3 at 320 kbit/s and
    back, as our workers encode (libmp3lame, preset 2): how far the delivered file already is
    from the float stems."""
    raw, mp3 = work / "stem.f32", work / "stem.mp3"
    raw.write_bytes(stem.t().contiguous().numpy().astype("<f4").tobytes())
    pcm = ["-f", "f32le", "-ar", "44100", "-ac", str(stem.shape[0])]
    quiet = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    subprocess.run(
        [
            *quiet,
            *pcm,
            "-i",
            str(raw),
            "-c:a",
            "libmp3lame",
            "-b:a",
            "320k",
            "-compression_level",
            "2",
            str(mp3),
        ],
        check=True,
    )
    back = subprocess.run([*quiet, "-i", str(mp3), *pcm, "-"], check=True, capture_output=True)
    decoded = torch.frombuffer(bytearray(back.stdout), dtype=torch.float32)
    decoded = decoded.view(-1, stem.shape[0]).t()
    n = min(decoded.shape[1], stem.shape[1])
    return _snr_db(stem[:, :n], decoded[:, :n])


#: ``--variants`` names: the runtime of the per-segment call and the CPU precision.
VARIANTS: dict[str, dict[str, str]] = {
    "torch": {"runtime": "torch", "precision": "fp32"},
    "bf16": {"runtime": "torch", "precision": "bf16"},
    "onnx": {"runtime": "onnx", "precision": "fp32"},
    "compile": {"runtime": "compile", "precision": "fp32"},
}


def _summary(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    values = [r[key] for r in runs]
    return {"median": round(statistics.median(values), 3), "spread": [min(values), max(values)]}


def _snr_db(reference: torch.Tensor, other: torch.Tensor) -> float | None:
    """The stem's SNR against the fp32 path in dB; None where it is the same, bit for bit."""
    noise = float((reference - other).pow(2).sum())
    if noise == 0:
        return None
    return round(10 * math.log10(float(reference.pow(2).sum()) / noise), 1)


def limits_entry() -> dict[str, Any] | None:
    # --- "limits": checks per second of the request limiter, from bench/limits.py (owned by
    # the limits work; sync or async ``run()`` returning a dict). Skipped when it is absent.
    try:
        from bench import limits
    except ImportError:
        return None
    outcome: Any = limits.run()
    if inspect.isawaitable(outcome):
        outcome = asyncio.run(outcome)  # type: ignore[arg-type]
    return dict(outcome)


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, Any]] = []
    main = results.get("run")
    if main:
        rows += [
            ("demucs CLI, whole process (s)", main["cli"]["process_s"]),
            ("demucs separate_tensor (s)", main["demucs_separation"]["separate_s"]),
            ("  of which outside the model", main["demucs_separation"]["outside_model_s"]),
            ("worker separation (s)", main["worker"]["separate_s"]),
            ("  of which outside the model", main["worker"]["outside_model_s"]),
            ("worker, whole process (s)", main["worker"]["process_s"]),
            ("end to end, warm worker (s)", main["e2e"]["s"]),
            ("worker separation / demucs", main["ratios"]["worker_separation_over_demucs"]),
            ("worker process / CLI", main["ratios"]["worker_process_over_cli"]),
            ("end to end / CLI", main["ratios"]["e2e_over_cli"]),
            ("real-time factor: CLI", main["cli"]["realtime_factor"]),
            ("real-time factor: worker separation", main["worker"]["realtime_factor"]),
            ("real-time factor: end to end", main["e2e"]["realtime_factor"]),
            ("peak RSS: CLI (MB)", main["cli"]["peak_rss_mb"]),
            ("peak RSS: demucs separate_tensor (MB)", main["demucs_separation"]["peak_rss_mb"]),
            ("peak RSS: worker process (MB)", main["worker"]["peak_rss_mb"]),
            (
                f"jobs/hour/worker ({main['queue']['tracks']} x {main['queue']['track_s']:g} s)",
                main["queue"]["jobs_per_hour_per_worker"],
            ),
        ]
        second = main.get("second_format")
        if second:  # absent in results written before masters were kept
            rows += [
                ("second format (flac) from the master (s)", second["render_s"]),
                ("  / its separation (goal <= 0.1)", second["ratio"]),
                ("two-stem mp3 mix from the master / separation", second["mix"]["ratio"]),
                ("master on disk, 4 stems (MB per minute)", second["master_mb_per_min"]),
            ]
        if main["worker"].get("peak_gpu_mb") is not None:
            rows.append(("peak GPU memory: worker (MB)", main["worker"]["peak_gpu_mb"]))
    variants = results.get("variants")
    if variants:
        cli = variants["cli"]["process_s"]["median"]
        rows.append((f"demucs CLI, median of {variants['rounds']} (s)", cli))
        for name in [
            k for k, v in variants.items() if isinstance(v, dict) and "snr_vs_fp32_db" in v
        ]:
            v = variants[name]
            rows.append((f"worker {name}: process, median (s)", v["process_s"]["median"]))
            rows.append((f"worker {name}: speed-up over the CLI", v["speedup_over_cli"]))
            snrs = [x for x in v["snr_vs_fp32_db"].values() if x is not None]
            worst = min(snrs) if snrs else "exact"
            rows.append((f"worker {name}: worst stem SNR vs fp32 (dB)", worst))
            rows.append((f"worker {name}: peak RSS (MB)", v["peak_rss_mb"]))
        mp3 = [x for x in variants.get("mp3_320_snr_db", {}).values() if x is not None]
        if mp3:
            rows.append(("mp3 320 of the fp32 stems: worst SNR (dB)", min(mp3)))
    memory = results.get("memory")
    if memory:
        label = f"peak RSS, {memory['track_s']:g} s track (MB)"
        rows.append((label, memory["worker"]["peak_rss_mb"]))
        if "demucs_separation" in memory:
            rows.append(
                ("  same, demucs separate_tensor", memory["demucs_separation"]["peak_rss_mb"])
            )
    width = max(len(r[0]) for r in rows) + 2
    return "\n".join(f"{name:<{width}}{value:>12}" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=240.0, help="track length")
    parser.add_argument("--shifts", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="demucs/worker runs, alternating")
    parser.add_argument("--queue-tracks", type=int, default=20)
    parser.add_argument(
        "--queue-seconds", type=float, default=15.0, help="queue track length (short: 2 cores)"
    )
    parser.add_argument("--full-queue", action="store_true", help="queue --seconds tracks")
    parser.add_argument("--memory", action="store_true", help="only the 10-minute memory run")
    parser.add_argument("--memory-seconds", type=float, default=600.0)
    parser.add_argument("--with-demucs", action="store_true", help="memory run: demucs' peak too")
    parser.add_argument(
        "--variants",
        help="only the CPU runtimes against the CLI, e.g. torch,onnx,compile (use --rounds 3+)",
    )
    parser.add_argument("--model-repo", type=Path, help="real weights (default: random)")
    parser.add_argument("--batch", type=int, default=4, help="CUDA segments per batch")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "fp16", "bf16"],
        help="auto: as a worker chooses (CPU: bf16 where native; CUDA: fp32)",
    )
    args = parser.parse_args()
    device = pick_device("auto")
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results = {k: v for k, v in results.items() if k in ("run", "memory", "limits", "variants")}
    with tempfile.TemporaryDirectory(prefix="stembot-bench-") as tmp:
        work = Path(tmp)
        repo = args.model_repo or write_model_repo(work / "models", full_size=True)
        stamp = {
            "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "device": device,
            "model": "htdemucs"
            + ("" if args.model_repo else " (full-size architecture, random weights)"),
            "command": " ".join(["python -m bench", *sys.argv[1:]]),
        }
        if args.memory:
            results["memory"] = {**stamp, **memory_run(args, work, repo, device)}
        elif args.variants:
            results["variants"] = {**stamp, **variants_run(args, work, repo, device)}
        else:
            results["run"] = {**stamp, **main_run(args, work, repo, device)}
            limits = limits_entry()
            if limits is not None:
                results["limits"] = limits
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
