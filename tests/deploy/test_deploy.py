"""The container image and the Kubernetes manifests, for real (`make test-deploy`).

Builds deploy/Dockerfile and deploy/prosody/Dockerfile with podman, plays
deploy/k8s/standalone.yaml and deploy/k8s/sidecar.yaml with `podman kube play`,
and has slixmpp users log in and chat through each deployment:
  standalone: client -> edge pod (xedge, backend.address) -> session server pod (xedge-sm)
  sidecar:    client -> xedge (upstream mode) -> Prosody, both in one pod
It also checks the admin endpoints over HTTP and drains an edge with the
preStop command.  Needs root podman (docs/operations.md, "Containers and
Kubernetes"); takes one to a few minutes.

podman 4.3 is not Kubernetes.  The test plays the documents of deploy/k8s/ with
these substitutions only (podman_* functions below):
- Service and PodDisruptionBudget documents are dropped (podman ignores Services;
  nothing here evicts).  The xedge-sm Service's stable cluster IP is stood in by the
  gateway address of podman's kube network, where the sm pod publishes its sm-link
  port (hostPort; podman forwards it to whichever pod holds it now, as kube-proxy
  would): the edge's XEDGE_BACKEND_ADDRESS names it instead of the Service's
  variables.  Clients reach the pods through hostPort on 127.0.0.1.
- The StatefulSet becomes its pod xedge-sm-0 and its volumeClaimTemplate the
  PersistentVolumeClaim data-xedge-sm-0 (a podman named volume), as Kubernetes names them.
  When the test replaces that pod (as Kubernetes does on a node failure), the new one
  gets the old one's claim.
- Deployments run one replica (two would collide on the hostPorts).
- Secrets are broken in podman 4.3: the xedge-tls Secret volume becomes a ConfigMap
  holding a test certificate for example.org (without the Secret's defaultMode and
  fsGroup: podman's files are world-readable), and secretKeyRef variables get their
  value directly (XEDGE_BACKEND_SECRET, XEDGE_SESSION_SERVER_SECRET).
- podman ignores securityContext.seccompProfile: the Localhost profile xedge.json is
  named by the (older) seccomp annotations it reads instead, and read from
  deploy/seccomp (--seccomp-profile-root) instead of /var/lib/kubelet/seccomp.
- Probes and the preStop hook are the test's: podman 4.3 ignores readinessProbe and
  preStop, and turns a livenessProbe into a healthcheck that cannot work (httpGet
  becomes `curl http://localhost:0/...` for a named port, in an image without curl; an
  exec command is re-split into a shell line) and that runs only from systemd timers.
  So the probes are removed from the played pods, the test asks /healthz and /readyz
  itself through the hostPort, runs Prosody's liveness command with podman exec, and
  runs the preStop command with podman exec.
Everything is removed afterwards, on failure too (kube down, then the volumes:
podman 4.3 leaves ConfigMap volumes behind and would reuse their contents).
"""
import asyncio
import copy
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
sys.path.insert(0, str(REPO / "tests" / "integration"))
from slixclient import Client, close_all, run  # noqa: E402

XEDGE_IMAGE = "xedge:latest"              # the manifests' image names
PROSODY_IMAGE = "xedge-prosody:latest"
DOMAIN = "example.org"
BACKEND_SECRET = "test-" + os.urandom(8).hex()
START = 90.0        # seconds a pod may take to serve (2 shared cores, image layers cold)


def podman(*args, timeout=120.0, check=True, input=None):
    r = subprocess.run(["podman", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(map(str, args))} exited {r.returncode}\n"
                             f"stdout: {r.stdout[-3000:]}\nstderr: {r.stderr[-3000:]}")
    return r


def wait_for(what, cond, timeout=START, every=0.3, diag=lambda: ""):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:          # noqa: BLE001 -- retried until the deadline
            last = e
        time.sleep(every)
    raise AssertionError(f"no {what} within {timeout:.0f} s (last error: {last!r})\n{diag()}")


