"""The wsrelay image run the way the Helm chart runs it (called by tests/image/run.sh).

    /usr/bin/python3 tests/image/checks.py --image IMAGE --render RENDERER --chart DIR --work DIR

Every podman flag comes from the chart rendered by RENDERER (tests/helm's renderer): the
container's args, its securityContext (read-only root filesystem, user and group, dropped
capabilities, no privilege escalation), the ConfigMap mounted read-only where the Deployment mounts
it, the memory emptyDir of /tmp, the memory limit, the named ports (each published on a free
127.0.0.1 port) and terminationGracePeriodSeconds. Prints one "ok   NAME" or "FAIL NAME" line per
check and ends with "checks: N passed, M failed".
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request

import websockets
import yaml

# The integration tests' harness: free ports, JSON frames, a throwaway redis-server by PID.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from relay_harness import RedisServer, free_port, recv_json  # noqa: E402

# The relay's view of the host's loopback from a slirp4netns network (allow_host_loopback).
HOST_LOOPBACK_FROM_CONTAINER = "10.0.2.2"
START_TIMEOUT_S = 30


def podman(*args, timeout=120, check=True):
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"podman {' '.join(args)}: exit {result.returncode}: {result.stderr.strip()}")
    return result


class Pod:
    """The relay container of one rendered chart, and the podman flags that reproduce it."""

    def __init__(self, renderer, chart, work, name, sets):
        rendered = subprocess.run([renderer, *sets, chart], capture_output=True, text=True,
                                  timeout=60)
        if rendered.returncode != 0:
            raise RuntimeError(f"render {' '.join(sets)}: {rendered.stderr.strip()}")
        docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
        deployment = next(d for d in docs if d["kind"] == "Deployment")
        spec = deployment["spec"]["template"]["spec"]
        self.container = next(c for c in spec["containers"] if c["name"] == "wsrelay")
        self.grace_s = int(spec["terminationGracePeriodSeconds"])
        self.pre_stop_s = pre_stop_seconds(self.container)
        self.config_dir = os.path.join(work, name + "-config")
        os.makedirs(self.config_dir, exist_ok=True)
        configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
        self.volume_flags = []
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for mount in self.container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                # The ConfigMap's items as files of one directory, mounted read-only as the
                # kubelet does.
                data = configmaps[volume["configMap"]["name"]]["data"]
                for item in volume["configMap"]["items"]:
                    with open(os.path.join(self.config_dir, item["path"]), "w") as f:
                        f.write(data[item["key"]])
                os.chmod(self.config_dir, 0o755)
                self.volume_flags += ["-v", f"{self.config_dir}:{mount['mountPath']}:ro"]
            elif "emptyDir" in volume:
                size = volume["emptyDir"].get("sizeLimit", "16Mi").replace("Mi", "m")
                self.volume_flags += ["--tmpfs", f"{mount['mountPath']}:rw,size={size},mode=1777"]
            else:
                raise RuntimeError(f"volume {mount['name']}: no podman equivalent in this test")
        self.ports = {p["name"]: p["containerPort"] for p in self.container["ports"]}

    def security_flags(self):
        sc = self.container["securityContext"]
        flags = []
        if sc.get("readOnlyRootFilesystem"):
            flags.append("--read-only")
        flags += ["--user", f"{sc['runAsUser']}:{sc['runAsGroup']}"]
        for cap in sc.get("capabilities", {}).get("drop", []):
            flags += ["--cap-drop", cap]
        if sc.get("allowPrivilegeEscalation") is False:
            flags += ["--security-opt", "no-new-privileges"]
        return flags

    def run(self, image, name, network=None, env=()):
        """Starts the container detached; returns {port name: host port}."""
        published = {port_name: free_port() for port_name in self.ports}
        flags = ["run", "-d", "--name", name, *self.security_flags(), *self.volume_flags]
        memory = self.container.get("resources", {}).get("limits", {}).get("memory")
        if memory:
            flags += ["--memory", memory.replace("Mi", "m").replace("Gi", "g")]
        for port_name, host_port in published.items():
            flags += ["-p", f"127.0.0.1:{host_port}:{self.ports[port_name]}"]
        if network:
            flags += ["--network", network]
        for e in self.container.get("env", []):
            flags += ["-e", f"{e['name']}={e['value']}"]
        for e in env:
            flags += ["-e", e]
        podman(*flags, image, *self.container["args"])
        return published


def pre_stop_seconds(container):
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop.get("exec", {}).get("command", [])
    return int(command[1]) if command[:1] == ["sleep"] else 0


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_ready(port, container):
    """Polls /readyz as the chart's startup and readiness probes do, until it answers 200."""
    deadline = time.monotonic() + START_TIMEOUT_S
    last = None
    while time.monotonic() < deadline:
        try:
            status, body = http_get(port, "/readyz")
            if status == 200:
                return
            last = f"{status} {body}"
        except OSError as e:
            last = str(e)
        if podman("inspect", "--format", "{{.State.Running}}", container).stdout.strip() != "true":
            break
        time.sleep(0.2)
    logs = podman("logs", container, check=False)
    raise RuntimeError(f"{container} not ready: {last}\n{logs.stdout}{logs.stderr}")


