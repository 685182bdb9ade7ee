"""Every document of deploy/k8s/ against the Kubernetes API schema, offline.

No API server is needed: Debian's python3-kubernetes deserializes each document
into its typed model (missing required fields, wrong types), and this file walks
the same models for fields they do not have (what `kubectl apply
--validate=strict` refuses).  Then what the schema cannot see: selectors that
select the pods, named ports that exist, ConfigMap keys that the volumes name,
the grace period above drain.grace, and each ConfigMap'd xedge configuration
passing `xedge --check-config`; for the xedge-bench Job (bench-job.yaml), an
Indexed Job whose slice count matches its completions, whose arguments
xedge-bench accepts for every slice, and whose start-time substitution (the
command at the top of the file) works.  Cheap: `make test` runs it without
podman; tests/deploy/test_deploy.py and test_bench_dist.py run the manifests
for real.
"""
import re
import subprocess
import time

import pytest
import yaml

from conftest import REPO, binary, child_env

k8s = pytest.importorskip("kubernetes.client", reason="python3-kubernetes (make test-deps)")

MANIFESTS = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
BENCH_JOB = REPO / "deploy" / "k8s" / "bench-job.yaml"
SERVERS = [m for m in MANIFESTS if m != BENCH_JOB]      # the ones that run xedge
API_VERSION = {"ConfigMap": "v1", "Secret": "v1", "Service": "v1", "Pod": "v1",
               "PersistentVolumeClaim": "v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1",
               "PodDisruptionBudget": "policy/v1", "Job": "batch/v1"}


