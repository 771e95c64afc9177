#!/usr/bin/env python3
"""Writes the operator's container image as an OCI image archive, without a
Docker engine or a registry: what the Dockerfile's final stage produces,
read from the Dockerfile itself (labels, the binary's path, USER, EXPOSE,
ENTRYPOINT, CMD), over the files of its base image that the operator uses
(distroless static:nonroot: /etc/passwd and /etc/group with user 65532, the
CA bundle, /tmp, /home/nonroot). The static binary comes from
`make image-binary`, the same script the Dockerfile runs.

Usage: hack/oci-image.py BINARY OUTPUT.tar [IMAGE_NAME]
  IMAGE_NAME defaults to localhost/loginprofile-operator:dev.
       hack/oci-image.py --pause PAUSE_BINARY OUTPUT.tar IMAGE_NAME
  the dev node's Pod sandbox image (hack/pause.c): /pause, user 65535.
Import it into a containerd: ctr -n k8s.io images import OUTPUT.tar

The archive is reproducible: same binary and Dockerfile, same bytes.
tests/image.rs compares its config with the Dockerfile.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shlex
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What distroless static-debian12 sets (its image config).
BASE_ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
]
PASSWD = ("root:x:0:0:root:/root:/sbin/nologin\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
          "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
GROUP = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"


def final_stage(dockerfile: str) -> dict:
    """The final stage's instructions that make the image's config and its
    one layer, with ARG defaults substituted."""
    lines, current = [], ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        lines.append(current + line)
        current = ""
    stage_start = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    stage = {"labels": {}, "args": {}, "exposed": [], "copy": None}
    for line in lines[stage_start:]:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = re.sub(r"\$\{(\w+)\}", lambda m: stage["args"].get(m.group(1), m.group(0)), rest)
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            stage["args"][name] = default
        elif keyword == "LABEL":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                stage["labels"][key] = value
        elif keyword == "COPY":
            words = [w for w in rest.split() if not w.startswith("--")]
            stage["copy"] = words[-1]
        elif keyword == "USER":
            stage["user"] = rest
        elif keyword == "EXPOSE":
            stage["exposed"] += rest.split()
        elif keyword in ("ENTRYPOINT", "CMD"):
            stage[keyword.lower()] = json.loads(rest)
    return stage


def add(layer: tarfile.TarFile, path: str, data: bytes | None, mode: int, owner: int = 0) -> None:
    info = tarfile.TarInfo(path)
    info.mode, info.uid, info.gid, info.mtime = mode, owner, owner, 0
    info.uname = info.gname = ""
    if data is None:
        info.type = tarfile.DIRTYPE
        layer.addfile(info)
    else:
        info.size = len(data)
        layer.addfile(info, io.BytesIO(data))


def layer_tar(binary: bytes, binary_path: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as layer:
        directories = {"etc", "etc/ssl", "etc/ssl/certs", "home", "usr", "usr/local", "usr/local/bin"}
        directories |= {str(p) for p in Path(binary_path.lstrip("/")).parents if str(p) != "."}
        for directory in sorted(directories):
            add(layer, directory, None, 0o755)
        add(layer, "tmp", None, 0o1777)
        add(layer, "home/nonroot", None, 0o700, owner=65532)
        add(layer, "etc/passwd", PASSWD.encode(), 0o644)
        add(layer, "etc/group", GROUP.encode(), 0o644)
        add(layer, "etc/ssl/certs/ca-certificates.crt", CA_BUNDLE.read_bytes(), 0o644)
        add(layer, binary_path.lstrip("/"), binary, 0o755)
    return out.getvalue()


def blob(archive: tarfile.TarFile, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    add(archive, f"blobs/sha256/{digest}", data, 0o644)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_archive(output: Path, name: str, layer: bytes, image_config: dict, labels: dict) -> None:
    """An OCI image layout in a tar: one layer, its config, a manifest, an
    index whose annotation names the image for `ctr images import`."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]},
        "history": [{"created_by": "hack/oci-image.py"}],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(output, "w", format=tarfile.PAX_FORMAT) as archive:
        add(archive, "blobs", None, 0o755)
        add(archive, "blobs/sha256", None, 0o755)
        layer_descriptor = blob(archive, layer)
        config_descriptor = blob(archive, json.dumps(config, sort_keys=True).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_descriptor},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer_descriptor}],
            "annotations": labels,
        }
        manifest_descriptor = blob(archive, json.dumps(manifest, sort_keys=True).encode())
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_descriptor,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"io.containerd.image.name": name,
                                "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]},
            }],
        }
        add(archive, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), 0o644)
        add(archive, "index.json", json.dumps(index, sort_keys=True).encode(), 0o644)
    print(f"[oci-image] wrote {output} ({name}, {output.stat().st_size // 1024} KiB)")


def pause_image(binary: Path, output: Path, name: str) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as layer:
        add(layer, "pause", binary.read_bytes(), 0o755)
    write_archive(output, name, out.getvalue(),
                  {"User": "65535:65535", "Entrypoint": ["/pause"], "WorkingDir": "/"}, {})


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--pause":
        pause_image(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
        return
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    binary, output = Path(sys.argv[1]), Path(sys.argv[2])
    name = sys.argv[3] if len(sys.argv) == 4 else "localhost/loginprofile-operator:dev"
    stage = final_stage((ROOT / "Dockerfile").read_text())
    layer = layer_tar(binary.read_bytes(), stage["copy"])
    write_archive(output, name, layer, {
        "User": stage["user"],
        "Env": BASE_ENV,
        "Entrypoint": stage["entrypoint"],
        "Cmd": stage["cmd"],
        "WorkingDir": "/home/nonroot",
        "ExposedPorts": {p if "/" in p else f"{p}/tcp": {} for p in stage["exposed"]},
        "Labels": stage["labels"],
    }, stage["labels"])


if __name__ == "__main__":
    main()
