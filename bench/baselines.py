"""The baselines: the emulator's ceiling, boto3 and the AWS CLI, each making
the same CreateLoginProfile calls the operator makes."""

from __future__ import annotations

import concurrent.futures
import http.client
import os
import subprocess
import sys
import threading
import time
import urllib.parse

from support import PASSWORD, progress


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
