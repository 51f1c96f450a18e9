"""The offline toolchain the manifest tests run: kustomize and kubeconform, and Kubernetes' schemas for kubeconform.

The binaries are built with `go install` into .local/tools/bin the first time (a few minutes), then reused; the
schemas come from the pinned dev dependency `kubernetes-validate`, which ships Kubernetes' own JSON schemas, strict
(no property the schema does not name), but with `$ref`s into a shared `_definitions.json` that kubeconform cannot
follow from a local folder. `standalone_strict_schemas` writes one self-contained file per kind, the layout
kubeconform's `-schema-location` template names.
Anything missing (no Go, no proxy) raises, and the tests fail: a manifest check that quietly did not run is no check.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kubernetes_validate

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".local" / "tools" / "bin"
SCHEMAS_DIR = ROOT / ".local" / "tools" / "k8s-schemas"
KUBERNETES_VERSION = "1.32.0"

# binary: (Go package, version), versions the Go module proxy serves and this machine's Go (1.26) builds.
TOOLS = {
    "kustomize": ("sigs.k8s.io/kustomize/kustomize/v5", "v5.8.1"),
    "kubeconform": ("github.com/yannh/kubeconform/cmd/kubeconform", "v0.8.0"),
}


class ToolError(RuntimeError):
    """A tool could not be installed or a schema could not be written."""


def ensure_tool(name: str) -> Path:
    """The tool's binary, installed with `go install` when missing or built from another version."""
    package, version = TOOLS[name]
    binary = TOOLS_BIN / name
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        raise ToolError(f"`go` is needed to install (or check) {name} {version} in {TOOLS_BIN}")
    if binary.exists() and _built_version(go, binary) == version:
        return binary
    TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [go, "install", f"{package}@{version}"],
        env={**os.environ, "GOBIN": str(TOOLS_BIN), "GOFLAGS": "-buildvcs=false"},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0 or _built_version(go, binary) != version:
        raise ToolError(f"go install {package}@{version} failed:\n{result.stderr[-4000:]}")
    return binary


def _built_version(go: str, binary: Path) -> str | None:
    """The main module's version recorded in the binary (`go version -m`): `-v` says "development" for go install."""
    result = subprocess.run([go, "version", "-m", str(binary)], capture_output=True, text=True, timeout=60)
    for line in result.stdout.splitlines():
        fields = line.split()
        if fields[:1] == ["mod"] and len(fields) >= 3:
            return fields[2]
    return None


def kubernetes_schema_source(version: str = KUBERNETES_VERSION) -> Path:
    """kubernetes-validate's strict schemas for `version` (one JSON file per kind, plus _definitions.json)."""
    folder = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
    if not (folder / "_definitions.json").exists():
        raise ToolError(f"kubernetes-validate {_installed_version()} has no schemas for Kubernetes {version}")
    return folder


def _installed_version() -> str:
    from importlib.metadata import version

    return version("kubernetes-validate")


def standalone_strict_schemas(kinds: Iterable[tuple[str, str]], version: str = KUBERNETES_VERSION) -> str:
    """Write a self-contained strict schema for each (apiVersion, kind); the kubeconform -schema-location template.

    Files are named as kubeconform looks them up: `<kind>-<group>-<version>.json` (lowercase; no group for core).
    """
    source = kubernetes_schema_source(version)
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    # Keyed by the package's version, so an upgrade never validates against schemas converted from the old one.
    root = SCHEMAS_DIR / f"kubernetes-validate-{_installed_version()}"
    target = root / f"v{version}-standalone-strict"
    target.mkdir(parents=True, exist_ok=True)
    for api_version, kind in sorted(set(kinds)):
        name = _schema_file(api_version, kind)
        path = target / name
        if path.exists():
            continue
        original = source / name
        if not original.exists():
            raise ToolError(f"Kubernetes {version} has no schema for {api_version} {kind} ({original.name})")
        schema = _inline(json.loads(original.read_text()), definitions, ())
        path.write_text(json.dumps(schema, indent=1, sort_keys=True))
    return str(
        root / "{{ .NormalizedKubernetesVersion }}-standalone-strict" / "{{ .ResourceKind }}{{ .KindSuffix }}.json"
    )


def _schema_file(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{kind.lower()}{suffix}.json"


def _inline(node: Any, definitions: dict[str, Any], seen: tuple[str, ...]) -> Any:
    """`node` with every reference into _definitions.json replaced by the definition (a cycle is cut to `{}`)."""
    if isinstance(node, list):
        return [_inline(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref")
    if isinstance(reference, str):
        name = reference.rsplit("/", 1)[-1]
        if name in seen:  # only CRDs' JSONSchemaProps refers to itself, and no CRD is checked here
            return {}
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return {**_inline(definitions[name], definitions, (*seen, name)), **siblings}
    return {key: _inline(value, definitions, seen) for key, value in node.items()}
