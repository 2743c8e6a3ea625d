"""Benchmark the workspace index on a real codebase (default: this virtualenv's site-packages).

Measures, and prints as Markdown for bench/RESULTS.md:
- initial index, files/s with parsing on one core (a worker thread) and with 2 worker processes;
- a re-index after restart with nothing changed (scaled to 10k files);
- index size on disk and the daemon's RSS, per 10k files;
- ``workspace_symbol_search`` latency (the reader's search) on the whole index, exact and fuzzy;
- save-to-queryable latency against a running daemon (``python -m lynkr serve`` as a subprocess watching a copy
  of the codebase's source files): from the write of a new file to a query, from another process, that sees it.

Usage: python bench/indexer.py [--root PATH] [--samples 40] [--no-daemon]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from lynkr.index.languages import language_of
from lynkr.index.store import IndexStore
from lynkr.index.symbols import IndexReader
from lynkr.index.writer import IndexWriter, RunCounts, process_pool

MAX_FILE_BYTES = 1_048_576


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _run(root: Path, data: Path, workers: int) -> tuple[RunCounts, float, float]:
    store = IndexStore.open(data)
    try:
        writer = IndexWriter(store, root, max_file_bytes=MAX_FILE_BYTES)
        executor = process_pool(workers) if workers > 1 else None
        started, cpu = time.perf_counter(), time.process_time()
        try:
            counts = writer.run(executor=executor)
        finally:
            if executor is not None:
                executor.shutdown()
        return counts, time.perf_counter() - started, time.process_time() - cpu
    finally:
        store.close()


def _search_latency(data: Path) -> dict[str, float]:
    reader = IndexReader.open(data)
    try:
        started = time.perf_counter()
        reader.refresh()
        load_s = time.perf_counter() - started
        snapshot = reader.snapshot()
        names = sorted(snapshot.by_name)
        rng = random.Random(7)
        exact_names = rng.sample(names, 300)
        fuzzy = [name[: max(3, len(name) // 2)] for name in rng.sample([n for n in names if len(n) >= 6], 150)]
        typos = []
        for name in rng.sample([n for n in names if len(n) >= 6], 150):
            cut = rng.randrange(1, len(name) - 1)
            typos.append(name[:cut] + name[cut + 1 :])  # one letter dropped: only the fuzzy tier finds it
        timings: dict[str, list[float]] = {"exact": [], "prefix/substring": [], "fuzzy (typo)": []}
        for label, queries, exact in (("exact", exact_names, True), ("prefix/substring", fuzzy, False),
                                      ("fuzzy (typo)", typos, False)):
            for query in queries:
                began = time.perf_counter()
                reader.search(query, exact=exact, limit=20)
                timings[label].append((time.perf_counter() - began) * 1000)
        result = {"load_s": load_s, "names": float(len(names))}
        for label, values in timings.items():
            result[f"{label} p50"] = statistics.median(values)
            result[f"{label} p95"] = _percentile(values, 0.95)
        return result
    finally:
        reader.close()


def _copy_sources(root: Path, target: Path) -> int:
    copied = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("__pycache__",)]
        for name in files:
            source = Path(folder) / name
            if language_of(name) is None or source.is_symlink():
                continue
            destination = target / source.relative_to(root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
            copied += 1
    return copied


def _gauge(base_url: str, name: str) -> float:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _daemon(root: Path, work: Path, samples: int) -> dict[str, float]:
    workspace = work / "workspace"
    copied = _copy_sources(root, workspace)
    data = work / "daemon-data"
    env = {**os.environ, "WORKSPACE_ROOT": str(workspace), "LYNKR_DATA_DIR": str(data), "PORT": "0",
           "LYNKR_HOST": "127.0.0.1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    started = time.perf_counter()
    # Not run from inside the copy: its package folders would shadow the real ones on ``python -m``'s path.
    daemon = subprocess.Popen([sys.executable, "-m", "lynkr", "serve"], env=env, cwd=work,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert daemon.stdout is not None
        base_url = ""
        for line in daemon.stdout:
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                base_url = match.group(1)
                break
        if not base_url:
            raise RuntimeError(f"the daemon did not start (exit code {daemon.wait()})")
        health_s = time.perf_counter() - started
        # While the initial index runs, the edge must keep answering: time /health meanwhile.
        health_ms: list[float] = []
        while _gauge(base_url, "lynkr_index_runs_finished_total") < 1:
            began = time.perf_counter()
            with urllib.request.urlopen(f"{base_url}/health", timeout=10) as response:
                response.read()
            health_ms.append((time.perf_counter() - began) * 1000)
            time.sleep(0.05)
        indexed_s = time.perf_counter() - started
        rss = _rss_mib(daemon.pid)
        size = _gauge(base_url, "lynkr_index_size_bytes")
        reader = IndexReader.open(data)
        reader.refresh()
        files = len([r for r in reader.snapshot().records.values() if not r.skipped])
        latencies: list[float] = []
        probe_folder = workspace / "bench_probe"
        probe_folder.mkdir()
        for number in range(samples):
            name = f"bench_probe_{number}_{random.randrange(10**9)}"
            began = time.perf_counter()
            (probe_folder / f"probe_{number}.py").write_text(f"def {name}():\n    return {number}\n")
            deadline = began + 10
            while not reader.search(name, exact=True):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{name} never became queryable")
                time.sleep(0.001)
            latencies.append((time.perf_counter() - began) * 1000)
            time.sleep(0.2)
        reader.close()
        return {"copied": copied, "files": files, "health_s": health_s, "indexed_s": indexed_s, "rss_mib": rss,
                "size_bytes": size, "save_p50_ms": statistics.median(latencies),
                "save_p95_ms": _percentile(latencies, 0.95), "save_max_ms": max(latencies),
                "health_p50_ms": statistics.median(health_ms), "health_p99_ms": _percentile(health_ms, 0.99),
                "health_max_ms": max(health_ms), "health_samples": len(health_ms)}
    finally:
        daemon.send_signal(signal.SIGINT)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_root = Path(next(p for p in sys.path if p.endswith("site-packages")))
    parser.add_argument("--root", type=Path, default=default_root)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--no-daemon", action="store_true")
    args = parser.parse_args()
    root = args.root.resolve()
    with tempfile.TemporaryDirectory(prefix="lynkr-bench-index-") as scratch:
        work = Path(scratch)
        load = os.getloadavg()
        one, one_s, one_cpu = _run(root, work / "one", workers=1)
        two, two_s, _ = _run(root, work / "two", workers=2)
        again, again_s, _ = _run(root, work / "one", workers=1)
        size = IndexStore.open(work / "one")
        size_bytes = size.size_on_disk()
        size.close()
        search = _search_latency(work / "one")
        daemon = None if args.no_daemon else _daemon(root, work, args.samples)
        after = os.getloadavg()
    per10k = 10_000 / max(1, one.seen)
    print(f"Codebase: `{root}`: {one.seen} candidate files, {one.parsed} parsed "
          f"({one.definitions} definitions, {one.references} references); skipped: "
          + ", ".join(f"{k} {v}" for k, v in sorted(one.skipped.items())))
    print(f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average "
          f"{load[0]:.2f} before, {after[0]:.2f} after (the machine is shared)")
    print()
    print(f"- initial index, one core (worker thread): **{one.parsed / one_s:.0f} files/s** "
          f"({one_s:.1f} s wall, {one_cpu:.1f} s CPU; {one.parsed / one_cpu:.0f} files per CPU-second)")
    print(f"- initial index, 2 worker processes: **{two.parsed / two_s:.0f} files/s** ({two_s:.1f} s), "
          f"speed-up x{one_s / two_s:.2f}")
    print(f"- re-index after restart, nothing changed: **{again_s:.2f} s** for {again.seen} files "
          f"({again.parsed} parsed, {again.unchanged} unchanged) = **{again_s * per10k:.2f} s per 10k files**")
    print(f"- index size on disk: {size_bytes / 2**20:.1f} MiB = **{size_bytes * per10k / 2**20:.1f} MiB per 10k files**")
    print(f"- reader load of the whole index (a fresh `lynkr index` process): {search['load_s']:.2f} s "
          f"({search['names']:.0f} distinct names)")
    print("- symbol search on the whole index: "
          + ", ".join(f"{label} p50 **{search[f'{label} p50']:.2f} ms** (p95 {search[f'{label} p95']:.2f})"
                      for label in ("exact", "prefix/substring", "fuzzy (typo)")))
    if daemon is not None:
        per10k_daemon = 10_000 / max(1, daemon["files"])
        print(f"- daemon (`python -m lynkr serve`) over a copy of the source files ({daemon['copied']:.0f} files, "
              f"{daemon['files']:.0f} indexed): listening after {daemon['health_s']:.2f} s, initial index finished "
              f"after {daemon['indexed_s']:.1f} s")
        print(f"- `GET /health` while the initial index ran ({daemon['health_samples']:.0f} requests): "
              f"p50 {daemon['health_p50_ms']:.1f} ms, p99 {daemon['health_p99_ms']:.1f} ms, "
              f"max {daemon['health_max_ms']:.1f} ms")
        print(f"- daemon RSS after the initial index: {daemon['rss_mib']:.0f} MiB = "
              f"**{daemon['rss_mib'] * per10k_daemon:.0f} MiB per 10k files**")
        print(f"- save-to-queryable ({args.samples} new files, a query from another process polling every 1 ms): "
              f"p50 **{daemon['save_p50_ms']:.0f} ms**, p95 **{daemon['save_p95_ms']:.0f} ms**, "
              f"max {daemon['save_max_ms']:.0f} ms")


if __name__ == "__main__":
    main()