def free_port():
    """A loopback port below the ephemeral range that nobody listens on now."""
    rnd = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(1000):
        port = rnd.randrange(20000, 30000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port")


def http_get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def documents(name):
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} documents"
    return copy.deepcopy(found[0])


KUBE_NETWORK = "podman-default-kube-network"     # where `podman kube play` puts pods


def kube_gateway():
    """The host's address on the network of kube-played pods (made now if missing)."""
    if podman("network", "exists", KUBE_NETWORK, check=False).returncode != 0:
        podman("network", "create", KUBE_NETWORK)
    net = json.loads(podman("network", "inspect", KUBE_NETWORK).stdout)[0]
    gateways = [s["gateway"] for s in net.get("subnets", []) if s.get("gateway")]
    assert gateways, f"{KUBE_NETWORK} has no gateway: {net}"
    return gateways[0]


def logs(container):
    r = podman("logs", container, check=False, timeout=30)
    return f"--- podman logs {container} ---\n{r.stdout[-4000:]}{r.stderr[-4000:]}"


# ---- the substitutions (module docstring) ----------------------------------------

def podman_tls_configmap(name, cert, key):
    """A ConfigMap standing in for the kubernetes.io/tls Secret `name`."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"tls.crt": cert.read_text(), "tls.key": key.read_text()}}


def podman_pod(template, host_ports, env):
    """A pod template ({metadata, spec}) as podman 4.3 can run it: secret volumes
    read ConfigMaps, secretKeyRef and Service variables get the values in env, the
    named container ports in host_ports {name: port or (address, port)} are published
    (on 127.0.0.1 unless an address is given), and Localhost seccomp profiles are
    named by the annotations podman reads (it ignores securityContext.seccompProfile)."""
    spec = template["spec"]
    notes = template["metadata"].setdefault("annotations", {})
    pod_profile = spec.get("securityContext", {}).get("seccompProfile", {})
    if pod_profile.get("type") == "Localhost":
        notes["seccomp.security.alpha.kubernetes.io/pod"] = "localhost/" + pod_profile["localhostProfile"]
    for c in spec["containers"]:
        profile = c.get("securityContext", {}).get("seccompProfile", {})
        if profile.get("type") == "Localhost":
            notes[f"container.seccomp.security.alpha.kubernetes.io/{c['name']}"] = \
                "localhost/" + profile["localhostProfile"]
    for v in spec.get("volumes", []):
        if "secret" in v:
            v["configMap"] = {"name": v.pop("secret")["secretName"]}
    for c in spec["containers"]:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            c.pop(probe, None)
        for e in c.get("env", []):
            if e["name"] in env:
                e.pop("valueFrom", None)
                e["value"] = env[e["name"]]
            assert "valueFrom" not in e and "$(" not in e.get("value", ""), \
                f"{c['name']}: env {e['name']} has no substitute"
        for p in c.get("ports", []):
            if p["name"] in host_ports:
                where = host_ports[p["name"]]
                p["hostIP"], p["hostPort"] = where if isinstance(where, tuple) else ("127.0.0.1", where)
    return template


def podman_single_replica(deployment):
    deployment["spec"]["replicas"] = 1
    return deployment


def podman_statefulset_pod(sts):
    """The StatefulSet's pod 0 and the claims of its volumeClaimTemplates, named as
    Kubernetes names them (CLAIM-STS-0)."""
    name = sts["metadata"]["name"]
    spec = sts["spec"]["template"]["spec"]
    pvcs = []
    for t in sts["spec"].get("volumeClaimTemplates", []):
        claim = f"{t['metadata']['name']}-{name}-0"
        pvcs.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": claim}, "spec": t["spec"]})
        spec.setdefault("volumes", []).append({"name": t["metadata"]["name"],
                                              "persistentVolumeClaim": {"claimName": claim}})
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {**sts["spec"]["template"]["metadata"], "name": f"{name}-0"},
           "spec": spec}
    return pvcs, pod


# ---- plays ------------------------------------------------------------------

class Play:
    """One `podman kube play` of a list of documents, undone by down_pods() and down_volumes()."""

    def __init__(self, workdir, name, docs):
        self.file = Path(workdir) / f"{name}.yaml"
        self.file.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        # ConfigMaps, claims and emptyDirs are all podman volumes of those names.
        self.volumes = [d["metadata"]["name"] for d in docs
                        if d["kind"] in ("ConfigMap", "PersistentVolumeClaim")]
        for d in docs:
            spec = d["spec"]["template"]["spec"] if d["kind"] == "Deployment" else d.get("spec", {})
            self.volumes += [v["name"] for v in spec.get("volumes", []) if "emptyDir" in v]
        self.pods = [d["metadata"]["name"] + ("-pod-0" if d["kind"] == "Deployment" else "")
                     for d in docs if d["kind"] in ("Pod", "Deployment")]

    def up(self):
        # What an interrupted earlier run left; a volume still in use by another
        # play of this test stays (plain rm refuses) and keeps the same contents.
        for p in self.pods:
            podman("pod", "rm", "-f", "-t", "10", p, check=False, timeout=120)
        for v in self.volumes:
            podman("volume", "rm", v, check=False, timeout=60)
        podman("kube", "play", "--seccomp-profile-root", REPO / "deploy" / "seccomp",
               self.file, timeout=180)
        return self

    def down_pods(self):
        podman("kube", "down", self.file, check=False, timeout=120)
        for p in self.pods:
            podman("pod", "rm", "-f", "-t", "10", p, check=False, timeout=120)

    def down_volumes(self):
        for v in self.volumes:
            podman("volume", "rm", "-f", v, check=False, timeout=60)


@pytest.fixture
def plays(tmp_path):
    """Plays started by the test, downed in reverse order when it ends, whatever happened."""
    started = []

    def play(name, docs):
        p = Play(tmp_path, name, docs)
        started.append(p)
        return p.up()
    yield play
    # All pods first: a volume is removed with whatever still uses it.
    for p in reversed(started):
        p.down_pods()
    for p in reversed(started):
        p.down_volumes()


# ---- fixtures -----------------------------------------------------------------

@pytest.fixture(scope="module")
def images():
    """Both images, built from this tree (the layer cache makes a rebuild cheap)."""
    t0 = time.monotonic()
    podman("build", "-f", REPO / "deploy" / "Dockerfile", "-t", f"localhost/{XEDGE_IMAGE}",
           REPO, timeout=1200)
    t1 = time.monotonic()
    podman("build", "-t", f"localhost/{PROSODY_IMAGE}", REPO / "deploy" / "prosody", timeout=600)
    t2 = time.monotonic()
    size = podman("image", "inspect", "--format", "{{.Size}}", f"localhost/{XEDGE_IMAGE}").stdout
    print(f"\nimages built: xedge {t1 - t0:.0f} s ({int(size) / 1e6:.0f} MB), "
          f"prosody {t2 - t1:.0f} s")
    # The image runs as the non-root user the manifests name.
    uid = podman("run", "--rm", "--entrypoint", "id", f"localhost/{XEDGE_IMAGE}", "-u").stdout
    assert uid.strip() == "10001"


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("cert")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", f"/CN={DOMAIN}",
                    "-addext", f"subjectAltName=DNS:{DOMAIN}", "-keyout", d / "tls.key",
                    "-out", d / "tls.crt"], check=True, capture_output=True, timeout=60)
    return d / "tls.crt", d / "tls.key"


# ---- what a user sees --------------------------------------------------------

def chat(port, users, direct_tls_port=None, while_online=None):
    """Two users log in (the second by Direct TLS when a port is given) and exchange
    a message each way, then while_online() runs; fails with what went wrong."""
    (ja, pa), (jb, pb) = users

    async def scenario():
        a = b = None
        try:
            a = await Client(ja, pa).login(port)
            if direct_tls_port:
                b = await Client(jb, pb).login(direct_tls_port, direct_tls=True)
            else:
                b = await Client(jb, pb).login(port)
            assert a.tls_version() and b.tls_version(), "a stream without TLS"
            a.send_message(mto=jb, mbody="hello from a pod", mtype="chat")
            m = await b.next_message(body="hello from a pod", timeout=15)
            assert m["from"].bare == ja
            b.send_message(mto=ja, mbody="and back", mtype="chat")
            m = await a.next_message(body="and back", timeout=15)
            assert m["from"].bare == jb
            if while_online:
                await asyncio.get_running_loop().run_in_executor(None, while_online)
        finally:
            await close_all(a, b)
    run(scenario(), 90)


def check_admin(port):
    """The probes' endpoints, as the kubelet asks them, and the metrics."""
    wait_for("/healthz 200", lambda: http_get(port, "/healthz")[0] == 200, timeout=30)
    wait_for("/readyz 200", lambda: http_get(port, "/readyz")[0] == 200, timeout=30)
    status, body = http_get(port, "/metrics")
    assert status == 200 and "# TYPE" in body, f"/metrics: {status} {body[:200]!r}"


