#!/usr/bin/env python3
"""Renders a kustomize overlay without kustomize, for the subset of kustomize that deploy/k8s uses.

Why: neither kubectl nor kustomize can be installed on this project's machines (no binary on the
package registries it reaches), yet CI must render every overlay to validate what users would
apply. The manifests are written for real kustomize (`kubectl kustomize deploy/k8s/overlays/cpu`);
this script implements only the features they use, refuses everything else by name, and was NOT
compared against real `kubectl kustomize` output here. Treat a difference as a bug in this script.

The subset, and its semantics:

- `kind: Kustomization` or `kind: Component` (kustomize.config.k8s.io/v1beta1 / v1alpha1).
- `resources`: YAML files (one or more documents) inside the kustomization's folder, or folders
  holding a Kustomization (which may be outside it, e.g. ../../base). No URLs.
- `components`: folders holding a Component. As in kustomize, a component's resources are added
  to the including kustomization's resources so far, and its generators and patches run on that
  whole set. Order within a kustomization: resources, components, generators, then the
  transformers: patches, namespace, labels, images.
- `configMapGenerator` / `secretGenerator`: `name`, `files` (`path` or `key=path`), `literals`
  (`KEY=VALUE`), `envs` (KEY=VALUE files; blank lines and `#` comments skipped), `type` (secrets),
  `options.disableNameSuffixHash`; `behavior` must be absent or `create`. Like kustomize's default
  load restrictor, every file must lie inside the kustomization's own folder. `generatorOptions`:
  `disableNameSuffixHash` only.
- Name suffix hash: computed once at the end of the top-level build over each generated object's
  final content, with kustomize's scheme (api/hasher: sha256 of the JSON of kind, name and data,
  plus type for secrets, first 10 hex digits with 0,1,3,a,e mapped to g,h,k,m,t); the tests check
  it against the vectors of kustomize's own hasher tests. References to those names in pod specs
  (volumes, projected volumes, env valueFrom, envFrom, imagePullSecrets) of Deployment,
  StatefulSet, DaemonSet, ReplicaSet, Job, CronJob and Pod are rewritten to match.
- `namespace`: sets metadata.namespace on every object except known cluster-scoped kinds.
- `labels`: entries of `pairs` with `includeTemplates` (adds to pod templates of the workload
  kinds above). `includeSelectors: true` and the legacy `commonLabels` are refused: they rewrite
  selectors, which is easy to get subtly wrong (and kustomize skips custom resources there).
- `images`: `name`, `newName`, `newTag`, `digest`, applied to containers and initContainers of
  the workload kinds above; an image matches when its name without tag or digest equals `name`.
- `patches`: `path` or inline `patch`, each either
  - a JSON 6902 patch (a YAML list of ops `add`, `remove`, `replace`, `test`), which needs a
    `target` with any of `group`, `version`, `kind`, `name`, `namespace` (exact matches); or
  - a strategic-merge patch (one object), applied to the object with its apiVersion, kind and
    name, or to every `target` match. Maps merge recursively and a null value deletes a key.
    Lists merge by key only where Kubernetes declares it and this script knows it (containers,
    initContainers, imagePullSecrets, env and volumes by name; volumeMounts by mountPath); a
    few atomic lists are replaced (tolerations, args, command, envFrom). A patch that touches any
    other list, or uses a `$patch`-style directive, is refused rather than guessed at.

Output keeps the order of accumulation; `kustomize build` sorts by kind by default, which
changes the order of documents but not their content.

Usage: scripts/render_k8s.py deploy/k8s/overlays/cpu [-o rendered.yaml]
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {
    "apiVersion", "kind", "resources", "components", "namespace", "labels", "images", "patches",
    "configMapGenerator", "secretGenerator", "generatorOptions",
}
# Kinds whose objects have no namespace; the namespace transformer leaves them alone.
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
    "StorageClass", "PriorityClass", "APIService", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "IngressClass", "RuntimeClass", "ClusterIssuer",
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
# Strategic-merge list handling known here; any other list in a patch is refused.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "imagePullSecrets": "name", "env": "name",
    "volumes": "name", "volumeMounts": "mountPath",
}
ATOMIC_LISTS = {"tolerations", "args", "command", "envFrom"}


class RenderError(Exception):
    """A kustomization this renderer cannot render faithfully; the message says why."""


# ---------------------------------------------------------------------------------------------
# Loading


def _kustomization_file(folder: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (folder / name).is_file():
            return folder / name
    raise RenderError(f"{folder}: no kustomization.yaml")


def _inside(root: Path, relative: str) -> Path:
    """A file path of a kustomization, held to its folder as kustomize's default load restrictor does."""
    if "://" in relative:
        raise RenderError(f"{root}: remote {relative!r} is not supported")
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise RenderError(f"{root}: {relative!r} is outside the kustomization's folder")
    return path


