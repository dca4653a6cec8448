"""Load: N concurrent API clients against app.py on loopback, checked answer by answer.

    python benchmarks/bench_load.py [--clients 200] [--duration 60] [--explain] [--client http|gradio]
    python benchmarks/bench_load.py --soak 1800 [--clients 50]      # RSS over 30 minutes
    python benchmarks/bench_load.py --quick                          # 20 clients, 20 s: a smoke run

Starts `python app.py` on a free local port (bundled model from --model), makes 5 distinct face
images, and starts --clients concurrent callers. They all start together (the burst) and each
keeps calling /predict with its default settings (crop on, explanation off; --explain turns it
on) until --duration seconds have passed; a caller told 'the detector is busy' waits
--busy-backoff seconds (jittered) and tries again, as the message asks.

Two kinds of caller (--client):
- `http` (default): Gradio's documented REST API (upload, POST /gradio_api/call/predict, read the
  event stream, download the pictures), each caller with its own connection pool and session,
  all in asyncio.
  Cheap on the client side, so on a 2-core machine the figures are the server's.
- `gradio`: each caller its own `gradio_client.Client` in its own thread, spread over --procs
  processes, as the issue measured. gradio_client costs far more CPU per call than the server,
  so on 2 cores this measures both. (ssl_verify is off: httpx otherwise builds a TLS context,
  loading the CA bundle, for every request, ~30 ms of CPU each even on plain http; --ssl-verify
  restores gradio_client's default.)

Every answer is checked: P(fake) must equal a local `Predictor` on the same bytes, and every
returned picture must download, decode, and be byte-identical to every other copy of that result
(a half-written file fails this). Failures are counted by kind (timeout, broken_file,
wrong_answer, error:<type>); 'busy' is counted apart. A probe process times a page load (GET /),
Gradio's queue status, and the /model_info and /server_status API calls every 0.25 s, to show
whether the web server stays responsive while the workers are busy. The server's memory counts
its worker processes (its children) too: peak RSS is the sum of each process's VmHWM, read
before it is stopped; CPU per call is split between the web server's process and the workers;
--soak samples the RSS of the server and its workers every --rss-every seconds and
reports the growth from the first sample taken once warm (after 60 s) to the end. The server's
log is searched for tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import io
import json
import multiprocessing as mp
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

import _common as bench  # first: puts src/ on sys.path
from bench_startup import app_env, free_port, http_ok, server_family, stop, tail, wait_for

BUSY = "The detector is busy"
API = "gradio_api"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_load.py", description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=200, help="concurrent callers (default 200)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of calls (default 60)")
    p.add_argument("--client", choices=("http", "gradio"), default="http",
                   help="caller implementation (default http; see above)")
    p.add_argument("--procs", type=int, default=None,
                   help="client processes (default: 1 for http, 4 for gradio)")
    p.add_argument("--explain", action="store_true", help="ask for the explanation heatmap too")
    p.add_argument("--busy-backoff", type=float, default=1.0,
                   help="seconds a caller waits after 'busy' before trying again (default 1, jittered)")
    p.add_argument("--soak", type=float, default=0.0, metavar="SECONDS",
                   help="soak mode: run this long (e.g. 1800) and report RSS over time")
    p.add_argument("--rss-every", type=float, default=30.0, help="soak: seconds between RSS samples")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for app.py, e.g. DEEPFAKE_QUEUE_SIZE=32 (repeatable)")
    p.add_argument("--ssl-verify", action="store_true",
                   help="gradio callers: keep gradio_client's TLS set-up per request (~30 ms CPU each)")
    p.add_argument("--quick", action="store_true", help="20 clients for 20 s: a smoke run")
    p.add_argument("--model", type=Path, default=bench.REPO / "models" / "default")
    p.add_argument("--json", type=Path, default=None,
                   help="results file (default benchmarks/results/load.json, or load-soak.json)")
    args = p.parse_args()
    if args.quick:
        args.clients, args.duration = min(args.clients, 20), min(args.duration, 20.0)
    if args.soak:
        args.duration = args.soak
    if args.procs is None:
        args.procs = 1 if args.client == "http" else 4
    args.procs = max(1, min(args.procs, args.clients))
    if args.json is None:
        args.json = bench.REPO / "benchmarks" / "results" / ("load-soak.json" if args.soak else "load.json")
    return args


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def family_cpu(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except OSError:
            pass
    return out


def family_memory_mb(pid: int, field: str = "VmRSS") -> tuple[float | None, float | None]:
    """(server + workers, server alone): RSS now, or the sum of each process's peak (VmHWM)."""
    values = [bench.process_memory_mb(p, field) for p in server_family(pid)]
    if values[0] is None:
        return None, None
    return round(sum(v for v in values if v is not None), 1), values[0]


