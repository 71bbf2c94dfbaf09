"""Kubernetes manifests: render every kustomization (kubectl's kustomize v5) and validate
each object offline against the Kubernetes JSON schemas (kubernetes-validate, strict),
then check what the schemas cannot: hardening, probes, references between objects,
network isolation, the vector store each overlay wires (FAISS or Milvus) and the GPU
overlay."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with kubernetes-validate")
kv = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate==1.37.0 is not installed"
)

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ["base", "overlays/dev", "overlays/prod-gpu", "overlays/prod-milvus"]
MILVUS = "overlays/prod-milvus"  # the gateway uses Milvus; no vector-search runs
MILVUS_VALUES = REPO / "deploy" / "milvus" / "values.yaml"
# Oldest cluster we support (native gRPC probes are GA since 1.27) and the newest schema.
K8S_VERSIONS = ["1.30.0", "1.37.0"]
# Only the gateway may reach these (plus the namespaces named in ALLOWED_NAMESPACES).
PROTECTED = ["embedder", "vector-search", "annotation"]
ALLOWED_NAMESPACES = {"monitoring", "ingress-nginx"}

_CACHE: dict[str, list[dict]] = {}


def kustomize_command() -> list[str] | None:
    """kubectl's built-in kustomize (v5) or a standalone kustomize binary, if either exists."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


def run_kustomize(path: Path) -> subprocess.CompletedProcess[str]:
    cmd = kustomize_command()
    if cmd is None:
        pytest.skip("no kustomize renderer: install kubectl (>= 1.27) or kustomize v5")
    return subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=60)


def render(overlay: str) -> list[dict]:
    if overlay not in _CACHE:
        proc = run_kustomize(K8S / overlay)
        assert proc.returncode == 0, f"kustomize failed for {overlay}:\n{proc.stderr[-2000:]}"
        _CACHE[overlay] = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    return _CACHE[overlay]


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def docs(overlay: str) -> list[dict]:
    return render(overlay)


def of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def workloads(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}


def generated_config_map(docs: list[dict], name: str) -> dict:
    """A configMapGenerator output by its name without kustomize's hash suffix."""
    maps = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].rsplit("-", 1)[0] == name
    ]
    assert len(maps) == 1, f"expected one ConfigMap {name}-<hash>, found {len(maps)}"
    return maps[0]


def matches(selector: dict, labels: dict) -> bool:
    """matchLabels semantics (all our selectors use matchLabels only)."""
    assert set(selector) <= {"matchLabels"}, f"unsupported selector {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def pod_labels(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"]["labels"]


_VALIDATED: dict[tuple[str, str], str] = {}


def schema_errors(doc: dict, version: str) -> str:
    """'' when the object is valid; identical objects across overlays are checked once."""
    key = (json.dumps(doc, sort_keys=True), version)
    if key not in _VALIDATED:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kv.validate(doc, version, strict=True)
            _VALIDATED[key] = ""
        except kv.ValidationError as e:
            _VALIDATED[key] = f"{name}: {'.'.join(map(str, e.path))}: {e.message}"
        except kv.utils.SchemaNotFoundError as e:
            _VALIDATED[key] = f"{name}: {e.message}"
    return _VALIDATED[key]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_deploy_every_object_validates_strictly(docs: list[dict], version: str) -> None:
    errors = [err for doc in docs if (err := schema_errors(doc, version))]
    assert not errors, "\n".join(errors)


def test_deploy_expected_objects_exist(docs: list[dict], overlay: str) -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for want in [
        ("Deployment", "embedder"),
        ("Deployment", "gateway"),
        ("Deployment", "annotation"),
        ("Deployment", "redis"),
        ("HorizontalPodAutoscaler", "gateway"),
        ("HorizontalPodAutoscaler", "embedder"),
        ("NetworkPolicy", "default-deny"),
    ]:
        assert want in kinds, f"{want} missing from {overlay}"
    faiss = overlay != MILVUS
    for want in [("StatefulSet", "vector-search"), ("Service", "vector-search")]:
        assert (want in kinds) == faiss, f"{want} in {overlay}"
    for name in ["embedder", "gateway", "annotation", *(["vector-search"] if faiss else [])]:
        assert ("PodDisruptionBudget", name) in kinds
    assert all(
        d["metadata"].get("namespace") == "fashionrec" for d in docs if d["kind"] != "Namespace"
    )
    in_cluster_db = ("StatefulSet", "postgres") in kinds
    assert in_cluster_db == (not overlay.startswith("overlays/prod")), "prod: managed database"


