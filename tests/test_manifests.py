"""The Kubernetes manifests and the multi-host training recipes, checked offline.

No cluster, no kustomize and no network here: every manifest document (the base, the
PostgreSQL overlay as built, the training Job) is validated strictly (unknown fields
refused) against the Kubernetes OpenAPI schemas that kubernetes-validate bundles for
``KUBERNETES_VERSION``, and against the oldest version the manifests promise to work with.
The kustomizations are built here by a small strategic merge, and everything is checked
against the service itself: the ``GLUE_TF_*`` variables it reads and the values it accepts
(``serving.settings``), the routes it registers, the Dockerfile's user and ports, and, for
training, the ``TF_CONFIG`` that ``glue_tf.distribute`` turns into MultiWorkerMirroredStrategy.
"""

from __future__ import annotations

import base64
import copy
import inspect
import json
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
KUBE = ROOT / "deploy" / "kubernetes"
BASE = KUBE / "base"
OVERLAY = KUBE / "overlays" / "postgres"
TRAINING = KUBE / "training"
TWO_HOSTS = ROOT / "scripts" / "train_two_hosts.sh"

# The schemas the manifests are held to: the newest kubernetes-validate 1.37.0 bundles, and the
# oldest minor version they are meant to run on (nothing newer than it is used).
KUBERNETES_VERSION = "1.37"
OLDEST_KUBERNETES_VERSION = "1.30"
VERSIONS = (KUBERNETES_VERSION, OLDEST_KUBERNETES_VERSION)

# The keys build() emulates; kustomize has many more (labels, images, namespace, ...), but one
# this offline build does not apply would make what is validated here differ from what
# `kubectl apply -k` creates, so any other key fails.
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "patches", "images"}
PATCH_KEYS = {"path"}
IMAGE_KEYS = {"name", "newName", "newTag"}
# Strategic merge keys (the Kubernetes API's patchMergeKey) of the lists the patches may touch;
# every other list is replaced, maps are merged recursively.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort"}
# Enumerations the OpenAPI schemas state only in prose: a wrong value passes the schema.
ENUMS = {"imagePullPolicy": {"Always", "IfNotPresent", "Never"}, "restartPolicy": {"Always", "OnFailure", "Never"},
         "protocol": {"TCP", "UDP", "SCTP"}, "completionMode": {"Indexed", "NonIndexed"},
         "whenUnsatisfiable": {"DoNotSchedule", "ScheduleAnyway"}}
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def dockerfile_stage(name: str) -> str:
    """The text of the Dockerfile's stage ``FROM ... AS <name>``, up to the next FROM."""
    stages = re.split(r"^FROM ", DOCKERFILE, flags=re.M)
    found = [stage for stage in stages if re.match(rf"\S+ AS {name}\s", stage)]
    assert len(found) == 1, f"Dockerfile: {len(found)} stages named {name}"
    return found[0]


def serving_stage() -> str:
    return dockerfile_stage("serving")


# --- loading, building, validating -------------------------------------------------------------

def load_docs(path: Path) -> list[dict]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
    for doc in docs:
        assert isinstance(doc, dict) and "kind" in doc and "apiVersion" in doc, f"{path}: not a Kubernetes object"
    return docs


def read_kustomization(folder: Path) -> dict:
    path = folder / "kustomization.yaml"
    kustomization = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1", path
    assert kustomization["kind"] == "Kustomization", path
    unknown = set(kustomization) - KUSTOMIZATION_KEYS
    assert not unknown, f"{path}: keys this offline build does not emulate: {sorted(unknown)}"
    assert kustomization.get("resources"), f"{path}: no resources"
    for entry in kustomization["resources"]:
        target = (folder / entry).resolve()
        assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{path}: resource {entry} not found"
    for entry in kustomization.get("patches", []):
        assert set(entry) <= PATCH_KEYS and "path" in entry, f"{path}: patch {entry} (only `path` is emulated)"
        assert (folder / entry["path"]).is_file(), f"{path}: patch {entry['path']} not found"
    for entry in kustomization.get("images", []):
        assert set(entry) <= IMAGE_KEYS and "name" in entry, f"{path}: image {entry} (only {sorted(IMAGE_KEYS)})"
    return kustomization


def set_images(docs: list[dict], images: list[dict]) -> None:
    """kustomize's ``images:``: a container whose image is ``name`` (any tag) gets ``newName``/``newTag``."""
    for doc in docs:
        template = doc.get("spec", {}).get("template", {}).get("spec", {})
        for c in template.get("containers", []) + template.get("initContainers", []):
            name = c["image"].split(":")[0]
            for entry in images:
                if entry["name"] == name:
                    tag = entry.get("newTag", c["image"].partition(":")[2])
                    c["image"] = entry.get("newName", name) + (f":{tag}" if tag else "")


