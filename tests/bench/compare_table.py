"""Markdown tables from compare.sh's results (run with Debian's /usr/bin/python3).

compare_table.py WORKDIR "KINDS" MACHINE SCALE    prints the tables
compare_table.py --splice DOC TABLES              replaces DOC's generated block with TABLES
"""

import json
import math
import os
import sys

BEGIN = "<!-- compare.sh:begin (generated: do not edit by hand) -->"
END = "<!-- compare.sh:end -->"

SCENARIOS = [
    ("fanout", "Fan-out: 2,000 subscribers × 20 msg/s, 64 B (Redis PUBLISH in)"),
    ("hot", "Hot channel: 100 subscribers × 2,000 msg/s, 64 B"),
    ("latency", "Latency: 200 subscribers × 10 msg/s, 64 B, 30 s"),
    ("chat", "Chat mix: 1,000 clients in 100 rooms of 10, 200 client messages/s"),
]


def load(work, kind, scenario):
    path = os.path.join(work, f"{kind}.{scenario}.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def first(result, *keys):
    for key in keys:
        if result is not None and result.get(key) is not None:
            return result[key]
    return math.nan


def ms(us):
    return "–" if us is None or (isinstance(us, float) and math.isnan(us)) else f"{us / 1000:.1f}"


def num(value, digits=1):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def tables(work, kinds, machine, scale):
    out = [f"Machine: {machine}. Two instances of each server (wsrelay: `workers: 1` each) and one "
           f"redis-server on the same 2 cores as the load generator; durations × {scale}. Server "
           "CPU is user + system time of the server processes over the measured phase, divided by "
           "the deliveries; the load generator's is reported beside it. The floor is the minimal "
           "epoll program (`tests/bench/peers/floor`).", ""]
    for scenario, title in SCENARIOS:
        rows = []
        base = {}
        for kind in kinds:
            r = load(work, kind, scenario)
            if r is None:
                continue
            base[kind] = first(r, "server_cpu_us_per_delivery", "relay_cpu_us_per_delivery")
            rows.append((kind, r))
        if not rows:
            continue
        out += [f"**{title}**", "",
                "| Server | Outcome | Deliveries/s | Loss | Dups | p50 / p99 / p999 (ms) | "
                "Server CPU µs/delivery | × floor | × Go | Loadgen CPU µs/delivery |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for kind, r in rows:
            cpu = base[kind]
            lat = r.get("latency_us") or {}
            rel_floor = cpu / base["floor"] if base.get("floor") else math.nan
            rel_go = cpu / base["go"] if base.get("go") else math.nan
            out.append(
                f"| {kind} | {r.get('outcome', '?')} | {num(r.get('delivered_per_s'), 0)} | "
                f"{r.get('loss', '–')} | {r.get('duplicates', '–')} | "
                f"{ms(lat.get('p50'))} / {ms(lat.get('p99'))} / {ms(lat.get('p999'))} | "
                f"{num(cpu, 2)} | {num(rel_floor, 2)} | {num(rel_go, 2)} | "
                f"{num(r.get('loadgen_cpu_us_per_delivery'), 2)} |")
        out.append("")
    rows = [(k, load(work, k, "handshake")) for k in kinds]
    rows = [(k, r) for k, r in rows if r is not None]
    if rows:
        out += ["**Handshakes** (connect, upgrade, close; 64 in flight, no token)", "",
                "| Server | Handshakes/s | Server CPU µs/handshake | Loadgen CPU µs/handshake |",
                "|---|---:|---:|---:|"]
        for kind, r in rows:
            n = r.get("handshakes") or 0
            lg = r.get("loadgen_cpu_s")
            out.append(
                f"| {kind} | {num(r.get('handshakes_per_s'), 0)} | "
                f"{num(first(r, 'server_cpu_us_per_handshake', 'relay_cpu_us_per_handshake'), 1)} | "
                f"{num(lg * 1e6 / n if lg and n else math.nan, 1)} |")
        out.append("")
    relay_only = os.path.join(work, "relay-only.md")
    if os.path.exists(relay_only):
        with open(relay_only) as f:
            body = f.read().strip()
        if body:
            out += ["**wsrelay alone** (`tests/bench/run.sh`: one instance, `workers: 2`)", "",
                    body, ""]
    return "\n".join(out).rstrip() + "\n"


def splice(doc, tables_path):
    with open(doc) as f:
        text = f.read()
    with open(tables_path) as f:
        body = f.read()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc}: the markers {BEGIN!r} and {END!r} are missing")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(doc, "w") as f:
        f.write(head + BEGIN + "\n" + body + END + tail)


def main():
    if sys.argv[1] == "--splice":
        splice(sys.argv[2], sys.argv[3])
        return
    work, kinds, machine, scale = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4]
    sys.stdout.write(tables(work, kinds, machine, scale))


if __name__ == "__main__":
    main()
