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
  events      one resync period more, the IAMAccount reading IAM's events
              from an SQS queue (docs/events.md) once they are seen to flow:
              IAM calls per hour at rest with and without events;
  restart     SIGTERM, start again: time to /readyz and to the first pass
              over every object, calls and writes meanwhile;
  rotation    10% of the Secrets change at once;
  rivals      the same with 200 LoginProfiles, in a namespace no IAMAccount
              admits, naming one of the rotated users (what another tenant's
              objects cost: reads of LoginProfiles, and time);
  unrelated   a restart with 20,000 Secrets no LoginProfile reads, each with a
              4 KiB annotation, in the watched namespace (peak RSS);
  oversized   a restart with 200 LoginProfiles at the CRD's bounds (every key
              field full, 240 KB of annotations), in a watched namespace no
              IAMAccount admits (peak RSS, against the restart without them).

Writes bench/results/<date>-N<N>.json, .md and .png, and the latest-run tables
of docs/performance.md.
Every user, profile and namespace it made is deleted at the end. This file
runs the phases; measure.py counts, baselines.py makes the comparison calls,
report.py writes the output.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore.config

from baselines import CeilingClient, cli_loop, summary, timed_pool
from measure import AuditLog, Emulator, EnvironmentCpu, ProcessUsage, ReadyWatch, percentile, sum_writes
from report import markdown, machine, plot, update_docs
from support import (ACCOUNT_LABEL, DEFAULT_ACCOUNT, GROUP, IAM_EVENT_PATTERN, LOGS, PASSWORD, RESULTS,
                     ROOT, ROTATED_PASSWORD, log, progress, run, wait_until)


