"""The packaging users deploy: Kubernetes manifests, compose.yaml and the Dockerfile.

No container registry can be reached here, so no image is built or pulled. What can be proven
without one is:
- every Kubernetes manifest validates against the Kubernetes OpenAPI schema
  (`kubernetes-validate`, bundled schemas, strict: an unknown field is an error), and holds
  together (selectors, probes, names, settings the service accepts);
- compose.yaml validates against the Compose Specification's JSON schema (vendored in
  tests/data/compose-spec/, origin in tests/data/README.md) and has the required shape;
- the Dockerfile's steps work: `tests/test_image_steps.py` runs them as a shell script.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from bench.cluster import find_nginx
from cds_service.settings import load_settings, require_serving_settings

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPOSE_SCHEMA = Path(__file__).parent / "data" / "compose-spec" / "compose-spec.json"
# The oldest Kubernetes the manifests support (autoscaling/v2, policy/v1 are GA) and the newest
# whose schema the installed kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())


def _manifest_files() -> list[Path]:
    return sorted(
        path
        for path in KUBERNETES.rglob("*.yaml")
        if path.name != "kustomization.yaml"  # a kustomize file, not a Kubernetes object
    )


def _manifests() -> dict[str, dict[str, Any]]:
    """Return every object by kind (one object of each kind is shipped)."""
    objects: dict[str, dict[str, Any]] = {}
    for path in _manifest_files():
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in objects, f"two {document['kind']}s"
            objects[document["kind"]] = document
    return objects


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    "path", _manifest_files(), ids=lambda path: str(path.relative_to(KUBERNETES))
)
def test_each_manifest_is_valid_kubernetes(path: Path, version: str) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, version, strict=True)


def test_a_misspelt_field_is_refused_by_the_schema_check() -> None:
    deployment = _manifests()["Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbes"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_every_kind_the_deployment_needs_is_shipped() -> None:
    assert set(_manifests()) == {
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
        "PodDisruptionBudget",
        "Secret",
        "Service",
    }
    listed = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"]
    assert all((KUBERNETES / name).is_file() for name in listed)


def test_the_deployment_probes_health_and_readiness_within_limits() -> None:
    objects = _manifests()
    pod = objects["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    resources = container["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    # Draining outlasts one readiness period, and the grace period outlasts the drain.
    drain = int(objects["ConfigMap"]["data"]["MIPOMERSEN_CDS_DRAIN_SECONDS"])
    assert drain > container["readinessProbe"]["periodSeconds"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > drain + 6
    strategy = objects["Deployment"]["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


def test_service_hpa_and_budget_select_the_deployments_pods() -> None:
    objects = _manifests()
    deployment = objects["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = (
        objects["Service"]["spec"]["selector"],
        objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"],
    )
    for selector in selectors:
        assert selector.items() <= labels.items()
    target = objects["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert objects["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    assert objects["PodDisruptionBudget"]["spec"]["minAvailable"] >= 1


def test_the_job_migrates_with_the_same_configuration_as_the_pods() -> None:
    objects = _manifests()
    (job,) = objects["Job"]["spec"]["template"]["spec"]["containers"]
    (server,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert job["command"] == ["mipomersen-cds", "db", "upgrade"]
    assert job["image"] == server["image"]
    assert job["envFrom"] == server["envFrom"]
    names = {(ref.get("configMapRef") or ref["secretRef"])["name"] for ref in job["envFrom"]}
    assert names == {
        objects["ConfigMap"]["metadata"]["name"],
        objects["Secret"]["metadata"]["name"],
    }


def test_the_secret_holds_the_issuers_and_database_and_the_service_accepts_both() -> None:
    objects = _manifests()
    secret = objects["Secret"]["stringData"]
    assert set(secret) == {"MIPOMERSEN_CDS_TRUSTED_ISSUERS", "MIPOMERSEN_CDS_DATABASE_URL"}
    assert not set(secret) & set(objects["ConfigMap"]["data"])
    # The service's own loader accepts what the pods are given, and would start with it.
    settings = load_settings({**objects["ConfigMap"]["data"], **secret})
    require_serving_settings(settings)
    assert settings.drain_seconds == 10
    assert settings.database_url.startswith("postgresql+psycopg://")


# ---------------------------------------------------------------------- compose


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(_compose())


def test_a_misspelt_compose_key_is_refused_by_the_schema_check() -> None:
    document = _compose()
    document["services"]["cds"]["depend_on"] = document["services"]["cds"].pop("depends_on")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text())).validate(document)


def test_compose_migrates_before_two_replicas_serve_behind_nginx() -> None:
    services = _compose()["services"]
    assert set(services) == {"nginx", "cds", "postgres", "redis", "migrate"}
    assert services["cds"]["deploy"]["replicas"] == 2
    assert services["migrate"]["command"] == ["mipomersen-cds", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["cds"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    assert "postgres-data" in _compose()["volumes"]
    config = services["nginx"]["volumes"][0].split(":")[0]
    assert "server cds:8080" in (ROOT / config).read_text()


def test_compose_takes_secrets_from_an_env_file_that_is_never_committed() -> None:
    services = _compose()["services"]
    for name in ("postgres", "migrate", "cds"):
        assert services[name]["env_file"] == [".env"]
        inline = services[name].get("environment", {})
        assert not any(re.search("PASSWORD|TRUSTED_ISSUERS|DATABASE_URL", key) for key in inline)
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    example = (ROOT / ".env.example").read_text()
    for variable in ("POSTGRES_PASSWORD", "MIPOMERSEN_CDS_TRUSTED_ISSUERS"):
        assert re.search(rf"^{variable}=$", example, re.MULTILINE), f"{variable} must be empty"


@pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed (apt-get install nginx)")
def test_the_compose_nginx_configuration_passes_nginx_t(tmp_path: Path) -> None:
    # `cds` resolves only inside compose's network: check the same file with a local address.
    site = (ROOT / "deploy" / "compose" / "nginx.conf").read_text()
    (tmp_path / "site.conf").write_text(site.replace("server cds:8080", "server 127.0.0.1:9"))
    temp_paths = "".join(
        f"{kind}_temp_path {tmp_path}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; events {{}} "
        f"http {{ {temp_paths} include {tmp_path}/site.conf; }}\n"
    )
    nginx = find_nginx()
    assert nginx is not None
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
