#!/usr/bin/env python3
"""Draws BENCHMARKS.md's charts as SVG from the raw result files, with no
library beyond Python's own (the machine has no plotting package):

  python3 scripts/benchcharts.py --run bench/peerbench-2026-12-07c.jsonl \
      --sweep bench/peerbench-2026-12-07-sweep.jsonl \
      --snapshot bench/snapshot-2026-11-26 --out docs/bench

--run     one peerbench run (every system, every case): throughput per
          system per case (throughput.svg) and p50/p99 latency
          (latency.svg).
--sweep   a peerbench run of one op at growing client counts: latency
          (p50) against throughput, a line per system (sweep.svg).
--snapshot a scripts/snapshot-bench.sh output directory: writes per 100 ms
          over the run with each node's snapshots marked (timeline.svg).
"""
import argparse
import csv
import json
import os
import re
from datetime import datetime
from xml.sax.saxutils import escape

COLORS = {'echo': '#9e9e9e', 'etcd': '#4285f4', 'hashicorp-raft': '#f4a742', 'livepaxos': '#34a853'}
ORDER = ['echo', 'etcd', 'hashicorp-raft', 'livepaxos']


class SVG:
    def __init__(self, w, h):
        self.w, self.h, self.parts = w, h, []

    def add(self, s):
        self.parts.append(s)

    def text(self, x, y, s, size=12, anchor='start', rotate=None, color='#222'):
        tr = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate else ''
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                 f'fill="{color}" font-family="sans-serif"{tr}>{escape(str(s))}</text>')

    def rect(self, x, y, w, h, fill, opacity=1.0):
        self.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
                 f'fill="{fill}" fill-opacity="{opacity}"/>')

    def line(self, x1, y1, x2, y2, color='#ccc', width=1):
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" stroke-width="{width}"/>')

    def polyline(self, pts, color, width=2):
        p = ' '.join(f'{x:.1f},{y:.1f}' for x, y in pts)
        self.add(f'<polyline points="{p}" fill="none" stroke="{color}" stroke-width="{width}"/>')

    def circle(self, x, y, r, color):
        self.add(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{color}"/>')

    def save(self, path):
        with open(path, 'w') as f:
            f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.w}" height="{self.h}" '
                    f'viewBox="0 0 {self.w} {self.h}">\n<rect width="100%" height="100%" fill="white"/>\n')
            f.write('\n'.join(self.parts))
            f.write('\n</svg>\n')


def nice_max(v):
    """A round axis maximum at or above v."""
    if v <= 0:
        return 1
    mag = 10 ** (len(str(int(v))) - 1)
    for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * mag >= v:
            return m * mag
    return 10 * mag


