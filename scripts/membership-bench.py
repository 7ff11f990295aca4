#!/usr/bin/env python3
"""Membership changes and disk loss under load (§5.1, §5.4), measured.

Starts three livepaxos nodes on 127.0.0.1:7301-7303 (data in a temporary
directory), runs `livepaxos bench` against them with a per-100 ms timeline,
and meanwhile:
  1. starts node 4 with --join and adds it as a learner (members add),
  2. promotes it to voter once it has caught up (members promote),
  3. removes the master (it hands mastership over first),
  4. kills a follower, empties its data directory and restarts it: it
     rejoins as a new incarnation, votes once the group records it.
Prints how long each step took and the throughput around it, and writes
the raw figures to OUT (default bench/membership-<date>.json). Kills only
the processes it started, by PID.

Usage: scripts/membership-bench.py [BIN] [OUT]
"""
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "bin/livepaxos"
OUT = sys.argv[2] if len(sys.argv) > 2 else "bench/membership-%s.json" % datetime.date.today().isoformat()
PORTS = {1: 7301, 2: 7302, 3: 7303, 4: 7304}
PEERS = ",".join("%d=127.0.0.1:%d" % (i, PORTS[i]) for i in (1, 2, 3))
ALL = ",".join("127.0.0.1:%d" % PORTS[i] for i in (1, 2, 3, 4))
BENCH_SECONDS = 40

work = tempfile.mkdtemp(prefix="lp-membership-")
procs = {}


def start(node, extra=()):
    d = os.path.join(work, "n%d" % node)
    os.makedirs(d, exist_ok=True)
    log = open(os.path.join(work, "n%d.log" % node), "a")
    args = [BIN, "node", "--id", str(node), "--peers", PEERS, "--data", d, "--log-level", "info"]
    if node == 4:
        args += ["--join", "--listen", "127.0.0.1:%d" % PORTS[4]]
    procs[node] = subprocess.Popen(args + list(extra), stdout=log, stderr=log)


def stop(node, sig=signal.SIGKILL):
    p = procs.pop(node, None)
    if p:
        p.send_signal(sig)
        p.wait()


def cli(*args, timeout=30):
    r = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def statuses():
    _, out = cli("status", "--json", "--endpoints", ALL, "--timeout", "1s")
    rows = []
    for line in out.splitlines():
        if line.startswith("{"):
            rows.append(json.loads(line))
    return [r for r in rows if r.get("reachable")]


def master():
    for r in statuses():
        if r["is_master"]:
            return r
    return None


def wait(what, cond, within=60):
    t0 = time.time()
    while time.time() - t0 < within:
        v = cond()
        if v:
            return time.time() - t0, v
        time.sleep(0.05)
    raise SystemExit("timed out waiting for " + what)


def caught_up(node):
    def cond():
        rows = {r["node_id"]: r for r in statuses()}
        m = next((r for r in rows.values() if r["is_master"]), None)
        n = rows.get(node)
        return m and n and n["last_applied"] >= m["last_chosen"] - 50 and n
    return cond


