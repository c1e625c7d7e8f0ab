"""The shipped Grafana dashboard and Prometheus alert rules (metrics/) against a real Prometheus:
two relays on a real Redis, with the example Python hook backend, scraped every second under a
small bounded load. Every query of every dashboard panel must parse and return data, the
dashboard's variables must resolve, and every alert rule must load and evaluate cleanly (the hook
errors of the load make WsrelayHookErrors pending; the healthy fleet's other alerts stay
inactive). promtool checks the rule file and runs its unit tests.

Prometheus sees the relays as Kubernetes service discovery would show them: each target carries
`cluster`, `namespace` and `pod` labels, and kube_metrics_server.py stands in for the kubelet's
cAdvisor and for kube-state-metrics with the series of those pods, read from the relays' own
processes, for the dashboard's saturation row."""

import asyncio
import json
import math
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import jwt

from relay_harness import (HOST, IO_TIMEOUT, READY_TIMEOUT, STOP_TIMEOUT, RelayTestCase,
                           free_port, metric, recv_json, redis_overrides, send_json, wait_until)
from kube_metrics_server import KubeMetricsServer
from test_hook import Backend

SOURCE_DIR = os.path.abspath(os.environ.get(
    "WSRELAY_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")))
DASHBOARD = os.path.join(SOURCE_DIR, "metrics/grafana/wsrelay-overview.json")
ALERTS = os.path.join(SOURCE_DIR, "metrics/prometheus/wsrelay-alerts.yaml")
ALERT_TESTS = os.path.join(SOURCE_DIR, "metrics/prometheus/wsrelay-alerts.test.yaml")
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"

HOOK_SECRET = "prometheus-test-hook-secret"
JWT_SECRET = "prometheus-test-jwt-secret-of-32-bytes"
API_KEY = "prometheus-test-api-key"
DATA_TIMEOUT = 30.0  # scrapes and rule evaluations run every second
# A rate window that covers the whole test at a 1 s scrape interval.
RATE_INTERVAL = "1m"
# Where Prometheus' targets are, as Kubernetes service discovery labels them.
CLUSTER, NAMESPACE = "test-cluster", "wsrelay-test"
# The dashboard's variables, and the selectors every query must carry: the relay's own series (and
# `up`) by all four; the kubelet's and kube-state-metrics' by cluster, namespace and pod, for the
# relay's container, joined with the selected relay targets (a namespace holds other apps' pods).
VARIABLE_NAMES = ["datasource", "cluster", "namespace", "job", "pod"]
RELAY_SELECTOR = 'cluster=~"$cluster",namespace=~"$namespace",job=~"$job",pod=~"$pod"'
KUBE_SELECTOR = 'cluster=~"$cluster",namespace=~"$namespace",pod=~"$pod",container="wsrelay"'
KUBE_JOIN = 'and on (cluster, namespace, pod) up{' + RELAY_SELECTOR + '}'
# Alerts the load does not trip: each must stay inactive on this healthy fleet.
QUIET = ["WsrelayBrokerDown", "WsrelayNotReady", "WsrelayDeliveryProbeStale",
         "WsrelayFileDescriptorsNearLimit", "WsrelayTargetDown", "WsrelayAbsent",
         "WsrelaySlowConsumers", "WsrelayRateLimited", "WsrelayMemoryBudgetNearFull",
         "WsrelayBrokerDownFleet", "WsrelayConnectionLimitReached", "WsrelayBrokerPublishFailures",
         "WsrelayJwksRefreshFailing", "WsrelayRestarting", "WsrelayOomKilled",
         "WsrelayMemoryNearLimit", "WsrelayFleetCommandsTimingOut"]


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def panel_targets(dashboard):
    """(panel title, expr) for every query target of every panel, rows' nested panels included."""
    out = []
    for panel in dashboard["panels"]:
        for p in [panel] + panel.get("panels", []):
            for t in p.get("targets", []):
                out.append((p["title"], t["expr"]))
    return out