def strategic_merge(base, patch, field: str | None = None):
    """kustomize's strategic merge for what the patches here use: maps merged recursively (null
    deletes a key), lists of ``MERGE_KEYS`` merged by their key, every other list replaced."""
    if isinstance(patch, dict):
        if not isinstance(base, dict):
            return copy.deepcopy(patch)
        directives = [key for key in patch if key.startswith("$")]
        assert not directives, f"patch directives not emulated: {directives}"
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in base:
                merged[key] = strategic_merge(base[key], value, key)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(patch, list) and isinstance(base, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        merged = copy.deepcopy(base)
        for item in patch:
            for index, old in enumerate(merged):
                if old.get(key) == item.get(key):
                    merged[index] = strategic_merge(old, item)
                    break
            else:
                merged.append(copy.deepcopy(item))
        return merged
    return copy.deepcopy(patch)


def build(folder: Path) -> list[dict]:
    """The objects ``kubectl apply -k folder`` would create (for the keys in ``KUSTOMIZATION_KEYS``)."""
    kustomization = read_kustomization(folder)
    docs: list[dict] = []
    for entry in kustomization["resources"]:
        target = (folder / entry).resolve()
        docs += build(target) if target.is_dir() else load_docs(target)
    for entry in kustomization.get("patches", []):
        for patch in load_docs(folder / entry["path"]):
            targets = [i for i, doc in enumerate(docs) if doc["kind"] == patch["kind"]
                       and doc["apiVersion"] == patch["apiVersion"]
                       and doc["metadata"]["name"] == patch["metadata"]["name"]]
            assert len(targets) == 1, f"{entry['path']}: patches {len(targets)} objects, not 1"
            docs[targets[0]] = strategic_merge(docs[targets[0]], patch)
    set_images(docs, kustomization.get("images", []))
    names = [(doc["kind"], doc["metadata"]["name"]) for doc in docs]
    assert len(names) == len(set(names)), f"{folder}: an object is defined twice: {names}"
    return docs


def validate_strict(doc: dict, version: str) -> None:
    """Strict schema validation; an object without a bundled schema fails (all kinds here are built in)."""
    name = f"{doc['kind']}/{doc.get('metadata', {}).get('name')}"
    try:
        used = kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as error:
        pytest.fail(f"{name}: {error.message}")
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path) or "(top)"
        pytest.fail(f"{name} is not a valid Kubernetes {error.version} object at {where}: {error.message}")
    assert used == version, f"{name}: validated against Kubernetes {used}, not {version} (no schemas for {version})"


def check_enums(node, where: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ENUMS and isinstance(value, str):
                assert value in ENUMS[key], f"{where}.{key}: {value!r} is not one of {sorted(ENUMS[key])}"
            check_enums(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            check_enums(item, f"{where}[{index}]")


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict, name: str | None = None) -> dict:
    containers = pod_spec(workload)["containers"]
    if name is None:
        assert len(containers) == 1, f"{workload['metadata']['name']}: {len(containers)} containers"
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def secret_value(secret: dict, key: str) -> str:
    if key in secret.get("stringData", {}):
        return secret["stringData"][key]
    assert key in secret.get("data", {}), f"Secret {secret['metadata']['name']} has no key {key}"
    return base64.b64decode(secret["data"][key]).decode()


def environment(docs: list[dict], c: dict) -> dict[str, str]:
    """The environment the container's process gets (envFrom and env, references resolved in ``docs``)."""
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            env.update(one(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            secret = one(docs, "Secret", source["secretRef"]["name"])
            env.update({k: secret_value(secret, k) for k in {**secret.get("data", {}), **secret.get("stringData", {})}})
    for item in c.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secret_value(one(docs, "Secret", ref["name"]), ref["key"])
        elif "configMapKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = one(docs, "ConfigMap", ref["name"])["data"][ref["key"]]
        else:
            pytest.fail(f"env {item['name']}: a source this test does not resolve: {item}")
    return env


def mount(c: dict, path: str) -> dict:
    found = [m for m in c.get("volumeMounts", []) if m["mountPath"] == path]
    assert len(found) == 1, f"{c['name']}: {len(found)} volume mounts at {path}"
    return found[0]


def volume(workload: dict, name: str) -> dict:
    return next(v for v in pod_spec(workload)["volumes"] if v["name"] == name)


def named_port(c: dict, port) -> int:
    if isinstance(port, int):
        return port
    found = [p["containerPort"] for p in c.get("ports", []) if p.get("name") == port]
    assert len(found) == 1, f"{c['name']}: no container port named {port}"
    return found[0]


def quantity(text) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text)).groups()
    units = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    return float(number) * units[unit]


def service_variables() -> set[str]:
    """Every environment variable the service reads: its two tables, plus the ones read directly."""
    from serving import settings

    names = {variable for variable, _ in settings.SETTINGS_VARIABLES.values()}
    names |= {variable for variable, _ in settings.SERVER_VARIABLES.values()}
    names |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z0-9_]+)"', inspect.getsource(settings)))
    return names


