#!/usr/bin/env python3
"""idem vs Redis, side by side, on this machine (BENCHMARKS.md explains the method).

For each scenario, starts the pair it compares, fresh, each on loopback with its own
new data dir (Redis with appendonly yes + appendfsync always, or without persistence;
idemd --durability sync or async); runs the same idem-bench workload on both
alternately (A B, B A, ...) for --rounds rounds and stops them; prints medians and the
idem/Redis ratios; measures the disk's raw fdatasync rate in the same run; stops
everything it started (by pid), also on Ctrl-C.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")
children = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# Set by --fifo: a prefix that runs servers and load generator under the
# real-time FIFO scheduler (chrt -f 5), all alike, so that other work on a
# shared machine (builds) cannot take the CPU in the middle of a run.
PREFIX = []


def start(name, argv, port, log):
    proc = subprocess.Popen(PREFIX + argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    children.append(proc)
    wait_port(port)
    return {"name": name, "proc": proc, "port": port}


def stop_all(*_):
    for proc in children:
        if proc.poll() is None:
            proc.terminate()
    for proc in children:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    children.clear()


def fdatasync_rate(directory, seconds=2.0):
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    n = 0
    start_t = time.time()
    while time.time() - start_t < seconds:
        os.write(fd, b"x" * 100)
        os.fdatasync(fd)
        n += 1
    os.close(fd)
    os.unlink(path)
    return n / (time.time() - start_t)


def bench(system, workload, conns, depth, seconds, extra=()):
    target = "redis" if system["name"].startswith("redis") else "idem"
    argv = [os.path.join(BIN, "idem-bench"), "--target", target,
            "--endpoint", f"127.0.0.1:{system['port']}", "--workload", workload,
            "--connections", str(conns), "--depth", str(depth), "--seconds", str(seconds),
            "--json", *extra]
    out = subprocess.run(PREFIX + argv, capture_output=True, text=True,
                         timeout=seconds * 10 + 120)
    if out.returncode != 0:
        raise RuntimeError(f"idem-bench failed on {system['name']} {workload}: "
                           f"{out.stdout.strip()} {out.stderr.strip()}")
    return json.loads(out.stdout)


def start_systems(names, work, log):
    """Starts the named systems, each with a new data dir under work."""
    os.makedirs(work)
    systems = {}
    for name in names:
        port = free_port()
        d = os.path.join(work, name)
        if name.startswith("redis"):
            persist = (["--appendonly", "yes", "--appendfsync", "always"] if name == "redis-aof"
                       else ["--appendonly", "no"])
            os.makedirs(d)
            argv = [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                    "--dir", d, "--save", "", *persist]
        else:
            argv = [os.path.join(BIN, "idemd"), "--listen", f"127.0.0.1:{port}",
                    "--admin-listen", "off", "--data-dir", d,
                    "--durability", name.split("-")[1]]
        systems[name] = start(name, argv, port, log)
    return systems


# (label, workload, connections, depth, idem system, redis system, metric)
SCENARIOS = [
    ("durable reserve, 50 conns, depth 1", "reserve", 50, 1, "idem-sync", "redis-aof", "ops"),
    ("durable reserve, 50 conns, depth 16", "reserve", 50, 16, "idem-sync", "redis-aof", "ops"),
    ("durable flow (reserve+complete), 50x1", "flow", 50, 1, "idem-sync", "redis-aof", "ops"),
    ("lookup hit, 50 conns, depth 1", "lookup-hit", 50, 1, "idem-sync", "redis-mem", "ops"),
    ("durable reserve, 1 conn", "reserve", 1, 1, "idem-sync", "redis-aof", "latency"),
    ("async reserve vs no persistence, 50x1", "reserve", 50, 1, "idem-async", "redis-mem", "ops"),
    ("async flow vs no persistence, 50x1", "flow", 50, 1, "idem-async", "redis-mem", "ops"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--only", help="run scenarios whose label contains this")
    ap.add_argument("--json", help="write all raw results here")
    ap.add_argument("--fifo", action="store_true",
                    help="run every server and idem-bench under chrt -f 5 (needs root): steadier "
                         "figures on a machine that is doing other work")
    args = ap.parse_args()
    if args.fifo:
        PREFIX.extend(["chrt", "-f", "5"])
    signal.signal(signal.SIGINT, lambda *a: (stop_all(), sys.exit(130)))
    signal.signal(signal.SIGTERM, lambda *a: (stop_all(), sys.exit(143)))

    work = tempfile.mkdtemp(prefix="idem-compare-")
    log = open(os.path.join(work, "servers.log"), "w")
    try:
        print(f"disk: raw fdatasync rate {fdatasync_rate(work):.0f}/s ({work})", flush=True)
        raw = []
        rows = []
        for label, wl, conns, depth, a, b, metric in SCENARIOS:
            if args.only and args.only not in label:
                continue
            # Fresh servers and data dirs for each scenario: the background
            # work left by an earlier scenario's writes (RocksDB compaction,
            # Redis AOF rewrite) must not run inside this one's rounds.
            systems = start_systems((a, b), os.path.join(work, f"s{len(rows)}"), log)
            results = {a: [], b: []}
            for r in range(args.rounds):
                for name in ((a, b) if r % 2 == 0 else (b, a)):
                    res = bench(systems[name], wl, conns, depth, args.seconds)
                    results[name].append(res)
                    raw.append({"scenario": label, "system": name, "round": r, **res})
            med = {n: {"ops": statistics.median(x["ops_per_sec"] for x in v),
                       "p50": statistics.median(x["latency_us"]["p50"] for x in v),
                       "p99": statistics.median(x["latency_us"]["p99"] for x in v)}
                   for n, v in results.items()}
            stop_all()
            rows.append((label, a, b, med, metric))
            print(f"  {label}: {a} {med[a]['ops']:.0f}/s p50 {med[a]['p50']}us p99 {med[a]['p99']}us"
                  f" | {b} {med[b]['ops']:.0f}/s p50 {med[b]['p50']}us p99 {med[b]['p99']}us",
                  flush=True)
        print()
        print("| scenario | idem | ops/s | p50 us | p99 us | Redis | ops/s | p50 us | p99 us "
              "| ops ratio | p50 ratio | p99 ratio |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for label, a, b, med, metric in rows:
            ra = med[a]["ops"] / med[b]["ops"] if med[b]["ops"] else float("nan")
            p50 = med[a]["p50"] / med[b]["p50"] if med[b]["p50"] else float("nan")
            p99 = med[a]["p99"] / med[b]["p99"] if med[b]["p99"] else float("nan")
            print(f"| {label} | {a} | {med[a]['ops']:.0f} | {med[a]['p50']} | {med[a]['p99']} "
                  f"| {b} | {med[b]['ops']:.0f} | {med[b]['p50']} | {med[b]['p99']} "
                  f"| {ra:.2f}x | {p50:.2f}x | {p99:.2f}x |")
        print(f"\n(medians of {args.rounds} rounds of {args.seconds} s, alternating; "
              f"ratios are idem / Redis: ops higher is better, latency lower is better)")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(raw, f, indent=1)
    finally:
        stop_all()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