def load_run(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    for r in rows:
        r['system'] = r.get('system', '?')
    return rows


def case_name(r):
    size = f"{r['value_size'] // 1024} KiB" if r['value_size'] >= 1024 else f"{r['value_size']} B"
    if r['op'] == 'lock':
        return f"lock x{r['clients']}"
    return f"{r['op']} {size} x{r['clients']}"


def index(rows):
    """The cases in run order, the systems in ORDER, and each row by (case, system)."""
    cases = []
    for r in rows:
        if case_name(r) not in cases:
            cases.append(case_name(r))
    systems = [s for s in ORDER if any(r['system'] == s for r in rows)]
    return cases, systems, {(case_name(r), r['system']): r for r in rows}


def grouped_bars(rows, value, title, unit, path, log=False):
    """Bars per case, one per system, for value(row)."""
    cases, systems, by = index(rows)
    panels = len(cases)
    pw, ph, top, left = 170, 260, 50, 60
    svg = SVG(left + panels * pw + 20, top + ph + 90)
    svg.text(left, 24, title, size=15)
    for i, c in enumerate(cases):
        vals = [value(by[(c, s)]) for s in systems if (c, s) in by]
        vmax = nice_max(max(vals) if vals else 1)
        x0 = left + i * pw
        svg.line(x0, top, x0, top + ph, '#888')
        svg.line(x0, top + ph, x0 + pw - 20, top + ph, '#888')
        for k in range(5):
            y = top + ph - ph * k / 4
            svg.line(x0, y, x0 + pw - 20, y, '#eee')
            svg.text(x0 - 4, y + 4, f'{vmax * k / 4:,.0f}' if vmax >= 10 else f'{vmax * k / 4:.2f}', size=9, anchor='end')
        bw = (pw - 30) / max(len(systems), 1)
        for j, s in enumerate(systems):
            r = by.get((c, s))
            if r is None:
                continue
            v = value(r)
            h = ph * v / vmax
            bx = x0 + 5 + j * bw
            svg.rect(bx, top + ph - h, bw - 4, h, COLORS.get(s, '#555'))
            svg.text(bx + (bw - 4) / 2, top + ph - h - 3, f'{v:,.0f}' if v >= 10 else f'{v:.2f}', size=8, anchor='middle')
        svg.text(x0 + (pw - 20) / 2, top + ph + 16, c, size=11, anchor='middle')
    svg.text(14, top + ph / 2, unit, size=11, anchor='middle', rotate=-90)
    for j, s in enumerate(systems):
        svg.rect(left + j * 150, top + ph + 40, 12, 12, COLORS.get(s, '#555'))
        svg.text(left + j * 150 + 18, top + ph + 50, s, size=11)
    svg.save(path)


def latency_bars(rows, path):
    """p50 and p99 per case and system: the p50 bar solid, p99 behind it light."""
    cases, systems, by = index(rows)
    pw, ph, top, left = 170, 260, 50, 60
    svg = SVG(left + len(cases) * pw + 20, top + ph + 90)
    svg.text(left, 24, 'Latency per case: p50 (solid) and p99 (light), ms', size=15)
    for i, c in enumerate(cases):
        vals = [by[(c, s)]['p99_ms'] for s in systems if (c, s) in by]
        vmax = nice_max(max(vals) if vals else 1)
        x0 = left + i * pw
        svg.line(x0, top + ph, x0 + pw - 20, top + ph, '#888')
        svg.line(x0, top, x0, top + ph, '#888')
        for k in range(5):
            y = top + ph - ph * k / 4
            svg.line(x0, y, x0 + pw - 20, y, '#eee')
            svg.text(x0 - 4, y + 4, f'{vmax * k / 4:g}', size=9, anchor='end')
        bw = (pw - 30) / max(len(systems), 1)
        for j, s in enumerate(systems):
            r = by.get((c, s))
            if r is None:
                continue
            bx = x0 + 5 + j * bw
            for v, op in ((r['p99_ms'], 0.35), (r['p50_ms'], 1.0)):
                h = ph * v / vmax
                svg.rect(bx, top + ph - h, bw - 4, h, COLORS.get(s, '#555'), op)
            svg.text(bx + (bw - 4) / 2, top + ph - ph * r['p99_ms'] / vmax - 3, f"{r['p50_ms']:.2g}/{r['p99_ms']:.2g}", size=7, anchor='middle')
        svg.text(x0 + (pw - 20) / 2, top + ph + 16, c, size=11, anchor='middle')
    for j, s in enumerate(systems):
        svg.rect(left + j * 150, top + ph + 40, 12, 12, COLORS.get(s, '#555'))
        svg.text(left + j * 150 + 18, top + ph + 50, s, size=11)
    svg.save(path)


def sweep_chart(rows, path):
    """p50 latency against throughput, a point per client count, a line per system."""
    systems = [s for s in ORDER if any(r['system'] == s for r in rows)]
    xmax = nice_max(max(r['ops_per_s'] for r in rows))
    ymax = nice_max(max(r['p50_ms'] for r in rows))
    left, top, w, h = 70, 50, 620, 340
    svg = SVG(left + w + 40, top + h + 90)
    op = rows[0]['op'] if rows else ''
    svg.text(left, 24, f'{op} {rows[0]["value_size"] if rows else ""} B: p50 latency against throughput as clients grow', size=15)
    for k in range(6):
        x = left + w * k / 5
        y = top + h - h * k / 5
        svg.line(x, top, x, top + h, '#eee')
        svg.line(left, y, left + w, y, '#eee')
        svg.text(x, top + h + 16, f'{xmax * k / 5:,.0f}', size=10, anchor='middle')
        svg.text(left - 6, y + 4, f'{ymax * k / 5:g}', size=10, anchor='end')
    svg.text(left + w / 2, top + h + 36, 'ops/s', size=11, anchor='middle')
    svg.text(20, top + h / 2, 'p50 ms', size=11, anchor='middle', rotate=-90)
    for j, s in enumerate(systems):
        pts = sorted((r for r in rows if r['system'] == s), key=lambda r: r['clients'])
        xy = [(left + w * r['ops_per_s'] / xmax, top + h - h * r['p50_ms'] / ymax) for r in pts]
        svg.polyline(xy, COLORS.get(s, '#555'))
        for (x, y), r in zip(xy, pts):
            svg.circle(x, y, 3.5, COLORS.get(s, '#555'))
            svg.text(x + 5, y - 5, f"x{r['clients']}", size=9, color=COLORS.get(s, '#555'))
        svg.rect(left + j * 150, top + h + 52, 12, 12, COLORS.get(s, '#555'))
        svg.text(left + j * 150 + 18, top + h + 62, s, size=11)
    svg.save(path)


def dur_ms(s):
    total = 0.0
    for num, unit in re.findall(r'([0-9.]+)(ns|µs|us|ms|s|m|h)', s):
        total += float(num) * {'ns': 1e-6, 'µs': 1e-3, 'us': 1e-3, 'ms': 1, 's': 1e3, 'm': 6e4, 'h': 3.6e6}[unit]
    return total


def timeline_chart(d, path):
    """Writes acknowledged per 100 ms over the 1M-write run, snapshots shaded by node."""
    pts = [(int(r['unix_ms']), int(r['ops'])) for r in csv.DictReader(open(os.path.join(d, 'timeline.csv')))]
    t0 = pts[0][0]
    spans = []
    for line in open(os.path.join(d, 'snapshots.log')):
        t = re.search(r'time=(\S+)', line).group(1)
        end = datetime.fromisoformat(t.replace('Z', '+00:00')).timestamp() * 1000
        took = dur_ms(re.search(r'took=(\S+)', line).group(1))
        node = re.search(r'node=(\d+)', line).group(1)
        spans.append((end - took - t0, end - t0, node))
    tmax = (pts[-1][0] - t0)
    ymax = nice_max(max(o for _, o in pts))
    left, top, w, h = 70, 50, 760, 300
    svg = SVG(left + w + 30, top + h + 80)
    svg.text(left, 24, 'The 1M-write run: writes acknowledged per 100 ms, snapshots shaded (node)', size=15)
    shades = {'1': '#e57373', '2': '#64b5f6', '3': '#ffb74d'}
    for a, b, node in spans:
        if a >= tmax:
            continue  # after the last sample
        b = min(b, tmax)
        x = left + w * max(a, 0) / tmax
        svg.rect(x, top, w * (b - max(a, 0)) / tmax, h, shades.get(node, '#ccc'), 0.35)
        svg.text(x + 2, top + 12, f'n{node}', size=9)
    for k in range(6):
        y = top + h - h * k / 5
        x = left + w * k / 5
        svg.line(left, y, left + w, y, '#eee')
        svg.text(left - 6, y + 4, f'{ymax * k / 5:,.0f}', size=10, anchor='end')
        svg.text(x, top + h + 16, f'{tmax * k / 5 / 1000:.0f} s', size=10, anchor='middle')
    svg.polyline([(left + w * (t - t0) / tmax, top + h - h * o / ymax) for t, o in pts], COLORS['livepaxos'], 1.5)
    svg.text(20, top + h / 2, 'writes / 100 ms', size=11, anchor='middle', rotate=-90)
    svg.save(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--run')
    ap.add_argument('--sweep')
    ap.add_argument('--snapshot')
    ap.add_argument('--out', required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.run:
        rows = load_run(a.run)
        grouped_bars(rows, lambda r: r['ops_per_s'], 'Throughput per case (ops/s; lock: acquire+release cycles/s)', 'ops/s',
                     os.path.join(a.out, 'throughput.svg'))
        latency_bars(rows, os.path.join(a.out, 'latency.svg'))
    if a.sweep:
        sweep_chart(load_run(a.sweep), os.path.join(a.out, 'sweep.svg'))
    if a.snapshot:
        timeline_chart(a.snapshot, os.path.join(a.out, 'timeline.svg'))


if __name__ == '__main__':
    main()