def manifest_files() -> list[Path]:
    return sorted(KUBE.rglob("*.yaml"))


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return build(BASE)


@pytest.fixture(scope="module")
def overlay() -> list[dict]:
    return build(OVERLAY)


@pytest.fixture(scope="module")
def training() -> list[dict]:
    return build(TRAINING)


@pytest.fixture(scope="module", params=["base", "overlay"])
def serving_docs(request, base, overlay) -> list[dict]:
    return {"base": base, "overlay": overlay}[request.param]


# --- the checker itself -------------------------------------------------------------------------

def test_the_validator_refuses_unknown_fields_kinds_and_missing_schemas():
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"A": "1"}}
    validate_strict(good, KUBERNETES_VERSION)
    with pytest.raises(pytest.fail.Exception, match="unexpected|Additional properties"):
        validate_strict({**good, "spec": {}}, KUBERNETES_VERSION)  # no such field on a ConfigMap
    with pytest.raises(pytest.fail.Exception, match="valid"):
        validate_strict({**good, "data": {"A": 1}}, KUBERNETES_VERSION)  # values are strings
    with pytest.raises(pytest.fail.Exception, match="Couldn't find schema"):
        validate_strict({**good, "kind": "ConfigMapp"}, KUBERNETES_VERSION)
    with pytest.raises(pytest.fail.Exception, match="Couldn't find schema"):
        validate_strict({**good, "apiVersion": "v2"}, KUBERNETES_VERSION)


def test_strategic_merge_merges_containers_and_env_by_name_and_replaces_other_lists():
    base = {"spec": {"replicas": 2, "containers": [
        {"name": "a", "args": ["x", "y"], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "b", "image": "b:1"}]}}
    patch = {"spec": {"containers": [
        {"name": "a", "args": ["z"], "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]},
        {"name": "c", "image": "c:1"}], "replicas": None}}
    merged = strategic_merge(base, patch)
    assert merged == {"spec": {"containers": [
        {"name": "a", "args": ["z"], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"},
                                             {"name": "C", "value": "4"}]},
        {"name": "b", "image": "b:1"}, {"name": "c", "image": "c:1"}]}}
    assert base["spec"]["containers"][0]["env"][1]["value"] == "2"  # the base is not modified


# --- every manifest against the Kubernetes schemas ----------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("folder", [BASE, OVERLAY, TRAINING], ids=["base", "overlay-postgres", "training"])
def test_every_built_object_is_valid_kubernetes(folder, version):
    docs = build(folder)
    assert docs
    for doc in docs:
        validate_strict(doc, version)
        check_enums(doc, f"{doc['kind']}/{doc['metadata']['name']}")


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_file_is_valid_kubernetes_or_a_kustomization(version):
    """Each file on its own, including the overlay's patch document (a partial Deployment that
    must still be schema-valid field by field), and no file lies outside every kustomization."""
    used = set()
    for folder in (BASE, OVERLAY, TRAINING):
        kustomization = read_kustomization(folder)
        used.add(folder / "kustomization.yaml")
        used |= {(folder / e).resolve() for e in kustomization["resources"] if (folder / e).is_file()}
        used |= {(folder / e["path"]).resolve() for e in kustomization.get("patches", [])}
    files = manifest_files()
    assert {p.resolve() for p in files} == {p.resolve() for p in used}, "a manifest no kustomization uses"
    for path in files:
        if path.name == "kustomization.yaml":
            continue
        for doc in load_docs(path):
            if path.name.endswith("-patch.yaml"):  # a partial object: the schema minus required fields
                doc = strategic_merge(one(build(BASE), doc["kind"], doc["metadata"]["name"]), doc)
            validate_strict(doc, version)


# --- the serving Deployment and the service ------------------------------------------------------

def test_every_glue_tf_variable_in_the_manifests_is_one_the_service_reads():
    known = service_variables()
    assert {"PORT", "GLUE_TF_MODEL_DIR", "GLUE_TF_STATE_DIR", "GLUE_TF_API_TOKEN",
            "GLUE_TF_GRACEFUL_TIMEOUT", "GLUE_TF_DATABASE_URL"} <= known
    named = set()
    for path in manifest_files():
        named |= set(re.findall(r"\bGLUE_TF_[A-Z0-9_]+", path.read_text(encoding="utf-8")))
    assert "GLUE_TF_DATABASE_URL" in named and "GLUE_TF_STATE_DIR" in named
    assert sorted(named - known) == [], "variables the service does not read (serving/settings.py)"


def test_the_configmap_sets_only_service_variables(serving_docs):
    config = one(serving_docs, "ConfigMap", "glue-tf-config")
    assert config["data"]
    assert sorted(set(config["data"]) - service_variables()) == []


