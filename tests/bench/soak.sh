#!/usr/bin/env bash
# The soak (docs/benchmarks.md, "Soak"): one relay (2 workers, in-process broker) under a steady
# fan-out, connection churn and abusive clients for DURATION seconds, with its RSS and open
# descriptors sampled from /proc. A benchmark, not a CI test.
#
# Usage: tests/bench/soak.sh [DURATION_S [BUILD_DIR]]   (default 1800 s, build)
#   steady   wsrelay_loadgen fanout: 1,000 subscribers on 10 channels, 100 msg/s in all, 256 B,
#            for the whole run (10,000 deliveries/s)
#   churn    wsrelay_loadgen fanout, one run after another until the end: 200 subscribers connect
#            and subscribe to a fresh channel, get 20 msg/s for 5 s, and leave
#   abusers  soak_abuser.py: publish floods that never read, refused commands, subscribe floods;
#            each reconnects when closed
# Every SAMPLE_S seconds: the relay's VmRSS (/proc/PID/status), its open descriptors
# (/proc/PID/fd) and wsrelay_connections. At the end: RSS drift after the warm-up, descriptors
# after the load against before it, loss for the well-behaved clients (the load generator's own
# counters), the relay's closes by code; exit status 1 when a criterion fails.
# Environment: WSRELAY_SOAK_PORT (default 18180), WSRELAY_SOAK_SAMPLE_S (default 5),
# WSRELAY_SOAK_WARMUP_S (default: a tenth of the run, at least 60 s), WSRELAY_SOAK_YAML (appended
# to the relay's config).
set -euo pipefail

duration=${1:-1800}
build=${2:-build}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
relay_bin=$build/relay/wsrelay
loadgen=$build/tests/bench/wsrelay_loadgen
port=${WSRELAY_SOAK_PORT:-18180}
sample_s=${WSRELAY_SOAK_SAMPLE_S:-5}
warmup_s=${WSRELAY_SOAK_WARMUP_S:-$((duration / 10 > 60 ? duration / 10 : 60))}
url=ws://127.0.0.1:$port/ws
py=/usr/bin/python3
for f in "$relay_bin" "$loadgen"; do
    [[ -x $f ]] || { echo "soak.sh: $f is missing; build first" >&2; exit 2; }
done
((duration > warmup_s)) || { echo "soak.sh: the run must be longer than the warm-up" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/wsrelay-soak.XXXXXX)
pids=()
relay_pid=
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    if [[ -n $relay_pid ]]; then
        kill -TERM "$relay_pid" 2>/dev/null || true
        wait "$relay_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
echo "soak.sh: ${duration}s, samples every ${sample_s}s, warm-up ${warmup_s}s; files in $work" >&2

cat >"$work/relay.yaml" <<YAML
listen:
  host: 127.0.0.1
  port: $port
workers: 2
drain:
  window_ms: 1000
log:
  level: warn
${WSRELAY_SOAK_YAML:-}
YAML
# The per-connection rate limits, where this build has them; without, the abusers still meet the
# send queue bound (4001) and limits.max_bad_commands (4500).
rate_yaml="limits:
  rate:
    publish_per_second: 200
    subscribe_per_second: 50"
cp "$work/relay.yaml" "$work/rate.yaml"
echo "$rate_yaml" >>"$work/rate.yaml"
if "$relay_bin" --check-config "$work/rate.yaml" >/dev/null 2>&1; then
    cp "$work/rate.yaml" "$work/relay.yaml"
    echo "soak.sh: per-connection rate limits on (publish 200/s, subscribe 50/s)" >&2
else
    echo "soak.sh: this build has no limits.rate.*; abusers meet the queue and bad-command bounds" >&2
fi

"$relay_bin" --config "$work/relay.yaml" 2>"$work/relay.log" &
relay_pid=$!
metrics() { curl -s -m 2 "http://127.0.0.1:$port/metrics" || true; }
connections() { metrics | awk '$1 == "wsrelay_connections" {print $2 + 0; found = 1} END {if (!found) print -1}'; }
for _ in $(seq 100); do
    [[ $(connections) == 0 ]] && break
    kill -0 "$relay_pid" 2>/dev/null || { cat "$work/relay.log" >&2; exit 1; }
    sleep 0.1