class Operator:
    """The operator's release binary as a child process, logs to a file."""

    def __init__(self, binary: str, namespace: str, args: list[str], log_path: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.http = f"http://127.0.0.1:{port}"
        self.log = log_path.open("ab")
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
    # Watched too, and admitted by no IAMAccount: the rivals phase's objects.
    rivals_namespace: str = ""
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
        rivals = ["--namespace", self.rivals_namespace] if self.rivals_namespace else []
        # A cluster id, as an install should have (the ownership record is
        # part of what a create and a rotation cost); no mass-deletion guard,
        # since the benchmark deletes every LoginProfile at its end.
        return ["--concurrency", str(self.args.concurrency), "--iam-rate-limit", str(self.args.iam_rate_limit),
                "--resync-period", f"{self.args.resync}s", "--cluster-id", "bench", "--deletion-limit", "0",
                *rivals]

    def start_operator(self) -> Operator:
        operator = Operator(self.args.binary, self.namespace, self.operator_args(), self.operator_log())
        wait_until("the operator's /readyz", 120, operator.ready)
        # The IAMAccount's credentials are verified once; LoginProfiles made
        # before that would wait for it (AccountNotReady) and skew the counts.
        run("kubectl", "wait", "--for=condition=Ready", "--timeout=60s", "iamaccount/default")
        return operator

    def operator_log(self) -> Path:
        return LOGS / f"operator-{self.run_id}-N{self.n}.log"

    def use_namespace(self, name: str) -> None:
        run("kubectl", "create", "namespace", name)
        # Admitted by the IAMAccount `default` (docs/tenancy.md).
        run("kubectl", "label", "namespace", name, f"{ACCOUNT_LABEL}=default")
        self.namespace = name
        self.namespaces.append(name)

    def kubectl_apply_alone(self) -> None:
        """The Kubernetes floor: the same kubectl apply of N LoginProfiles
        with no operator running, in a namespace of its own."""
        self.use_namespace(f"lpo-bench-{self.run_id}-apply-only")
        offset = self.audit.offset()
        environment_cpu = EnvironmentCpu()
        started = time.monotonic()
        self.apply_in_parallel([f"apply-only-{i:05d}" for i in range(self.n)])
        seconds = time.monotonic() - started
        self.results["kubectl_apply_alone"] = {
            "seconds": round(seconds, 2), "profiles": self.n, "per_second": round(self.n / seconds, 1),
            "environment_cpu_seconds": environment_cpu.used(),
            "kubernetes_writes": self.audit.writes_since(offset, "kubectl"),
        }
        # Wait until the namespace is gone: its deletion must not load the
        # API server while the operator is measured.
        run("kubectl", "delete", "namespace", self.namespace, "--timeout=600s")
        log(f"kubectl apply alone: {self.results['kubectl_apply_alone']}")

    def operator(self) -> None:
        self.rivals_namespace = f"lpo-bench-{self.run_id}-rivals-n{self.n}"
        run("kubectl", "create", "namespace", self.rivals_namespace)  # no label: not admitted
        self.namespaces.append(self.rivals_namespace)
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
            self._steady_with_events(operator)
            operator.stop()
            operator = self._restart()
            self._rotate(operator, users[: max(1, self.n // 10)], "rotation")
            self._rotate_with_rivals(operator, users)
            operator.stop()
            operator = self._rotate_with_drift_due(users)
            operator.stop()
            operator = self._restart_with_unrelated_secrets()
            operator.stop()
            operator = self._restart_with_oversized_rivals()
            operator.stop()
            operator = self._rebuild(users)
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
        environment_cpu = EnvironmentCpu()

        def end() -> dict:
            measured = {"seconds": round(time.monotonic() - started, 2),
                        "cpu_seconds": round(operator.usage.cpu_seconds() - cpu, 2),
                        **operator.usage.memory_mib(),
                        "environment_cpu_seconds": environment_cpu.used()}
            return measured | self.counts_since(offset)
        return end

    def counts_since(self, audit_offset: tuple[int, int]) -> dict:
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
        self.emulator.reset()
        offset, cpu = self.audit.offset(), operator.usage.cpu_seconds()
        environment_cpu = EnvironmentCpu()
        started = time.monotonic()
        # IAM calls per second in each 10 s slice of the period: "flat" is
        # read from the spread of these, not from the total alone.
        slices, slice_start, slice_calls = [], started, 0
        while time.monotonic() - started < self.args.resync:
            progress("steady state: one resync period", int(time.monotonic() - started), self.args.resync, started)
            time.sleep(1)
            if time.monotonic() - slice_start >= 10:
                total = sum(self.emulator.calls().values())
                slices.append(round((total - slice_calls) / (time.monotonic() - slice_start), 2))
                slice_start, slice_calls = time.monotonic(), total
        print(file=sys.stderr)
        # Counted at the period's end, not once they settle: drift checks
        # never stop, and waiting for a quiet moment would widen the window.
        self.results["steady_per_resync"] = {
            "seconds": round(time.monotonic() - started, 2),
            "cpu_seconds": round(operator.usage.cpu_seconds() - cpu, 2),
            **operator.usage.memory_mib(),
            "environment_cpu_seconds": environment_cpu.used(),
            "iam_calls": self.emulator.calls(),
            "kubernetes_writes": self.audit.writes_since(offset, self.args.user_agent),
            "resync_period_seconds": self.args.resync,
            "iam_calls_per_second_by_10s": {
                "min": min(slices, default=0), "median": percentile(slices, 50) if slices else 0,
                "max": max(slices, default=0), "budget": self.args.iam_rate_limit / 2},
        }
        log(f"steady state: {self.results['steady_per_resync']}")

    def _steady_with_events(self, operator: Operator) -> None:
        """The same quiet with IAM's events: the IAMAccount names a queue the
        emulator's CloudTrail events reach through an EventBridge rule; once
        the operator's own write (its heartbeat) has come back, drift checks
        wait for --drift-period-with-events, and one resync period is
        counted. The queue is named in the IAMAccount only meanwhile."""
        sqs = boto3.client("sqs", region_name="us-east-1")
        events = boto3.client("events", region_name="us-east-1")
        name = f"lpo-events-bench-{self.run_id}-n{self.n}"
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventPattern=json.dumps(IAM_EVENT_PATTERN))
        events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
        patch = {"spec": {"events": {"sqsQueueUrl": url}}}
        run("kubectl", "patch", "iamaccount", "default", "--type=merge", "-p", json.dumps(patch))
        try:
            started = time.monotonic()
            wait_until("the IAMAccount's EventsFlowing=True", 120, lambda: run(
                "kubectl", "get", "iamaccount", "default", "-o",
                "jsonpath={.status.conditions[?(@.type=='EventsFlowing')].status}").strip() == "True")
            flowing_after = round(time.monotonic() - started, 2)
            # The first period shows what the drift checks placed at the old
            # pace still cost; the second, an account at rest with events.
            end = self._window(operator)
            time.sleep(self.args.resync)  # the measurement is the quiet period itself
            first_period = end()["iam_calls"]
            end = self._window(operator)
            time.sleep(self.args.resync)
            result = end()
        finally:
            run("kubectl", "patch", "iamaccount", "default", "--type=json",
                "-p", json.dumps([{"op": "remove", "path": "/spec/events"}]))
            events.remove_targets(Rule=name, Ids=["queue"])
            events.delete_rule(Name=name)
            sqs.delete_queue(QueueUrl=url)
        steady = self.results["steady_per_resync"]
        per_hour = lambda calls, seconds: round(sum(calls.values()) * 3600 / seconds)  # noqa: E731
        result |= {"flowing_after_seconds": flowing_after, "iam_calls_first_period": first_period,
                   "iam_calls_per_hour": per_hour(result["iam_calls"], result["seconds"]),
                   "iam_calls_per_hour_without_events": per_hour(steady["iam_calls"], steady["seconds"])}
        self.results["steady_with_events"] = result
        log(f"steady state with events: {result}")

    def _restart(self) -> Operator:
        """A restart trusts up-to-date status: IAM calls in the first minute
        are only the drift checks the period places there (about N x 60 /
        resync), not one read per object."""
        return self._restart_measured("restart")

    def _restart_measured(self, key: str) -> Operator:
        self.emulator.reset()
        offset = self.audit.offset()
        started = time.monotonic()
        operator = self.start_operator()
        ready_after = time.monotonic() - started
        window = min(60.0, float(self.args.resync))
        while time.monotonic() - started < window:
            progress("restart: first minute", int(time.monotonic() - started), int(window), started)
            time.sleep(1)
        print(file=sys.stderr)
        # Counted at the window's end, not once they settle: the drift checks
        # never stop, and waiting for a quiet moment would widen the window.
        self.results[key] = {
            "ready_seconds": round(ready_after, 2),
            "window_seconds": window,
            # Drift checks are spread over the resync period, or over N / the
            # drift budget (half the IAM rate limit) when that is longer.
            "expected_drift_checks": round(
                self.n * window / max(self.args.resync, self.n / (self.args.iam_rate_limit / 2)), 1),
            "cpu_seconds": round(operator.usage.cpu_seconds(), 2),
            **operator.usage.memory_mib(),
            "iam_calls": self.emulator.calls(),
            "kubernetes_writes": self.audit.writes_since(offset, self.args.user_agent),
        }
        log(f"{key}: {self.results[key]}")
        return operator

    def _rotate(self, operator: Operator, rotated: list[str], key: str, password: str = ROTATED_PASSWORD) -> None:
        watch = ReadyWatch(self.namespace)
        try:
            wait_until("the watch's initial listing", 60, lambda: watch.count_ready() >= self.n)
            end = self._window(operator)
            started = time.monotonic()
            run("kubectl", "apply", "--server-side", "-f", "-",
                stdin=self.manifests(rotated, password, kinds=("Secret",)))

            def all_rotated() -> bool:
                with watch.lock:
                    done = sum(1 for u in rotated if u in watch.fingerprint_changed)
                progress(f"{key}: profiles updated", done, len(rotated), started)
                return done >= len(rotated)
            wait_until(f"{len(rotated)} rotated passwords applied", self.args.deadline, all_rotated)
            print(file=sys.stderr)
            result = end()
            with watch.lock:
                finished = sorted(watch.fingerprint_changed[u] - started for u in rotated)
        finally:
            watch.stop()
        result |= {"profiles": len(rotated), "seconds": round(finished[-1], 2),
                   "iam_writes_per_profile": round(sum_writes(result["iam_calls"]) / len(rotated), 3),
                   "updates_per_profile": round(result["iam_calls"].get("UpdateLoginProfile", 0) / len(rotated), 3)}
        self.results[key] = result
        log(f"{key}: {result}")

    def _rotate_with_drift_due(self, users: list[str]) -> Operator:
        """The same rotation (another 10%) right after a restart with a 1 s
        resync: every object's drift check is due at once, and the drift
        budget (half of --iam-rate-limit) works through them meanwhile."""
        args = self.args.resync
        self.args.resync = 1
        try:
            operator = self.start_operator()
        finally:
            self.args.resync = args
        rotated = users[max(1, self.n // 10): 2 * max(1, self.n // 10)]
        self._rotate(operator, rotated, "rotation_drift_due", PASSWORD + "-again")
        due, base = self.results["rotation_drift_due"], self.results["rotation"]
        due["ratio_to_rotation_without_drift"] = round(due["seconds"] / base["seconds"], 2)
        return operator

    def _rotate_with_rivals(self, operator: Operator, users: list[str]) -> None:
        """A rotation (the third 10%) while 200 LoginProfiles that no
        IAMAccount admits name the first rotated user: they must cost the
        rotation no read and no time (docs/reliability.md)."""
        tenth = max(1, self.n // 10)
        rotated = users[3 * tenth: 4 * tenth]
        rivals = self.args.rivals
        items = [{"apiVersion": f"{GROUP}/v1alpha1", "kind": "LoginProfile",
                  "metadata": {"name": f"rival-{i:04d}", "namespace": self.rivals_namespace},
                  "spec": {"userName": rotated[0], "passwordSecretRef": {"name": "none"}}}
                 for i in range(rivals)]
        run("kubectl", "apply", "--server-side", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))

        def refused() -> bool:
            listed = json.loads(run("kubectl", "get", f"loginprofiles.{GROUP}", "-n", self.rivals_namespace,
                                    "-o", "json"))["items"]
            return sum(1 for lp in listed for c in lp.get("status", {}).get("conditions", [])
                       if c["type"] == "Ready" and c["reason"] == "NotAdmitted") >= rivals
        wait_until(f"{rivals} rivals refused as not admitted", self.args.deadline, refused, interval=1)
        offset = self.audit.offset()
        self._rotate(operator, rotated, "rotation_with_rivals", PASSWORD + "-rivals")
        result = self.results["rotation_with_rivals"]
        result["rivals"] = rivals
        result["reads_of_rivals"] = sum(self.audit.requests_since(
            offset, self.args.user_agent, {"get", "list"}, self.rivals_namespace).values())
        result["ratio_to_rotation_without_rivals"] = round(
            result["seconds"] / self.results["rotation"]["seconds"], 2)
        run("kubectl", "delete", f"loginprofiles.{GROUP}", "--all", "-n", self.rivals_namespace)

    def _restart_with_unrelated_secrets(self) -> Operator:
        """What other objects cost in memory: a restart with 20,000 Secrets
        that no LoginProfile reads, each carrying a 4 KiB annotation (as
        kubectl's last-applied copy does), in the watched namespace. The
        Secret watch keeps nothing per Secret, so peak RSS stays flat."""
        count = self.args.unrelated_secrets
        padding = "x" * 4096
        names = [f"unrelated-{i:05d}" for i in range(count)]
        width = self.args.apply_parallelism
        started = time.monotonic()

        def create(chunk: list[str]) -> None:
            items = [{"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": name, "namespace": self.namespace,
                                   "annotations": {"kubectl.kubernetes.io/last-applied-configuration": padding}},
                      "stringData": {"password": "not-a-login-profile's"}} for name in chunk]
            run("kubectl", "create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        chunks = [names[i:i + 500] for i in range(0, count, 500)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=width) as pool:
            for done in [pool.submit(create, chunk) for chunk in chunks]:
                done.result()
        created = time.monotonic() - started
        log(f"created {count} unrelated Secrets in {created:.0f}s")
        operator = self._restart_measured("restart_with_unrelated_secrets")
        result = self.results["restart_with_unrelated_secrets"]
        result["unrelated_secrets"] = count
        result["peak_rss_mib_without_them"] = self.results["restart"]["peak_rss_mib"]
        return operator

    def _restart_with_oversized_rivals(self) -> Operator:
        """What a tenant's objects cost where nothing admits them: a restart
        with LoginProfiles as large as the CRD allows (ten 1024-character age
        recipients, a 16 KiB OpenPGP key, 240 KB of annotations: about 270 KB
        each) in the watched namespace no IAMAccount admits. The cache keeps
        only what reconciling reads, so peak RSS should stay close to the
        restart without them."""
        count = self.args.oversized
        spec = {"userName": "oversized",
                "generatePassword": {"deliverTo": {
                    "ageRecipients": ["age1" + f"{i}" * 1020 for i in range(10)],
                    "pgpPublicKey": "-" * 16384}}}
        padding = "x" * 240_000
        for first in range(0, count, 20):
            items = [{"apiVersion": f"{GROUP}/v1alpha1", "kind": "LoginProfile",
                      "metadata": {"name": f"oversized-{i:04d}", "namespace": self.rivals_namespace,
                                   "annotations": {"padding.example.com/tenant": padding}},
                      "spec": spec} for i in range(first, min(first + 20, count))]
            run("kubectl", "create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        operator = self._restart_measured("restart_with_oversized_rivals")
        result = self.results["restart_with_oversized_rivals"]
        result["oversized"] = count
        result["peak_rss_mib_without_them"] = self.results["restart"]["peak_rss_mib"]
        run("kubectl", "delete", f"loginprofiles.{GROUP}", "--all", "-n", self.rivals_namespace)
        return operator

    def _rebuild(self, users: list[str]) -> Operator:
        """The cluster's state is lost (every LoginProfile goes without its
        finalizer running: no status, new uids) and the same manifests come
        back under the same cluster id and key: every profile is taken back
        from its ownership record with no IAM write IAM accepts (the
        create-first attempt is refused as existing)."""
        names = run("kubectl", "get", f"loginprofiles.{GROUP}", "-n", self.namespace, "-o", "name").split()
        for name in names:
            run("kubectl", "patch", name, "-n", self.namespace, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}')
        run("kubectl", "delete", f"loginprofiles.{GROUP}", "--all", "-n", self.namespace, "--wait=true")
        run("kubectl", "apply", "--server-side", "-f", "-",
            stdin=self.manifests(users, PASSWORD, kinds=("LoginProfile",)))
        watch = ReadyWatch(self.namespace)
        try:
            self.emulator.reset()
            started = time.monotonic()
            operator = self.start_operator()

            def all_ready() -> bool:
                ready = watch.count_ready()
                progress("rebuild: Ready", ready, self.n, started)
                return ready >= self.n
            wait_until(f"{self.n} LoginProfiles taken back", self.args.deadline, all_ready)
            print(file=sys.stderr)
        finally:
            watch.stop()
        accepted = self.emulator.accepted()
        self.results["rebuild"] = {
            "profiles": self.n,
            "seconds": round(time.monotonic() - started, 2),
            "iam_calls": self.emulator.calls(),
            "accepted_iam_writes": sum_writes(accepted),
        }
        log(f"rebuild: {self.results['rebuild']}")
        return operator

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000], help="object counts (default 100 1000)")
    parser.add_argument("--with-5000", action="store_true", help="also N=5000, IAM's default user quota")
    # Where `make image-binary` puts it: CARGO_TARGET_DIR, or target/.
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    parser.add_argument("--binary", default=str(target_dir / "x86_64-unknown-linux-musl/release/loginprofile-operator"))
    parser.add_argument("--concurrency", type=int, default=4, help="operator workers and boto3 pool width")
    parser.add_argument("--iam-rate-limit", type=int, default=1000,
                        help="the operator's --iam-rate-limit (its default, 10/s, guards a real shared account)")
    parser.add_argument("--resync", type=int, default=120, help="the operator's resync period in seconds")
    parser.add_argument("--rest", type=float, default=15, help="the quiet window after convergence, seconds")
    parser.add_argument("--ceiling-width", type=int, default=8, help="connections of the ceiling client")
    parser.add_argument("--apply-parallelism", type=int, default=8,
                        help="kubectl processes that apply the LoginProfiles at once")
    parser.add_argument("--cli-n", type=int, default=100, help="users for the aws CLI loop")
    parser.add_argument("--rivals", type=int, default=200,
                        help="LoginProfiles no IAMAccount admits, naming one rotated user")
    parser.add_argument("--unrelated-secrets", type=int, default=20000,
                        help="Secrets no LoginProfile reads, present at the last restart")
    parser.add_argument("--oversized", type=int, default=200,
                        help="LoginProfiles at the CRD's bounds, in a namespace no IAMAccount admits, at the last restart")
    parser.add_argument("--ceiling-only", action="store_true",
                        help="skip the boto3 and AWS CLI baselines (for quick experiments; implies --no-docs)")
    parser.add_argument("--deadline", type=float, default=1800, help="give up on any one phase after this")
    parser.add_argument("--user-agent", default="loginprofile-operator", help="the operator's HTTP user agent")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/performance.md's latest run")
    args = parser.parse_args()
    args.endpoint = os.environ["AWS_ENDPOINT_URL"]
    counts = args.n + ([5000] if args.with_5000 else [])

    RESULTS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    run("kubectl", "apply", "--server-side", "-f", str(ROOT / "crds/loginprofile-operator.yaml"))
    run("kubectl", "wait", "--for", "condition=established", f"crd/loginprofiles.{GROUP}",
        f"crd/iamaccounts.{GROUP}")
    run("kubectl", "apply", "-f", "-", stdin=json.dumps(DEFAULT_ACCOUNT))
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
        logged = bench.operator_log().read_text()
        bench.results["password_in_operator_log"] = PASSWORD in logged or ROTATED_PASSWORD in logged
        if bench.results["password_in_operator_log"]:
            log(f"the operator logged a password: {bench.operator_log()}")
        parameters = {k: getattr(args, k) for k in ("concurrency", "iam_rate_limit", "resync", "rest",
                                                     "ceiling_width", "cli_n", "apply_parallelism", "rivals",
                                                     "unrelated_secrets", "oversized")}
        report = {"date": date, "n": n, "machine": details, "parameters": parameters,
                  "operator_args": bench.operator_args(), "results": bench.results,
                  "curves": {k: [round(t, 3) for t in v] for k, v in bench.curves.items()}}
        # A run at another IAM rate limit than the default 1000 keeps its own files.
        rate = "" if args.iam_rate_limit == 1000 else f"-rate{args.iam_rate_limit}"
        stem = RESULTS / f"{date}-N{n}{rate}"
        stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        table = markdown(n, report)
        stem.with_suffix(".md").write_text(table)
        plot(n, bench.curves, stem.with_suffix(".png"))
        sections.append((n, table, stem.with_suffix(".png")))
        print(table)
    if not (args.no_docs or args.ceiling_only):
        update_docs(sections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
