"""Stands in for the kubelet's cAdvisor endpoint and for kube-state-metrics in the Prometheus test,
run as a separate process:

    /usr/bin/python3 kube_metrics_server.py --pod NAMESPACE/POD=PID [--pod ...] [--port N]

Each --pod is a relay process the test runs, seen as the container `wsrelay` of pod POD in
NAMESPACE. Listens on 127.0.0.1 (port 0 = any free one) and prints `listening <port>`.
GET /metrics/cadvisor answers what the kubelet would for those containers, read from the processes
themselves at each scrape: container_cpu_usage_seconds_total (user + system time of
/proc/PID/stat), container_memory_working_set_bytes (resident set of /proc/PID/statm; the kernel's
working set also counts active page cache, which a relay has little of), and the CFS period
counters (one period per 100 ms since the server started, none throttled: the processes run
without a CPU limit). GET /metrics answers what kube-state-metrics would: each container's
requests and limits (RESOURCES below) and its restart count (0). A process that has exited is
left out, as the kubelet leaves out a container that is gone. Anything else is 404.

Imported, KubeMetricsServer runs that process and stops it by PID.
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from relay_harness import end_process

HOST = "127.0.0.1"
CONTAINER = "wsrelay"  # the chart's container name, in standalone and sidecar mode
# (kind, resource, unit, value): what the test's pods are declared with.
RESOURCES = [("requests", "cpu", "core", 0.25), ("requests", "memory", "byte", 128 << 20),
             ("limits", "cpu", "core", 1), ("limits", "memory", "byte", 256 << 20)]
CFS_PERIOD_SECONDS = 0.1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _process(pid):
    """(cpu seconds, resident bytes) of a running process, or None once it has exited."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/statm") as f:
            statm = f.read().split()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
    if fields[0] == "Z":
        return None
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS, int(statm[1]) * PAGE_SIZE


def _labels(namespace, pod, **extra):
    labels = {"namespace": namespace, "pod": pod, "container": CONTAINER, **extra}
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def cadvisor(pods, started):
    periods = int((time.monotonic() - started) / CFS_PERIOD_SECONDS)
    lines = {"container_cpu_usage_seconds_total": "counter",
             "container_memory_working_set_bytes": "gauge",
             "container_cpu_cfs_periods_total": "counter",
             "container_cpu_cfs_throttled_periods_total": "counter"}
    samples = {name: [] for name in lines}
    for namespace, pod, pid in pods:
        process = _process(pid)
        if process is None:
            continue
        cpu, resident = process
        labels = _labels(namespace, pod, id=f"/kubepods/pod-{pod}/{CONTAINER}")
        samples["container_cpu_usage_seconds_total"].append(f"{labels} {cpu}")
        samples["container_memory_working_set_bytes"].append(f"{labels} {resident}")
        samples["container_cpu_cfs_periods_total"].append(f"{labels} {periods}")
        samples["container_cpu_cfs_throttled_periods_total"].append(f"{labels} 0")
    return _exposition(lines, samples)


def kube_state(pods):
    lines = {"kube_pod_container_resource_requests": "gauge",
             "kube_pod_container_resource_limits": "gauge",
             "kube_pod_container_status_restarts_total": "counter"}
    samples = {name: [] for name in lines}
    for namespace, pod, _ in pods:
        for kind, resource, unit, value in RESOURCES:
            labels = _labels(namespace, pod, node="test-node", resource=resource, unit=unit)
            samples[f"kube_pod_container_resource_{kind}"].append(f"{labels} {value}")
        samples["kube_pod_container_status_restarts_total"].append(f"{_labels(namespace, pod)} 0")
    return _exposition(lines, samples)


def _exposition(types, samples):
    out = []
    for name, kind in types.items():
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{sample}" for sample in samples[name])
    return ("\n".join(out) + "\n").encode()


def _serve(args):
    pods = []
    for spec in args.pod:
        where, pid = spec.rsplit("=", 1)
        namespace, pod = where.split("/", 1)
        pods.append((namespace, pod, int(pid)))
    started = time.monotonic()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/metrics/cadvisor":
                status, body = 200, cadvisor(pods, started)
            elif self.path == "/metrics":
                status, body = 200, kube_state(pods)
            else:
                status, body = 404, b"not found\n"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer((HOST, args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


class KubeMetricsServer:
    """The server above as a child process, stopped by PID. pods: (namespace, pod, pid) each."""

    def __init__(self, pods):
        self.pods = list(pods)
        self.port = None
        self.proc = None

    def start(self, timeout=10.0):
        args = [sys.executable, os.path.abspath(__file__)]
        for namespace, pod, pid in self.pods:
            args += ["--pod", f"{namespace}/{pod}={pid}"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        line = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        words = line[0].decode(errors="replace").split() if line else []
        if words[:1] != ["listening"]:
            self.stop()
            raise AssertionError(f"kube_metrics_server.py did not start within {timeout}s")
        self.port = int(words[1])
        return self

    @property
    def target(self):
        return f"{HOST}:{self.port}"

    def stop(self):
        if self.proc is not None:
            end_process(self.proc)
            self.proc.stdout.close()
            self.proc.stderr.close()
            self.proc = None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pod", action="append", default=[], help="NAMESPACE/POD=PID")
    parser.add_argument("--port", type=int, default=0)
    _serve(parser.parse_args())


if __name__ == "__main__":
    main()