def all_values(dashboard, resolved):
    """What Grafana puts in place of each query variable when All is selected: its allValue, or
    else a regex of every value it resolved to (`resolved`: name -> set of values)."""
    out = {"__rate_interval": RATE_INTERVAL}
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query" and ("allValue" in v or v["name"] in resolved):
            out[v["name"]] = v.get("allValue") or (
                "(" + "|".join(re.escape(x) for x in sorted(resolved[v["name"]])) + ")")
    return out


def substitute(expr, values):
    def value(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise AssertionError(f"unknown dashboard variable ${name} in {expr}")
        return values[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def alert_names():
    with open(ALERTS) as f:
        return re.findall(r"^\s*- alert: (\S+)\s*$", f.read(), re.MULTILINE)


def alert_rules():
    """Alert name -> its rule's text (expression, for, labels), from the rule file."""
    with open(ALERTS) as f:
        parts = re.split(r"^\s*- alert: (\S+)\s*$", f.read(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def alert_threshold(rule, value):
    """Whether `value` is the threshold `rule` compares with: a number in its expression (14 days
    written as `14 * 86400`; a gauge that fires at 0 has the threshold 1, the first healthy value)."""
    expr = rule.split("expr:", 1)[1].split("for:", 1)[0]
    numbers = {float(n) for n in re.findall(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])", expr)}
    numbers |= {float(a) * float(b) for a, b in re.findall(r"(\d+) \* (\d+)", expr)}
    if re.search(r"== 0\b", expr):
        numbers.add(1.0)
    return float(value) in numbers


class PrometheusError(AssertionError):
    pass


class Prometheus:
    """A real prometheus process on a loopback port scraping `scrape_configs` every second and
    evaluating `rule_files` every second; data in a temporary directory; stopped by PID."""

    def __init__(self, scrape_configs, rule_files):
        if not os.access(PROMETHEUS, os.X_OK):
            raise unittest.SkipTest(f"{PROMETHEUS} is not installed (Debian package prometheus)")
        self.scrape_configs, self.rule_files = list(scrape_configs), list(rule_files)
        self.proc = None
        self.port = None
        self._tmpdir = tempfile.TemporaryDirectory(prefix="wsrelay-prometheus-")
        self.log_path = os.path.join(self._tmpdir.name, "prometheus.log")
        self._final_log = None

    def start(self):
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": self.rule_files,
            "scrape_configs": self.scrape_configs,
        }
        config_path = os.path.join(self._tmpdir.name, "prometheus.yml")
        with open(config_path, "w") as f:
            json.dump(config, f, indent=2)  # JSON is YAML
        last = None
        for _ in range(5):
            self.port = free_port()
            try:
                self._start_once(config_path)
                return self
            except PrometheusError as e:
                last = e
                if "address already in use" not in self.log():
                    raise
        raise last

    def _start_once(self, config_path):
        args = [PROMETHEUS, f"--config.file={config_path}",
                f"--storage.tsdb.path={os.path.join(self._tmpdir.name, f'data-{self.port}')}",
                f"--web.listen-address={HOST}:{self.port}", "--log.level=warn"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self._tmpdir.name)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise PrometheusError(f"prometheus exited with {code} during startup\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url("/-/ready"), timeout=1.0) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise PrometheusError(f"prometheus not ready within {READY_TIMEOUT}s\n{self.log()}")
            time.sleep(0.05)  # bounded poll of /-/ready, with the deadline above

    def url(self, path):
        return f"http://{HOST}:{self.port}{path}"

    def api(self, path, **params):
        """GET /api/v1/<path>; returns the decoded body, also for 4xx answers (query errors)."""
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(self.url(f"/api/v1/{path}?{query}"),
                                        timeout=IO_TIMEOUT) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read() or b"{}")

    def query(self, expr):
        return self.api("query", query=expr)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT)
            self.proc = None

    def close(self):
        try:
            self.stop()
        finally:
            self._final_log = self.log()
            self._tmpdir.cleanup()

    def log(self):
        if self._final_log is not None:
            return self._final_log
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class Client:
    """A WebSocket client that keeps the frames it did not ask for (channel messages) aside
    while it waits for the answer to one of its commands."""

    def __init__(self, ws):
        self.ws = ws
        self.inbox = []
        self.next_id = 0

    async def call(self, obj):
        self.next_id += 1
        obj = dict(obj, id=self.next_id)
        await send_json(self.ws, obj)
        while True:
            frame = await recv_json(self.ws)
            if frame.get("id") == obj["id"]:
                return frame
            self.inbox.append(frame)

    async def wait_messages(self, channel, count):
        def got():
            return [f for f in self.inbox if f.get("op") == "message" and f["channel"] == channel]
        while len(got()) < count:
            self.inbox.append(await recv_json(self.ws))
        return got()


class DashboardAndRulesFilesTest(unittest.TestCase):
    """What needs no server: the dashboard's structure, promtool on the rule file and its tests."""

    def promtool(self, *args):
        if not os.access(PROMTOOL, os.X_OK):
            self.skipTest(f"{PROMTOOL} is not installed (Debian package prometheus)")
        done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)
        self.assertEqual(0, done.returncode,
                         f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}")
        return done.stdout

    def test_promtool_check_rules(self):
        out = self.promtool("check", "rules", ALERTS)
        self.assertIn(f"SUCCESS: {len(alert_names())} rules found", out)

    def test_promtool_test_rules(self):
        self.assertIn("SUCCESS", self.promtool("test", "rules", ALERT_TESTS))
        # Every alert has a unit test.
        with open(ALERT_TESTS) as f:
            tested = set(re.findall(r"alertname: (\S+)", f.read()))
        self.assertEqual(set(alert_names()), tested)

    def test_dashboard_structure(self):
        d = load_dashboard()
        self.assertEqual("wsrelay-overview", d["uid"])
        self.assertGreaterEqual(d["schemaVersion"], 36)
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(VARIABLE_NAMES, list(variables))
        self.assertEqual(("datasource", "prometheus"),
                         (variables["datasource"]["type"], variables["datasource"]["query"]))
        for name in VARIABLE_NAMES[1:]:
            v = variables[name]
            self.assertTrue(v["includeAll"], name)
            self.assertEqual({"type": "prometheus", "uid": "${datasource}"}, v["datasource"])
        # A Prometheus without a cluster (or namespace, or pod) label: All matches the empty value.
        for name in ("cluster", "namespace", "pod"):
            self.assertEqual(".*", variables[name]["allValue"], name)
        # All jobs: only those that report wsrelay_build_info, never ".*" (a namespace's other apps).
        self.assertNotIn("allValue", variables["job"])
        self.assertIn("up{", variables["pod"]["definition"], "pods listed from up: crash-looping too")
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        rows = [p["title"] for p in d["panels"] if p["type"] == "row"]
        self.assertIn("Per pod", rows)
        self.assertIn("Pods and saturation", rows)
        self.assertIn("#the-alerts", " ".join(link["url"] for link in d["links"]))
        alerts = alert_rules()
        selector = re.compile(r"\b(wsrelay_\w+|up|container_\w+|kube_\w+)(\{[^}]*\})?")
        saturation = set()
        for panel in d["panels"]:
            if panel["type"] == "row":
                continue
            title = panel["title"]
            self.assertEqual({"type": "prometheus", "uid": "${datasource}"}, panel["datasource"],
                             title)
            self.assertTrue(panel["targets"], title)
            self.assertTrue(panel["fieldConfig"]["defaults"].get("unit"), f"{title}: no unit")
            for t in panel["targets"]:
                self.assertEqual("${datasource}", t["datasource"]["uid"], title)
                # No `instance` label (by, matcher or legend); metric names such as
                # wsrelay_fleet_instances_reaped_total hold the word only as part of a name.
                self.assertIsNone(re.search(r"\binstance\b", t["expr"] + t["legendFormat"]),
                                  title)
                for name, labels in selector.findall(t["expr"]):
                    if name.startswith(("container_", "kube_")):
                        saturation.add(name)
                        self.assertIn(KUBE_SELECTOR, labels, f"{title}: {name}")
                        self.assertIn(KUBE_JOIN, t["expr"], f"{title}: {name}")
                    else:
                        self.assertIn(RELAY_SELECTOR, labels, f"{title}: {name}")
                if re.search(r"\bby \([^)]*\bpod\b", t["expr"]):
                    self.assertIn("{{pod}}", t["legendFormat"], title)
            # A drawn threshold is an alert's: its runbook is linked and the value is the rule's.
            style = panel["fieldConfig"]["defaults"].get("custom", {}).get("thresholdsStyle")
            if style and style["mode"] != "off":
                self.assertIn(style["mode"], ("line", "area", "line+area"), title)
                links = panel.get("links", [])
                self.assertEqual(1, len(links), title)
                alert = links[0]["title"].removeprefix("Runbook: ")
                self.assertIn(alert, alerts, title)
                self.assertEqual(f"docs/operations.md#{alert.lower()}", links[0]["url"], title)
                steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
                self.assertEqual(2, len(steps), title)
                self.assertTrue(alert_threshold(alerts[alert], steps[1]["value"]),
                                f"{title}: threshold {steps[1]['value']} is not {alert}'s")
        self.assertEqual({"container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                          "container_cpu_cfs_throttled_periods_total",
                          "container_cpu_cfs_periods_total", "kube_pod_container_resource_requests",
                          "kube_pod_container_resource_limits",
                          "kube_pod_container_status_restarts_total"}, saturation)
        self.assertNotIn('"uid": "P', json.dumps(d), "no hard-coded datasource uid")


class PrometheusTest(RelayTestCase):
    def start_prometheus(self, relays, pods, kube):
        """Scrapes the relays as pods `pods` of NAMESPACE, and `kube` as both the kubelet's cAdvisor
        and kube-state-metrics; every target in CLUSTER."""
        cluster = {"cluster": CLUSTER}
        scrape_configs = [
            {"job_name": "wsrelay",
             "static_configs": [{"targets": [f"{HOST}:{r.port}"],
                                 "labels": dict(cluster, namespace=NAMESPACE, pod=pod)}
                                for r, pod in zip(relays, pods)]},
            {"job_name": "kubelet", "metrics_path": "/metrics/cadvisor",
             "static_configs": [{"targets": [kube.target], "labels": cluster}]},
            {"job_name": "kube-state-metrics",
             "static_configs": [{"targets": [kube.target], "labels": cluster}]},
        ]
        prometheus = Prometheus(scrape_configs, [ALERTS])
        self.addCleanup(prometheus.close)
        self._prometheus = prometheus
        return prometheus.start()

    def _print_logs(self):
        super()._print_logs()
        prometheus = getattr(self, "_prometheus", None)
        if prometheus is not None:
            print(f"\n----- prometheus log (port {prometheus.port}) -----\n"
                  f"{prometheus.log()}\n-----")

    async def query(self, prometheus, expr):
        return await asyncio.to_thread(prometheus.query, expr)

    async def load(self, redis, relays):
        """Bounded traffic that gives every dashboard panel data: 3 authenticated clients per
        relay in three channels, client publishes across the two relays through Redis, HTTP API
        publishes, publishes routed through the hook, hook commands (some refused by the app), a
        fleet command from each relay, an expired token and an unknown path. A client on each
        relay negotiates permessage-deflate and the HTTP API's messages are large enough to be
        compressed."""
        def token(sub, ttl=300):
            now = int(time.time())
            return jwt.encode({"sub": sub, "iat": now, "exp": now + ttl}, JWT_SECRET, "HS256")

        clients = []
        for i in range(6):
            relay = relays[i % 2]
            ws = await relay.ws_connect(
                extra_headers={"Authorization": f"Bearer {token(f'user-{i}')}"},
                compression="deflate" if i < 2 else None).__aenter__()
            self.addAsyncCleanup(ws.close)
            # The hook's connect answer puts every connection in the lobby.
            self.assertEqual({"op": "subscribed", "channel": "lobby"}, await recv_json(ws))
            clients.append(Client(ws))
        for c in clients:
            for channel in ("room:1", "chat:room"):
                reply = await c.call({"op": "subscribe", "channel": channel})
                self.assertEqual("ack", reply["op"], reply)

        # Each worker holding clients holds all three channels: wait until Redis has every one of
        # those workers subscribed, or a publish could miss a relay.
        async def subscribed():
            held = sum([metric(await r.ametrics(), "wsrelay_channels") for r in relays])
            return all([await redis.anumsub(ch) * 3 == held for ch in ("room:1", "chat:room")])
        await wait_until(subscribed, what="Redis subscriptions of every worker")

        async def talk(n, c):
            for k in range(5):
                reply = await c.call({"op": "publish", "channel": "room:1",
                                      "data": {"n": n, "k": k}})
                self.assertEqual("ack", reply["op"], reply)
            for k in range(2):
                reply = await c.call({"op": "publish", "channel": "chat:room",
                                      "data": {"text": f"hello {n}.{k}"}})
                self.assertEqual("ack", reply["op"], reply)
            reply = await c.call({"op": "send", "data": {"cmd": "echo", "value": n}})
            self.assertEqual(("reply", n), (reply["op"], reply["data"]), reply)
            # The app answers {"error"}: a hook request with result "error".
            reply = await c.call({"op": "send", "data": {"cmd": "no-such-command"}})
            self.assertEqual(("error", 404), (reply["op"], reply["code"]), reply)

        await asyncio.gather(*(talk(n, c) for n, c in enumerate(clients)))
        for k, relay in enumerate(relays * 3):
            status, _, body = await relay.ahttp_post("/api/publish",
                                                     {"channel": "room:1",
                                                      "data": {"api": k, "text": "words " * 120}},
                                                     headers={"X-API-Key": API_KEY})
            self.assertEqual(200, status, body)
        for c in clients:
            await c.wait_messages("room:1", 6 * 5 + 6)
            await c.wait_messages("chat:room", 6 * 2)
        # Fleet commands, for the fleet row: each relay asks every worker of both how many
        # subscribers room:1 has, and every worker answers.
        for relay in relays:
            status, _, body = await relay.ahttp_post("/api/channel", {"channel": "room:1"},
                                                     headers={"X-API-Key": API_KEY})
            self.assertEqual(200, status, body)
            answer = json.loads(body)
            self.assertEqual((6, 0), (answer["subscribers"], answer["unanswered"]), answer)

        status, _, _ = await relays[0].ahttp_upgrade(
            headers={"Authorization": f"Bearer {token('late', ttl=-60)}"})
        self.assertEqual(401, status)
        status, _, _ = await relays[1].ahttp_upgrade(
            path="/not-the-ws-path", headers={"Authorization": f"Bearer {token('lost')}"})
        self.assertEqual(404, status)
        for c in clients:
            await c.ws.close()

    async def test_dashboard_queries_and_alert_rules(self):
        redis = self.start_redis()
        backend = Backend("python", secret=HOOK_SECRET).start()
        self.addCleanup(backend.stop)
        config = redis_overrides(redis, {
            "broker.redis.probe_interval_ms": 250,
            "api.key": API_KEY,
            "auth.enabled": True, "auth.jwt.secret": JWT_SECRET,
            "auth.permissions.subscribe": ["*"], "auth.permissions.publish": ["*"],
            "hook.url": backend.url(), "hook.secret": HOOK_SECRET, "hook.timeout_ms": 2000,
            "hook.routes": ["chat:*=hook"],
            # A budget, for the share of it in use.
            "limits.memory_budget_bytes": 64 << 20,
        })
        relays = [await self.start_relay(config), await self.start_relay(config)]
        for relay in relays:
            await relay.wait_metric(lambda s: metric(s, "wsrelay_ready") == 1,
                                    timeout=READY_TIMEOUT, what="wsrelay_ready == 1")
        pods = [f"wsrelay-7c9d8-{i}" for i in range(len(relays))]
        kube = KubeMetricsServer([(NAMESPACE, pod, r.proc.pid) for r, pod in zip(relays, pods)])
        await asyncio.to_thread(kube.start)
        self.addCleanup(kube.stop)
        prometheus = await asyncio.to_thread(self.start_prometheus, relays, pods, kube)

        # A scrape of both relays and the kube metrics before the load, so that rates cover it.
        async def all_up():
            r = await self.query(prometheus, "up == 1")
            return len(r.get("data", {}).get("result", [])) == 4
        await wait_until(all_up, DATA_TIMEOUT, "both relays and the kube metrics scraped",
                         interval=0.2)

        await self.load(redis, relays)

        # The variables' label_values() queries resolve to this Prometheus' cluster, namespace,
        # job and pods, each with the values the variables before it select (All).
        dashboard = load_dashboard()
        want = {"cluster": {CLUSTER}, "namespace": {NAMESPACE}, "job": {"wsrelay"},
                "pod": set(pods)}
        resolved = {}
        for v in dashboard["templating"]["list"]:
            if v["type"] != "query":
                continue
            m = re.fullmatch(r"label_values\((.*), (\w+)\)", v["definition"])
            self.assertIsNotNone(m, v["definition"])
            match = substitute(m.group(1), all_values(dashboard, resolved))
            r = await asyncio.to_thread(prometheus.api, f"label/{m.group(2)}/values",
                                        **{"match[]": match})
            resolved[v["name"]] = set(r["data"])
            self.assertEqual(want[v["name"]], resolved[v["name"]], (v["name"], match, r))
        values = all_values(dashboard, resolved)

        targets = [(title, expr, substitute(expr, values))
                   for title, expr in panel_targets(dashboard)]
        self.assertGreater(len(targets), 30)
        missing, invalid = {}, []

        async def every_query_has_data():
            missing.clear()
            for title, expr, concrete in targets:
                r = await self.query(prometheus, concrete)
                if r.get("status") != "success":
                    invalid.append(f"{title}: {expr}\n  {r.get('errorType')}: {r.get('error')}")
                    continue
                values = [float(s["value"][1]) for s in r["data"]["result"]]
                if not any(math.isfinite(v) for v in values):
                    missing[f"{title}: {expr}"] = values
            return invalid or not missing
        try:
            await wait_until(every_query_has_data, DATA_TIMEOUT, "data for every panel query",
                             interval=0.5)
        except AssertionError:
            self.fail("panel queries without a finite value:\n" +
                      "\n".join(f"  {k} -> {v}" for k, v in missing.items()))
        self.assertEqual([], invalid, "panel queries Prometheus refuses")

        names = alert_names()
        rules = {}

        async def evaluated():
            r = await asyncio.to_thread(prometheus.api, "rules")
            groups = r["data"]["groups"]
            self.assertEqual([("wsrelay", ALERTS)], [(g["name"], g["file"]) for g in groups])
            rules.clear()
            rules.update({rule["name"]: rule for rule in groups[0]["rules"]})
            self.assertEqual(sorted(names), sorted(rules))
            for rule in rules.values():
                self.assertEqual("", rule.get("lastError", ""), rule)
                self.assertIn(rule["health"], ("ok", "unknown"), rule)  # unknown: not run yet
            hook = rules["WsrelayHookErrors"]
            return (all(rule["health"] == "ok" for rule in rules.values())
                    and {a["labels"]["instance"] for a in hook["alerts"]} == instances
                    and all(a["state"] == "pending" for a in hook["alerts"]))
        instances = {f"{HOST}:{r.port}" for r in relays}
        await wait_until(evaluated, DATA_TIMEOUT,
                         "every rule evaluated, WsrelayHookErrors pending for both relays",
                         interval=0.5)
        for name in QUIET:
            self.assertEqual("inactive", rules[name]["state"], rules[name])


if __name__ == "__main__":
    unittest.main()
