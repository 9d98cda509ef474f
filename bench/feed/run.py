#!/usr/bin/env python3
"""The change feed (GET /v1/changes) under load, on the real `assent serve`.

1. One node (embedded SQLite): 1,000 idle subscribers and one that never reads. The server's
   resident memory before and with them, its CPU while they idle, the delivery latency of
   paced withdrawals to all 1,000 (from the writer's acknowledgement to the line arriving),
   and whether the stalled subscriber is cut off with a position to resume from.
2. Three nodes on one PostgreSQL database: withdrawals acknowledged by node 0, read from node
   1's feed — the latency across nodes (target: p99 <= 100 ms).

Usage: run.py ASSENT_BINARY [OUT_DIR]. Prints JSON lines; writes OUT_DIR/feed.json.
"""
import http.client
import json
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POSITION = re.compile(rb'\{"position":(\d+),')
WITHDRAW = b'{"rule":"service-generated-for-ai-training","action":"withdraw"}'


def start_node(binary, args):
    """Starts `assent serve ARGS`; returns (process, port, {role: key})."""
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--quiet"] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    text = b""
    deadline = time.time() + 120
    while b"on http://" not in text or (b"--demo" in " ".join(args).encode() and b"try:" not in text):
        line = proc.stdout.readline()
        if not line or time.time() > deadline:
            raise RuntimeError("the node did not start: " + text.decode(errors="replace"))
        text += line
    port = int(re.search(rb"on http://127\.0\.0\.1:(\d+)", text).group(1))
    keys = {m.group(1).decode(): m.group(2).decode()
            for m in re.finditer(rb"  (service|operator|auditor|portal) +(assent_[0-9a-f]+)", text)}
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        time.sleep(0.05)
    return proc, port, keys


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def subscribe(port, key, after, rcvbuf=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /v1/changes?after={after} HTTP/1.1\r\nHost: b\r\n"
              f"Authorization: Bearer {key}\r\n\r\n".encode())
    return s