def main():
    events = {}
    try:
        for n in (1, 2, 3):
            start(n)
        code, out = cli("status", "--endpoints", ALL.rsplit(",", 1)[0], "--wait", "30s", timeout=40)
        if code != 0:
            raise SystemExit("no master: " + out)
        timeline = os.path.join(work, "timeline.csv")
        t_bench = time.time()
        bench = subprocess.Popen([BIN, "bench", "--endpoints", ALL.rsplit(",", 1)[0], "--clients", "64",
                                  "--conns", "4", "--seconds", str(BENCH_SECONDS), "--warmup", "1",
                                  "--timeline", timeline, "--timeout", "%ds" % (BENCH_SECONDS + 30)],
                                 stdout=subprocess.PIPE, text=True)
        at = lambda: round(time.time() - t_bench, 3)
        time.sleep(5)

        # 1. add node 4 as a learner, wait for it to catch up
        start(4)
        t0 = time.time()
        code, out = cli("members", "add", "4=127.0.0.1:%d" % PORTS[4], "--endpoints", ALL, "--timeout", "20s")
        events["add_learner"] = {"at_s": at(), "command_s": round(time.time() - t0, 3), "exit": code, "out": out.strip()}
        took, _ = wait("node 4 to catch up", caught_up(4))
        events["learner_caught_up"] = {"at_s": at(), "after_add_s": round(took, 3)}

        # 2. promote it
        t0 = time.time()
        code, out = cli("members", "promote", "4", "--endpoints", ALL, "--timeout", "20s")
        events["promote"] = {"at_s": at(), "command_s": round(time.time() - t0, 3), "exit": code, "out": out.strip()}
        took, _ = wait("node 4 to vote", lambda: next((r for r in statuses() if r["node_id"] == 4 and r.get("role") == "voter"), None))
        events["promoted_voter"] = {"at_s": at(), "after_command_s": round(took, 3)}
        time.sleep(4)

        # 3. remove the master: it hands mastership over first
        m = master()
        t0 = time.time()
        code, out = cli("members", "remove", str(m["node_id"]), "--endpoints", ALL, "--timeout", "30s")
        events["remove_master"] = {"at_s": at(), "node": m["node_id"], "command_s": round(time.time() - t0, 3),
                                   "exit": code, "out": out.strip()}
        nm = master()
        events["remove_master"]["new_master"] = nm and nm["node_id"]
        removed = m["node_id"]
        time.sleep(4)

        # 4. a follower loses its disk
        victim = next(r["node_id"] for r in statuses() if not r["is_master"] and r["node_id"] != removed and r.get("role") == "voter")
        stop(victim)
        shutil.rmtree(os.path.join(work, "n%d" % victim))
        t0 = time.time()
        start(victim)
        took, row = wait("the wiped node to vote again",
                         lambda: next((r for r in statuses() if r["node_id"] == victim and r.get("role") == "voter"), None))
        events["wiped_rejoin"] = {"at_s": at(), "node": victim, "recorded_again_s": round(took, 3)}
        took, _ = wait("the wiped node to catch up", caught_up(victim))
        events["wiped_rejoin"]["caught_up_s"] = round(time.time() - t0, 3)

        res = json.loads(bench.communicate()[0].strip().splitlines()[-1])
        events["t_bench_unix"] = t_bench
        tl = [line.strip().split(",") for line in open(timeline) if line[0].isdigit()]
        events["bench"] = res
        events["timeline_100ms"] = [[float(x) for x in row] for row in tl]
        os.makedirs(os.path.dirname(OUT) or ".", exist_ok=True)
        json.dump({"date": datetime.datetime.now().isoformat(), "load": os.getloadavg(), "events": events}, open(OUT, "w"), indent=1)
        report(events)
    finally:
        for n in list(procs):
            stop(n)
        shutil.rmtree(work, ignore_errors=True)


def report(ev):
    tl = ev["timeline_100ms"]
    base = ev["t_bench_unix"]
    def rate(t0, t1):
        rows = [r for r in tl if t0 <= r[0] / 1000 - base < t1]
        return sum(r[1] for r in rows) / max(len(rows) * 0.1, 1e-9)
    print("bench: %.0f ops/s overall, %s errors" % (ev["bench"].get("ops_per_s", 0), ev["bench"].get("errors")))
    worst = max(tl, key=lambda r: r[2])
    print("slowest write %.1f ms at %.1fs; longest gap with no write completing: %.1f s" % (
        worst[2], worst[0] / 1000 - base, max_gap(tl)))
    for name in ("add_learner", "learner_caught_up", "promote", "promoted_voter", "remove_master", "wiped_rejoin"):
        e = ev[name]
        t = e["at_s"]
        print("%-18s at %5.1fs: %s; throughput 1s before %.0f ops/s, 1s after %.0f ops/s" % (
            name, t, {k: v for k, v in e.items() if k not in ("at_s", "out")}, rate(t - 1, t), rate(t, t + 1)))


def max_gap(tl):
    gap = best = 0
    for r in tl[10:-10]:  # past the warm-up, before the end
        gap = gap + 1 if r[1] == 0 else 0
        best = max(best, gap)
    return best * 0.1


if __name__ == "__main__":
    main()
