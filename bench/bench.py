#!/usr/bin/env python3
"""make bench: how fast and how lean the operator converges, side by side with
the AWS CLI, boto3 and the IAM emulator's own ceiling.

Runs against the dev environment (hack/devenv.sh, sourced from
target/devenv/env) and the operator's static release binary. For each N it
measures, in this order:

  baselines   the same N CreateLoginProfile calls made by the emulator's
              ceiling client (raw HTTP, many connections), boto3 (sequential and
              with a thread pool as wide as the operator's concurrency) and the
              AWS CLI in a shell loop (100 users; larger N is extrapolated);
  operator    kubectl apply of N Secrets + LoginProfiles -> all Ready
              (convergence, per-object latency, IAM calls counted at the
              emulator, Kubernetes writes counted from the API server's audit
              log, peak RSS and CPU seconds of the operator process);
  rest        a quiet window right after convergence;
  steady      one full resync period;
  restart     SIGTERM, start again: time to /readyz and to the first pass
              over every object, calls and writes meanwhile;
  rotation    10% of the Secrets change at once.

Writes bench/results/<date>-N<N>.json, .md and .png, and the README's table.
Every user, profile and namespace it made is deleted at the end.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import datetime
import http.client
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore.config

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOGS = ROOT / "target" / "bench"
GROUP = "iam.loginprofile.dev"
PASSWORD = "Bench-Console-Password-1!"
ROTATED_PASSWORD = "Bench-Rotated-Password-2!"
IAM_WRITES = ("CreateLoginProfile", "UpdateLoginProfile", "DeleteLoginProfile")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def progress(label: str, done: int, total: int, started: float) -> None:
    """One line, rewritten in place: what runs, how far, how long."""
    print(f"\r[bench] {label}: {done}/{total} in {time.monotonic() - started:6.1f}s ",
          end="", file=sys.stderr, flush=True)


def run(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}... failed: {done.stderr.strip()}")
    return done.stdout


def wait_until(what: str, deadline_s: float, check, interval: float = 0.2):
    """Polls check() until it returns something truthy; fails after the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {deadline_s:.0f}s waiting for {what}")
        time.sleep(interval)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


# --- what is counted where ---------------------------------------------------

class Emulator:
    """The IAM emulator's own call counters (hack/moto_server.py /_lpo/calls)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def calls(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.endpoint}/_lpo/calls") as response:
            return json.load(response)

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/_lpo/calls", method="DELETE")
        urllib.request.urlopen(request).close()


class AuditLog:
    """Kubernetes write requests as the API server logged them
    (hack/audit-policy.yaml logs every create/update/patch/delete)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def offset(self) -> int:
        return self.path.stat().st_size

    def writes_since(self, offset: int, user_agent: str) -> dict[str, int]:
        counted: collections.Counter = collections.Counter()
        with self.path.open() as lines:
            lines.seek(offset)
            for line in lines:
                event = json.loads(line)
                if not event.get("userAgent", "").startswith(user_agent):
                    continue
                ref = event.get("objectRef", {})
                resource = ref.get("resource", "?")
                if ref.get("subresource"):
                    resource += "/" + ref["subresource"]
                counted[f"{event['verb']} {resource}"] += 1
        return dict(sorted(counted.items()))


@dataclass
class ProcessUsage:
    """CPU seconds and memory of one process, from /proc."""
    pid: int

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mib(self) -> dict[str, float]:
        status = Path(f"/proc/{self.pid}/status").read_text()
        kib = {k: int(v) for k, v in re.findall(r"^(VmHWM|VmRSS):\s+(\d+) kB", status, re.M)}
        return {"rss_mib": round(kib["VmRSS"] / 1024, 1), "peak_rss_mib": round(kib["VmHWM"] / 1024, 1)}


