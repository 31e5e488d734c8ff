"""Soak: many concurrent clients against one real server for minutes; 0 errors, 0 steps lost, flat RSS.

Starts ``agentsdk serve --env CartPole-v1`` (the front and its trainer child, PPO
learning from what the clients send) on a free loopback port, then C clients
(default 256) play gymnasium CartPole-v1 through their own ``PolicyClient`` for
M minutes (default 1). C OS processes would swamp a small machine, so the
clients are threads spread over a few worker processes (``--workers``, default
4); each thread paces itself to ``--hz`` frames per second (default 30, a game's
frame loop; on a loaded machine the achieved rate is lower and is printed).
``--mode`` picks ``remote`` (POST /v1/act per step), ``local`` (ONNX here) or
``mixed`` (alternating).

While they play, the server's RSS is sampled every ``--sample-every`` seconds
from /proc: the HTTP front, the trainer child, and the whole process tree (the
trainer's Ray processes included). At the end every client ends its running
episode, flushes and closes; then the script reads ``GET /metrics`` and stops
the server with SIGTERM. It prints clients, minutes, steps played, steps
recorded / acknowledged (sum of ``client.stats``), the server's
``agentsdk_steps_ingested_total``, errors (exceptions raised by client calls,
flushes that timed out, plus ``steps_rejected`` and ``steps_dropped``), and RSS
at start / middle / end with the slope, and ends with one ``SOAK-JSON {...}``
line. Exit status 1 when errors > 0, acknowledged != ingested, or recorded !=
acknowledged (steps lost).

    python benchmarks/soak.py [--clients 256] [--minutes 1] [--mode remote|local|mixed] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, load_average, machine_line  # noqa: E402

from agentsdk.launcher import ServerProcess  # noqa: E402

RESULT_TAG = "SOAK-WORKER-RESULT "
JSON_TAG = "SOAK-JSON "
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- worker process: N client threads ---------------------------------------------------------------


class _Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.errors = 0
        self.error_samples: list[str] = []
        self.played = 0
        self.episodes = 0
        self.flush_timeouts = 0
        self.stats: dict[str, int] = {}
        self.blocked_s = 0.0

    def error(self, where: str, exc: BaseException) -> None:
        with self.lock:
            self.errors += 1
            if len(self.error_samples) < 10:
                self.error_samples.append(f"{where}: {type(exc).__name__}: {exc}")

    def add_stats(self, stats: Any) -> None:
        with self.lock:
            for name in (
                "steps_recorded",
                "steps_acknowledged",
                "steps_rejected",
                "steps_dropped",
                "retries",
                "batches_sent",
                "steps_queued",
                "steps_spooled",
            ):
                self.stats[name] = self.stats.get(name, 0) + int(getattr(stats, name))
            self.blocked_s += float(stats.time_blocked_s)


def _client_thread(
    tally: _Tally,
    address: str,
    mode: str,
    index: int,
    seed: int,
    deadline: list[float],
    hz: float,
    update_interval: float,
    flush_timeout: float,
    started: threading.Barrier,
) -> None:
    """One app: connect, wait for the others, play until ``deadline[0]`` (set once all are connected)."""
    import gymnasium as gym

    from agentsdk_client import PolicyClient

    rng = random.Random(seed)
    env = gym.make("CartPole-v1")
    client = None
    try:
        client = PolicyClient(
            address,
            inference_mode=mode,
            update_interval=update_interval,
            seed=seed,
            client_id=f"soak-{index}-{mode}",
            timeout=30.0,
        )
    except Exception as exc:  # noqa: BLE001 - every client failure is an error to report
        tally.error("PolicyClient()", exc)
    try:
        started.wait(timeout=300)
    except threading.BrokenBarrierError:
        pass
    if client is None:
        return
    period = 1.0 / hz if hz > 0 else 0.0
    played = episodes = 0
    obs, _ = env.reset(seed=seed)
    episode: str | None = None
    next_frame = time.monotonic() + rng.random() * period  # spread the clients over one frame
    try:
        while time.monotonic() < deadline[0]:
            try:
                if episode is None:
                    episode = client.start_episode()
                action = client.get_action(episode, obs)
                obs, reward, terminated, truncated, _ = env.step(action)
                client.log_returns(episode, float(reward))
                played += 1
                if terminated or truncated:
                    client.end_episode(episode, obs, truncated=truncated and not terminated)
                    episode = None
                    episodes += 1
                    obs, _ = env.reset()
            except Exception as exc:  # noqa: BLE001
                tally.error("play", exc)
                episode = None
                obs, _ = env.reset()
                time.sleep(0.5)
            if period:
                next_frame += period
                pause = next_frame - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                else:
                    next_frame = time.monotonic()  # behind: do not try to catch up in a burst
        if episode is not None:  # hand the running episode in, so every recorded step is uploaded
            try:
                client.end_episode(episode, obs, truncated=True)
                episodes += 1
            except Exception as exc:  # noqa: BLE001
                tally.error("end_episode", exc)
        try:
            if not client.flush(timeout=flush_timeout):
                with tally.lock:
                    tally.flush_timeouts += 1
                    tally.errors += 1
                    if len(tally.error_samples) < 10:
                        tally.error_samples.append(f"flush: not delivered within {flush_timeout:g} s")
        except Exception as exc:  # noqa: BLE001
            tally.error("flush", exc)
    finally:
        try:
            client.close(timeout=flush_timeout)
        except Exception as exc:  # noqa: BLE001
            tally.error("close", exc)
        try:
            tally.add_stats(client.stats)
        except Exception as exc:  # noqa: BLE001
            tally.error("stats", exc)
        env.close()
        with tally.lock:
            tally.played += played
            tally.episodes += episodes


def run_worker(args: argparse.Namespace) -> int:
    modes = args.worker_modes
    tally = _Tally()
    started = threading.Barrier(len(modes) + 1)
    deadline = [float("inf")]  # set once every client here is connected (constructors are slow under load)

    def target(i: int, mode: str) -> None:
        try:
            _client_thread(
                tally,
                args.address,
                mode,
                args.worker_base + i,
                args.worker_seed + i,
                deadline,
                args.hz,
                args.update_interval,
                args.flush_timeout,
                started,
            )
        except Exception as exc:  # noqa: BLE001
            tally.error("thread", exc)
            traceback.print_exc()

    start_at = time.monotonic()
    threads = [
        threading.Thread(target=target, args=(i, mode), name=f"soak-client-{i}", daemon=True)
        for i, mode in enumerate(modes)
    ]
    for thread in threads:
        thread.start()
    try:
        started.wait(timeout=300)
    except threading.BrokenBarrierError:
        pass
    ready = time.monotonic()
    deadline[0] = ready + args.worker_seconds
    print(f"SOAK-WORKER-READY {time.time():.3f}", flush=True)
    for thread in threads:
        thread.join()
    # close() joins the local policy's refresh thread for at most 1 s; one still in a long poll can
    # install a new ONNX session while the interpreter exits (seen: SIGABRT, "terminate called without an
    # active exception"). Count them, then give them time to finish before this process exits.
    lingering = [t for t in threading.enumerate() if t.name.startswith("agentsdk-")]
    for thread in lingering:
        thread.join(timeout=60)
    result = {
        "clients": len(modes),
        "played": tally.played,
        "episodes": tally.episodes,
        "errors": tally.errors,
        "error_samples": tally.error_samples,
        "flush_timeouts": tally.flush_timeouts,
        "stats": tally.stats,
        "blocked_s": tally.blocked_s,
        "connect_s": ready - start_at,
        "play_s": time.monotonic() - ready,
        "lingering_threads": len(lingering),
        "still_alive_threads": sum(t.is_alive() for t in lingering),
    }
    print(RESULT_TAG + json.dumps(result), flush=True)
    return 0


# -- the server's memory --------------------------------------------------------------------------


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def server_memory(front_pid: int) -> dict[str, int]:
    """RSS in KiB of the front, its trainer child (the Python child running multiprocessing spawn),
    and the whole tree under the front."""
    children = _children_map()
    tree = [front_pid]
    queue = [front_pid]
    while queue:
        pid = queue.pop()
        for child in children.get(pid, []):
            tree.append(child)
            queue.append(child)
    trainer = 0
    for child in children.get(front_pid, []):
        if "multiprocessing" in _cmdline(child) and "resource_tracker" not in _cmdline(child):
            trainer += _rss_kb(child)
    return {
        "front_kb": _rss_kb(front_pid),
        "trainer_kb": trainer,
        "tree_kb": sum(_rss_kb(p) for p in tree),
        "tree_procs": len(tree),
    }


class RssSampler:
    def __init__(self, pid: int, every: float) -> None:
        self.pid = pid
        self.every = every
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.monotonic()

    def start(self) -> RssSampler:
        self.t0 = time.monotonic()
        self.sample()
        self._thread.start()
        return self

    def sample(self) -> None:
        self.samples.append((time.monotonic() - self.t0, server_memory(self.pid)))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if var == 0:
        return None
    return 60.0 * sum((t - mx) * (v - my) for t, v in points) / var


def rss_summary(
    samples: list[tuple[float, dict[str, int]]], play_from: float, play_to: float
) -> dict[str, Any]:
    during = [(t, s) for t, s in samples if play_from <= t <= play_to] or samples
    out: dict[str, Any] = {"samples": len(samples)}
    for key in ("front_kb", "trainer_kb", "tree_kb"):
        name = key[:-3]
        start = during[0][1][key] / 1024
        middle = min(during, key=lambda ts: abs(ts[0] - (play_from + play_to) / 2))[1][key] / 1024
        end = during[-1][1][key] / 1024
        whole = slope_per_min([(t, s[key] / 1024) for t, s in during])
        half = slope_per_min([(t, s[key] / 1024) for t, s in during if t >= (play_from + play_to) / 2])
        out[name] = {
            "start_mib": round(start, 1),
            "middle_mib": round(middle, 1),
            "end_mib": round(end, 1),
            "peak_mib": round(max(s[key] for _, s in during) / 1024, 1),
            "slope_mib_per_min": None if whole is None else round(whole, 2),
            "slope_second_half_mib_per_min": None if half is None else round(half, 2),
        }
    out["tree_procs"] = during[-1][1]["tree_procs"]
    return out


# -- the driver -----------------------------------------------------------------------------------


def read_metrics(address: str) -> dict[str, float]:
    with urllib.request.urlopen(address + "/metrics", timeout=30) as response:
        text = response.read().decode()
    metrics: dict[str, float] = {}
    for match in re.finditer(r"^(agentsdk_[a-z_]+) (\S+)$", text, re.M):
        metrics[match.group(1)] = float(match.group(2))
    return metrics


def modes_for(mode: str, n: int) -> list[str]:
    if mode == "mixed":
        return ["remote" if i % 2 == 0 else "local" for i in range(n)]
    return [mode] * n


def soak(
    clients: int,
    minutes: float,
    mode: str,
    workers: int,
    hz: float,
    sample_every: float,
    update_interval: float,
    flush_timeout: float,
    server_args: list[str],
    quiet: bool = False,
) -> dict[str, Any]:
    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    workers = max(1, min(workers, clients))
    seconds = minutes * 60.0
    say(machine_line())
    with tempfile.TemporaryDirectory(prefix="agentsdk-soak-") as tmp:
        server = ServerProcess(
            "--env",
            "CartPole-v1",
            "--log-every",
            "30",
            "--checkpoint-dir",
            str(Path(tmp) / "ckpt"),
            *server_args,
            capture=True,
            cwd=ROOT,
        )
        procs: list[subprocess.Popen[str]] = []
        sampler: RssSampler | None = None
        try:
            server.wait_healthy(timeout=300)
            say(
                f"server up at {server.address} (pid {server.proc.pid}); starting {clients} {mode} clients "
                f"in {workers} processes at {hz:g} Hz for {minutes:g} min"
            )
            sampler = RssSampler(server.proc.pid, sample_every).start()
            all_modes = modes_for(mode, clients)
            size = -(-clients // workers)  # contiguous blocks, so "mixed" mixes inside every process
            per = [all_modes[w * size : (w + 1) * size] for w in range(workers)]
            per = [modes for modes in per if modes]
            workers = len(per)
            base = 0
            for w, modes in enumerate(per):
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--worker",
                    "--address",
                    server.address,
                    "--worker-modes",
                    ",".join(modes),
                    "--worker-seconds",
                    str(seconds),
                    "--worker-base",
                    str(base),
                    "--worker-seed",
                    str(1000 * w),
                    "--hz",
                    str(hz),
                    "--update-interval",
                    str(update_interval),
                    "--flush-timeout",
                    str(flush_timeout),
                ]
                base += len(modes)
                procs.append(
                    subprocess.Popen(
                        cmd,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                        cwd=ROOT,
                        env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    )
                )
            outputs: list[list[str]] = [[] for _ in procs]
            readers = [
                threading.Thread(
                    target=lambda p=p, o=o: o.extend(line.rstrip("\n") for line in p.stdout), daemon=True
                )
                for p, o in zip(procs, outputs, strict=True)
            ]
            for reader in readers:
                reader.start()
            # Playing starts when the last worker has all its clients connected.
            ready_deadline = time.monotonic() + 300
            while time.monotonic() < ready_deadline and not all(
                any(line.startswith("SOAK-WORKER-READY") for line in out) or p.poll() is not None
                for out, p in zip(outputs, procs, strict=True)
            ):
                time.sleep(0.2)
            play_from = time.monotonic() - sampler.t0
            say(f"all clients connected after {play_from:.1f} s; playing")
            next_report = time.monotonic() + max(30.0, seconds / 10)
            while any(p.poll() is None for p in procs):
                time.sleep(0.5)
                if time.monotonic() >= next_report and sampler.samples:
                    t, s = sampler.samples[-1]
                    say(
                        f"  t={t:6.0f} s  front {s['front_kb'] / 1024:7.1f} MiB  trainer "
                        f"{s['trainer_kb'] / 1024:7.1f} MiB  tree {s['tree_kb'] / 1024:7.1f} MiB  "
                        f"load {load_average()}"
                    )
                    next_report = time.monotonic() + max(30.0, seconds / 10)
            play_to = play_from + seconds
            for reader in readers:
                reader.join(10)
            results = []
            for w, (proc, out) in enumerate(zip(procs, outputs, strict=True)):
                found = [line for line in out if line.startswith(RESULT_TAG)]
                result = (
                    json.loads(found[-1][len(RESULT_TAG) :])
                    if found
                    else {
                        "clients": len(per[w]),
                        "played": 0,
                        "episodes": 0,
                        "errors": 0,
                        "error_samples": [],
                        "flush_timeouts": 0,
                        "stats": {},
                        "blocked_s": 0.0,
                        "connect_s": 0.0,
                        "play_s": 0.0,
                    }
                )
                if proc.returncode != 0 or not found:  # a crash is an error even after a full report
                    tail = "\n".join(line for line in out[-30:] if not line.startswith(RESULT_TAG))
                    result["errors"] += 1
                    result["error_samples"].insert(0, f"worker {w} exited {proc.returncode}:\n{tail}")
                results.append(result)
            sampler.stop()
            metrics = read_metrics(server.address)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if sampler is not None and not sampler._stop.is_set():
                sampler.stop()
            returncode = server.stop(timeout=180)
    stats: dict[str, int] = {}
    for result in results:
        for key, value in result["stats"].items():
            stats[key] = stats.get(key, 0) + value
    played = sum(r["played"] for r in results)
    client_errors = sum(r["errors"] for r in results)
    rejected = stats.get("steps_rejected", 0)
    dropped = stats.get("steps_dropped", 0)
    acknowledged = stats.get("steps_acknowledged", 0)
    recorded = stats.get("steps_recorded", 0)
    ingested = int(metrics.get("agentsdk_steps_ingested_total", -1))
    summary = {
        "clients": clients,
        "minutes": minutes,
        "mode": mode,
        "workers": workers,
        "hz": hz,
        "played": played,
        "episodes": sum(r["episodes"] for r in results),
        "steps_per_s": round(played / seconds, 1) if seconds else None,
        "steps_per_s_per_client": round(played / seconds / clients, 2) if seconds else None,
        "recorded": recorded,
        "acknowledged": acknowledged,
        "ingested": ingested,
        "lost": recorded - acknowledged,
        "errors": client_errors + rejected + dropped,
        "client_exceptions": client_errors,
        "steps_rejected": rejected,
        "steps_dropped": dropped,
        "error_samples": [s for r in results for s in r["error_samples"]][:10],
        "retries": stats.get("retries", 0),
        "batches_sent": stats.get("batches_sent", 0),
        "client_time_blocked_s": round(sum(r["blocked_s"] for r in results), 1),
        "connect_s": round(max(r["connect_s"] for r in results), 1),
        "client_threads_after_close": sum(r.get("lingering_threads", 0) for r in results),
        "server": {k.removeprefix("agentsdk_"): v for k, v in metrics.items()},
        "server_exit": returncode,
        "rss": rss_summary(sampler.samples, play_from, play_to) if sampler else {},
        "load_average_end": load_average(),
    }
    summary["ok"] = (
        summary["errors"] == 0 and acknowledged == ingested and summary["lost"] == 0 and played > 0
    )
    return summary


def report(s: dict[str, Any]) -> None:
    srv = s["server"]
    print(
        f"clients {s['clients']} ({s['mode']}, {s['workers']} processes, {s['hz']:g} Hz target), "
        f"minutes {s['minutes']:g}"
    )
    print(
        f"steps played {s['played']:,} ({s['steps_per_s']:,} /s, {s['steps_per_s_per_client']} /s per client), "
        f"episodes {s['episodes']:,}"
    )
    print(
        f"steps recorded {s['recorded']:,}, acknowledged {s['acknowledged']:,}, server ingested "
        f"{s['ingested']:,}, lost {s['lost']:,}"
    )
    print(
        f"errors {s['errors']} (client exceptions {s['client_exceptions']}, rejected {s['steps_rejected']}, "
        f"dropped {s['steps_dropped']}); client threads alive after close {s['client_threads_after_close']}; "
        f"upload retries {s['retries']:,} of {s['batches_sent']:,} batches; "
        f"server 429s {int(srv.get('batches_rejected_full_total', 0)):,}, duplicates "
        f"{int(srv.get('batches_duplicate_total', 0)):,}"
    )
    print(
        f"server: trained on {int(srv.get('steps_delivered_total', 0)):,} steps, stale "
        f"{int(srv.get('steps_stale_total', 0)):,}, {int(srv.get('training_iterations_total', 0))} iterations, "
        f"policy v{int(srv.get('policy_version', 0))}, act requests {int(srv.get('act_requests_total', 0)):,}; "
        f"exit {s['server_exit']}"
    )
    for name in ("front", "trainer", "tree"):
        r = s["rss"].get(name)
        if r:
            print(
                f"RSS {name:<7} start {r['start_mib']:8.1f} MiB, middle {r['middle_mib']:8.1f}, end "
                f"{r['end_mib']:8.1f}, peak {r['peak_mib']:8.1f}; slope {r['slope_mib_per_min']} MiB/min "
                f"(second half {r['slope_second_half_mib_per_min']})"
            )
    for sample in s["error_samples"]:
        print(f"  error: {sample}")
    print(f"load average at the end {s['load_average_end']}; {'OK' if s['ok'] else 'FAILED'}")
    print(JSON_TAG + json.dumps(s), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=256)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--mode", choices=["remote", "local", "mixed"], default="mixed")
    parser.add_argument(
        "--workers", type=int, default=4, help="client processes (threads are spread over them)"
    )
    parser.add_argument("--hz", type=float, default=30.0, help="target frames (steps) per second per client")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument(
        "--update-interval", type=float, default=5.0, help="local mode: policy refresh period"
    )
    parser.add_argument("--flush-timeout", type=float, default=300.0)
    parser.add_argument("--server-arg", action="append", default=[], help="extra `agentsdk serve` argument")
    parser.add_argument("--json", help="also write the summary here")
    # internal: one worker process
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--worker-modes", type=lambda s: s.split(","), help=argparse.SUPPRESS)
    parser.add_argument("--worker-seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--worker-base", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker-seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker(args)
    if args.clients < 1 or args.minutes <= 0:
        parser.error("--clients must be >= 1 and --minutes > 0")
    summary = soak(
        args.clients,
        args.minutes,
        args.mode,
        args.workers,
        args.hz,
        args.sample_every,
        args.update_interval,
        args.flush_timeout,
        args.server_arg,
    )
    report(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