async def subscribe(ws, channel):
    await ws.send(json.dumps({"op": "subscribe", "channel": channel, "id": 1}))
    assert await recv_json(ws) == {"op": "ack", "id": 1}


async def round_trip(subscriber_port, publisher_port, channel):
    """A client of one port subscribes, a client of the other publishes; the first receives it."""
    async with websockets.connect(f"ws://127.0.0.1:{subscriber_port}/ws") as sub, \
            websockets.connect(f"ws://127.0.0.1:{publisher_port}/ws") as pub:
        await subscribe(sub, channel)
        data = {"text": "through the image", "channel": channel}
        await pub.send(json.dumps({"op": "publish", "channel": channel, "data": data, "id": 2}))
        ack = await recv_json(pub)
        assert ack == {"op": "ack", "id": 2}, ack
        got = await recv_json(sub)
        assert got == {"op": "message", "channel": channel, "data": data}, got


class Checks:
    def __init__(self, args):
        self.args = args
        self.passed = 0
        self.failed = 0
        self.containers = []
        self.prefix = f"wsrelay-image-test-{os.getpid()}"

    def check(self, name, fn):
        try:
            detail = fn()
            self.passed += 1
            print(f"ok   {name}{': ' + detail if detail else ''}", flush=True)
        except Exception as e:  # noqa: BLE001 - one failed check must not hide the others
            self.failed += 1
            print(f"FAIL {name}: {e}", flush=True)
            if not isinstance(e, (AssertionError, RuntimeError)):
                traceback.print_exc()

    def start(self, pod, suffix, **kw):
        name = f"{self.prefix}-{suffix}"
        self.containers.append(name)
        ports = pod.run(self.args.image, name, **kw)
        return name, ports

    def cleanup(self):
        for name in self.containers:
            podman("rm", "-f", "-t", "0", name, check=False)

    def run(self):
        a = self.args
        pod = Pod(a.render, a.chart, a.work, "default", [])
        name, ports = self.start(pod, "default")
        http = ports["http"]
        # /metrics and /api/* move to the port named internal when the chart has one.
        internal = ports.get("internal", http)

        self.check("starts as the chart runs it and turns ready (/readyz 200)",
                   lambda: wait_ready(http, name)
                   or " ".join(pod.security_flags() + pod.container["args"]))

        def endpoint(port, path):
            def fn():
                status, body = http_get(port, path)
                assert status == 200, f"{path}: {status} {body[:200]}"
                if path == "/metrics":
                    assert "wsrelay_build_info" in body, "no wsrelay_build_info"
            return fn

        self.check("/healthz 200", endpoint(http, "/healthz"))
        self.check("/readyz 200", endpoint(http, "/readyz"))
        self.check("/metrics 200", endpoint(internal, "/metrics"))

        def user_and_privileges():
            lines = podman("exec", name, "cat", "/proc/1/status").stdout.splitlines()
            status = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
            for ids in ("Uid", "Gid"):
                assert status[ids].split() == ["10001"] * 4, f"{ids} {status[ids]}"
            assert status["CapEff"].strip("0\t ") == "", f"CapEff {status['CapEff']}"
            assert status["NoNewPrivs"].strip() == "1", f"NoNewPrivs {status['NoNewPrivs']}"
            ro = podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name).stdout
            ro = ro.strip()
            assert ro == "true", f"ReadonlyRootfs {ro}"
            return "uid and gid 10001, CapEff 0, NoNewPrivs 1, read-only root filesystem"

        self.check("runs as uid and gid 10001, no capabilities, no new privileges, read-only root",
                   user_and_privileges)
        self.check("WebSocket round trip from outside (subscribe, publish, receive)",
                   lambda: asyncio.run(round_trip(http, http, "image:local")))

        self.check("two containers on one Redis outside: a publish through one reaches a client"
                   " of the other",
                   self.redis_round_trip)

        self.check(f"SIGTERM: drains, exits 0 within the grace period ({pod.grace_s} s)",
                   lambda: asyncio.run(self.drain(pod, name, http)))

    def redis_round_trip(self):
        a = self.args
        # Started once PING answers; the containers' connections arrive from outside loopback.
        redis = RedisServer(extra_args=["--protected-mode", "no"]).start()
        try:
            url = f"redis://{HOST_LOOPBACK_FROM_CONTAINER}:{redis.port}/0"
            pod = Pod(a.render, a.chart, a.work, "redis",
                      ["--set", "replicaCount=2", "--set", "config.broker.type=redis",
                       "--set-string", f"config.broker.redis.url={url}"])
            # slirp4netns gives each container its own network and the host's loopback at 10.0.2.2,
            # so Redis listens on 127.0.0.1 only.
            network = "slirp4netns:allow_host_loopback=true"
            names, ports = [], []
            for suffix in ("redis-a", "redis-b"):
                name, published = self.start(pod, suffix, network=network)
                names.append(name)
                ports.append(published["http"])
            for name, port_ in zip(names, ports):
                wait_ready(port_, name)
            asyncio.run(round_trip(ports[0], ports[1], "image:redis"))
            asyncio.run(round_trip(ports[1], ports[0], "image:redis-back"))
            return f"broker {url}, both directions"
        finally:
            redis.close()

    async def drain(self, pod, name, port):
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await subscribe(ws, "image:drain")
            started = time.monotonic()
            # The kubelet's part: SIGTERM, then SIGKILL when the grace period ends. podman stop
            # does the same with -t; the chart's preStop sleep comes first in a pod, so the relay
            # itself has the grace period less that sleep.
            stop = await asyncio.create_subprocess_exec(
                "podman", "stop", "-t", str(pod.grace_s), name,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
            frame = await recv_json(ws, timeout=pod.grace_s)
            assert frame == {"op": "reconnect"}, f"first frame in the drain: {frame}"
            try:
                extra = await asyncio.wait_for(ws.recv(), pod.grace_s)
                raise AssertionError(f"frame after reconnect: {extra!r}")
            except websockets.ConnectionClosed:
                pass
            assert ws.close_code == 1001, f"close code {ws.close_code}, not 1001"
            _, err = await asyncio.wait_for(stop.communicate(), pod.grace_s + 10)
            took = time.monotonic() - started
        assert stop.returncode == 0, f"podman stop: exit {stop.returncode}: {err.decode().strip()}"
        exit_code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        budget = pod.grace_s - pod.pre_stop_s
        assert exit_code == "0", f"exit code {exit_code}"
        assert took < budget, \
            f"took {took:.1f} s, the grace period less the preStop sleep is {budget} s"
        return (f'{{"op":"reconnect"}}, close 1001, exit 0 after {took:.1f} s'
                f" (< {pod.grace_s} s - preStop {pod.pre_stop_s} s)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", required=True)
    parser.add_argument("--render", required=True)
    parser.add_argument("--chart", required=True)
    parser.add_argument("--work", required=True)
    checks = Checks(parser.parse_args())
    try:
        checks.run()
    except Exception as e:  # noqa: BLE001 - a setup failure is one failed check
        checks.failed += 1
        print(f"FAIL setting up the containers: {e}", flush=True)
        traceback.print_exc()
    finally:
        checks.cleanup()
    print(f"checks: {checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