def _load_documents(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise RenderError(f"{path}: every document needs apiVersion and kind")
    return docs


# ---------------------------------------------------------------------------------------------
# Generators


def _env_file(path: Path) -> dict[str, str]:
    data: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise RenderError(f"{path}: {line!r} is not KEY=VALUE")
        key, value = line.split("=", 1)
        data[key.strip()] = value
    return data


def _generate(root: Path, spec: dict, kind: str, global_options: dict) -> dict:
    unknown = set(spec) - {"name", "files", "literals", "envs", "type", "options", "behavior"}
    if unknown:
        raise RenderError(f"{root}: {kind} generator fields not supported: {sorted(unknown)}")
    if spec.get("behavior", "create") != "create":
        raise RenderError(f"{root}: generator behavior {spec['behavior']!r} is not supported")
    options = {**global_options, **(spec.get("options") or {})}
    if set(options) - {"disableNameSuffixHash"}:
        raise RenderError(f"{root}: generator options not supported: {sorted(set(options) - {'disableNameSuffixHash'})}")
    data: dict[str, str] = {}
    for env in spec.get("envs") or []:
        data.update(_env_file(_inside(root, env)))
    for entry in spec.get("files") or []:
        key, _, rel = entry.partition("=") if "=" in entry else (Path(entry).name, "", entry)
        data[key] = _inside(root, rel).read_text(encoding="utf-8")
    for literal in spec.get("literals") or []:
        if "=" not in literal:
            raise RenderError(f"{root}: literal {literal!r} is not KEY=VALUE")
        key, value = literal.split("=", 1)
        data[key] = value
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": {"name": spec["name"]}}
    if kind == "Secret":
        obj["type"] = spec.get("type", "Opaque")
        obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    else:
        obj["data"] = data
    if not options.get("disableNameSuffixHash"):
        obj["__hash_suffix__"] = True  # removed when the suffix is added at the end of the build
    return obj


def _go_json(value: Any) -> str:
    """JSON as Go's json.Marshal writes a map: sorted keys, no spaces, HTML characters escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def name_hash(obj: dict) -> str:
    """kustomize's ten-character suffix for a ConfigMap or Secret (its api/hasher scheme)."""
    absent = ""  # kustomize hashes a missing data field as an empty string, not an empty map
    encoded: dict[str, Any] = {"kind": obj["kind"], "name": obj["metadata"].get("name", absent),
                               "data": obj.get("data", absent)}
    extra = "binaryData" if obj["kind"] == "ConfigMap" else "stringData"
    if isinstance(obj.get(extra), dict):
        encoded[extra] = obj[extra]
    if obj["kind"] == "Secret":
        encoded["type"] = obj.get("type", absent)
    digest = hashlib.sha256(_go_json(encoded).encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


# ---------------------------------------------------------------------------------------------
# Patches


def _strategic_merge(original: Any, patch: Any, path: str) -> Any:
    if isinstance(patch, dict):
        if not isinstance(original, dict):
            return copy.deepcopy(patch)
        merged = dict(original)
        for key, value in patch.items():
            if key.startswith("$"):
                raise RenderError(f"strategic-merge directive {key!r} at {path} is not supported")
            if value is None:
                merged.pop(key, None)
            elif isinstance(value, list):
                merged[key] = _merge_list(key, merged.get(key), value, f"{path}.{key}")
            else:
                merged[key] = _strategic_merge(merged.get(key), value, f"{path}.{key}")
        return merged
    return copy.deepcopy(patch)


def _merge_list(field: str, original: Any, patch: list, path: str) -> list:
    if field in ATOMIC_LISTS:
        return copy.deepcopy(patch)
    key = MERGE_KEYS.get(field)
    if key is None:
        raise RenderError(f"strategic merge of list {path} is not supported by this renderer")
    merged = [copy.deepcopy(item) for item in (original or [])]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise RenderError(f"{path}: every item needs its merge key {key!r}")
        for i, existing in enumerate(merged):
            if existing.get(key) == item[key]:
                merged[i] = _strategic_merge(existing, item, f"{path}[{key}={item[key]}]")
                break
        else:
            merged.append(copy.deepcopy(item))
    return merged


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise RenderError(f"JSON pointer {path!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _json6902(obj: dict, ops: list) -> dict:
    obj = copy.deepcopy(obj)
    for op in ops:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        if kind not in {"add", "remove", "replace", "test"}:
            raise RenderError(f"JSON 6902 op {kind!r} is not supported")
        parent: Any = obj
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(index, copy.deepcopy(op["value"]))
            elif kind == "remove":
                del parent[index]
            elif kind == "replace":
                parent[index] = copy.deepcopy(op["value"])
            elif parent[index] != op["value"]:
                raise RenderError(f"JSON 6902 test failed at {op['path']}")
        else:
            if kind in {"remove", "replace", "test"} and last not in parent:
                raise RenderError(f"JSON 6902 {kind}: {op['path']} does not exist")
            if kind in {"add", "replace"}:
                parent[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[last]
            elif parent[last] != op["value"]:
                raise RenderError(f"JSON 6902 test failed at {op['path']}")
    return obj


def _matches(obj: dict, target: dict) -> bool:
    unknown = set(target) - {"group", "version", "kind", "name", "namespace"}
    if unknown:
        raise RenderError(f"patch target fields not supported: {sorted(unknown)}")
    group, _, version = obj["apiVersion"].rpartition("/")
    actual = {"group": group, "version": version, "kind": obj["kind"],
              "name": obj["metadata"].get("name"), "namespace": obj["metadata"].get("namespace")}
    return all(actual[field] == wanted for field, wanted in target.items())


def _apply_patch(root: Path, resources: list[dict], entry: dict) -> None:
    if set(entry) - {"path", "patch", "target"}:
        raise RenderError(f"{root}: patch fields not supported: {sorted(set(entry) - {'path', 'patch', 'target'})}")
    text = _inside(root, entry["path"]).read_text(encoding="utf-8") if "path" in entry else entry["patch"]
    body = yaml.safe_load(text)
    target = entry.get("target")
    if isinstance(body, list):
        if not target:
            raise RenderError(f"{root}: a JSON 6902 patch needs a target")
        hits = [i for i, r in enumerate(resources) if _matches(r, target)]
        for i in hits:
            resources[i] = _json6902(resources[i], body)
    else:
        if target:
            hits = [i for i, r in enumerate(resources) if _matches(r, target)]
        else:
            wanted = {"kind": body["kind"], "name": body["metadata"]["name"]}
            hits = [i for i, r in enumerate(resources)
                    if _matches(r, wanted) and r["apiVersion"] == body["apiVersion"]]
        # The patch names its object; the name is never merged, so a targeted patch renames nothing.
        patch = {k: v for k, v in body.items() if k not in {"apiVersion", "kind"}}
        patch["metadata"] = {k: v for k, v in (patch.get("metadata") or {}).items() if k != "name"}
        for i in hits:
            resources[i] = _strategic_merge(resources[i], patch, resources[i]["kind"])
    if not hits:
        raise RenderError(f"{root}: patch {entry.get('path', '(inline)')} matched no resource")


# ---------------------------------------------------------------------------------------------
# Transformers


def _pod_templates(obj: dict) -> list[dict]:
    """The pod template objects (metadata + spec) of a workload."""
    kind = obj["kind"]
    if kind == "Pod":
        return [obj]
    if kind == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]]
    if kind in WORKLOAD_KINDS:
        return [obj["spec"]["template"]]
    return []


def _set_labels(resources: list[dict], root: Path, entries: list[dict]) -> None:
    for entry in entries:
        if set(entry) - {"pairs", "includeTemplates", "includeSelectors"}:
            raise RenderError(f"{root}: labels fields not supported: {sorted(set(entry) - {'pairs', 'includeTemplates', 'includeSelectors'})}")
        if entry.get("includeSelectors"):
            raise RenderError(f"{root}: labels.includeSelectors is not supported; write selectors in the base")
        pairs = {k: str(v) for k, v in entry["pairs"].items()}
        for obj in resources:
            obj["metadata"].setdefault("labels", {}).update(pairs)
            if entry.get("includeTemplates"):
                for template in _pod_templates(obj):
                    if template is not obj:
                        template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _split_image(image: str) -> tuple[str, str, str]:
    """name, ':tag' or '', '@digest' or ''."""
    name, at, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon:]
    return name, tag, at + digest


def _set_images(resources: list[dict], root: Path, entries: list[dict]) -> None:
    for entry in entries:
        if set(entry) - {"name", "newName", "newTag", "digest"}:
            raise RenderError(f"{root}: images fields not supported: {sorted(set(entry) - {'name', 'newName', 'newTag', 'digest'})}")
        for obj in resources:
            for template in _pod_templates(obj):
                spec = template.get("spec") or {}
                for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                    name, tag, digest = _split_image(container.get("image", ""))
                    if name != entry["name"]:
                        continue
                    name = entry.get("newName", name)
                    if "digest" in entry:
                        tag, digest = "", "@" + entry["digest"]
                    elif "newTag" in entry:
                        tag, digest = ":" + str(entry["newTag"]), ""
                    container["image"] = name + tag + digest


def _rename_references(resources: list[dict], renamed: dict[tuple[str, str], str]) -> None:
    """Points pod specs at the suffixed names of generated ConfigMaps and Secrets."""

    def fix(ref: dict | None, kind: str, field: str = "name") -> None:
        if ref and (kind, ref.get(field)) in renamed:
            ref[field] = renamed[(kind, ref[field])]

    for obj in resources:
        for template in _pod_templates(obj):
            spec = template.get("spec") or {}
            for volume in spec.get("volumes") or []:
                fix(volume.get("configMap"), "ConfigMap")
                fix(volume.get("secret"), "Secret", "secretName")
                for source in (volume.get("projected") or {}).get("sources") or []:
                    fix(source.get("configMap"), "ConfigMap")
                    fix(source.get("secret"), "Secret")
            for pull in spec.get("imagePullSecrets") or []:
                fix(pull, "Secret")
            for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                for env in container.get("env") or []:
                    fix((env.get("valueFrom") or {}).get("configMapKeyRef"), "ConfigMap")
                    fix((env.get("valueFrom") or {}).get("secretKeyRef"), "Secret")
                for source in container.get("envFrom") or []:
                    fix(source.get("configMapRef"), "ConfigMap")
                    fix(source.get("secretRef"), "Secret")


# ---------------------------------------------------------------------------------------------
# Build


def _build(folder: Path, accumulated: list[dict] | None) -> list[dict]:
    path = _kustomization_file(folder)
    k = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(k) - SUPPORTED_FIELDS
    if unknown:
        raise RenderError(f"{path}: fields not supported by this renderer: {sorted(unknown)}")
    kind = k.get("kind", "Kustomization")
    if kind == "Component":
        if accumulated is None:
            raise RenderError(f"{path}: a Component can only be used from `components`")
        resources = accumulated
    elif kind == "Kustomization":
        if accumulated is not None:
            raise RenderError(f"{path}: only a Component can be listed in `components`")
        resources = []
    else:
        raise RenderError(f"{path}: unknown kind {kind!r}")

    for entry in k.get("resources") or []:
        target = (folder / entry).resolve()
        if target.is_dir():
            resources.extend(_build(target, None))
        else:
            resources.extend(_load_documents(_inside(folder, entry)))
    for entry in k.get("components") or []:
        resources = _build((folder / entry).resolve(), resources)

    options = k.get("generatorOptions") or {}
    for spec in k.get("configMapGenerator") or []:
        resources.append(_generate(folder, spec, "ConfigMap", options))
    for spec in k.get("secretGenerator") or []:
        resources.append(_generate(folder, spec, "Secret", options))

    for entry in k.get("patches") or []:
        _apply_patch(folder, resources, entry)
    if "namespace" in k:
        for obj in resources:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = k["namespace"]
    _set_labels(resources, folder, k.get("labels") or [])
    _set_images(resources, folder, k.get("images") or [])

    seen: set[tuple] = set()
    for obj in resources:
        ident = (obj["apiVersion"].rpartition("/")[0], obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if ident in seen:
            raise RenderError(f"{path}: {obj['kind']} {obj['metadata']['name']} is defined twice")
        seen.add(ident)
    return resources


def render(overlay: str | Path) -> list[dict]:
    """Every object the kustomization at overlay produces, in order of accumulation."""
    resources = copy.deepcopy(_build(Path(overlay).resolve(), None))
    renamed: dict[tuple[str, str], str] = {}
    for obj in resources:
        if obj.pop("__hash_suffix__", False):
            old = obj["metadata"]["name"]
            obj["metadata"]["name"] = f"{old}-{name_hash(obj)}"
            renamed[(obj["kind"], old)] = obj["metadata"]["name"]
    _rename_references(resources, renamed)
    return resources


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (the catalog) as literal blocks, so the output stays readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(resources: list[dict]) -> str:
    return yaml.dump_all(resources, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overlay", help="folder holding a kustomization.yaml")
    parser.add_argument("-o", "--output", help="write here instead of stdout")
    args = parser.parse_args(argv)
    try:
        text = to_yaml(render(args.overlay))
    except RenderError as err:
        print(f"render_k8s: {err}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
