"""Offline checks of everything under deploy/ and of docker-compose.yml.

No cluster, kustomize binary or Docker is available where these run, so they check what can be
checked without one: each overlay is rendered by scripts/render_k8s.py and every Kubernetes object
validated in strict mode against the API schemas that the kubernetes-validate package ships; the
two custom resources, which it has no schema for, against the small hand-written subsets in
schemas/ (their descriptions say what they cover). On top, the properties a schema cannot see:
hardening, probes, drain timing, selectors that match, metric names that exist in metrics.ts,
and a compose file valid under the Compose specification's own JSON schema.
"""

from __future__ import annotations

import functools
import importlib.resources
import importlib.util
import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = Path(__file__).with_name("schemas")
OVERLAYS = ("cpu", "gpu", "cpu-keda")
# The oldest version the manifests claim (the preStop sleep action is on by default from 1.30)
# and the newest whose schemas kubernetes-validate ships.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.monitoring.coreos.com-v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.keda.sh-v1alpha1.json",
}
HEALTH_TS = ROOT / "gateway/src/ops/health.ts"


def _load_renderer():
    spec = importlib.util.spec_from_file_location("render_k8s", ROOT / "scripts/render_k8s.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_k8s = _load_renderer()


@functools.cache
def rendered(overlay: str) -> tuple[dict, ...]:
    return tuple(render_k8s.render(K8S / "overlays" / overlay))


def one(docs, kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(docs) -> dict:
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def env_of(c: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


@functools.cache
def metrics_ts() -> dict[str, str]:
    """Every metric metrics.ts defines, name -> Counter, Gauge or Histogram."""
    text = (ROOT / "gateway/src/metrics/metrics.ts").read_text()
    found = dict((name, kind) for kind, name in re.findall(r"new (Counter|Gauge|Histogram)\(\{\s*name: '([^']+)'", text))
    assert len(found) >= 20, "metrics.ts no longer reads as expected; update this parser"
    return found


@functools.cache
def setting_default(name: str) -> int:
    text = (ROOT / "gateway/src/config/settings.ts").read_text()
    match = re.search(rf"\b{name}: int\([^)]*\)\.default\(([\d_]+)\)", text)
    assert match, f"{name} not found in settings.ts"
    return int(match.group(1).replace("_", ""))


def setting(c: dict, name: str) -> int:
    return int(env_of(c).get(name, setting_default(name)))


def known_metric(name: str) -> bool:
    """A name /metrics serves: ours (a histogram's series included), or prom-client's defaults."""
    metrics = metrics_ts()
    if name in metrics or name.startswith("process_"):
        return True
    base, _, suffix = name.rpartition("_")
    return suffix in {"bucket", "sum", "count"} and metrics.get(base) == "Histogram"


PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right"}


def promql_metrics(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or labels."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", "", s)
    s = re.sub(r"\[[^\]]*\]", "", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        if s[m.end():].lstrip().startswith("(") or m.group(0) in PROMQL_WORDS:
            continue
        names.add(m.group(0))
    return names


def test_promql_parser_finds_metrics_only():
    expr = ('histogram_quantile(0.99, sum by (le, model) (rate(http_request_duration_seconds_bucket'
            '{model=~"$model", route!="/x"}[$__rate_interval]))) / on (model) group_left foo_total or vector(0)')
    assert promql_metrics(expr) == {"http_request_duration_seconds_bucket", "foo_total"}


# ---------------------------------------------------------------------------------------------
# The renderer itself


def test_renderer_hash_matches_kustomize_vectors():
    # The vectors of TestConfigMapHash and TestSecretHash in kustomize's api/hasher/hasher_test.go.
    cm, secret = {"kind": "ConfigMap", "metadata": {}}, {"kind": "Secret", "metadata": {}, "type": "my-type"}
    three = {"two": 2, "one": "", "three": 3}
    cases = [
        (cm, "6ct58987ht"), ({**cm, "data": {"one": ""}}, "9g67k2htb6"), ({**cm, "data": three}, "7757f9kkct"),
        ({**cm, "binaryData": {"one": ""}}, "6mtk2m274t"), ({**cm, "binaryData": three}, "9th7kc28dg"),
        ({**cm, "data": {"one": ""}, "binaryData": {"two": ""}}, "698h7c7t9m"),
        (secret, "5gmgkf8578"), ({**secret, "data": {"one": ""}}, "74bd68bm66"), ({**secret, "data": three}, "4gf75c7476"),
        ({**secret, "data": {"one": ""}, "stringData": {"two": 2}}, "c4h4264gdb"),
    ]
    for obj, expected in cases:
        assert render_k8s.name_hash(obj) == expected, obj


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      containers:
        - name: main
          image: localhost:5000/app:1
          env: [{name: A, value: "1"}, {name: B, value: "2"}]
          ports: [{containerPort: 80}]
          envFrom: [{configMapRef: {name: settings}}]
      volumes: [{name: v, configMap: {name: settings}}]
"""


def test_renderer_strategic_merge_json6902_images_and_references(tmp_path):
    root = _write(tmp_path, {
        "base/kustomization.yaml": "resources: [app.yaml]\nconfigMapGenerator: [{name: settings, literals: [X=1]}]\n",
        "base/app.yaml": DEPLOYMENT,
        "over/kustomization.yaml": (
            "resources: [../base]\nnamespace: ns\n"
            "images: [{name: localhost:5000/app, newTag: '2'}]\n"
            "patches:\n- path: p.yaml\n"
            "- target: {kind: Deployment, name: app}\n  patch: |-\n"
            "    - {op: add, path: /spec/template/spec/containers/0/args, value: [--x]}\n"
            "    - {op: test, path: /spec/template/spec/containers/0/name, value: main}\n"
        ),
        "over/p.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  template:\n    spec:\n"
            "      containers:\n        - name: main\n          env: [{name: B, value: '3'}, {name: C, value: '4'}]\n"
            "        - name: side\n          image: busybox\n"
        ),
    })
    docs = render_k8s.render(root / "over")
    deployment, config = docs
    spec = deployment["spec"]["template"]["spec"]
    main = spec["containers"][0]
    assert main["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
    assert main["image"] == "localhost:5000/app:2" and main["args"] == ["--x"]
    assert spec["containers"][1]["name"] == "side"
    # The suffix hashes the object as generated, under its own name.
    assert config["metadata"]["name"] == f"settings-{render_k8s.name_hash({**config, 'metadata': {'name': 'settings'}})}"
    assert spec["volumes"][0]["configMap"]["name"] == config["metadata"]["name"]
    assert main["envFrom"][0]["configMapRef"]["name"] == config["metadata"]["name"]
    assert {d["metadata"]["namespace"] for d in docs} == {"ns"}


@pytest.mark.parametrize("files, message", [
    ({"kustomization.yaml": "resources: [app.yaml]\ncommonLabels: {a: b}\n"}, "not supported"),
    ({"kustomization.yaml": "configMapGenerator: [{name: c, files: [../secret.txt]}]\n"}, "outside"),
    ({"kustomization.yaml": "resources: [app.yaml]\npatches: [{path: p.yaml}]\n",
      "p.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  template:\n    spec:\n"
                "      containers: [{name: main, ports: [{containerPort: 81}]}]\n"}, "list"),
])
def test_renderer_refuses_what_it_cannot_do_faithfully(tmp_path, files, message):
    root = _write(tmp_path / "k", {"app.yaml": DEPLOYMENT, **files})
    (tmp_path / "secret.txt").write_text("x")
    with pytest.raises(render_k8s.RenderError, match=message):
        render_k8s.render(root)


# ---------------------------------------------------------------------------------------------
# Schemas


def _crd_validator(doc: dict) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[(doc["apiVersion"], doc["kind"])]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid(overlay):
    checked = []
    for doc in rendered(overlay):
        key = (doc["apiVersion"], doc["kind"])
        if key in CRD_SCHEMAS:
            errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in _crd_validator(doc).iter_errors(doc)]
            assert not errors, f"{doc['kind']}: {errors}"
            behavior = doc["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
            if behavior:
                # KEDA hands this block to the HPA it creates; check it as Kubernetes will.
                hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
                       "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 1, "behavior": behavior}}
                for version in K8S_VERSIONS:
                    kubernetes_validate.validate(hpa, version, strict=True)
            checked.append(f"{doc['kind']} (subset schema)")
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                pytest.fail(f"{doc['kind']} {doc['metadata']['name']} on {version}: "
                            f"{'.'.join(map(str, err.path))}: {err.message}")
            except kubernetes_validate.SchemaNotFoundError as err:
                pytest.fail(err.message)
        checked.append(doc["kind"])
    print(f"{overlay}: {len(checked)} objects valid on Kubernetes {', '.join(K8S_VERSIONS)}: {', '.join(checked)}")
    assert {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "NetworkPolicy"} <= set(checked)


# ---------------------------------------------------------------------------------------------
# What the schemas cannot see


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_hardened(overlay):
    pod = one(rendered(overlay), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"].get("runAsUser", 1) != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    volumes = {v["name"]: v for v in pod["volumes"]}
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
        assert not sc.get("privileged")
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
        tmp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
        assert volumes[tmp["name"]]["emptyDir"]["medium"] == "Memory"
        # Requests and limits, well formed (the schemas take any string) and requests within limits.
        requests, limits = c["resources"]["requests"], c["resources"]["limits"]
        assert {"cpu", "memory"} <= set(requests) and {"cpu", "memory"} <= set(limits)
        for resource, value in requests.items():
            assert quantity(value) <= quantity(limits.get(resource, value)), resource
        for value in limits.values():
            quantity(value)


QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?")
SUFFIX = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value) -> float:
    """A Kubernetes resource quantity as a number (the forms these manifests use)."""
    match = QUANTITY.fullmatch(str(value))
    assert match, f"{value!r} is not a Kubernetes quantity"
    return float(match.group(1)) * SUFFIX[match.group(2)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_are_distinct_and_cover_the_model_load(overlay):
    c = container(rendered(overlay))
    routes = set(re.findall(r"path: '([^']+)'", HEALTH_TS.read_text()))
    live, ready, startup = (c[p]["httpGet"] for p in ("livenessProbe", "readinessProbe", "startupProbe"))
    port_names = {p["name"] for p in c["ports"]}
    for probe in (live, ready, startup):
        assert probe["path"] in routes, f"{probe['path']} is not a route of health.ts"
        assert probe["port"] in port_names
    assert live["path"] == "/health/live" and ready["path"] == "/health/ready"
    assert live["path"] != ready["path"], "liveness must not fail while a runner restarts"
    s = c["startupProbe"]
    window = s.get("initialDelaySeconds", 0) + s["periodSeconds"] * s["failureThreshold"]
    assert window > setting(c, "RUNNER_STARTUP_TIMEOUT_S"), "the kubelet would kill a load the gateway still allows"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_outlasts_endpoint_removal_and_drain(overlay):
    pod = one(rendered(overlay), "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop >= 5
    assert pod["terminationGracePeriodSeconds"] > pre_stop + setting(c, "SHUTDOWN_TIMEOUT_S")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_refer_to_each_other(overlay):
    docs = rendered(overlay)
    deployment, service = one(docs, "Deployment"), one(docs, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    c = container(docs)

    def selects(selector: dict, labels: dict) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert selects(service["spec"]["selector"], pod_labels)
    assert selects(one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels)
    policy = one(docs, "NetworkPolicy")
    assert selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]} == set(ports.values())
    assert all(p["targetPort"] in ports for p in service["spec"]["ports"])
    monitor = one(docs, "ServiceMonitor")
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}
    assert len({d["metadata"]["namespace"] for d in docs}) == 1

    # The catalog: MODEL_CONFIG names a file of the mounted ConfigMap, which holds the catalog.
    env = env_of(c)
    path = Path(env["MODEL_CONFIG"])
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == str(path.parent))
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    catalog = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == volume["configMap"]["name"])
    assert yaml.safe_load(catalog["data"][path.name]) == yaml.safe_load((ROOT / "configs/model_config.yaml").read_text())
    assert env["MODELS"] and all(m in {e["name"] for e in yaml.safe_load(catalog["data"][path.name])["models"]}
                                 for m in env["MODELS"].split(","))

    # API_KEY comes from a Secret that exists and has the key.
    ref = next(e for e in c["env"] if e["name"] == "API_KEY")["valueFrom"]["secretKeyRef"]
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == ref["name"])
    assert ref["key"] in secret["data"]


def test_catalog_copy_matches_configs():
    copy = yaml.safe_load((K8S / "base/model_config.yaml").read_text())
    assert copy == yaml.safe_load((ROOT / "configs/model_config.yaml").read_text()), (
        "deploy/k8s/base/model_config.yaml differs from configs/model_config.yaml: copy it again")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_autoscaler_on_a_real_gauge(overlay):
    docs = rendered(overlay)
    scalers = [d for d in docs if d["kind"] in {"HorizontalPodAutoscaler", "ScaledObject"}]
    assert len(scalers) == 1, "exactly one autoscaler, or two controllers fight over replicas"
    scaler, deployment = scalers[0], one(docs, "Deployment")
    assert scaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"], "a fixed count would reset the autoscaler's on every apply"
    if scaler["kind"] == "HorizontalPodAutoscaler":
        assert scaler["spec"]["minReplicas"] >= 2
        (metric,) = scaler["spec"]["metrics"]
        assert metric["type"] == "Pods"
        name = metric["pods"]["metric"]["name"]
        assert metrics_ts().get(name) == "Gauge", f"{name} is not a gauge in metrics.ts"
        # prometheus-adapter must publish that very name from series that exist.
        values = yaml.safe_load((K8S / "prometheus-adapter/values.yaml").read_text())
        rules = [r for r in values["rules"]["custom"] if r["name"]["as"] == name]
        assert len(rules) == 1, f"no prometheus-adapter rule exposes {name}"
        rule = rules[0]
        assert promql_metrics(rule["seriesQuery"]) == {name}
        assert re.fullmatch(rule["name"]["matches"], name)
        assert {"<<.Series>>", "<<.LabelMatchers>>", "<<.GroupBy>>"} <= set(re.findall(r"<<[^>]+>>", rule["metricsQuery"]))
        assert {v["resource"] for v in rule["resources"]["overrides"].values()} == {"namespace", "pod"}
    else:
        assert scaler["spec"]["minReplicaCount"] >= 2
        (trigger,) = scaler["spec"]["triggers"]
        query = trigger["metadata"]["query"]
        names = promql_metrics(query)
        assert names and all(metrics_ts().get(n) == "Gauge" for n in names), names
        # The namespace and job are literal in the query; they must match what is deployed.
        assert f'namespace="{deployment["metadata"]["namespace"]}"' in query
        assert f'job="{one(docs, "Service")["metadata"]["name"]}"' in query
    assert one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_cpu_and_gpu_variants(overlay):
    docs = rendered(overlay)
    c = container(docs)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    env = env_of(c)
    if overlay == "gpu":
        assert int(c["resources"]["limits"]["nvidia.com/gpu"]) >= 1
        assert env["MODEL_DEVICE"] == "cuda"
        assert c["image"].endswith(":cuda")
        assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
        assert pod["nodeSelector"]
    else:
        assert "nvidia.com/gpu" not in c["resources"]["limits"]
        assert env["MODEL_DEVICE"] == "cpu"
        assert c["image"].endswith(":cpu")
        # PyTorch would start a thread per node core; the limit is what the pod may use.
        assert int(env["RUNNER_THREADS"]) == int(c["resources"]["limits"]["cpu"])
    assert c["image"].startswith("ghcr.io/edge-embed/edge-embed:")


# ---------------------------------------------------------------------------------------------
# docker-compose.yml, Prometheus, Grafana


@functools.cache
def compose_validator() -> jsonschema.Draft202012Validator:
    try:
        vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    except ModuleNotFoundError:
        pytest.fail("the Compose specification schema comes from the check-jsonschema package; "
                    "install the dev extras (pip install -e '.[dev]')")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


COMPOSE_FILES = ("docker-compose.yml", "deploy/compose/gpu.yml")


@pytest.mark.parametrize("path", COMPOSE_FILES)
def test_compose_files_follow_the_compose_spec(path):
    doc = yaml.safe_load((ROOT / path).read_text())
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in compose_validator().iter_errors(doc)]
    assert not errors


def _default(value: str) -> str:
    """The default of a ${VAR:-default} interpolation, or the value itself."""
    match = re.fullmatch(r"\$\{\w+:-([^}]*)\}", value)
    return match.group(1) if match else value


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_stack_is_wired_together():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    server = services["edge-embed"]
    assert (ROOT / server["build"]["context"] / _default(server["build"]["dockerfile"])).is_file()
    assert _default(server["image"]).startswith("ghcr.io/edge-embed/edge-embed:")
    assert server["read_only"] is True and server["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in server["security_opt"]
    assert any(t.startswith("/tmp") for t in server["tmpfs"])
    shutdown = int(server["environment"].get("SHUTDOWN_TIMEOUT_S", setting_default("SHUTDOWN_TIMEOUT_S")))
    assert _seconds(server["stop_grace_period"]) > shutdown, "Docker would SIGKILL the drain"

    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{source} is mounted but missing"

    prometheus = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    server_port = server["ports"][0].split(":")[-1]
    assert targets == [f"edge-embed:{server_port}"]
    assert any(v.endswith(":/etc/prometheus/prometheus.yml:ro") for v in services["prometheus"]["volumes"])

    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert [d["url"] for d in datasources] == ["http://prometheus:9090"]
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/edge-embed.yml").read_text())["providers"]
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == providers[0]["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"

    gpu = yaml.safe_load((ROOT / "deploy/compose/gpu.yml").read_text())["services"]["edge-embed"]
    assert gpu["environment"]["MODEL_DEVICE"] == "cuda"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


@functools.cache
def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana/dashboards/edge-embed.json").read_text())


def _panels() -> list[dict]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def test_dashboard_is_well_formed():
    d = dashboard()
    assert d["uid"] and d["title"] and d["description"] and d["schemaVersion"] >= 36
    uid = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"][0]["uid"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in _panels():
        assert p["title"] and p["type"] in {"timeseries", "stat"}, p.get("title")
        assert p["datasource"] == {"type": "prometheus", "uid": uid}, p["title"]
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs)), p["title"]
        assert all(t["expr"].strip() for t in p["targets"]), p["title"]
        # Balanced brackets: a cheap guard against a broken edit of an expression.
        for t in p["targets"]:
            for a, b in ("()", "{}", "[]"):
                assert t["expr"].count(a) == t["expr"].count(b), t["expr"]


def test_dashboard_uses_only_metrics_that_exist():
    exprs = [t["expr"] for p in _panels() for t in p["targets"]]
    for var in dashboard()["templating"]["list"]:
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        exprs.append(re.sub(r"^label_values\(([^,]+),.*\)$", r"\1", query))
    used = set()
    for expr in exprs:
        names = promql_metrics(expr)
        unknown = {n for n in names if not known_metric(n)}
        assert not unknown, f"{expr}: {unknown} not in metrics.ts"
        used |= names
        for quantile in re.findall(r"histogram_quantile\(\s*[\d.]+\s*,(.*)", expr):
            assert all(n.endswith("_bucket") for n in promql_metrics(quantile)), expr
    # What the dashboard is for: every one of these must be on it.
    assert {
        "http_requests_total", "http_request_duration_seconds_bucket", "embedding_batch_size_inputs_sum",
        "embedding_queue_depth", "http_rejected_requests_total", "embedding_cache_hits_total",
        "embedding_cache_misses_total", "runner_restarts_total", "model_resident_memory_bytes", "runner_up",
    } <= used
    text = " ".join(exprs)
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket" in text
    assert re.search(r'http_rejected_requests_total\{status=~"429\|503"\}', text)