def head_position(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/readyz")
    return int(re.search(rb'"position":(\d+)', c.getresponse().read()).group(1))


class Writer(threading.Thread):
    """Withdrawals through one node, `gap` seconds apart: the acknowledgement time per position."""

    def __init__(self, port, key, count, gap, prefix):
        super().__init__(daemon=True)
        self.port, self.key, self.count, self.gap, self.prefix = port, key, count, gap, prefix
        self.acked = {}

    def run(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": "Bearer " + self.key, "Content-Type": "application/json"}
        for i in range(self.count):
            start = time.monotonic()
            c.request("POST", f"/v1/subjects/{self.prefix}{i}/consents", WITHDRAW, headers)
            r = c.getresponse()
            body = r.read()
            if r.status != 201:
                raise RuntimeError(f"withdrawal answered {r.status}: {body[:200]!r}")
            self.acked[int(re.search(rb'"position":(\d+)', body).group(1))] = time.monotonic()
            rest = self.gap - (time.monotonic() - start)
            if rest > 0:
                time.sleep(rest)


def read_until(socks, want, bound):
    """Reads every socket until each has seen position `want` or `bound` seconds passed;
    returns {socket: {position: first seen}}."""
    sel = selectors.DefaultSelector()
    seen = {s: {} for s in socks}
    tails = {s: b"" for s in socks}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    done = set()
    deadline = time.monotonic() + bound
    while len(done) < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            try:
                data = s.recv(1 << 16)
            except BlockingIOError:
                continue
            now = time.monotonic()
            if not data:
                sel.unregister(s)
                done.add(s)
                continue
            buf = tails[s] + data
            for m in POSITION.finditer(buf):
                seen[s].setdefault(int(m.group(1)), now)
            tails[s] = buf[-64:]
            if want in seen[s]:
                done.add(s)
                sel.unregister(s)
    sel.close()
    return seen


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def latencies_ms(acked, seen_maps):
    out = []
    for seen in seen_maps:
        for pos, t in acked.items():
            if pos in seen:
                out.append(max(0.0, (seen[pos] - t) * 1000))
    return out


def one_node(binary, work):
    proc, port, keys = start_node(binary, ["--data", os.path.join(work, "one"), "--demo",
                                           "--threads", "2", "--feed-stall", "2"])
    try:
        pid = proc.pid
        time.sleep(0.5)
        rss_before = rss_kib(pid)
        head = head_position(port)
        subs = [subscribe(port, keys["auditor"], head) for _ in range(1000)]
        time.sleep(2)
        rss_idle = rss_kib(pid)
        cpu0 = cpu_seconds(pid)
        time.sleep(5)
        idle_cpu = (cpu_seconds(pid) - cpu0) / 5 * 100
        slow = subscribe(port, keys["service"], 0, rcvbuf=4096)  # never reads
        writer = Writer(port, keys["service"], 200, 0.02, "paced-")
        writer.start()
        # Read while the writer writes: each line is timed as it arrives.
        last = head + 200
        seen = read_until(subs, last, 60)
        writer.join()
        lat = latencies_ms(writer.acked, seen.values())
        delivered = sum(1 for s in subs if last in seen[s])
        # A burst for the stalled one to fall behind, then the time it is given (--feed-stall).
        burst = Writer(port, keys["service"], 1500, 0, "burst-")
        burst.start()
        burst.join()
        read_until(subs, max(burst.acked), 30)
        time.sleep(3)
        rss_end = rss_kib(pid)
        slow.settimeout(5)
        got = b""
        try:
            while True:
                data = slow.recv(1 << 16)
                if not data:
                    break
                got += data
        except OSError:
            pass
        cut = re.search(rb'"type":"[^"]*slow-consumer".*?"resume_from":(\d+)', got)
        result = {
            "mode": "feed-one-node", "subscribers": len(subs),
            "rss_kib_before": rss_before, "rss_kib_with_1000_idle": rss_idle,
            "kib_per_idle_subscriber": round((rss_idle - rss_before) / len(subs), 1),
            "idle_cpu_percent_of_a_core": round(idle_cpu, 2),
            "events": len(writer.acked), "deliveries": len(lat),
            "subscribers_reaching_the_last": delivered,
            "latency_ms_p50": round(percentile(lat, 50), 2),
            "latency_ms_p99": round(percentile(lat, 99), 2),
            "latency_ms_max": round(max(lat), 2),
            "slow_subscriber_cut_off": bool(cut),
            "slow_subscriber_resume_from": int(cut.group(1)) if cut else None,
            "rss_kib_after_burst": rss_end,
        }
        for s in subs:
            s.close()
        slow.close()
        return result
    finally:
        proc.terminate()
        proc.wait(30)


def cluster(binary, work):
    pg_dir = os.path.join(work, "pg")
    script = os.path.join(ROOT, "test/pg/cluster.sh")
    subprocess.run([script, "start", pg_dir, "--fast"], check=True, stdout=subprocess.DEVNULL)
    nodes = []
    try:
        url = open(os.path.join(pg_dir, "url")).read().strip()
        key_file = os.path.join(work, "audit.key")
        g = ["--database", url, "--audit-key", key_file]
        run = lambda *a: subprocess.run([binary, *a, *g], check=True, capture_output=True,
                                        cwd=ROOT, text=True).stdout
        run("audit", "key")
        run("terms", "publish", "--backfill", "--data", os.path.join(work, "admin"),
            "examples/terms/example-meetings-2023-08-11.yaml")
        service = run("keys", "create", "--role", "service", "--data",
                      os.path.join(work, "admin")).splitlines()[0]
        for i in range(3):
            nodes.append(start_node(binary, ["--data", os.path.join(work, f"node{i}"), *g,
                                             "--threads", "1", "--audit-in-background"]))
        head = head_position(nodes[1][1])
        sub = subscribe(nodes[1][1], service, head)
        time.sleep(0.5)
        writer = Writer(nodes[0][1], service, 500, 0.01, "across-")
        writer.start()
        # Read while the writer writes (the reader sees each line as it comes).
        seen = read_until([sub], 10**12, 5.0 + 500 * 0.012)
        writer.join()
        last = max(writer.acked)
        if last not in seen[sub]:
            seen[sub].update(read_until([sub], last, 10)[sub])
        lat = latencies_ms(writer.acked, [seen[sub]])
        sub.close()
        return {
            "mode": "feed-across-nodes", "nodes": 3, "events": len(writer.acked),
            "delivered": len(lat),
            "latency_ms_p50": round(percentile(lat, 50), 2),
            "latency_ms_p99": round(percentile(lat, 99), 2),
            "latency_ms_max": round(max(lat), 2),
            "target_p99_ms": 100,
            "met": percentile(lat, 99) <= 100 and len(lat) == len(writer.acked),
        }
    finally:
        for proc, _, _ in nodes:
            proc.terminate()
            proc.wait(30)
        subprocess.run([script, "stop", pg_dir], stdout=subprocess.DEVNULL)


def main():
    binary = os.path.abspath(sys.argv[1])
    out_dir = sys.argv[2] if len(sys.argv) > 2 else None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    results = []
    with tempfile.TemporaryDirectory(prefix="assent-feed-bench-") as work:
        os.chmod(work, 0o755)  # the database server may run as another user
        for bench in (one_node, cluster):
            r = bench(binary, work)
            print(json.dumps(r), flush=True)
            results.append(r)
    if out_dir:
        with open(os.path.join(out_dir, "feed.json"), "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
