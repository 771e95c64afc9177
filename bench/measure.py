"""What is counted where: IAM calls at the emulator, Kubernetes writes in the
API server's audit log, CPU and memory in /proc, readiness through a kubectl
watch."""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from support import GROUP, ROOT

# TagUser: the ownership record the operator writes with --cluster-id.
IAM_WRITES = ("CreateLoginProfile", "UpdateLoginProfile", "DeleteLoginProfile", "TagUser")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


class Emulator:
    """The IAM emulator's own call counters (hack/moto_server.py /_lpo/calls)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def calls(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.endpoint}/_lpo/calls") as response:
            return json.load(response)

    def accepted(self) -> dict[str, int]:
        """Only the calls IAM applied and answered with success."""
        with urllib.request.urlopen(f"{self.endpoint}/_lpo/calls?accepted=1") as response:
            return json.load(response)

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/_lpo/calls", method="DELETE")
        urllib.request.urlopen(request).close()


WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


class AuditLog:
    """Kubernetes requests as the API server logged them (hack/audit-policy.yaml
    logs every write to the kinds the operator writes, and reads of
    LoginProfiles). A position survives one rotation of the file."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def offset(self) -> tuple[int, int]:
        stat = self.path.stat()
        return stat.st_ino, stat.st_size

    def writes_since(self, offset: tuple[int, int], user_agent: str) -> dict[str, int]:
        return self.requests_since(offset, user_agent, WRITE_VERBS)

    def requests_since(self, offset: tuple[int, int], user_agent: str, verbs: set[str],
                       namespace: str | None = None) -> dict[str, int]:
        """Requests with one of `verbs` (in `namespace`, if given), by "verb resource"."""
        inode, position = offset
        # After a rotation the old lines live on in a renamed file with the
        # same inode; read its rest, then the new file from its start.
        parts = [(self.path, position)]
        if self.path.stat().st_ino != inode:
            rotated = [p for p in self.path.parent.glob(f"{self.path.stem}-*") if p.stat().st_ino == inode]
            parts = [(p, position) for p in rotated] + [(self.path, 0)]
        counted: collections.Counter = collections.Counter()
        for path, start in parts:
            with path.open() as lines:
                lines.seek(start)
                for line in lines:
                    if not line.endswith("\n"):
                        break  # still being written
                    event = json.loads(line)
                    if not event.get("userAgent", "").startswith(user_agent):
                        continue
                    if event["verb"] not in verbs:
                        continue
                    ref = event.get("objectRef", {})
                    if namespace is not None and ref.get("namespace") != namespace:
                        continue
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


class EnvironmentCpu:
    """CPU seconds that kube-apiserver, etcd and the emulator spend from now on."""

    def __init__(self) -> None:
        self.processes = environment_processes()
        self.start = {name: p.cpu_seconds() for name, p in self.processes.items()}

    def used(self) -> dict[str, float]:
        return {name: round(p.cpu_seconds() - self.start[name], 2) for name, p in self.processes.items()}


def sum_writes(calls: dict[str, int]) -> int:
    return sum(n for op, n in calls.items() if op in IAM_WRITES)


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