def test_the_service_accepts_the_whole_configuration(serving_docs, monkeypatch):
    """The pod's environment, run through the service's own settings parsers."""
    from serving.settings import ServerSettings, Settings, SettingsError, check_exposure

    deployment = one(serving_docs, "Deployment", "glue-tf")
    env = environment(serving_docs, container(deployment, "glue-tf"))
    for name in [n for n in os.environ if n.startswith("GLUE_TF_") or n == "PORT"]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        settings, server = Settings.from_env(), ServerSettings.from_env()
        check_exposure(settings, server)
    except SettingsError as error:
        pytest.fail(f"the service refuses the manifests' settings: {error}")
    assert settings.api_token == env["GLUE_TF_API_TOKEN"]
    assert server.bind == f"0.0.0.0:{named_port(container(deployment, 'glue-tf'), 'gunicorn')}"
    assert not server.loopback_only  # so the token is required, and set from the Secret


def test_the_proxy_sidecar_runs_the_images_proxy_over_the_same_settings(serving_docs, monkeypatch):
    """The sidecar's command is the image's own launcher in proxy-only mode, on files the Dockerfile
    copies from this checkout, in front of gunicorn's port in the same pod; its settings pass the same checks."""
    from serving.settings import ServerSettings, Settings, check_exposure

    sys.path.insert(0, str(ROOT / "scripts"))
    import serve_deployed

    deployment = one(serving_docs, "Deployment", "glue-tf")
    proxy, app = container(deployment, "proxy"), container(deployment, "glue-tf")
    assert proxy["image"] == app["image"]
    copied = {dest: src for src, dest in re.findall(r"^COPY (?!--from)(\S+) (\S+)", serving_stage(), re.M)}
    assert copied[proxy["command"][1]] == "scripts/serve_deployed.py"
    args = serve_deployed.parse_args(proxy["command"][2:])
    assert copied[args.template] == "deploy/nginx/glue-tf.conf"
    assert args.proxy_only == f"127.0.0.1:{named_port(app, 'gunicorn')}"
    env = environment(serving_docs, proxy)
    for name in [n for n in os.environ if n.startswith("GLUE_TF_") or n == "PORT"]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    check_exposure(settings, ServerSettings.from_env(bind=f"0.0.0.0:{env['PORT']}"))
    # Its body limit and timeout are the service's: the same ConfigMap.
    assert [s["configMapRef"]["name"] for s in proxy["envFrom"]] == [s["configMapRef"]["name"] for s in app["envFrom"]]
    state = mount(proxy, settings.state_dir)
    assert "emptyDir" in volume(deployment, state["name"])


def test_images_are_pinned_to_the_package_version(base, overlay, training):
    """No `:latest`: every image has a tag, and the project's own are tagged with the package version,
    as `make docker-build` tags them, through kustomize `images:`."""
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    makefile = (ROOT / "Makefile").read_text()
    own = {re.search(rf"^{var} \?= (\S+)", makefile, re.M)[1] for var in ("IMAGE", "TRAIN_IMAGE")}
    seen = set()
    for docs in (base, overlay, training):
        for doc in docs:
            for c in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                name, _, tag = c["image"].partition(":")
                assert tag and tag != "latest", f"{doc['metadata']['name']}/{c['name']}: image {c['image']} not pinned"
                if name in own:
                    assert tag == version, f"{c['image']}: not the package version {version}"
                    seen.add(name)
    assert seen == own
    for path in manifest_files():
        assert ":latest" not in path.read_text(encoding="utf-8"), path


def test_deployment_shape(serving_docs):
    deployment = one(serving_docs, "Deployment", "glue-tf")
    c = container(deployment, "glue-tf")
    assert "replicas" not in deployment["spec"]  # the HPA owns the count
    assert [x["name"] for x in pod_spec(deployment)["containers"]] == ["glue-tf", "proxy"]
    assert c["image"].split(":")[0] == re.search(r"^IMAGE \?= (\S+)", (ROOT / "Makefile").read_text(), re.M)[1]
    assert c["command"] == ["gunicorn", "-c", "/etc/glue-tf/gunicorn.conf.py"]
    assert re.search(r"^COPY serving/gunicorn\.conf\.py /etc/glue-tf/gunicorn\.conf\.py$", serving_stage(), re.M)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert [s["configMapRef"]["name"] for s in c["envFrom"]] == ["glue-tf-config"]
    token = next(e for e in c["env"] if e["name"] == "GLUE_TF_API_TOKEN")
    ref = token["valueFrom"]["secretKeyRef"]
    assert "REPLACE" in secret_value(one(serving_docs, "Secret", ref["name"]), ref["key"])  # marked placeholder
    for kind in ("cpu", "memory"):
        requested, limit = c["resources"]["requests"][kind], c["resources"]["limits"][kind]
        assert 0 < quantity(requested) <= quantity(limit), (kind, requested, limit)
    assert pod_spec(deployment)["automountServiceAccountToken"] is False


