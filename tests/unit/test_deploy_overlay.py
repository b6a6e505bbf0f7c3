"""The Compose overlay is valid, references only services that exist, matches its target
file's link map, and the committed copy in deploy/compose is what the generator makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kugeldrill.audit import audit_directory
from kugeldrill.deploy.compose_overlay import LINKED_APPS, OVERLAY_FILE, build_overlay, link_ports
from kugeldrill.ground.errors import ConfigError, NotLoopbackError
from kugeldrill.target import load_target

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_SERVICES = ROOT / "tests" / "fixtures" / "kugelpos" / "services"
COMPONENTS = FIXTURE_SERVICES / "dapr" / "components"


@pytest.fixture(scope="module")
def bundle():
    return build_overlay(COMPONENTS)


def _referenced_services(service: dict) -> set[str]:
    refs = set(service.get("depends_on") or [])
    mode = service.get("network_mode", "")
    if mode.startswith("service:"):
        refs.add(mode.split(":", 1)[1])
    return refs


def test_overlay_is_valid_compose_and_references_existing_services(bundle):
    base = yaml.safe_load((FIXTURE_SERVICES / "docker-compose.yaml").read_text())
    overlay = yaml.safe_load(bundle.files[OVERLAY_FILE])
    assert set(overlay) == {"services"}
    base_names = set(base["services"])
    new_names = {n for n in overlay["services"] if n not in base_names}
    assert new_names == {"toxiproxy", *(f"kd_fwd_{a}" for a in LINKED_APPS)}
    for name, svc in overlay["services"].items():
        assert isinstance(svc, dict)
        missing = _referenced_services(svc) - base_names - set(overlay["services"])
        assert not missing, f"{name} references unknown services {missing}"
        if name not in base_names:
            assert "image" in svc, f"new service {name} needs an image"
    # Every overridden sidecar exists in the base file and gets its own component copy.
    for app in LINKED_APPS:
        sidecar = overlay["services"][f"dapr_{app}"]
        assert f"dapr_{app}" in base_names
        assert sidecar["volumes"] == [f"./kugeldrill/components/{app}:/dapr/components:ro"]
        cmd = sidecar["command"]
        assert cmd[cmd.index("-app-port") + 1] == str(link_ports(app)["app"])
        assert cmd[cmd.index("-dapr-http-port") + 1] == "3501"
    # The network the toxiproxy joins exists in the base file.
    assert set(overlay["services"]["toxiproxy"]["networks"]) <= set(base["networks"])
    # The Toxiproxy API is published on loopback only.
    assert overlay["services"]["toxiproxy"]["ports"] == ["127.0.0.1:8474:8474"]


def test_link_map_matches_target_file(bundle, tmp_path):
    bundle.write(tmp_path)
    target = load_target(tmp_path / "kugeldrill" / "target.yaml")
    populate = json.loads(bundle.files["kugeldrill/toxiproxy.json"])
    assert {p["name"]: (p["listen"], p["upstream"]) for p in populate} == {
        f"kugeldrill.{name}": (spec.listen, spec.upstream) for name, spec in target.links.items()
    }
    overlay = yaml.safe_load(bundle.files[OVERLAY_FILE])
    for app in LINKED_APPS:
        fwd = overlay["services"][f"kd_fwd_{app}"]
        assert fwd["network_mode"] == f"service:{app}"
        listen_port = target.links[f"sidecar@{app}"].listen.rsplit(":", 1)[1]
        assert fwd["command"] == ["TCP-LISTEN:3500,fork,reuseaddr", f"TCP:toxiproxy:{listen_port}"]
        assert target.links[f"app@{app}"].upstream == f"{app}:8000"
        assert target.links[f"sidecar@{app}"].upstream == f"{app}:3501"


def test_component_copies_point_each_sidecar_at_its_own_redis_proxy(bundle, tmp_path):
    bundle.write(tmp_path)
    for app in LINKED_APPS:
        folder = tmp_path / "kugeldrill" / "components" / app
        for path in folder.glob("*.yaml"):
            doc = yaml.safe_load(path.read_text())
            hosts = [m["value"] for m in doc["spec"]["metadata"] if m["name"] == "redisHost"]
            assert hosts == [f"toxiproxy:{link_ports(app)['redis']}"], path
        # Everything else is Kugelpos' as it was: the audit still sees databaseIndex and streamName.
        fields = {(f.component, f.field) for f in audit_directory(folder, compose_files=[]) if f.rule == "ignored-field"}
        assert ("statestore", "databaseIndex") in fields and ("pubsub-tranlog-report", "streamName") in fields


def test_committed_overlay_has_not_drifted(bundle):
    committed = ROOT / "deploy" / "compose"
    for rel, text in bundle.files.items():
        assert (committed / rel).read_text() == text, f"deploy/compose/{rel} differs from the generator's output"


def test_repository_target_file_loads_with_its_allow_list():
    target = load_target(ROOT / "targets" / "kugelpos-compose.yaml")
    assert target.toxiproxy and target.toxiproxy.api == "http://127.0.0.1:8474"
    assert len(target.links) == 3 * len(LINKED_APPS)
    assert target.breaker.half_open == "unlimited" and target.breaker.failures == "cumulative"


def test_target_without_allow_list_is_refused(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("name: t\nservices:\n  cart: http://10.0.0.5:8003\n")
    with pytest.raises(NotLoopbackError, match="10.0.0.5"):
        load_target(path)
    path.write_text("name: t\nallow_hosts: [10.0.0.5]\nservices:\n  cart: http://10.0.0.5:8003\n")
    assert load_target(path).services["cart"] == "http://10.0.0.5:8003"


def test_bad_target_files_name_the_field(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("name: t\nservices:\n  kart: http://127.0.0.1:1\n")
    with pytest.raises(ConfigError, match=r"t.yaml:3: field 'services.kart': expected one of account, (.|\n)*did you mean 'cart'"):
        load_target(path)
    path.write_text("name: t\nservices: {}\nlinks:\n  redis-cart: {listen: '127.0.0.1:1', upstream: '127.0.0.1:2'}\n")
    with pytest.raises(ConfigError, match="links"):
        load_target(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_target(tmp_path / "missing.yaml")
