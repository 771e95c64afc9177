#!/usr/bin/env python3
"""Writes the JSON schemas kubeconform reads, offline: Kubernetes' own (from
the kubernetes-validate package, made standalone) and our CRDs'.

kubernetes-validate's schemas name themselves (`$id`
https://kubernetes.io/api/...) and point at /api/_definitions.json, which a
validator can only find online; without the `$id`s and with relative refs
they resolve inside the directory. Each CRD version becomes
<kind>-<group prefix>-<version>.json, closed (additionalProperties: false)
wherever it lists properties, as kubeconform's -strict expects.

usage: kubeconform-schemas.py KUBERNETES_VERSION CRD_YAML OUT_DIR
"""
import json
import pathlib
import sys

import kubernetes_validate
import yaml


def standalone(node):
    if isinstance(node, dict):
        node.pop("$id", None)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("/api/_definitions.json"):
            node["$ref"] = ref.removeprefix("/api/")
        for value in node.values():
            standalone(value)
    elif isinstance(node, list):
        for value in node:
            standalone(value)


def closed(node):
    """OpenAPI v3 of a CRD as JSON schema: closed objects, nullable as null."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        if node.pop("nullable", False) and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        for value in node.values():
            closed(value)
    elif isinstance(node, list):
        for value in node:
            closed(value)


def main():
    version, crds, out = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    source = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
    if not source.is_dir():
        sys.exit(f"kubernetes-validate has no schemas for Kubernetes {version} (looked in {source})")
    target = out / f"v{version}-standalone-strict"
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.json"):
        schema = json.loads(path.read_text())
        standalone(schema)
        (target / path.name).write_text(json.dumps(schema))
    for crd in yaml.safe_load_all(crds.read_text()):
        if not crd:
            continue
        kind = crd["spec"]["names"]["kind"].lower()
        prefix = crd["spec"]["group"].split(".")[0]
        for served in crd["spec"]["versions"]:
            schema = served["schema"]["openAPIV3Schema"]
            # apiVersion, kind and metadata are the API server's (a CRD's
            # schema leaves them out); metadata is checked for every other kind.
            properties = schema.setdefault("properties", {})
            properties["apiVersion"] = {"type": "string", "enum": [f"{crd['spec']['group']}/{served['name']}"]}
            properties["kind"] = {"type": "string", "enum": [crd["spec"]["names"]["kind"]]}
            properties["metadata"] = {"type": "object"}
            closed(schema)
            (target / f"{kind}-{prefix}-{served['name']}.json").write_text(json.dumps(schema))
    print(target)


if __name__ == "__main__":
    main()