def test_ports_agree_from_dockerfile_to_service(serving_docs):
    """Clients reach the proxy only (the Service's port); Prometheus scrapes gunicorn's, as the image has them."""
    deployment = one(serving_docs, "Deployment", "glue-tf")
    proxy, app = container(deployment, "proxy"), container(deployment, "glue-tf")
    port = named_port(proxy, "http")
    assert port == int(environment(serving_docs, proxy)["PORT"])
    exposed = re.search(r"^EXPOSE (.+)$", serving_stage(), re.M)[1].split()
    gunicorn = named_port(app, "gunicorn")
    assert {str(port), str(gunicorn)} <= set(exposed)
    assert environment(serving_docs, app)["GLUE_TF_BIND"] == f"0.0.0.0:{gunicorn}"
    assert f'"--gunicorn-bind", "0.0.0.0:{gunicorn}"' in serving_stage()  # the image alone: same port
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == gunicorn and annotations["prometheus.io/path"] == "/metrics"
    service = one(serving_docs, "Service", "glue-tf")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert [(p["port"], named_port(proxy, p["targetPort"])) for p in service["spec"]["ports"]] == [(80, port)]
    assert "http" not in [p["name"] for p in app["ports"]]


def test_probes_are_routes_the_app_registers(serving_docs):
    from flask import Flask

    from serving import blueprints

    app = Flask("routes")
    for blueprint in blueprints.ALL:
        app.register_blueprint(blueprint)
    routes = app.url_map.bind("localhost")
    deployment = one(serving_docs, "Deployment", "glue-tf")
    c, proxy = container(deployment, "glue-tf"), container(deployment, "proxy")
    port = named_port(c, "gunicorn")
    expected = {"readinessProbe": "operations.readyz", "livenessProbe": "operations.healthz",
                "startupProbe": "operations.healthz"}
    for probe, endpoint in expected.items():
        get = c[probe]["httpGet"]
        assert routes.match(get["path"], method="GET")[0] == endpoint, probe
        assert named_port(c, get["port"]) == port, probe
    # The pod is ready (gets Service traffic) when the service answers ready through the proxy.
    ready = proxy["readinessProbe"]["httpGet"]
    assert routes.match(ready["path"], method="GET")[0] == "operations.readyz"
    assert named_port(proxy, ready["port"]) == named_port(proxy, "http")
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # time to load every model
    assert c["readinessProbe"]["periodSeconds"] < c["livenessProbe"]["periodSeconds"]


def test_shutdown_outlasts_the_endpoint_removal_and_the_drain(serving_docs, monkeypatch):
    from serving.settings import ServerSettings

    deployment = one(serving_docs, "Deployment", "glue-tf")
    c = container(deployment, "glue-tf")
    for name in [n for n in os.environ if n.startswith("GLUE_TF_")]:
        monkeypatch.delenv(name)
    for name, value in environment(serving_docs, c).items():
        monkeypatch.setenv(name, value)
    drain = ServerSettings.from_env().graceful_timeout  # the ConfigMap's, or the default 30
    command = c["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2
    pause = int(command[1])
    assert pause > 0
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] > pause + drain


