"""The output: the machine's details, the Markdown tables, the plot and the
latest-run tables of docs/performance.md."""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from pathlib import Path

import boto3

from support import ROOT, log, run


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
        f"| IAM floor (N / --iam-rate-limit {params['iam_rate_limit']}); operator against it | "
        f"{n / params['iam_rate_limit']:.1f} s; {op['seconds'] / (n / params['iam_rate_limit']):.2f}x |",
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
        f"| IAM calls per second over that period (drift budget {params['iam_rate_limit'] / 2:g}/s) | "
        f"{sum(steady['iam_calls'].values()) / steady['resync_period_seconds']:.2f} |",
        *([f"| the same, by 10 s slices: min / median / max | {by10['min']} / {by10['median']} / {by10['max']} |"]
          if (by10 := steady.get("iam_calls_per_second_by_10s")) else []),
        *([f"| with IAM's events flowing (after {ev['flowing_after_seconds']} s): IAM calls in the first period; "
           f"in the next {ev['seconds']:.0f} s | {fmt_calls(ev['iam_calls_first_period'])}; {fmt_calls(ev['iam_calls'])} |",
           f"| IAM calls per hour at rest: polling alone; with events | {ev['iam_calls_per_hour_without_events']}; "
           f"{ev['iam_calls_per_hour']} |"]
          if (ev := results.get("steady_with_events")) else []),
        f"| restart: ready | {restart['ready_seconds']} s |",
        f"| restart: IAM calls in the first {restart['window_seconds']:.0f} s (drift checks due: about {restart['expected_drift_checks']}); Kubernetes writes | "
        f"{fmt_calls(restart['iam_calls'])}; {fmt_calls(restart['kubernetes_writes'])} |",
        f"| rotating {rotation['profiles']} Secrets: all applied; IAM calls | {rotation['seconds']} s; "
        f"{fmt_calls(rotation['iam_calls'])} |",
    ]
    rivals = results.get("rotation_with_rivals")
    if rivals:
        lines.append(
            f"| rotating {rivals['profiles']} Secrets while {rivals['rivals']} LoginProfiles no IAMAccount admits "
            f"name one of their users: all applied; against none; reads of those LoginProfiles | "
            f"{rivals['seconds']} s; {rivals['ratio_to_rotation_without_rivals']}x; {rivals['reads_of_rivals']} |")
    unrelated = results.get("restart_with_unrelated_secrets")
    if unrelated:
        lines.append(
            f"| restart with {unrelated['unrelated_secrets']} unrelated Secrets (4 KiB annotation each) watched: "
            f"peak RSS; without them | {unrelated['peak_rss_mib']} MiB; {unrelated['peak_rss_mib_without_them']} MiB |")
    oversized = results.get("restart_with_oversized_rivals")
    if oversized:
        lines.append(
            f"| restart with {oversized['oversized']} LoginProfiles at the CRD's bounds (about 270 KB each) "
            f"where nothing admits them: peak RSS; without them | {oversized['peak_rss_mib']} MiB; "
            f"{oversized['peak_rss_mib_without_them']} MiB |")
    rebuild = results.get("rebuild")
    if rebuild:
        lines.append(
            f"| rebuild (every LoginProfile gone without its finalizer, the same manifests back, the same "
            f"cluster id and key): all Ready; IAM calls; writes IAM accepted | {rebuild['seconds']} s; "
            f"{fmt_calls(rebuild['iam_calls'])}; {rebuild['accepted_iam_writes']} |")
    due = results.get("rotation_drift_due")
    if due:
        lines.append(
            f"| rotating {due['profiles']} Secrets with every drift check due (resync 1 s): all applied; "
            f"against no drift due; UpdateLoginProfile per rotation | {due['seconds']} s; "
            f"{due['ratio_to_rotation_without_drift']}x; {due['updates_per_profile']} |")
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


def update_docs(sections: list[tuple[int, str, Path]]) -> None:
    """The latest run's tables in docs/performance.md, the one place for
    benchmark figures (the README links there)."""
    page = ROOT / "docs" / "performance.md"
    text = page.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start not in text:
        log("docs/performance.md has no bench markers; not updated")
        return
    body = "\n".join(f"{table}\n![Ready over time, N={n}](../{png.relative_to(ROOT)})\n" for n, table, png in sections)
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    page.write_text(f"{before}{start}\n{body}{end}{after}")