def test_deploy_containers_are_hardened_and_sized(docs: list[dict]) -> None:
    for name, w in workloads(docs).items():
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for c in pod["containers"]:
            where = f"{name}/{c['name']}"
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1], f"{where}: untagged image {image}"
            assert not image.endswith(":latest"), f"{where}: latest tag"
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][part]), f"{where}: {part}"
            assert "readinessProbe" in c and "livenessProbe" in c, f"{where}: probes"
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            volumes = {v["name"] for v in pod.get("volumes", [])}
            claims = {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])}
            assert mounts <= volumes | claims, f"{where}: mount without volume"


def test_deploy_vector_search_is_one_statefulset_pod_with_grpc_probes(
    docs: list[dict], overlay: str
) -> None:
    if overlay == MILVUS:
        assert "vector-search" not in workloads(docs)
        return
    sts = of_kind(docs, "StatefulSet")["vector-search"]
    assert sts["spec"]["replicas"] == 1, "FAISS is one node: a second pod is an empty index"
    svc = of_kind(docs, "Service")[sts["spec"]["serviceName"]]
    assert svc["spec"]["clusterIP"] == "None", "the StatefulSet needs a headless Service"
    assert matches({"matchLabels": svc["spec"]["selector"]}, pod_labels(sts))
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    c = sts["spec"]["template"]["spec"]["containers"][0]
    assert any(m["name"] == claim["metadata"]["name"] and m["mountPath"] == "/data"
               for m in c["volumeMounts"])  # fmt: skip
    assert c["args"][:4] == ["--port", "50051", "--data-dir", "/data"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["grpc"]["port"] == 50051, probe


def gateway_env(docs: list[dict]) -> tuple[dict[str, str], dict[str, dict]]:
    """The gateway's ConfigMap values and its own env entries, by name."""
    gateway = of_kind(docs, "Deployment")["gateway"]
    c = gateway["spec"]["template"]["spec"]["containers"][0]
    cm = generated_config_map(docs, "gateway-config")
    assert cm["metadata"]["name"] in [e["configMapRef"]["name"] for e in c["envFrom"]]
    return cm["data"], {e["name"]: e for e in c.get("env", [])}


def test_deploy_gateway_reaches_its_one_vector_store(docs: list[dict], overlay: str) -> None:
    config, env = gateway_env(docs)
    assert "GATEWAY_VECTOR_SEARCH_SHARDS" not in config, "removed: the gateway refuses it"
    if overlay != MILVUS:
        sts = of_kind(docs, "StatefulSet")["vector-search"]
        assert config["GATEWAY_VECTOR_SEARCH_ADDRESS"] == f"{sts['spec']['serviceName']}:50051"
        assert config.get("GATEWAY_VECTOR_STORE", "faiss") == "faiss"
        assert "GATEWAY_MILVUS_URI" not in config and "GATEWAY_VECTOR_SEARCH_TOKEN" in env
        return
    assert config["GATEWAY_VECTOR_STORE"] == "milvus"
    assert config["GATEWAY_MILVUS_URI"] == "http://milvus.milvus:19530"
    assert "GATEWAY_VECTOR_SEARCH_ADDRESS" not in config
    assert "GATEWAY_VECTOR_SEARCH_TOKEN" not in env
    ref = env["GATEWAY_MILVUS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "fashionrec-secrets", "key": "milvus-token"}
    leftovers = [
        f"{d['kind']}/{d['metadata']['name']}" for d in docs if "vector-search" in json.dumps(d)
    ]
    assert not leftovers, f"FAISS objects or references left in {overlay}: {leftovers}"


def test_deploy_milvus_values_match_what_the_overlay_expects() -> None:
    """deploy/milvus/values.yaml (Helm chart) against prod-milvus: the Service the URI
    names (release and namespace in the documented install command), its port, the proxy
    labels the gateway's egress selects, and authentication for the token the gateway sends."""
    text = MILVUS_VALUES.read_text()
    values = yaml.safe_load(text)
    assert values["cluster"]["enabled"] is True and values["proxy"]["replicas"] >= 2
    assert values["queryNode"]["replicas"] >= 2
    config, _ = gateway_env(render(MILVUS))
    host, port = config["GATEWAY_MILVUS_URI"].removeprefix("http://").split(":")
    release, namespace = host.split(".")
    assert f"helm upgrade --install {release} zilliztech/milvus" in text
    assert f"--namespace {namespace} " in text
    assert values["service"]["port"] == int(port)
    user = yaml.safe_load(values["extraConfigFiles"]["user.yaml"])
    assert user["common"]["security"]["authorizationEnabled"] is True
    rule = next(
        dest
        for r in of_kind(render(MILVUS), "NetworkPolicy")["gateway-egress"]["spec"]["egress"]
        for dest in r["to"]
        if "namespaceSelector" in dest
    )
    assert rule["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": namespace}
    assert rule["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "milvus",  # the chart's name
        "app.kubernetes.io/instance": release,
        "component": "proxy",  # cluster mode: only the proxy serves clients
    }


def test_deploy_references_resolve(docs: list[dict], overlay: str) -> None:
    names = {
        kind: set(of_kind(docs, kind)) for kind in ("ConfigMap", "Secret", "PersistentVolumeClaim")
    }
    loads = workloads(docs)
    secrets_used = set()
    for name, w in loads.items():
        pod = w["spec"]["template"]["spec"]
        for v in pod.get("volumes", []):
            if "configMap" in v:
                assert v["configMap"]["name"] in names["ConfigMap"], name
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in names["PersistentVolumeClaim"]
        for c in pod["containers"]:
            for e in c.get("envFrom", []):
                assert e["configMapRef"]["name"] in names["ConfigMap"], name
            for e in c.get("env", []):
                if ref := e.get("valueFrom", {}).get("secretKeyRef"):
                    secrets_used.add((ref["name"], ref["key"]))
            port_names = {p["name"] for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                for action in ("httpGet", "tcpSocket"):
                    port = c.get(probe, {}).get(action, {}).get("port")
                    if isinstance(port, str):
                        assert port in port_names, f"{name}: {probe} port {port}"
    if overlay.startswith("overlays/prod"):
        assert not names["Secret"], "prod creates fashionrec-secrets out of band"
    else:
        secret = of_kind(docs, "Secret")["fashionrec-secrets"]
        for sname, key in secrets_used:
            assert sname == "fashionrec-secrets" and key in secret["stringData"], key
    for kind in ("HorizontalPodAutoscaler",):
        for name, hpa in of_kind(docs, kind).items():
            ref = hpa["spec"]["scaleTargetRef"]
            assert any(w["kind"] == ref["kind"] and n == ref["name"] for n, w in loads.items()), (
                name
            )
    for name, pdb in of_kind(docs, "PodDisruptionBudget").items():
        assert any(matches(pdb["spec"]["selector"], pod_labels(w)) for w in loads.values()), name
    for name, svc in of_kind(docs, "Service").items():
        targets = [
            w
            for w in loads.values()
            if matches({"matchLabels": svc["spec"]["selector"]}, pod_labels(w))
        ]
        assert targets, f"Service {name} selects no pods"
        for port in svc["spec"]["ports"]:
            if isinstance(port["targetPort"], str):
                declared = {
                    p["name"]
                    for w in targets
                    for c in w["spec"]["template"]["spec"]["containers"]
                    for p in c.get("ports", [])
                }
                assert port["targetPort"] in declared, f"Service {name}: {port['targetPort']}"


def reachable_from(docs: list[dict], target: str) -> tuple[set[str], set[str]]:
    """Workloads in the namespace and other namespaces whose traffic some policy admits."""
    loads = workloads(docs)
    labels = pod_labels(loads[target])
    pods, namespaces = set(), set()
    for name, pol in of_kind(docs, "NetworkPolicy").items():
        if not matches(pol["spec"]["podSelector"], labels):
            continue
        for rule in pol["spec"].get("ingress", []):
            sources = rule.get("from")
            if not sources:
                pods.add(f"* (policy {name} admits everyone)")
                continue
            for src in sources:
                if "namespaceSelector" in src:
                    ns = src["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                    namespaces.add(ns)
                else:
                    pods |= {
                        n for n, w in loads.items() if matches(src["podSelector"], pod_labels(w))
                    }
    return pods, namespaces


def test_deploy_network_policies_isolate_the_backends(docs: list[dict]) -> None:
    deny = of_kind(docs, "NetworkPolicy")["default-deny"]
    assert deny["spec"]["podSelector"] == {} and "ingress" not in deny["spec"]
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "egress" not in deny["spec"]
    for target in PROTECTED:
        if target not in workloads(docs):
            continue  # prod-milvus runs no vector-search
        pods, namespaces = reachable_from(docs, target)
        assert pods == {"gateway"}, f"{target} reachable from {pods}"
        assert namespaces <= ALLOWED_NAMESPACES, f"{target}: {namespaces}"
    assert reachable_from(docs, "redis") == ({"gateway"}, set())


DNS = "kube-system/kube-dns:53"
# Where each workload may open connections (besides cluster DNS): workload names, or
# "cidr:<range>" for addresses outside the cluster.
EGRESS = {
    "gateway": {"embedder", "vector-search", "annotation", "redis"},
    # prod-milvus: the Milvus proxy in its own namespace instead of vector-search.
    "gateway (milvus)": {"embedder", "milvus/milvus:19530", "annotation", "redis"},
    "annotation": {"postgres"},
    "embedder": set(),
    "vector-search": set(),
    "redis": set(),
    "postgres": set(),
}


def egress_from(docs: list[dict], source: str) -> set[str]:
    """Destinations some Egress policy admits for ``source``'s pods (see EGRESS)."""
    loads = workloads(docs)
    labels = pod_labels(loads[source])
    out: set[str] = set()
    for name, pol in of_kind(docs, "NetworkPolicy").items():
        if "Egress" not in pol["spec"]["policyTypes"]:
            continue
        if not matches(pol["spec"]["podSelector"], labels):
            continue
        for rule in pol["spec"].get("egress", []):
            dests = rule.get("to")
            assert dests and rule.get("ports"), f"policy {name} admits any destination or port"
            for dest in dests:
                if "ipBlock" in dest:
                    out.add(f"cidr:{dest['ipBlock']['cidr']}")
                elif "namespaceSelector" in dest:
                    ns = dest["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                    to = dest["podSelector"]["matchLabels"]
                    app = to.get("k8s-app") or to["app.kubernetes.io/name"]
                    ports = {p["port"] for p in rule["ports"]}
                    out.add(f"{ns}/{app}:{','.join(map(str, sorted(ports)))}")
                else:
                    out |= {
                        n for n, w in loads.items() if matches(dest["podSelector"], pod_labels(w))
                    }
    return out


def test_deploy_network_policies_restrict_egress(docs: list[dict], overlay: str) -> None:
    assert any(
        "Egress" in p["spec"]["policyTypes"] and p["spec"]["podSelector"] == {}
        and "egress" not in p["spec"]
        for p in of_kind(docs, "NetworkPolicy").values()
    ), "no default-deny egress policy"  # fmt: skip
    for name in workloads(docs):
        want = set(EGRESS[f"{name} (milvus)" if overlay == MILVUS and name == "gateway" else name])
        want |= {DNS}
        if overlay.startswith("overlays/prod") and name == "annotation":
            # The managed database lives outside the cluster: an address range, not pods.
            want = {DNS} | {d for d in egress_from(docs, name) if d.startswith("cidr:")}
            assert len(want) == 2, "prod annotation needs the database's address range"
        assert egress_from(docs, name) == want, f"{name} egress"


def test_deploy_vector_search_admits_only_the_gateway_on_grpc(docs: list[dict]) -> None:
    if "vector-search" not in workloads(docs):
        return  # prod-milvus (checked to have none in the test above)
    gateway_labels = pod_labels(workloads(docs)["gateway"])
    vs_labels = pod_labels(workloads(docs)["vector-search"])
    for name, pol in of_kind(docs, "NetworkPolicy").items():
        if "Ingress" not in pol["spec"]["policyTypes"] or not matches(
            pol["spec"]["podSelector"], vs_labels
        ):
            continue
        for rule in pol["spec"].get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            if 50051 not in ports and ports:
                continue
            assert rule.get("from"), f"{name} opens gRPC to everyone"
            for src in rule["from"]:
                assert set(src) == {"podSelector"}, f"{name}: {src}"
                assert src["podSelector"]["matchLabels"].items() <= gateway_labels.items(), name


def test_deploy_gpu_only_in_the_gpu_overlay(docs: list[dict], overlay: str) -> None:
    emb = of_kind(docs, "Deployment")["embedder"]
    pod = emb["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["image"].startswith("tensorflow/serving:")
    assert "--model_config_file=/models/models.config" in c["args"]
    # Ready only when the model is AVAILABLE, not merely when the port is open.
    assert "AVAILABLE" in " ".join(c["readinessProbe"]["exec"]["command"])
    hpa = of_kind(docs, "HorizontalPodAutoscaler")["embedder"]
    metric_types = [m["type"] for m in hpa["spec"]["metrics"]]
    if overlay.startswith("overlays/prod"):
        assert c["image"].endswith("-gpu")
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
            "tolerations"
        ]
        assert metric_types == ["Pods"], "GPU replicas scale on request rate"
    else:
        assert "nvidia.com/gpu" not in c["resources"]["limits"]
        assert "nodeSelector" not in pod and not c["image"].endswith("-gpu")
        assert metric_types == ["Resource"]
    gw = of_kind(docs, "HorizontalPodAutoscaler")["gateway"]
    assert gw["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_deploy_faiss_runs_on_a_gpu_only_in_the_gpu_overlay(docs: list[dict], overlay: str) -> None:
    """prod-gpu: the faiss-gpu image (tag -gpu, REPLACE=faiss-cpu=faiss-gpu-cu12 in
    deploy/images/Dockerfile), one GPU, VECTOR_SEARCH_USE_GPU=true, GPU nodes only.
    Elsewhere: the CPU image, no GPU."""
    if overlay == MILVUS:
        assert "vector-search" not in workloads(docs)
        return
    pod = of_kind(docs, "StatefulSet")["vector-search"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    if overlay == "overlays/prod-gpu":
        assert c["image"].endswith(":0.1.0-gpu"), c["image"]
        assert env["VECTOR_SEARCH_USE_GPU"] == "true"
        for part in ("requests", "limits"):
            assert c["resources"][part]["nvidia.com/gpu"] == 1, part
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    else:
        assert not c["image"].endswith("-gpu") and "VECTOR_SEARCH_USE_GPU" not in env
        assert "nvidia.com/gpu" not in c["resources"]["limits"] and "nodeSelector" not in pod


def test_deploy_tfserving_monitoring_config_is_the_one_the_image_uses(docs: list[dict]) -> None:
    cm = of_kind(docs, "ConfigMap")["embedder-tfserving"]
    on_disk = (REPO / "deploy" / "tfserving" / "monitoring.config").read_text()
    assert cm["data"]["monitoring.config"] == on_disk


# Negative checks: the tools above do reject broken input.


def test_deploy_validator_rejects_broken_manifests() -> None:
    gateway = of_kind(render("base"), "Deployment")["gateway"]
    kv.validate(gateway, K8S_VERSIONS[0], strict=True)
    wrong_type = copy.deepcopy(gateway)
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kv.ValidationError):
        kv.validate(wrong_type, K8S_VERSIONS[0], strict=True)
    typo = copy.deepcopy(gateway)
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"tcpSocket": {"port": 1}}
    with pytest.raises(kv.ValidationError):
        kv.validate(typo, K8S_VERSIONS[0], strict=True)


def test_deploy_renderer_fails_on_unresolved_patch(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (base / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "resources: [../base]\npatches:\n  - patch: |-\n"
        "      apiVersion: apps/v1\n      kind: Deployment\n"
        "      metadata: {name: no-such-deployment}\n      spec: {replicas: 3}\n"
    )
    assert run_kustomize(base).returncode == 0
    proc = run_kustomize(overlay)
    assert proc.returncode != 0
    assert "no-such-deployment" in proc.stderr
