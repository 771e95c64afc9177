#!/usr/bin/env python3
"""How much kube-apiserver CPU one status write of a LoginProfile costs, by
kind of patch: server-side apply (what the operator sends) against a JSON
merge patch of the same status. An experiment behind docs/performance.md,
not part of `make bench`:

    . target/devenv/env && target/devenv/venv/bin/python bench/status_patch_cost.py [--n 1000]

Creates N LoginProfiles in a namespace of its own (no operator runs there),
patches each one's status, twice per kind, from 4 threads, prints the API
server's CPU seconds per kind, and deletes the namespace.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import ssl
import threading
import time
import urllib.parse

from measure import environment_processes
from support import GROUP, ROOT, run

KUBECONFIG = ROOT / "target/devenv/kubeconfig"
PKI = ROOT / "target/devenv/pki"


class ApiServer:
    """Raw HTTPS to the dev environment's API server as its admin."""

    def __init__(self) -> None:
        server = next(line.split("server:", 1)[1].strip()
                      for line in KUBECONFIG.read_text().splitlines() if "server:" in line)
        url = urllib.parse.urlparse(server)
        self.host, self.port = url.hostname, url.port
        self.tls = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
        self.tls.load_cert_chain(str(PKI / "admin.crt"), str(PKI / "admin.key"))
        self.local = threading.local()

    def patch(self, path: str, content_type: str, body: dict) -> None:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = http.client.HTTPSConnection(
                self.host, self.port, context=self.tls)
        connection.request("PATCH", path, json.dumps(body), {"Content-Type": content_type})
        response = connection.getresponse()
        payload = response.read()
        if response.status >= 300:
            raise RuntimeError(f"PATCH {path}: HTTP {response.status} {payload[:300]!r}")


def status(i: int, round_: int) -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"userName": f"user-{i}", "observedGeneration": 1, "createDate": now,
            "passwordResetRequired": False, "passwordLastAppliedTime": now,
            "passwordFingerprint": f"hmac-sha256:{round_:064x}",
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Created", "message": f"round {round_}",
                 "observedGeneration": 1, "lastTransitionTime": now},
                {"type": "Reconciling", "status": "False", "reason": "Created", "message": "",
                 "observedGeneration": 1, "lastTransitionTime": now},
                {"type": "Stalled", "status": "False", "reason": "Created", "message": "",
                 "observedGeneration": 1, "lastTransitionTime": now}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    namespace = f"lpo-patch-cost-{int(time.time()) % 100000}"
    run("kubectl", "create", "namespace", namespace)
    try:
        items = [{"apiVersion": f"{GROUP}/v1alpha1", "kind": "LoginProfile",
                  "metadata": {"name": f"lp-{i:05d}", "namespace": namespace},
                  "spec": {"userName": f"user-{i}", "passwordSecretRef": {"name": "x"}}}
                 for i in range(args.n)]
        run("kubectl", "apply", "--server-side", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        api = ApiServer()
        base = f"/apis/{GROUP}/v1alpha1/namespaces/{namespace}/loginprofiles"
        kinds = {
            "server-side apply": ("application/apply-patch+yaml", "?fieldManager=loginprofile-operator&force=true",
                                  lambda i, r: {"apiVersion": f"{GROUP}/v1alpha1", "kind": "LoginProfile",
                                                "status": status(i, r)}),
            "merge patch": ("application/merge-patch+json", "",
                            lambda i, r: {"status": status(i, r)}),
        }
        apiserver = environment_processes()["kube-apiserver"]
        # A first status for every object, unmeasured; then each kind twice,
        # alternating, so neither profits from going second.
        rounds = ["merge patch", "server-side apply", "merge patch", "server-side apply", "merge patch"]
        for round_, kind in enumerate(rounds):
            content_type, query, body = kinds[kind]
            before, started = apiserver.cpu_seconds(), time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                for done in [pool.submit(api.patch, f"{base}/lp-{i:05d}/status{query}", content_type,
                                         body(i, round_)) for i in range(args.n)]:
                    done.result()
            cpu = apiserver.cpu_seconds() - before
            if round_ == 0:
                continue
            print(f"{kind}: {args.n} status patches in {time.monotonic() - started:.2f} s, "
                  f"kube-apiserver {cpu:.2f} CPU s = {1000 * cpu / args.n:.2f} ms per patch")
    finally:
        run("kubectl", "delete", "namespace", namespace, "--wait=false")


if __name__ == "__main__":
    main()