def percentiles(samples: list[float]) -> dict:
    if not samples:
        return {"n": 0}
    s = np.asarray(samples)
    return {"n": len(s), "p50_s": round(float(np.percentile(s, 50)), 3),
            "p95_s": round(float(np.percentile(s, 95)), 3), "p99_s": round(float(np.percentile(s, 99)), 3),
            "max_s": round(float(s.max()), 3)}


# -- one client process ------------------------------------------------------------------------
class Tally:
    """Outcomes of every call in one client process (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kinds: collections.Counter = collections.Counter()
        self.ok_latency: list[float] = []
        self.busy_latency: list[float] = []
        self.first_errors: dict[str, str] = {}
        self.digests: dict[str, set] = collections.defaultdict(set)  # "image/output" -> sha256 seen

    def add(self, kind: str, seconds: float, detail: str = "") -> None:
        with self.lock:
            self.kinds[kind] += 1
            if kind == "ok":
                self.ok_latency.append(seconds)
            elif kind == "busy":
                self.busy_latency.append(seconds)
            elif detail:
                self.first_errors.setdefault(kind, detail[:300])

    def check_picture(self, key: str, data: bytes) -> str | None:
        """None when `data` decodes and equals the first copy of the same result, else what is wrong."""
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
        except Exception as exc:  # noqa: BLE001
            return f"{key}: {len(data)} bytes that do not decode ({exc})"
        digest = hashlib.sha256(data).hexdigest()
        with self.lock:
            seen = self.digests[key]
            seen.add(digest)
            if len(seen) > 1:
                return f"{key}: {len(data)} bytes that differ from another copy of the same result"
        return None

    def summary(self) -> dict:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"kinds": dict(self.kinds), "ok_latency": self.ok_latency, "busy_latency": self.busy_latency,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "first_errors": self.first_errors, "digests": {k: sorted(v) for k, v in self.digests.items()}}


def classify(text: str, exc: BaseException | None = None) -> str:
    import httpx

    if BUSY in text:
        return "busy"
    if isinstance(exc, (httpx.TimeoutException, TimeoutError, asyncio.TimeoutError)) or "timed out" in text.lower():
        return "timeout"
    return f"error:{type(exc).__name__}" if exc is not None else "error:server"


def check_answer(result, image: int, expected: list[float]) -> str | None:
    p_fake = result[0].get("p_fake") if isinstance(result, (list, tuple)) and isinstance(result[0], dict) else None
    if p_fake is None or abs(p_fake - expected[image]) > 1e-6:
        return f"image {image}: got {str(result)[:200]}, expected p_fake {expected[image]}"
    return None


def pictures(result) -> list[tuple[int, str]]:
    """(output index, URL or path) of every file in an answer."""
    return [(i, v.get("url") or v.get("path")) for i, v in enumerate(result)
            if isinstance(v, dict) and (v.get("url") or v.get("path"))]


async def http_caller(url: str, images: list[Path], expected: list[float], explain: bool, start: float,
                      deadline: float, backoff: float, tally: Tally, seed: int) -> None:
    import httpx

    rng = random.Random(seed)
    base = url.rstrip("/")
    # One session per caller, as gradio_client and a browser tab have (Gradio builds ~90 KiB of
    # state, ~5-10 ms of work, for each new session; a fresh one per call would measure that).
    session = f"bench{seed:06d}{rng.getrandbits(32):08x}"
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), trust_env=False) as http:
        await asyncio.sleep(max(0.0, start - time.time()))
        k = seed
        while time.time() < deadline:
            image = k % len(images)
            k += 1
            t0 = time.perf_counter()
            try:
                with open(images[image], "rb") as fh:
                    up = await http.post(f"{base}/{API}/upload",
                                         files=[("files", (images[image].name, fh.read(), "image/jpeg"))])
                up.raise_for_status()
                payload = {"path": up.json()[0], "orig_name": images[image].name, "meta": {"_type": "gradio.FileData"}}
                body = {"data": [payload, True, explain], "session_hash": session}
                joined = await http.post(f"{base}/{API}/call/predict", json=body)
                joined.raise_for_status()
                event, data = None, None
                async with http.stream("GET", f"{base}/{API}/call/predict/{joined.json()['event_id']}") as stream:
                    async for line in stream.aiter_lines():
                        if line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("data:") and event in ("complete", "error"):
                            data = line[5:].strip()
                            break
                seconds = time.perf_counter() - t0
                if event == "error":
                    kind = classify(data or "")
                    tally.add(kind, seconds, data or "")
                    if kind == "busy":
                        await asyncio.sleep(backoff * rng.uniform(0.5, 1.5))
                    continue
                result = json.loads(data) if data else None
                problem = check_answer(result, image, expected) if result else f"stream ended with {event!r}"
                if problem:
                    tally.add("wrong_answer", seconds, problem)
                    continue
                for index, where in pictures(result):
                    got = await http.get(where if where.startswith("http") else f"{base}/{API}/file={where}")
                    got.raise_for_status()
                    problem = problem or tally.check_picture(f"{image}/{index}", got.content)
                tally.add("broken_file" if problem else "ok", seconds, problem or "")
            except Exception as exc:  # noqa: BLE001
                tally.add(classify(repr(exc), exc), time.perf_counter() - t0, repr(exc))


def gradio_caller(url: str, images: list[Path], expected: list[float], explain: bool, ssl_verify: bool,
                  ready: threading.Barrier, go: threading.Event, timing: dict, backoff: float, tally: Tally,
                  seed: int) -> None:
    from gradio_client import Client, handle_file

    rng = random.Random(seed)
    try:
        client = Client(url, verbose=False, download_files=False, analytics_enabled=False, ssl_verify=ssl_verify)
    except Exception as exc:  # noqa: BLE001
        tally.add("connect:" + classify(repr(exc), exc), 0.0, repr(exc))
        ready.wait()
        return
    ready.wait()
    go.wait()
    time.sleep(max(0.0, timing["start"] - time.time()))
    k = seed
    try:
        while time.time() < timing["deadline"]:
            image = k % len(images)
            k += 1
            t0 = time.perf_counter()
            try:
                result = client.predict(handle_file(str(images[image])), True, explain, api_name="/predict")
            except Exception as exc:  # noqa: BLE001
                kind = classify(str(exc), exc)
                tally.add(kind, time.perf_counter() - t0, repr(exc))
                if kind == "busy":
                    time.sleep(backoff * rng.uniform(0.5, 1.5))
                continue
            seconds = time.perf_counter() - t0
            problem = check_answer(result, image, expected)
            if problem:
                tally.add("wrong_answer", seconds, problem)
                continue
            try:
                for index, where in pictures(result):
                    target = where if where.startswith("http") else f"{url}{API}/file={where}"
                    with urllib.request.urlopen(target, timeout=60) as response:
                        problem = problem or tally.check_picture(f"{image}/{index}", response.read())
            except Exception as exc:  # noqa: BLE001
                problem = f"download failed: {exc!r}"
            tally.add("broken_file" if problem else "ok", seconds, problem or "")
    finally:
        client.close()


def client_process(cfg: dict, seeds: list[int], ready, go, results) -> None:
    """Run `seeds` callers (one per seed); report when connected, start on `go`, return the tally."""
    tally = Tally()
    images, expected = [Path(p) for p in cfg["images"]], cfg["expected"]
    if cfg["client"] == "http":
        ready.put(len(seeds))
        timing = go.get()

        async def all_callers():
            await asyncio.gather(*(http_caller(cfg["url"], images, expected, cfg["explain"], timing["start"],
                                               timing["deadline"], cfg["backoff"], tally, s) for s in seeds))

        asyncio.run(all_callers())
    else:
        timing: dict = {}
        barrier, started = threading.Barrier(len(seeds) + 1), threading.Event()
        threads = [threading.Thread(target=gradio_caller, daemon=True,
                                    args=(cfg["url"], images, expected, cfg["explain"], cfg["ssl_verify"], barrier,
                                          started, timing, cfg["backoff"], tally, s)) for s in seeds]
        for t in threads:
            t.start()
        barrier.wait()
        ready.put(len(seeds))
        timing.update(go.get())
        started.set()
        for t in threads:
            t.join(timeout=max(0.0, timing["deadline"] - time.time()) + 120)
        tally.kinds["stuck_after_deadline"] += sum(t.is_alive() for t in threads)
    results.put(tally.summary())


def probe_process(url: str, stop_at, results, interval: float = 0.25) -> None:
    """Time what a visitor and a monitor do, from a process of its own (the callers' load is not ours)."""
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False, analytics_enabled=False, ssl_verify=False)
    timings, errors, peak_waiting = collections.defaultdict(list), [], 0

    def server_status():
        nonlocal peak_waiting
        status = client.predict(api_name="/server_status")
        peak_waiting = max(peak_waiting, int(status.get("waiting", 0)))

    checks = {"page_load": lambda: http_ok(url),
              "queue_status": lambda: urllib.request.urlopen(f"{url}{API}/queue/status", timeout=30).read(),
              "model_info": lambda: client.predict(api_name="/model_info"),
              "server_status": server_status}
    began = time.perf_counter()
    slow = []  # (seconds into the run, probe, seconds taken) of every probe over 1 s
    while not stop_at.is_set():
        for name, fn in checks.items():
            t0 = time.perf_counter()
            try:
                fn()
                timings[name].append(time.perf_counter() - t0)
                if timings[name][-1] > 1.0:
                    slow.append((round(t0 - began, 1), name, round(timings[name][-1], 2)))
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{name}: {exc!r}"[:200])
        stop_at.wait(interval)
    client.close()
    results.put({"timings": dict(timings), "errors": errors, "peak_waiting": peak_waiting, "slow": slow})