def documents(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def unknown_fields(data, type_name, where):
    """Paths of keys in data that the model type_name does not have."""
    if data is None:
        return []
    m = re.fullmatch(r"list\[(.+)\]", type_name)
    if m:
        return [p for i, item in enumerate(data) for p in unknown_fields(item, m[1], f"{where}[{i}]")]
    m = re.fullmatch(r"dict\(str, (.+)\)", type_name)
    if m:
        return [p for k, v in data.items() for p in unknown_fields(v, m[1], f"{where}.{k}")]
    model = getattr(k8s, type_name, None)
    if model is None:               # str, int, bool, object (IntOrString, quantities)
        return []
    by_json = {json: attr for attr, json in model.attribute_map.items()}
    out = []
    for key, value in data.items():
        if key not in by_json:
            out.append(f"{where}.{key}")
        else:
            out += unknown_fields(value, model.openapi_types[by_json[key]], f"{where}.{key}")
    return out


def workloads(docs):
    """(kind/name, pod template) of each workload."""
    return [(f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"])
            for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_documents_match_the_api_schema(path):
    api = k8s.ApiClient()
    docs = documents(path)
    assert docs, f"{path}: no documents"
    for d in docs:
        kind, name = d.get("kind"), d.get("metadata", {}).get("name")
        assert kind in API_VERSION, f"{path}: kind {kind} is not one this check knows"
        assert d.get("apiVersion") == API_VERSION[kind], f"{path}: {kind}/{name}: apiVersion"
        api._ApiClient__deserialize(d, "V1" + kind)      # raises on a bad document
        extra = unknown_fields(d, "V1" + kind, f"{kind}/{name}")
        assert not extra, f"{path}: fields the API does not have: {extra}"


def test_the_schema_check_can_fail():
    """The two checks above refuse a document with a missing field, a wrong type
    and an unknown field."""
    api = k8s.ApiClient()
    with pytest.raises(ValueError):
        api._ApiClient__deserialize({"kind": "Deployment", "metadata": {"name": "x"},
                                     "spec": {"template": {}}}, "V1Deployment")
    with pytest.raises(ValueError):
        api._ApiClient__deserialize({"kind": "Service", "spec": {"ports": [{"port": "x"}]}},
                                    "V1Service")
    assert unknown_fields({"spec": {"containers": [{"name": "a", "imagee": "x"}]}}, "V1Pod", "Pod") \
        == ["Pod.spec.containers[0].imagee"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_references_between_documents(path):
    docs = documents(path)
    pods = workloads(docs)
    configmaps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    for what, t in pods:
        labels = t["metadata"]["labels"]
        spec = t["spec"]
        owner = next(d for d in docs if f"{d['kind']}/{d['metadata']['name']}" == what)
        if owner["kind"] != "Job":      # a Job's selector is generated
            assert selects(owner["spec"]["selector"]["matchLabels"], labels), f"{what}: selector"
        ports = {p["name"] for c in spec["containers"] for p in c.get("ports", [])}
        templates = {t["metadata"]["name"] for t in owner["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                action = c.get(probe, {}).get("httpGet") or c.get(probe, {}).get("tcpSocket")
                if action and isinstance(action["port"], str):
                    assert action["port"] in ports, f"{what}: {c['name']} {probe} port"
            for m in c.get("volumeMounts", []):
                assert m["name"] in volumes or m["name"] in templates, \
                    f"{what}: {c['name']} mounts an undeclared volume {m['name']}"
        for v in volumes.values():
            if "configMap" in v:
                data = configmaps.get(v["configMap"]["name"])
                assert data is not None, f"{what}: no ConfigMap {v['configMap']['name']} in {path.name}"
                for item in v["configMap"].get("items", []):
                    assert item["key"] in data, f"{what}: ConfigMap key {item['key']}"
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims, f"{what}: claim"
    for d in docs:
        if d["kind"] == "Service":
            sel = d["spec"]["selector"]
            chosen = [(w, t) for w, t in pods if selects(sel, t["metadata"]["labels"])]
            assert chosen, f"Service/{d['metadata']['name']} selects no pods"
            for p in d["spec"]["ports"]:
                if isinstance(p.get("targetPort"), str):
                    for w, t in chosen:
                        names = {cp["name"] for c in t["spec"]["containers"] for cp in c.get("ports", [])}
                        assert p["targetPort"] in names, f"Service/{d['metadata']['name']}: {w} port"
        if d["kind"] == "PodDisruptionBudget":
            assert any(selects(d["spec"]["selector"]["matchLabels"], t["metadata"]["labels"])
                       for _, t in pods), f"PodDisruptionBudget/{d['metadata']['name']} selects nothing"


def xedge_configs(docs):
    """(ConfigMap key, parsed xedge configuration) for each xedge YAML in the file."""
    return [(k, yaml.safe_load(v)) for d in docs if d["kind"] == "ConfigMap"
            for k, v in d["data"].items() if k.startswith("xedge")]


@pytest.mark.parametrize("path", SERVERS, ids=lambda p: p.name)
def test_drain_fits_in_the_grace_period(path):
    docs = documents(path)
    edge = dict(xedge_configs(docs)).get("xedge.yaml")
    assert edge and "drain" in edge, f"{path}: no xedge.yaml with a drain section"
    for what, t in workloads(docs):
        for c in t["spec"]["containers"]:
            stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
            if stop:
                assert stop[:3] == ["xedgectl", "-c", "/etc/xedge/xedge.yaml"] and stop[3] == "drain"
                assert t["spec"]["terminationGracePeriodSeconds"] > edge["drain"]["grace"], \
                    f"{what}: terminationGracePeriodSeconds must exceed drain.grace"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_configurations_pass_check_config(path, tmp_path):
    """Each ConfigMap'd configuration, as xedge (or xedge-sm) reads it in the pod;
    the certificate paths point at a test certificate, environment-set keys get
    test values."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=example.org",
                    "-addext", "subjectAltName=DNS:example.org", "-keyout", tmp_path / "tls.key",
                    "-out", tmp_path / "tls.crt"], check=True, capture_output=True, timeout=60)
    for key, cfg in xedge_configs(documents(path)):
        env = dict(child_env(), XEDGE_BACKEND_SECRET="s", XEDGE_SESSION_SERVER_SECRET="s")
        text = yaml.safe_dump(cfg).replace("/etc/xedge-tls/", f"{tmp_path}/")
        f = tmp_path / key
        f.write_text(text)
        sm = "listeners" not in cfg
        if sm and "discover" in cfg.get("backend", {}):
            # sharded.yaml: the pod's own name and the database URI come from the env
            env["XEDGE_SESSION_SERVER_SHARD"] = "xedge-sm-0.xedge-sm.default.svc.cluster.local:5290"
            if "database" not in cfg.get("session_server", {}):
                env["XEDGE_SESSION_SERVER_DATABASE"] = "postgresql://xedge:pw@xedge-pg:5432/xedge"
        if not sm and "backend" not in cfg:
            env["XEDGE_BACKEND_ADDRESS"] = "10.0.0.1:5290"     # the Service's address
        r = subprocess.run([binary("xedge-sm" if sm else "xedge"), "--check-config", f],
                           capture_output=True, text=True, timeout=30, env=env)
        assert r.returncode == 0, f"{path.name}: {key}: {r.stdout}{r.stderr}"


def bench_container(job):
    c, = job["spec"]["template"]["spec"]["containers"]
    return c, {e["name"]: e for e in c["env"]}


def test_bench_job_slices():
    """bench-job.yaml: an Indexed Job of XEDGE_BENCH_COUNT pods at once, never retried (a
    late slice is refused), its wrapper valid shell, and its xedge-bench arguments accepted
    for the first and the last slice: run here with a --start-at in the past, xedge-bench
    reads every option, cuts the slice, and stops with exit 2 before any connection."""
    job, = [d for d in documents(BENCH_JOB) if d["kind"] == "Job"]
    spec = job["spec"]
    c, env = bench_container(job)
    n = int(env["XEDGE_BENCH_COUNT"]["value"])
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == n > 1
    assert spec["backoffLimit"] == 0 and spec["template"]["spec"]["restartPolicy"] == "Never"
    assert env["XEDGE_BENCH_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"
    assert c["command"][:2] == ["/bin/sh", "-c"]
    r = subprocess.run(["sh", "-n", "-c", c["command"][2]], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert "--host" not in c["args"] and "--password" not in c["args"] and "--index" not in c["args"]
    late = str(int(time.time()) - 3600)
    for index in (0, n - 1):
        r = subprocess.run([str(REPO / "build" / "xedge-bench"), "--host", "127.0.0.1", "--password",
                            "x", "--json", "/dev/null", "--start-at", late, *c["args"]],
                           capture_output=True, text=True, timeout=30,
                           env=dict(child_env(), JOB_COMPLETION_INDEX=str(index),
                                    XEDGE_BENCH_COUNT=str(n)))
        assert r.returncode == 2 and "s in the past" in r.stderr, r.stderr
        assert f"slice {index} of {n}: users " in r.stderr, r.stderr


def test_bench_job_start_substitution():
    """The command at the top of bench-job.yaml sets XEDGE_BENCH_START_AT (and only it)."""
    text = BENCH_JOB.read_text()
    cmd = next(line for line in text.splitlines() if line.startswith("#   sed "))
    pattern, replacement = re.fullmatch(r'#   sed "s\|(.+)\|(.+)\|" deploy/k8s/bench-job.yaml \\',
                                        cmd).groups()
    pattern, replacement = pattern.replace('\\"', '"'), replacement.replace('\\"', '"')
    start = "2026-12-07T12:00:00Z"
    out = text.replace(pattern, replacement.replace("$START", start))
    assert text.count(pattern) == 1 and out != text
    before, after = ([d for d in yaml.safe_load_all(t) if d and d["kind"] == "Job"][0]
                     for t in (text, out))
    assert bench_container(before)[1]["XEDGE_BENCH_START_AT"]["value"] == ""
    assert bench_container(after)[1]["XEDGE_BENCH_START_AT"]["value"] == start
    bench_container(before)[1]["XEDGE_BENCH_START_AT"]["value"] = start
    assert before == after
