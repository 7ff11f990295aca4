#!/usr/bin/env python3
"""Summarises a scripts/snapshot-bench.sh run: throughput per 100 ms while
any node was writing a snapshot against between snapshots, the slowest
write during one, and each node's peak and final data directory and RSS."""
import csv, re, sys
from datetime import datetime

out = sys.argv[1]

def dur_ms(s):
    total = 0.0
    for num, unit in re.findall(r'([0-9.]+)(ns|µs|us|ms|s|m|h)', s):
        total += float(num) * {'ns': 1e-6, 'µs': 1e-3, 'us': 1e-3, 'ms': 1, 's': 1e3, 'm': 6e4, 'h': 3.6e6}[unit]
    return total

spans = []
for line in open(f'{out}/snapshots.log'):
    t = re.search(r'time=(\S+)', line).group(1)
    took = re.search(r'took=(\S+)', line).group(1)
    end = datetime.fromisoformat(t.replace('Z', '+00:00')).timestamp() * 1000
    node = re.search(r'node=(\d+)', line).group(1)
    spans.append((end - dur_ms(took), end, node))

rows = [(int(r['unix_ms']), int(r['ops']), float(r['max_ms'])) for r in csv.DictReader(open(f'{out}/timeline.csv'))]
rows = [r for r in rows if r[1] > 0]
rows = rows[5:-5]  # ramp-up and tail
inside, outside, worst_in, worst_out = [], [], 0.0, 0.0
for t, ops, mx in rows:
    if any(s - 100 < t < e for s, e, _ in spans):
        inside.append(ops); worst_in = max(worst_in, mx)
    else:
        outside.append(ops); worst_out = max(worst_out, mx)
rate = lambda xs: sum(xs) / len(xs) * 10 if xs else float('nan')
print(f'snapshots: {len(spans)} ' + ', '.join(f'n{n} {e - s:.0f} ms' for s, e, n in spans))
print(f'throughput during snapshots: {rate(inside):.0f} ops/s over {len(inside) / 10:.1f} s; '
      f'between: {rate(outside):.0f} ops/s over {len(outside) / 10:.1f} s; ratio {rate(inside) / rate(outside):.2f}')
print(f'slowest write during a snapshot: {worst_in:.1f} ms; between: {worst_out:.1f} ms')

peak, final = {}, {}
for r in csv.DictReader(open(f'{out}/samples.csv')):
    n = r['node']
    d, rss = int(r['dir_bytes'] or 0), int(r['rss_kb'] or 0)
    p = peak.setdefault(n, [0, 0])
    p[0], p[1] = max(p[0], d), max(p[1], rss)
    final[n] = (d, rss, r['snapshots'], r['segments'])
for n in sorted(peak):
    print(f'node {n}: data dir peak {peak[n][0] / 2**20:.0f} MiB, final {final[n][0] / 2**20:.0f} MiB; '
          f'RSS peak {peak[n][1] / 1024:.0f} MiB, final {final[n][1] / 1024:.0f} MiB; '
          f'snapshots {final[n][2]}, log segments {final[n][3]}')