def environment_processes() -> dict[str, ProcessUsage]:
    """kube-apiserver, etcd and the emulator, by the PIDs hack/devenv.sh recorded."""
    state = dict(line.split("=", 1) for line in (ROOT / "target/devenv/state").read_text().splitlines()
                 if "=" in line)
    return {name: ProcessUsage(int(state[f"{name}_pid"]))
            for name in ("kube-apiserver", "etcd", "moto") if f"{name}_pid" in state}


def sum_writes(calls: dict[str, int]) -> int:
    return sum(n for op, n in calls.items() if op in IAM_WRITES)


# --- baselines ----------------------------------------------------------------

class CeilingClient:
    """The emulator's ceiling: nothing but CreateLoginProfile, over kept-alive
    connections, with a constant Authorization header (the emulator routes by
    its credential scope and does not check signatures)."""

    def __init__(self, endpoint: str) -> None:
        url = urllib.parse.urlparse(endpoint)
        self.host, self.port = url.hostname, url.port
        self.local = threading.local()
        self.headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261127/us-east-1/iam/aws4_request, "
                             "SignedHeaders=host, Signature=0",
        }

    def call(self, action: str, user: str, **params: str) -> None:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = http.client.HTTPConnection(self.host, self.port)
        body = urllib.parse.urlencode({"Action": action, "Version": "2010-05-08", "UserName": user, **params})
        connection.request("POST", "/", body, self.headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status >= 300 and not (action == "DeleteLoginProfile" and response.status == 404):
            raise RuntimeError(f"{action} {user}: HTTP {response.status} {payload[:200]!r}")


def timed_pool(label: str, users: list[str], width: int, call) -> list[float]:
    """Runs call(user) for every user on `width` threads; returns each call's
    completion time (seconds since the first call started)."""
    started = time.monotonic()
    finished: list[float] = []
    lock = threading.Lock()

    def one(user: str) -> None:
        call(user)
        with lock:
            finished.append(time.monotonic() - started)
            if len(finished) % 50 == 0 or len(finished) == len(users):
                progress(label, len(finished), len(users), started)

    with concurrent.futures.ThreadPoolExecutor(max_workers=width) as pool:
        for result in [pool.submit(one, user) for user in users]:
            result.result()
    print(file=sys.stderr)
    return sorted(finished)


def cli_loop(users: list[str]) -> list[float]:
    """`aws iam create-login-profile` in a plain shell loop, as a script
    around the seed's own tool would do it."""
    script = (
        'for user in "$@"; do aws iam create-login-profile --user-name "$user" '
        '--password "$BENCH_PASSWORD" --no-password-reset-required >/dev/null || exit 1; '
        'echo "$EPOCHREALTIME"; done'
    )
    started_wall = time.time()
    started = time.monotonic()
    process = subprocess.Popen(["bash", "-c", script, "bash", *users], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "BENCH_PASSWORD": PASSWORD})
    finished = []
    for line in process.stdout:
        finished.append(float(line) - started_wall)
        progress("aws CLI loop", len(finished), len(users), started)
    print(file=sys.stderr)
    if process.wait() != 0:
        raise RuntimeError("the aws CLI loop failed")
    return finished


def summary(finished: list[float]) -> dict:
    return {"seconds": round(finished[-1], 2), "profiles": len(finished),
            "per_second": round(len(finished) / finished[-1], 1)}


# --- the operator -------------------------------------------------------------