def drain(container, port, user, admin_port):
    """The preStop command, as the kubelet runs it, with a user online: xedgectl
    finds its xedge (pid 1 of the container) and signals it (SIGUSR1), the user is
    told <system-shutdown/> (no drain.redirect here), and xedgectl returns 0 once no
    client is left, while xedge stays up, not ready (a hook must end before the
    container's pid 1 does: its exit would kill the hook).  The kubelet's SIGTERM that
    follows (podman stop here) then exits at once."""
    jid, pw = user

    def prestop():
        return subprocess.run(["podman", "exec", container, "xedgectl", "-c", "/etc/xedge/xedge.yaml",
                               "drain"], capture_output=True, text=True, timeout=120)

    async def scenario():
        a = await Client(jid, pw).login(port)
        try:
            r = await asyncio.get_running_loop().run_in_executor(None, prestop)
            assert r.returncode == 0 and "draining pid 1:" in r.stdout and "pid 1 drained after" in r.stdout, \
                f"xedgectl drain exited {r.returncode}: {r.stdout}{r.stderr}"
            await asyncio.wait_for(asyncio.shield(a.closed), 15)
            assert "system-shutdown" in a.stream_errors, f"stream errors: {a.stream_errors}"
        finally:
            await close_all(a)
    run(scenario(), 150)
    assert http_get(admin_port, "/readyz") == (503, "not ready: draining\n")
    assert "draining: listeners closed, clients told to go" in logs(container), logs(container)
    r = subprocess.run(["podman", "stop", "-t", "30", container], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "drained: no client left" in logs(container), logs(container)


# ---- the tests ------------------------------------------------------------------

def test_standalone(images, cert, plays):
    docs = documents("standalone.yaml")
    config = one(docs, "ConfigMap", "xedge-config")
    tls = podman_tls_configmap("xedge-tls", *cert)

    # The session server first, its sm-link published where the edge will look.
    pvcs, sm_pod = podman_statefulset_pod(one(docs, "StatefulSet", "xedge-sm"))
    sm_admin, sm_link = free_port(), (kube_gateway(), free_port())
    podman_pod(sm_pod, {"admin": sm_admin, "sm-link": sm_link},
               {"XEDGE_SESSION_SERVER_SECRET": BACKEND_SECRET})
    plays("standalone-sm", [config, *pvcs, sm_pod])
    sm = "xedge-sm-0-xedge-sm"
    ctl = ["exec", "-i", sm, "xedgectl", "-c", "/etc/xedge/xedge-sm.yaml"]
    wait_for("session server admin socket", lambda: podman(*ctl, "user", "list", check=False)
             .returncode == 0, diag=lambda: logs(sm))
    users = [(f"{u}@{DOMAIN}", f"{u}-pw-{os.urandom(4).hex()}") for u in ("alice", "bob")]
    for jid, pw in users:
        podman(*ctl, "user", "add", jid, "-", input=pw + "\n")
    check_admin(sm_admin)

    ports = {"c2s": free_port(), "c2s-tls": free_port(), "admin": free_port()}
    edge = podman_single_replica(one(docs, "Deployment", "xedge"))
    podman_pod(edge["spec"]["template"], ports, {
        "XEDGE_BACKEND_ADDRESS": "%s:%d" % sm_link, "XEDGE_BACKEND_SECRET": BACKEND_SECRET})
    plays("standalone-edge", [config, tls, edge])
    ec = "xedge-pod-0-xedge"
    wait_for("the edge's /readyz 200", lambda: http_get(ports["admin"], "/readyz")[0] == 200,
             diag=lambda: logs(ec) + logs(sm))
    check_admin(ports["admin"])

    def sessions_on_the_session_server():
        out = podman(*ctl, "sessions").stdout
        assert all(jid in out for jid, _ in users), f"xedgectl sessions: {out}"
    chat(ports["c2s"], users, direct_tls_port=ports["c2s-tls"],
         while_online=sessions_on_the_session_server)

    # xedge-sm-0 is replaced: the edge is unready while it has no session server,
    # ready again once it relinks, and the accounts are still on the claim.
    podman("pod", "rm", "-f", "-t", "10", "xedge-sm-0")
    wait_for("the edge's /readyz 503 without a session server",
             lambda: http_get(ports["admin"], "/readyz")[0] == 503, timeout=30)
    plays("standalone-sm-again", [config, sm_pod])
    wait_for("the edge's /readyz 200 after relinking",
             lambda: http_get(ports["admin"], "/readyz")[0] == 200, diag=lambda: logs(ec) + logs(sm))
    chat(ports["c2s"], users)          # their accounts are in the claim: they log in

    drain(ec, ports["c2s"], users[0], ports["admin"])


def test_sidecar(images, cert, plays):
    docs = documents("sidecar.yaml")
    ports = {"c2s": free_port(), "c2s-tls": free_port(), "admin": free_port()}
    dep = podman_single_replica(one(docs, "Deployment", "xmpp"))
    prosody_alive = next(c for c in dep["spec"]["template"]["spec"]["containers"]
                         if c["name"] == "prosody")["livenessProbe"]["exec"]["command"]
    podman_pod(dep["spec"]["template"], ports, {})
    plays("sidecar", [one(docs, "ConfigMap", "xmpp-config"), podman_tls_configmap("xedge-tls", *cert),
                      one(docs, "PersistentVolumeClaim", "prosody-data"), dep])
    xc, pc = "xmpp-pod-0-xedge", "xmpp-pod-0-prosody"
    wait_for("Prosody's liveness command to pass", lambda: podman(
        "exec", pc, *prosody_alive, check=False).returncode == 0, diag=lambda: logs(pc))
    users = []
    for u in ("alice", "bob"):
        pw = f"{u}-pw-{os.urandom(4).hex()}"
        podman("exec", pc, "prosodyctl", "--config", "/etc/prosody/prosody.cfg.lua", "register",
               u, DOMAIN, pw)
        users.append((f"{u}@{DOMAIN}", pw))
    wait_for("xedge's /readyz 200", lambda: http_get(ports["admin"], "/readyz")[0] == 200,
             diag=lambda: logs(xc))
    check_admin(ports["admin"])

    chat(ports["c2s"], users, direct_tls_port=ports["c2s-tls"])
    # Prosody authenticated them (xedge only relays in upstream mode).
    assert "Authenticated as alice@example.org" in logs(pc), logs(pc)

    drain(xc, ports["c2s"], users[0], ports["admin"])