# -- the run -------------------------------------------------------------------------------------
def main() -> None:
    args = parse_args()
    model = bench.require_bundle(args.model)
    for key in ("NO_PROXY", "no_proxy"):
        os.environ[key] = ",".join(filter(None, [os.environ.get(key), "127.0.0.1", "localhost"]))
    from deepfake_detector.inference import Predictor

    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    images = []
    for i, data in enumerate(bench.face_crops_jpeg(5, seed=3)):
        images.append(workdir / f"face{i}.jpg")
        images[-1].write_bytes(data)
    local = Predictor(model)
    expected = [local.predict(str(p)).p_fake for p in images]
    del local

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = app_env(model, port)
    env.update(dict(item.split("=", 1) for item in args.env))
    log = workdir / "app.log"
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=bench.REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    ctx = mp.get_context("spawn")
    ready, go, results, probe_results = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Queue()
    stop_probe = ctx.Event()
    rss_samples: list[tuple[float, float | None]] = []
    summaries: list[dict] = []
    probe: dict = {"timings": {}, "errors": ["probe did not report"], "peak_waiting": None}
    try:
        wait_for(lambda: http_ok(url), proc, started, log, "HTTP 200 on /")
        from gradio_client import Client, handle_file

        warm = Client(url, verbose=False, download_files=False, analytics_enabled=False, ssl_verify=False)
        for p in images:  # first calls: allocation, interpreter warm-up
            warm.predict(handle_file(str(p)), True, args.explain, api_name="/predict")
        warm.close()

        cfg = {"client": args.client, "url": url, "images": [str(p) for p in images], "expected": expected,
               "explain": args.explain, "backoff": args.busy_backoff, "ssl_verify": args.ssl_verify}
        procs = [ctx.Process(target=client_process, args=(cfg, list(range(i, args.clients, args.procs)), ready, go,
                                                          results), daemon=True) for i in range(args.procs)]
        t_connect = time.perf_counter()
        for p in procs:
            p.start()
        connected = sum(ready.get(timeout=600) for _ in procs)
        connect_s = time.perf_counter() - t_connect
        prober = ctx.Process(target=probe_process, args=(url, stop_probe, probe_results), daemon=True)
        prober.start()
        start = time.time() + 1.0
        timing = {"start": start, "deadline": start + args.duration}
        for _ in procs:
            go.put(timing)
        time.sleep(max(0.0, start - time.time()))
        t0 = time.perf_counter()
        server_cpu0 = family_cpu(server_family(proc.pid))
        next_rss = 0.0
        while time.time() < timing["deadline"]:
            now = time.perf_counter() - t0
            if now >= next_rss:
                rss_samples.append((round(now, 1), family_memory_mb(proc.pid)[0]))
                if args.soak:
                    print(f"  {now:7.0f} s  server + workers RSS {rss_samples[-1][1]} MB", flush=True)
                next_rss = now + (args.rss_every if args.soak else 1.0)
            time.sleep(0.2)
        summaries = [results.get(timeout=300) for _ in procs]
        elapsed = time.perf_counter() - t0
        cpu_end = family_cpu(server_family(proc.pid))
        web_cpu = cpu_end.get(proc.pid, 0.0) - server_cpu0.get(proc.pid, 0.0)
        server_cpu = sum(v - server_cpu0.get(k, 0.0) for k, v in cpu_end.items())  # web server + workers
        workers = len(cpu_end) - 1
        stop_probe.set()
        probe = probe_results.get(timeout=60)
        rss_samples.append((round(time.perf_counter() - t0, 1), family_memory_mb(proc.pid)[0]))
        rss_end_web = family_memory_mb(proc.pid)[1]
        peak, peak_web = family_memory_mb(proc.pid, "VmHWM")
    finally:
        stop_probe.set()
        stop(proc)
    tracebacks = log.read_text(errors="replace").count("Traceback")

    kinds: collections.Counter = collections.Counter()
    ok_latency, busy_latency, first_errors, digests = [], [], {}, collections.defaultdict(set)
    for s in summaries:
        kinds.update(s["kinds"])
        ok_latency += s["ok_latency"]
        busy_latency += s["busy_latency"]
        for k, v in s["first_errors"].items():
            first_errors.setdefault(k, v)
        for k, v in s["digests"].items():
            digests[k].update(v)
    differing = {k: len(v) for k, v in digests.items() if len(v) > 1}
    if differing:  # copies that differ between client processes (within one, broken_file counts them)
        kinds["broken_file_across_processes"] += sum(n - 1 for n in differing.values())
    kinds = collections.Counter({k: v for k, v in kinds.items() if v})
    ok, busy = kinds.get("ok", 0), kinds.get("busy", 0)
    client_cpu = sum(s["cpu_s"] for s in summaries)  # includes connecting the callers
    calls = max(1, sum(kinds.values()))
    failures = {k: v for k, v in kinds.items() if k not in ("ok", "busy")}
    rss_values = [r for _, r in rss_samples if r is not None]
    warm_rss = next((r for t, r in rss_samples if t >= min(60.0, args.duration / 4) and r is not None),
                    rss_values[0] if rss_values else None)
    growth = round(100.0 * (rss_values[-1] - warm_rss) / warm_rss, 1) if rss_values and warm_rss else None
    results_json = {
        "model_dir": str(model), "client": args.client, "client_processes": args.procs, "clients": args.clients,
        "connected": connected, "connect_s": round(connect_s, 1), "duration_s": round(elapsed, 1),
        "explain": args.explain, "busy_backoff_s": args.busy_backoff, "app_env": args.env,
        "calls": sum(kinds.values()), "ok": ok, "busy": busy, "failures": failures,
        "first_error_per_kind": first_errors,
        "throughput_ok_per_s": round(ok / elapsed, 1),
        "server_cpu_ms_per_call": round(1000 * server_cpu / calls, 1),
        "web_process_cpu_ms_per_call": round(1000 * web_cpu / calls, 1), "worker_processes": workers,
        "client_cpu_ms_per_call": round(1000 * client_cpu / calls, 1),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "latency_ok": percentiles(ok_latency), "latency_busy": percentiles(busy_latency),
        "probes": {k: percentiles(v) for k, v in probe["timings"].items()},
        "probe_errors": probe["errors"][:10], "peak_waiting": probe["peak_waiting"],
        "probes_over_1s": probe.get("slow", []),
        "server_tracebacks": tracebacks, "server_peak_rss_mb": peak, "web_process_peak_rss_mb": peak_web,
        "web_process_rss_end_mb": rss_end_web,
        "server_rss_mb": {"samples": rss_samples if args.soak else rss_samples[::10] + rss_samples[-1:],
                          "warm": warm_rss, "end": rss_values[-1] if rss_values else None,
                          "growth_after_warm_pct": growth},
    }

    def lat(stats: dict) -> str:
        return (f"p50 {stats['p50_s']:.2f} s  p95 {stats['p95_s']:.2f} s  p99 {stats['p99_s']:.2f} s  "
                f"max {stats['max_s']:.2f} s  (n={stats['n']})") if stats.get("n") else "none"

    rows = [
        ("callers", f"{args.clients} {args.client} clients in {args.procs} process(es), all connected in "
                    f"{connect_s:.1f} s; explanation {'on' if args.explain else 'off'}"),
        ("duration", f"{elapsed:.0f} s"),
        ("calls", f"{results_json['calls']}: {ok} answered correctly, {busy} told busy"),
        ("failures", ", ".join(f"{k} {v}" for k, v in failures.items()) or "none"),
        ("throughput", f"{results_json['throughput_ok_per_s']:.1f} correct answers per second"),
        ("CPU per call", f"server {results_json['server_cpu_ms_per_call']} ms ({web_cpu * 1000 / calls:.1f} ms in the "
                         f"web server's process, the rest in {workers} worker processes), callers "
                         f"{results_json['client_cpu_ms_per_call']} ms (load average {os.getloadavg()[0]:.1f} "
                         f"on {os.cpu_count()} cores)"),
        ("latency, answered", lat(results_json["latency_ok"])),
        ("latency, busy", lat(results_json["latency_busy"])),
        *[(f"probe {k}", lat(v)) for k, v in results_json["probes"].items()],
        ("probe errors", str(len(probe["errors"]))),
        ("probes over 1 s", ", ".join(f"{name} {took:.1f} s at {at:.0f} s" for at, name, took in
                                      probe.get("slow", [])[:12]) or "none"),
        ("peak waiting (server)", str(probe["peak_waiting"])),
        ("server tracebacks", str(tracebacks)),
        ("server peak RSS", f"{peak} MB (sum of each process's peak; web server alone {peak_web} MB, "
                            f"{rss_end_web} MB at the end)"),
        ("server + workers RSS warm -> end", f"{warm_rss} -> {results_json['server_rss_mb']['end']} MB ({growth:+.1f}%)"
         if growth is not None else "n/a"),
    ]
    bench.print_table(f"Load: /predict on 127.0.0.1 (model {model.name})", rows)
    for kind, detail in first_errors.items():
        print(f"  first {kind}: {detail}")
    if tracebacks:
        print("\nserver log tail:\n" + tail(log, 40))
    bench.write_results(args.json, "load-soak" if args.soak else "load", args.quick, results_json)


if __name__ == "__main__":
    main()