done
sample() {  # seconds since start, VmRSS KiB, descriptors, connections
    local rss fds
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$relay_pid/status")
    fds=$(find "/proc/$relay_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
    echo "$1,$rss,$fds,$(connections)"
}
start=$(date +%s)
sample 0 >"$work/before.csv"
echo "t_s,rss_kib,fds,connections" >"$work/samples.csv"
(
    while sleep "$sample_s"; do
        kill -0 "$relay_pid" 2>/dev/null || break
        sample $(($(date +%s) - start)) >>"$work/samples.csv"
    done
) &
sampler=$!
pids+=("$sampler")

"$loadgen" fanout --url "$url" --subscribers 1000 --channels 10 --rate 100 \
    --duration "$duration" --size 256 --sources 8 --timeout $((duration + 300)) \
    --drain-timeout 10 --relay-pid "$relay_pid" >"$work/steady.json" 2>"$work/steady.err" &
steady=$!
pids+=("$steady")
"$py" "$here/soak_abuser.py" --url "$url" --duration "$duration" \
    >"$work/abusers.json" 2>"$work/abusers.err" &
abusers=$!
pids+=("$abusers")
(
    i=0
    while (($(date +%s) - start < duration - 10)); do
        i=$((i + 1))
        "$loadgen" fanout --url "$url" --subscribers 200 --channel "churn-$i" --rate 20 \
            --duration 5 --size 64 --sources 8 --timeout 60 \
            >"$work/churn-$i.json" 2>"$work/churn-$i.err" || true
    done
) &
churn=$!
pids+=("$churn")

wait "$churn" || true
wait "$abusers" || echo "soak.sh: the abusers failed: $(tail -3 "$work/abusers.err")" >&2
steady_rc=0
wait "$steady" || steady_rc=$?
# After the load: every connection gone (bounded), then the descriptors and RSS at rest.
for _ in $(seq 300); do
    [[ $(connections) == 0 ]] && break
    sleep 0.1
done
sample $(($(date +%s) - start)) >"$work/after.csv"
metrics >"$work/metrics.txt"
kill -TERM "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true

"$py" - "$work" "$warmup_s" "$steady_rc" <<'PY'
import glob, json, statistics, sys
work, warmup, steady_rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = [l.strip().split(",") for l in open(f"{work}/samples.csv").readlines()[1:] if l.strip()]
samples = [(int(t), int(r), int(f), int(c)) for t, r, f, c in rows]
before = [int(x) for x in open(f"{work}/before.csv").read().strip().split(",")]
after = [int(x) for x in open(f"{work}/after.csv").read().strip().split(",")]
steady_phase = [s for s in samples if s[0] >= warmup]
if len(steady_phase) < 10:
    sys.exit(f"soak.sh: only {len(steady_phase)} samples after the warm-up; run longer")
n = max(3, len(steady_phase) // 10)  # a tenth of the samples at each end, medians
rss_start = statistics.median(s[1] for s in steady_phase[:n])
rss_end = statistics.median(s[1] for s in steady_phase[-n:])
drift = (rss_end - rss_start) * 100 / rss_start
rss_max = max(s[1] for s in steady_phase)

def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None

steady = load(f"{work}/steady.json") or {}
churn = [load(p) for p in sorted(glob.glob(f"{work}/churn-*.json"))]
churn_ok = [c for c in churn if c and c.get("outcome") == "complete"]
sums = {k: sum(c.get(k, 0) for c in churn if c) for k in
        ("expected", "unique", "loss", "duplicates", "disconnects", "error_frames")}
abusers = load(f"{work}/abusers.json") or {}
closes = {}
for line in open(f"{work}/metrics.txt"):
    if line.startswith("wsrelay_disconnects_total{"):
        code = line.split('code="')[1].split('"')[0]
        if float(line.split()[-1]):
            closes[code] = int(float(line.split()[-1]))
# The per-connection rate limits' counters (none from a build without them).
limited = {l.split()[0]: float(l.split()[-1]) for l in open(f"{work}/metrics.txt")
           if l.startswith(("wsrelay_rate_limited_total", "wsrelay_rate_limit_closes_total"))}

print(f"| Measure | Result |")
print(f"|---|---:|")
print(f"| Duration; samples (every {samples[1][0] - samples[0][0] if len(samples) > 1 else 0} s); "
      f"warm-up | {after[0]} s; {len(samples)}; {warmup} s |")
print(f"| Relay RSS after the warm-up → at the end (medians of {n} samples); max | "
      f"{rss_start / 1024:,.1f} → {rss_end / 1024:,.1f} MiB (**{drift:+.2f} %**); "
      f"{rss_max / 1024:,.1f} MiB |")
print(f"| Relay RSS before the load → after it | {before[1] / 1024:,.1f} → {after[1] / 1024:,.1f} MiB |")
print(f"| Open descriptors before the load → after it (min–max during) | "
      f"{before[2]} → {after[2]} ({min(s[2] for s in samples)}–{max(s[2] for s in samples)}) |")
print(f"| Connections during (min–max) | {min(s[3] for s in samples):,}–{max(s[3] for s in samples):,} |")
if steady:
    l = steady.get("latency_us", {})
    print(f"| Steady fan-out: delivered / expected; loss, duplicates, disconnects | "
          f"{steady.get('unique', 0):,} / {steady.get('expected', 0):,}; "
          f"**{steady.get('loss', '?')}**, {steady.get('duplicates', '?')}, "
          f"{steady.get('disconnects', '?')} ({steady.get('outcome')}) |")
    print(f"| Steady fan-out latency p50 / p99 / p999 / max | {l.get('p50', 0):,} / "
          f"{l.get('p99', 0):,} / {l.get('p999', 0):,} / {l.get('max', 0):,} µs |")
else:
    print("| Steady fan-out | failed (no report) |")
print(f"| Churn: runs complete / started; subscribers served | {len(churn_ok)} / {len(churn)}; "
      f"{sum(c.get('subscribers', 0) for c in churn if c):,} |")
print(f"| Churn: delivered / expected; loss, duplicates, disconnects, error frames | "
      f"{sums['unique']:,} / {sums['expected']:,}; **{sums['loss']}**, {sums['duplicates']}, "
      f"{sums['disconnects']}, {sums['error_frames']} |")
for kind, s in abusers.items():
    print(f"| Abusers ({kind}): connections; frames sent; closed as seen by them; refused | "
          f"{s['connects']:,}; {s['sent']:,}; {dict(s['closes']) or '—'}; "
          f"{dict(s['refused']) or '—'} |")
print(f"| Machine load average (1 / 5 / 15 min) at the end, {__import__('os').cpu_count()} CPUs | "
      f"{' / '.join(open('/proc/loadavg').read().split()[:3])} |")
print(f"| Relay's closes by code | {', '.join(f'{k}: {v:,}' for k, v in sorted(closes.items()))} |")
for name, value in limited.items():
    print(f"| `{name}` | {value:,.0f} |")

failures = []
if abs(drift) > 5:
    failures.append(f"RSS drift {drift:+.2f} % (bound ±5 %)")
if after[2] > before[2]:
    failures.append(f"descriptors {before[2]} → {after[2]}")
if steady_rc != 0 or steady.get("loss") != 0 or steady.get("duplicates") != 0:
    failures.append(f"steady fan-out: exit {steady_rc}, loss {steady.get('loss')}, "
                    f"duplicates {steady.get('duplicates')}")
if sums["loss"] or sums["duplicates"] or len(churn_ok) != len(churn) or not churn:
    failures.append(f"churn: {len(churn) - len(churn_ok)} runs not complete, loss {sums['loss']}, "
                    f"duplicates {sums['duplicates']}")
print()
print("soak: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
sys.exit(1 if failures else 0)
PY
