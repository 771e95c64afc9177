"""Small helpers every part of the benchmark uses: paths, the progress line,
subprocesses and polling with a deadline."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOGS = ROOT / "target" / "bench"
GROUP = "iam.loginprofile.dev"
# Namespaces labelled so are admitted by the IAMAccount `default` below.
ACCOUNT_LABEL = f"{GROUP}/account"
# The IAMAccount the benchmark's LoginProfiles use: the emulator's default
# account with the environment's credentials (docs/tenancy.md).
DEFAULT_ACCOUNT = {
    "apiVersion": f"{GROUP}/v1alpha1",
    "kind": "IAMAccount",
    "metadata": {"name": "default"},
    # The same spec as the tests' (tests/support), so neither run changes it.
    "spec": {"namespaceSelector": {"matchLabels": {ACCOUNT_LABEL: "default"}}, "userNames": ["*"],
             "secretsManagerSecretIds": ["prod/*"], "allowAdoption": True},
}
# The EventBridge rule's pattern docs/events.md gives: the IAM calls the
# operator acts on, as CloudTrail records them.
IAM_EVENT_PATTERN = {
    "source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {"eventSource": ["iam.amazonaws.com"],
               "eventName": ["CreateLoginProfile", "UpdateLoginProfile", "DeleteLoginProfile", "ChangePassword",
                             "DeleteUser", "TagUser", "UntagUser"]},
}
PASSWORD = "Bench-Console-Password-1!"
ROTATED_PASSWORD = "Bench-Rotated-Password-2!"


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