class Operator:
    """The operator's release binary as a child process, logs to a file."""

    def __init__(self, binary: str, namespace: str, args: list[str], log_path: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.http = f"http://127.0.0.1:{port}"
        self.log = log_path.open("ab")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [binary, "run", "--namespace", namespace, "--operator-namespace", namespace,
             "--http-addr", f"127.0.0.1:{port}", *args],
            stdout=self.log, stderr=self.log, env={**os.environ, "RUST_LOG": "info"})
        self.usage = ProcessUsage(self.process.pid)

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the operator exited with {self.process.returncode}; see {self.log.name}")
        try:
            with urllib.request.urlopen(f"{self.http}/readyz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        self.log.close()


class ReadyWatch:
    """`kubectl get --watch` of the namespace's LoginProfiles: when each
    object was first seen (applied), first Ready, and when its password
    fingerprint last changed, on this process's monotonic clock."""

    FORMAT = ('{.metadata.name}{"|"}{.status.conditions[?(@.type=="Ready")].status}'
              '{"|"}{.status.passwordFingerprint}{"\\n"}')

    def __init__(self, namespace: str) -> None:
        self.seen: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.fingerprint: dict[str, str] = {}
        self.fingerprint_changed: dict[str, float] = {}
        self.lock = threading.Lock()
        self.process = subprocess.Popen(
            ["kubectl", "get", f"loginprofiles.{GROUP}", "-n", namespace, "--watch",
             "--chunk-size=0",  # a chunked first listing prints as one List, not per object
             "-o", f"jsonpath={self.FORMAT}"],
            stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            now = time.monotonic()
            name, ready, fingerprint = (line.rstrip("\n").split("|") + ["", ""])[:3]
            with self.lock:
                self.seen.setdefault(name, now)
                if ready == "True":
                    self.ready.setdefault(name, now)
                if fingerprint and self.fingerprint.get(name) != fingerprint:
                    if name in self.fingerprint:
                        self.fingerprint_changed[name] = now
                    self.fingerprint[name] = fingerprint

    def count_ready(self) -> int:
        with self.lock:
            return len(self.ready)

    def stop(self) -> None:
        self.process.terminate()


@dataclass
class Run:
    """One benchmark run for one N."""
    n: int
    args: argparse.Namespace
    run_id: str
    emulator: Emulator
    audit: AuditLog
    iam: object
    namespace: str = ""
    namespaces: list[str] = field(default_factory=list)
    users: dict[str, list[str]] = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)

    def user_names(self, phase: str, count: int) -> list[str]:
        names = [f"lpo-bench-{self.run_id}-{phase}-{i:05d}" for i in range(count)]
        self.users[phase] = names
        return names

    def create_users(self, names: list[str]) -> None:
        client = CeilingClient(self.args.endpoint)
        timed_pool(f"creating {len(names)} IAM users", names, 8, lambda u: client.call("CreateUser", u))

    # - baselines -

    def baselines(self) -> None:
        n, width = self.n, self.args.concurrency
        client = CeilingClient(self.args.endpoint)
        phases = [
            ("ceiling", n, lambda users: timed_pool(
                f"emulator ceiling ({self.args.ceiling_width} connections)", users, self.args.ceiling_width,
                lambda u: client.call("CreateLoginProfile", u, Password=PASSWORD))),
            ("boto3_pool", n, lambda users: timed_pool(
                f"boto3, {width} threads", users, width, self._boto3_create)),
            ("boto3_sequential", n, lambda users: timed_pool(
                "boto3, sequential", users, 1, self._boto3_create)),
            ("aws_cli_loop", min(n, self.args.cli_n), cli_loop),
        ]
        if self.args.ceiling_only:
            phases = phases[:1]
        for phase, count, measure in phases:
            users = self.user_names(phase, count)
            self.create_users(users)
            self.emulator.reset()
            finished = measure(users)
            result = summary(finished)
            result["iam_calls"] = self.emulator.calls()
            if count < n:
                result["extrapolated_seconds_for_n"] = round(finished[-1] * n / count, 1)
            self.results[phase] = result
            self.curves[phase] = finished
            log(f"{phase}: {result}")

    def _boto3_create(self, user: str) -> None:
        self.iam.create_login_profile(UserName=user, Password=PASSWORD, PasswordResetRequired=False)

    # - the operator -

    def manifests(self, users: list[str], password: str, kinds=("Secret", "LoginProfile")) -> str:
        items = []
        for user in users:
            if "Secret" in kinds:
                items.append({"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": user, "namespace": self.namespace},
                              "stringData": {"password": password}})
            if "LoginProfile" in kinds:
                items.append({"apiVersion": f"{GROUP}/v1alpha1", "kind": "LoginProfile",
                              "metadata": {"name": user, "namespace": self.namespace},
                              "spec": {"userName": user, "passwordSecretRef": {"name": user}}})
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})

    def apply_in_parallel(self, users: list[str]) -> None:
        """kubectl apply of the LoginProfiles, split over several kubectl
        processes: one kubectl sends about 35 objects/s here (one request per
        object, paced by its client-side rate limit), slower than the operator
        converges them."""
        # Each kubectl costs a start-up; give each at least 50 objects.
        width = max(1, min(self.args.apply_parallelism, len(users) // 50))
        chunks = [users[i::width] for i in range(width)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=width) as pool:
            for done in [pool.submit(run, "kubectl", "apply", "--server-side", "-f", "-",
                                     stdin=self.manifests(chunk, PASSWORD, kinds=("LoginProfile",)))
                         for chunk in chunks if chunk]:
                done.result()

    def operator_args(self) -> list[str]:
        return ["--concurrency", str(self.args.concurrency), "--iam-rate-limit", str(self.args.iam_rate_limit),
                "--resync-period", f"{self.args.resync}s"]

    def start_operator(self) -> Operator:
        operator = Operator(self.args.binary, self.namespace, self.operator_args(),
                            LOGS / f"operator-{self.run_id}-N{self.n}.log")
        wait_until("the operator's /readyz", 120, operator.ready)
        return operator

    def use_namespace(self, name: str) -> None:
        run("kubectl", "create", "namespace", name)
        self.namespace = name
        self.namespaces.append(name)

    def kubectl_apply_alone(self) -> None:
        """The Kubernetes floor: the same kubectl apply of N LoginProfiles
        with no operator running, in a namespace of its own."""
        self.use_namespace(f"lpo-bench-{self.run_id}-apply-only")
        offset = self.audit.offset()
        environment = environment_processes()
        environment_cpu = {name: p.cpu_seconds() for name, p in environment.items()}
        started = time.monotonic()
        self.apply_in_parallel([f"apply-only-{i:05d}" for i in range(self.n)])
        seconds = time.monotonic() - started
        self.results["kubectl_apply_alone"] = {
            "seconds": round(seconds, 2), "profiles": self.n, "per_second": round(self.n / seconds, 1),
            "environment_cpu_seconds": {name: round(p.cpu_seconds() - environment_cpu[name], 2)
                                        for name, p in environment.items()},
            "kubernetes_writes": self.audit.writes_since(offset, "kubectl"),
        }
        run("kubectl", "delete", "namespace", self.namespace, "--wait=false")
        log(f"kubectl apply alone: {self.results['kubectl_apply_alone']}")

    def operator(self) -> None:
        self.use_namespace(f"lpo-bench-{self.run_id}-n{self.n}")
        users = self.user_names("operator", self.n)
        self.create_users(users)
        run("kubectl", "apply", "--server-side", "-f", "-",
            stdin=self.manifests(users, PASSWORD, kinds=("Secret",)))
        operator = self.start_operator()
        try:
            self._converge(operator, users)
            self._rest(operator)
            self._steady(operator)
            operator.stop()
            operator = self._restart()
            self._rotate(operator, users)
        finally:
            # Even after a failure: the running operator's finalizer lets the
            # LoginProfiles, and so the namespace, go.
            if operator.process.poll() is None:
                self._cleanup_namespace()
            else:
                log(f"the operator is not running: namespace {self.namespace} keeps its LoginProfiles' finalizers")
            operator.stop()

    def _window(self, operator: Operator):
        """Starts a measurement window; returns a function that ends it."""
        self.emulator.reset()
        offset, cpu, started = self.audit.offset(), operator.usage.cpu_seconds(), time.monotonic()
        environment = environment_processes()
        environment_cpu = {name: p.cpu_seconds() for name, p in environment.items()}

        def end() -> dict:
            measured = {"seconds": round(time.monotonic() - started, 2),
                        "cpu_seconds": round(operator.usage.cpu_seconds() - cpu, 2),
                        **operator.usage.memory_mib(),
                        "environment_cpu_seconds": {name: round(p.cpu_seconds() - environment_cpu[name], 2)
                                                    for name, p in environment.items()}}
            return measured | self.counts_since(offset)
        return end

    def counts_since(self, audit_offset: int) -> dict:
        """IAM calls and the operator's Kubernetes writes since the window
        began, once they stop changing: the API server logs a request after
        answering it, and an Event may follow the status it explains."""
        def snapshot() -> dict:
            return {"iam_calls": self.emulator.calls(),
                    "kubernetes_writes": self.audit.writes_since(audit_offset, self.args.user_agent)}
        previous = snapshot()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(1)
            current = snapshot()
            if current == previous:
                break
            previous = current
        return previous

    def _converge(self, operator: Operator, users: list[str]) -> None:
        watch = ReadyWatch(self.namespace)
        try:
            end = self._window(operator)
            started = time.monotonic()
            self.apply_in_parallel(users)
            applied = time.monotonic() - started

            def all_ready() -> bool:
                ready = watch.count_ready()
                progress("operator: Ready", ready, self.n, started)
                return ready >= self.n
            wait_until(f"{self.n} LoginProfiles Ready", self.args.deadline, all_ready)
            print(file=sys.stderr)
            result = end()
            with watch.lock:
                latencies = [watch.ready[u] - watch.seen[u] for u in users]
                finished = sorted(watch.ready[u] - started for u in users)
        finally:
            watch.stop()
        result |= {
            "profiles": self.n,
            "kubectl_apply_seconds": round(applied, 2),
            "latency_seconds": {f"p{p}": round(percentile(latencies, p), 3) for p in (50, 95, 99)},
            "iam_writes_per_profile": round(sum_writes(result["iam_calls"]) / self.n, 3),
            "kubernetes_writes_per_profile": round(sum(result["kubernetes_writes"].values()) / self.n, 3),
            "ratio_to_ceiling": round(result["seconds"] / self.results["ceiling"]["seconds"], 2),
            "ratio_to_kubernetes_floor": round(result["seconds"] / self.results["kubectl_apply_alone"]["seconds"], 2),
        }
        self.results["operator"] = result
        self.curves["operator"] = finished
        log(f"converged: {result}")

    def _rest(self, operator: Operator) -> None:
        end = self._window(operator)
        time.sleep(self.args.rest)  # the measurement is the quiet window itself
        self.results["rest"] = end()
        log(f"at rest: {self.results['rest']}")

    def _steady(self, operator: Operator) -> None:
        end = self._window(operator)
        started = time.monotonic()
        while time.monotonic() - started < self.args.resync:
            progress("steady state: one resync period", int(time.monotonic() - started), self.args.resync, started)
            time.sleep(1)
        print(file=sys.stderr)
        self.results["steady_per_resync"] = end() | {"resync_period_seconds": self.args.resync}
        log(f"steady state: {self.results['steady_per_resync']}")

    def _restart(self) -> Operator:
        self.emulator.reset()
        offset = self.audit.offset()
        started = time.monotonic()
        operator = self.start_operator()
        ready_after = time.monotonic() - started

        def first_pass_done() -> bool:
            reads = self.emulator.calls().get("GetLoginProfile", 0)
            progress("restart: objects checked", reads, self.n, started)
            return reads >= self.n
        wait_until("the first pass over every object after the restart", self.args.deadline, first_pass_done)
        print(file=sys.stderr)
        self.results["restart"] = {
            "ready_seconds": round(ready_after, 2),
            "first_pass_seconds": round(time.monotonic() - started, 2),
            "cpu_seconds": round(operator.usage.cpu_seconds(), 2),
            **operator.usage.memory_mib(),
        } | self.counts_since(offset)
        log(f"restart: {self.results['restart']}")
        return operator

    def _rotate(self, operator: Operator, users: list[str]) -> None:
        rotated = users[: max(1, self.n // 10)]
        watch = ReadyWatch(self.namespace)
        try:
            wait_until("the watch's initial listing", 60, lambda: watch.count_ready() >= self.n)
            end = self._window(operator)
            started = time.monotonic()
            run("kubectl", "apply", "--server-side", "-f", "-",
                stdin=self.manifests(rotated, ROTATED_PASSWORD, kinds=("Secret",)))

            def all_rotated() -> bool:
                with watch.lock:
                    done = sum(1 for u in rotated if u in watch.fingerprint_changed)
                progress("rotation: profiles updated", done, len(rotated), started)
                return done >= len(rotated)
            wait_until(f"{len(rotated)} rotated passwords applied", self.args.deadline, all_rotated)
            print(file=sys.stderr)
            result = end()
            with watch.lock:
                finished = sorted(watch.fingerprint_changed[u] - started for u in rotated)
        finally:
            watch.stop()
        result |= {"profiles": len(rotated), "seconds": round(finished[-1], 2),
                   "iam_writes_per_profile": round(sum_writes(result["iam_calls"]) / len(rotated), 3)}
        self.results["rotation"] = result
        log(f"rotation: {result}")

    def _cleanup_namespace(self) -> None:
        """Deletes the LoginProfiles while the operator runs, so its finalizer
        removes their IAM login profiles, then the namespace."""
        started = time.monotonic()
        run("kubectl", "delete", f"loginprofiles.{GROUP}", "--all", "-n", self.namespace, "--wait=false")
        wait_until("the LoginProfiles' deletion", self.args.deadline,
                   lambda: not run("kubectl", "get", f"loginprofiles.{GROUP}", "-n", self.namespace, "-o", "name"),
                   interval=1)
        self.results["delete_all_seconds"] = round(time.monotonic() - started, 2)
        run("kubectl", "delete", "namespace", self.namespace, "--wait=false")

    def delete_users(self) -> None:
        client = CeilingClient(self.args.endpoint)
        everyone = [u for names in self.users.values() for u in names]

        def remove(user: str) -> None:
            client.call("DeleteLoginProfile", user)
            client.call("DeleteUser", user)
        timed_pool(f"deleting {len(everyone)} IAM users", everyone, 8, remove)


# --- output --------------------------------------------------------------------

def machine() -> dict:
    def first_line(*command: str) -> str:
        try:
            return run(*command).strip().splitlines()[0]
        except (OSError, RuntimeError, IndexError):
            return "unknown"
    cpu = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    mem = re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M)
    return {
        "cores": os.cpu_count(),
        "cpu": cpu.group(1) if cpu else "unknown",
        "memory_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "kernel": platform.release(),
        "operator_commit": first_line("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
        "kube_apiserver": json.loads(run("kubectl", "version", "-o", "json"))["serverVersion"]["gitVersion"],
        "moto": first_line(sys.executable, "-c", "import moto; print(moto.__version__)"),
        "aws_cli": first_line("aws", "--version"),
        "boto3": boto3.__version__,
        "python": platform.python_version(),
    }


ROWS = [
    ("emulator ceiling ({ceiling_width} connections, CreateLoginProfile only)", "ceiling"),
    ("kubectl apply of the N LoginProfiles alone, no operator (the Kubernetes floor)", "kubectl_apply_alone"),
    ("operator ({concurrency} workers, IAM rate limit {iam_rate_limit}/s)", "operator"),
    ("boto3, thread pool of {concurrency}", "boto3_pool"),
    ("boto3, sequential", "boto3_sequential"),
    ("aws CLI in a shell loop", "aws_cli_loop"),
]


def markdown(n: int, report: dict) -> str:
    results, params = report["results"], report["parameters"]
    ceiling = results["ceiling"]["seconds"]
    lines = [f"N = {n} ({report['date']}, {report['machine']['cores']} cores, commit {report['machine']['operator_commit']})",
             "",
             "| creating N login profiles | seconds | profiles/s | x ceiling |",
             "|---|---:|---:|---:|"]
    for label, key in ROWS:
        if key not in results:
            continue
        r = results[key]
        seconds = r.get("extrapolated_seconds_for_n", r["seconds"])
        note = f" (measured {r['profiles']}, extrapolated)" if "extrapolated_seconds_for_n" in r else ""
        lines.append(f"| {label.format(**params)}{note} | {seconds:g} | {round(n / seconds, 1):g} | "
                     f"{seconds / ceiling:.2f} |")
    op, rest, steady = results["operator"], results["rest"], results["steady_per_resync"]
    restart, rotation = results["restart"], results["rotation"]
    lines += [
        "",
        "| operator | value |",
        "|---|---|",
        f"| kubectl apply of all N ({params['apply_parallelism']} processes at most); all Ready after | "
        f"{op['kubectl_apply_seconds']} s; {op['seconds']} s |",
        f"| apply -> Ready latency p50 / p95 / p99 | {op['latency_seconds']['p50']} / "
        f"{op['latency_seconds']['p95']} / {op['latency_seconds']['p99']} s |",
        f"| IAM calls while converging | {fmt_calls(op['iam_calls'])} |",
        f"| IAM writes per profile | {op['iam_writes_per_profile']} |",
        f"| Kubernetes writes per profile | {op['kubernetes_writes_per_profile']} ({fmt_calls(op['kubernetes_writes'])}) |",
        f"| peak RSS; CPU while converging | {op['peak_rss_mib']} MiB; {op['cpu_seconds']} s |",
        f"| CPU of the environment while converging | "
        f"{', '.join(f'{k} {v} s' for k, v in op['environment_cpu_seconds'].items())} |",
        f"| at rest ({rest['seconds']:.0f} s): calls, writes, CPU | {fmt_calls(rest['iam_calls'])}; "
        f"{fmt_calls(rest['kubernetes_writes'])}; {rest['cpu_seconds']} s |",
        f"| one resync period ({steady['resync_period_seconds']} s): IAM calls, writes, CPU | "
        f"{fmt_calls(steady['iam_calls'])}; {fmt_calls(steady['kubernetes_writes'])}; {steady['cpu_seconds']} s |",
        f"| restart: ready, first pass over all | {restart['ready_seconds']} s, {restart['first_pass_seconds']} s |",
        f"| restart: IAM calls; Kubernetes writes | {fmt_calls(restart['iam_calls'])}; "
        f"{fmt_calls(restart['kubernetes_writes'])} |",
        f"| rotating {rotation['profiles']} Secrets: all applied; IAM calls | {rotation['seconds']} s; "
        f"{fmt_calls(rotation['iam_calls'])} |",
    ]
    return "\n".join(lines) + "\n"


def fmt_calls(calls: dict[str, int]) -> str:
    return ", ".join(f"{op} {n}" for op, n in calls.items()) or "none"


def plot(n: int, curves: dict[str, list[float]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=110)
    for label, key in ROWS:
        finished = curves.get(key)
        if finished:
            axes.step([0, *finished], range(len(finished) + 1), where="post", label=key.replace("_", " "))
    axes.set_xscale("symlog", linthresh=1)
    axes.set_xlabel("seconds since the first request (symlog)")
    axes.set_ylabel("login profiles created / Ready")
    axes.set_title(f"N = {n}: profiles done over time")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def update_readme(sections: list[tuple[int, str, Path]]) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start not in text:
        log("README.md has no bench markers; not updated")
        return
    body = "\n".join(f"{table}\n![Ready over time, N={n}]({png.relative_to(ROOT)})\n" for n, table, png in sections)
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    readme.write_text(f"{before}{start}\n{body}{end}{after}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000], help="object counts (default 100 1000)")
    parser.add_argument("--with-5000", action="store_true", help="also N=5000, IAM's default user quota")
    parser.add_argument("--binary", default=str(ROOT / "target/x86_64-unknown-linux-musl/release/loginprofile-operator"))
    parser.add_argument("--concurrency", type=int, default=4, help="operator workers and boto3 pool width")
    parser.add_argument("--iam-rate-limit", type=int, default=1000,
                        help="the operator's --iam-rate-limit (its default, 10/s, guards a real shared account)")
    parser.add_argument("--resync", type=int, default=120, help="the operator's resync period in seconds")
    parser.add_argument("--rest", type=float, default=15, help="the quiet window after convergence, seconds")
    parser.add_argument("--ceiling-width", type=int, default=8, help="connections of the ceiling client")
    parser.add_argument("--apply-parallelism", type=int, default=8,
                        help="kubectl processes that apply the LoginProfiles at once")
    parser.add_argument("--cli-n", type=int, default=100, help="users for the aws CLI loop")
    parser.add_argument("--ceiling-only", action="store_true",
                        help="skip the boto3 and AWS CLI baselines (for quick experiments; implies --no-readme)")
    parser.add_argument("--deadline", type=float, default=1800, help="give up on any one phase after this")
    parser.add_argument("--user-agent", default="loginprofile-operator", help="the operator's HTTP user agent")
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md's results")
    args = parser.parse_args()
    args.endpoint = os.environ["AWS_ENDPOINT_URL"]
    counts = args.n + ([5000] if args.with_5000 else [])

    RESULTS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    run("kubectl", "apply", "--server-side", "-f", str(ROOT / "crds/loginprofile.yaml"))
    run("kubectl", "wait", "--for", "condition=established", f"crd/loginprofiles.{GROUP}")
    iam = boto3.client("iam", config=botocore.config.Config(max_pool_connections=32, retries={"mode": "standard"}))
    try:
        iam.get_account_password_policy()
        raise SystemExit("the emulator has an account password policy; make bench needs AWS's default rules "
                         "(aws iam delete-account-password-policy)")
    except iam.exceptions.NoSuchEntityException:
        pass

    date = datetime.date.today().isoformat()
    details = machine()
    sections = []
    for n in counts:
        bench = Run(n=n, args=args, run_id=f"{int(time.time()) % 100000}", emulator=Emulator(args.endpoint),
                    audit=AuditLog(os.environ["LPO_AUDIT_LOG"]), iam=iam)
        log(f"N={n}: {bench.run_id}")
        try:
            bench.baselines()
            bench.kubectl_apply_alone()
            bench.operator()
        finally:
            for namespace in bench.namespaces:
                subprocess.run(["kubectl", "delete", "namespace", namespace, "--wait=false",
                                "--ignore-not-found"], capture_output=True)
            bench.delete_users()
        parameters = {k: getattr(args, k) for k in ("concurrency", "iam_rate_limit", "resync", "rest",
                                                     "ceiling_width", "cli_n", "apply_parallelism")}
        report = {"date": date, "n": n, "machine": details, "parameters": parameters,
                  "operator_args": bench.operator_args(), "results": bench.results,
                  "curves": {k: [round(t, 3) for t in v] for k, v in bench.curves.items()}}
        stem = RESULTS / f"{date}-N{n}"
        stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        table = markdown(n, report)
        stem.with_suffix(".md").write_text(table)
        plot(n, bench.curves, stem.with_suffix(".png"))
        sections.append((n, table, stem.with_suffix(".png")))
        print(table)
    if not (args.no_readme or args.ceiling_only):
        update_readme(sections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