def test_volumes_models_read_only_state_in_an_emptydir(serving_docs, monkeypatch):
    from serving.settings import Settings

    deployment = one(serving_docs, "Deployment", "glue-tf")
    c = container(deployment, "glue-tf")
    env = environment(serving_docs, c)
    for name in [n for n in os.environ if n.startswith("GLUE_TF_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    models = mount(c, settings.model_dir)
    assert models["readOnly"] is True
    claim = volume(deployment, models["name"])["persistentVolumeClaim"]
    assert claim == {"claimName": "glue-tf-models", "readOnly": True}
    state = mount(c, settings.state_dir)
    assert state.get("readOnly", False) is False
    assert "emptyDir" in volume(deployment, state["name"])
    assert not settings.state_dir.startswith(settings.model_dir.rstrip("/") + "/")
    assert "emptyDir" in volume(deployment, mount(c, "/tmp")["name"])  # the root filesystem is read-only
    # The image's own defaults and volumes are the same folders.
    assert re.search(rf"GLUE_TF_MODEL_DIR={re.escape(settings.model_dir)}\s", DOCKERFILE)
    assert re.search(rf"GLUE_TF_STATE_DIR={re.escape(settings.state_dir)}\s", DOCKERFILE)
    volumes = json.loads(re.search(r"^VOLUME (\[.*\])$", DOCKERFILE, re.M)[1])
    assert {settings.model_dir, settings.state_dir} <= set(volumes)


def test_security_context_is_the_dockerfiles_non_root_user(serving_docs):
    uid = int(re.search(r"^USER (\d+)", serving_stage(), re.M)[1])
    assert uid == 10001
    deployment = one(serving_docs, "Deployment", "glue-tf")
    pod = pod_spec(deployment)["securityContext"]
    for c in pod_spec(deployment)["containers"]:
        effective = {**pod, **c["securityContext"]}  # the container's own settings win
        assert effective["runAsNonRoot"] is True, c["name"]
        assert effective["runAsUser"] == uid, c["name"]
        assert effective["readOnlyRootFilesystem"] is True, c["name"]
        assert effective["allowPrivilegeEscalation"] is False, c["name"]
        assert effective["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert effective["seccompProfile"] == {"type": "RuntimeDefault"}, c["name"]
        for kind in ("cpu", "memory"):  # the HPA's utilization counts every container's request
            assert 0 < quantity(c["resources"]["requests"][kind]) <= quantity(c["resources"]["limits"][kind])


def test_autoscaler_and_disruption_budget_fit_the_deployment(serving_docs):
    deployment = one(serving_docs, "Deployment", "glue-tf")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    hpa = one(serving_docs, "HorizontalPodAutoscaler", "glue-tf")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "glue-tf"}
    assert "replicas" not in deployment["spec"]  # a re-apply would reset the HPA's count
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert "cpu" in container(deployment, "glue-tf")["resources"]["requests"]  # utilization needs a request
    pdb = one(serving_docs, "PodDisruptionBudget", "glue-tf")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # a drain can always evict one pod
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


# --- the PostgreSQL overlay ---------------------------------------------------------------------

def test_overlay_adds_the_database_url_to_the_base_env(base, overlay):
    base_env = [e["name"] for e in container(one(base, "Deployment", "glue-tf"), "glue-tf")["env"]]
    merged = container(one(overlay, "Deployment", "glue-tf"), "glue-tf")
    names = [e["name"] for e in merged["env"]]
    assert names == base_env + ["GLUE_TF_DATABASE_URL"]
    url = next(e for e in merged["env"] if e["name"] == "GLUE_TF_DATABASE_URL")
    assert url["valueFrom"] == {"secretKeyRef": {"name": "glue-tf-postgres", "key": "url"}}
    assert "GLUE_TF_DATABASE_URL" not in base_env
    # Everything else of the base is still there, unchanged.
    base_kinds = {(d["kind"], d["metadata"]["name"]) for d in base}
    assert base_kinds < {(d["kind"], d["metadata"]["name"]) for d in overlay}
    for doc in base:
        if doc["kind"] != "Deployment":
            assert one(overlay, doc["kind"], doc["metadata"]["name"]) == doc


def test_overlay_database_url_reaches_the_bundled_postgres(overlay, monkeypatch):
    from serving.settings import Settings

    deployment = one(overlay, "Deployment", "glue-tf")
    url = urllib.parse.urlsplit(environment(overlay, container(deployment, "glue-tf"))["GLUE_TF_DATABASE_URL"])
    statefulset = one(overlay, "StatefulSet", "postgres")
    postgres = container(statefulset, "postgres")
    env = environment(overlay, postgres)
    service = one(overlay, "Service", statefulset["spec"]["serviceName"])
    assert url.scheme in ("postgresql", "postgres")
    assert url.hostname == service["metadata"]["name"]
    [port] = service["spec"]["ports"]
    assert url.port == port["port"] == named_port(postgres, port["targetPort"]) == 5432
    assert url.username == env["POSTGRES_USER"]
    assert url.password == env["POSTGRES_PASSWORD"] and "REPLACE" in url.password
    assert url.path == "/" + env["POSTGRES_DB"]
    assert service["spec"]["selector"].items() <= statefulset["spec"]["template"]["metadata"]["labels"].items()
    assert not (service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items())
    monkeypatch.setenv("GLUE_TF_DATABASE_URL", url.geturl())
    assert Settings.from_env().database_url == url.geturl()


def test_overlay_postgres_is_15_non_root_with_pgdata_in_a_subfolder(overlay):
    statefulset = one(overlay, "StatefulSet", "postgres")
    postgres = container(statefulset, "postgres")
    image, _, tag = postgres["image"].partition(":")
    assert image == "postgres" and tag.split(".")[0].split("-")[0] == "15"
    effective = {**pod_spec(statefulset)["securityContext"], **postgres["securityContext"]}
    assert effective["runAsNonRoot"] is True and effective["runAsUser"] == 999
    assert effective["allowPrivilegeEscalation"] is False
    pgdata = Path(environment(overlay, postgres)["PGDATA"])
    data_mount = next(m for m in postgres["volumeMounts"] if pgdata.is_relative_to(m["mountPath"]))
    assert pgdata != Path(data_mount["mountPath"])  # a subfolder: the volume's root is not empty (lost+found)
    assert data_mount["name"] in [t["metadata"]["name"] for t in statefulset["spec"]["volumeClaimTemplates"]]
    if effective.get("readOnlyRootFilesystem"):
        assert {"/var/run/postgresql", "/tmp"} <= {m["mountPath"] for m in postgres["volumeMounts"]}


# --- multi-host training ------------------------------------------------------------------------

def fake_glue_tf(folder: Path) -> Path:
    """A `glue-tf` that prints its TF_CONFIG and arguments as JSON instead of training."""
    folder.mkdir(exist_ok=True)
    script = folder / "glue-tf"
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                      "print(json.dumps({'tf_config': os.environ.get('TF_CONFIG'), 'argv': sys.argv[1:]}))\n")
    script.chmod(0o755)
    return folder


def chief_of(tf_config: dict) -> bool:
    """``glue_tf.distribute.is_chief`` on a strategy whose resolver reads this TF_CONFIG
    (as TFConfigClusterResolver does: task type and index, the cluster's jobs)."""
    from glue_tf import distribute

    resolver = SimpleNamespace(task_type=tf_config["task"]["type"], task_id=tf_config["task"]["index"],
                               cluster_spec=lambda: SimpleNamespace(as_dict=lambda: tf_config["cluster"]))
    return distribute.is_chief(SimpleNamespace(cluster_resolver=resolver))


def check_tf_config(tf_config: dict, workers: list[str], index: int, monkeypatch) -> None:
    from glue_tf import distribute

    assert tf_config == {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert distribute.cluster_workers() == len(workers) > 1  # select_strategy: MultiWorkerMirroredStrategy
    assert chief_of(tf_config) is (index == 0)  # only worker 0 writes checkpoints, exports, reports


def training_job(training) -> tuple[dict, dict, dict]:
    job = one(training, "Job", "glue-train")
    return job, container(job), one(training, "Service", pod_spec(job)["subdomain"])


def run_entrypoint(training, tmp_path, index: int | None, shell: str | None = None):
    job, c, _ = training_job(training)
    command = list(c["command"])
    if shell:
        command[0] = shell
    env = {"PATH": f"{fake_glue_tf(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}"}
    env.update({e["name"]: e["value"] for e in c["env"]})
    if index is not None:
        env["JOB_COMPLETION_INDEX"] = str(index)
    return subprocess.run(command + c.get("args", []), env=env, capture_output=True, text=True, timeout=30)


def test_training_job_is_an_indexed_job_on_a_headless_service(training):
    job, c, service = training_job(training)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 2
    env = {e["name"]: e["value"] for e in c["env"]}
    assert int(env["GLUE_TRAIN_WORKERS"]) == spec["completions"]
    assert env["GLUE_TRAIN_JOB"] == job["metadata"]["name"]  # Indexed Job pods are <job>-<index>
    assert env["GLUE_TRAIN_SUBDOMAIN"] == pod_spec(job)["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= job["spec"]["template"]["metadata"]["labels"].items()
    [port] = service["spec"]["ports"]
    assert port["port"] == int(env["GLUE_TRAIN_PORT"]) == named_port(c, port["targetPort"])
    assert pod_spec(job)["restartPolicy"] in ("OnFailure", "Never")
    effective = {**pod_spec(job)["securityContext"], **c["securityContext"]}
    assert effective["runAsNonRoot"] is True and effective["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("shell", [None, "bash"], ids=["container-shell", "bash"])
@pytest.mark.parametrize("index", [0, 1])
def test_training_entrypoint_builds_tf_config_and_runs_train_all(training, tmp_path, monkeypatch, index, shell):
    from glue_tf.cli import build_parser

    job, c, service = training_job(training)
    result = run_entrypoint(training, tmp_path, index, shell)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    port = service["spec"]["ports"][0]["port"]
    workers = [f"{job['metadata']['name']}-{i}.{service['metadata']['name']}:{port}"
               for i in range(job["spec"]["completions"])]
    assert workers == ["glue-train-0.glue-train:12345", "glue-train-1.glue-train:12345"]
    check_tf_config(json.loads(out["tf_config"]), workers, index, monkeypatch)
    # The arguments are ones `glue-tf train-all` takes (argparse exits on anything else).
    args = build_parser().parse_args(out["argv"])
    assert args.command == "train-all"
    output = mount(c, args.out)
    assert output.get("readOnly", False) is False
    claim = volume(job, output["name"])["persistentVolumeClaim"]["claimName"]
    pvc = one(training, "PersistentVolumeClaim", claim)
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]  # every worker reads the chief's checkpoints
    for path in (args.glue_dir, args.backbone):
        data = next(m for m in c["volumeMounts"] if Path(path).is_relative_to(m["mountPath"]))
        assert data["readOnly"] is True


def test_training_entrypoint_refuses_to_run_without_an_index(training, tmp_path):
    result = run_entrypoint(training, tmp_path, None)
    assert result.returncode != 0 and result.stdout == ""
    assert "JOB_COMPLETION_INDEX" in result.stderr


def test_training_job_runs_the_dockerfiles_training_image(training):
    """The Job's image is the `train` target: built from the same lock, non-root, `glue-tf` inside."""
    job, c, _ = training_job(training)
    stage = dockerfile_stage("train")
    assert c["image"].split(":")[0] == re.search(r"^TRAIN_IMAGE \?= (\S+)", (ROOT / "Makefile").read_text(), re.M)[1]
    assert "--target train -t $(TRAIN_IMAGE)" in (ROOT / "Makefile").read_text()
    assert json.loads(re.search(r"^ENTRYPOINT (\[.*\])", stage, re.M)[1]) == ["glue-tf"]
    assert c["command"][2].rstrip().endswith('exec glue-tf train-all "$@"')
    assert int(re.search(r"^USER (\d+)", stage, re.M)[1]) == c["securityContext"]["runAsUser"] == 10001
    assert re.search(r"pip install [^\n]*--require-hashes -r /tmp/train\.txt", stage)


def test_training_writes_the_volume_the_service_serves(base, training):
    job, c, _ = training_job(training)
    served = one(base, "Deployment", "glue-tf")
    served_claim = volume(served, mount(container(served, "glue-tf"), "/models")["name"])["persistentVolumeClaim"]
    out = c["args"][c["args"].index("--out") + 1]
    trained_claim = volume(job, mount(c, out)["name"])["persistentVolumeClaim"]
    assert trained_claim["claimName"] == served_claim["claimName"]


def run_two_hosts(tmp_path, args=(), **env):
    full = {"PATH": f"{fake_glue_tf(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run(["bash", str(TWO_HOSTS), *args], env=full, capture_output=True, text=True, timeout=30)


def test_two_host_script_parses():
    assert subprocess.run(["bash", "-n", str(TWO_HOSTS)], capture_output=True).returncode == 0
    assert os.access(TWO_HOSTS, os.X_OK)


@pytest.mark.parametrize("index", [0, 1])
def test_two_host_script_builds_tf_config_and_passes_flags(tmp_path, monkeypatch, index):
    from glue_tf.cli import build_parser

    flags = ["--glue-dir", "/shared/glue_data", "--tasks", "rte,mrpc", "--out", "/shared/runs/latest"]
    result = run_two_hosts(tmp_path, flags, HOSTS="host-a:12345,host-b:12345", INDEX=str(index))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    check_tf_config(json.loads(out["tf_config"]), ["host-a:12345", "host-b:12345"], index, monkeypatch)
    assert out["argv"] == ["train-all", *flags]
    assert build_parser().parse_args(out["argv"]).command == "train-all"


@pytest.mark.parametrize("hosts, index", [
    ("host-a:12345,host-b:12345", "2"),
    ("host-a:12345,host-b:12345", "-1"),
    ("host-a:12345,host-b:12345", "one"),
    ("host-a:12345,host-b:12345", ""),
    ("host-a:12345", "0"),
    ("host-a:12345,host-b", "0"),
    ('host-a:12345,"host-b":1', "0"),
    ("", "0"),
])
def test_two_host_script_refuses_bad_hosts_or_index(tmp_path, hosts, index):
    result = run_two_hosts(tmp_path, HOSTS=hosts, INDEX=index)
    assert result.returncode != 0 and result.stdout == "", result.stdout
    assert "HOSTS" in result.stderr or "INDEX" in result.stderr


def test_two_host_script_falls_back_to_the_checkouts_glue_tf():
    glue_tf = ROOT / ".venv" / "bin" / "glue-tf"
    if not glue_tf.exists():
        pytest.skip("no .venv/bin/glue-tf (make install)")
    env = {"PATH": "/usr/bin:/bin", "HOSTS": "127.0.0.1:1,127.0.0.1:2", "INDEX": "0"}
    result = subprocess.run(["bash", str(TWO_HOSTS), "--help"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: glue-tf train-all" in result.stdout


@pytest.mark.slow
def test_tensorflows_resolver_reads_the_recipes_tf_config_as_the_test_does(training, tmp_path):
    """The stand-in resolver of ``chief_of`` against TensorFlow's TFConfigClusterResolver (in a
    subprocess: importing TensorFlow takes seconds; no server is started)."""
    configs = [json.loads(json.loads(run_entrypoint(training, tmp_path, i).stdout)["tf_config"]) for i in (0, 1)]
    configs += [json.loads(json.loads(run_two_hosts(tmp_path, HOSTS="a:1,b:2", INDEX=str(i)).stdout)["tf_config"])
                for i in (0, 1)]
    probe = (
        "import json, os, sys\n"
        "from types import SimpleNamespace\n"
        "import tensorflow as tf\n"
        "from glue_tf import distribute\n"
        "answers = []\n"
        "for config in json.loads(sys.argv[1]):\n"
        "    os.environ['TF_CONFIG'] = json.dumps(config)\n"
        "    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()\n"
        "    answers.append([resolver.task_type, resolver.task_id, resolver.cluster_spec().as_dict(),\n"
        "                    distribute.cluster_workers(),\n"
        "                    distribute.is_chief(SimpleNamespace(cluster_resolver=resolver))])\n"
        "print(json.dumps(answers))\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", probe, json.dumps(configs)], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    for config, (task_type, task_id, cluster, workers, chief) in zip(configs, answers):
        assert [task_type, task_id] == [config["task"]["type"], config["task"]["index"]]
        assert cluster == config["cluster"] and workers == 2
        assert chief is chief_of(config) is (task_id == 0)
