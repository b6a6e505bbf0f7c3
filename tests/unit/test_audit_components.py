"""The component audit reports what real Dapr does with Kugelpos' and the seed's files,
and nothing on the stand-in's own components."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kugeldrill.audit import audit_directory
from kugeldrill.audit.run import exit_code
from kugeldrill.ground.errors import ConfigError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KUGELPOS = FIXTURES / "kugelpos" / "services" / "dapr" / "components"
SEED = FIXTURES / "seed" / "components"


def _by_rule(findings):
    out: dict[str, list] = {}
    for f in findings:
        out.setdefault(f.rule, []).append(f)
    return out


def test_kugelpos_components_findings():
    findings = audit_directory(KUGELPOS)
    rules = _by_rule(findings)
    ignored = {(f.component, f.field) for f in rules["ignored-field"]}
    assert ignored == {
        ("statestore", "databaseIndex"), ("cartstore", "databaseIndex"), ("terminalstore", "databaseIndex"),
        ("pubsub-tranlog-report", "streamName"), ("pubsub-cashlog-report", "streamName"),
        ("pubsub-opencloselog-report", "streamName"),
    }
    # Under the >=1.17 ack model, none of the three pub/subs has a retry policy or a DLQ.
    assert {f.component for f in rules["no-retry-no-dead-letter"]} == {
        "pubsub-tranlog-report", "pubsub-cashlog-report", "pubsub-opencloselog-report"}
    # Every sidecar in the compose file beside the components runs daprio/daprd:latest.
    assert len(rules["unpinned-daprd-image"]) == 7
    # Kugelpos' real files set no consumerID (each app its own group) and use "180s".
    assert "shared-consumer-group" not in rules
    assert "duration-units" not in rules
    assert exit_code(findings) == 1


def test_kugelpos_under_dapr_116_keeps_messages():
    rules = _by_rule(audit_directory(KUGELPOS, dapr_version="1.16"))
    assert "no-retry-no-dead-letter" not in rules


def test_seed_components_findings():
    rules = _by_rule(audit_directory(SEED, compose_files=[]))
    shared = rules["shared-consumer-group"]
    assert len(shared) == 1 and shared[0].component == "pubsub-tranlog-report"
    assert "report, journal, stock" in shared[0].message
    units = rules["duration-units"]
    assert units[0].field == "processingTimeout" and "180 ms" in units[0].message
    assert {f.component for f in rules["ignored-field"]} == {"statestore", "cartstore"}
    assert "unpinned-daprd-image" not in rules


def test_resiliency_inbound_retry_silences_lost_deliveries(tmp_path):
    shutil.copy(KUGELPOS / "pubsub_tranlog_report.yaml", tmp_path)
    (tmp_path / "resiliency.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: r\nspec:\n"
        "  policies:\n    retries:\n      inboundRetry:\n        policy: constant\n        duration: 1s\n"
        "        maxRetries: 5\n  targets:\n    components:\n      pubsub-tranlog-report:\n"
        "        inbound:\n          retry: inboundRetry\n"
    )
    rules = _by_rule(audit_directory(tmp_path, compose_files=[]))
    assert "no-retry-no-dead-letter" not in rules


def test_zero_retries_do_not_count(tmp_path):
    shutil.copy(KUGELPOS / "pubsub_tranlog_report.yaml", tmp_path)
    (tmp_path / "resiliency.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: r\nspec:\n"
        "  policies:\n    retries:\n      DefaultRetryPolicy:\n        maxRetries: 0\n"
    )
    rules = _by_rule(audit_directory(tmp_path, compose_files=[]))
    assert "no-retry-no-dead-letter" in rules


def test_redeliver_interval_duration_string_is_ignored(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: p\nspec:\n  type: pubsub.redis\n"
        "  metadata:\n  - name: redisHost\n    value: r:6379\n  - name: redeliverInterval\n    value: 30s\n"
    )
    findings = audit_directory(tmp_path, compose_files=[], dapr_version="1.16")
    assert [f.field for f in findings if f.rule == "duration-units"] == ["redeliverInterval"]


def test_bad_folder_and_bad_yaml_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        audit_directory(tmp_path / "missing")
    (tmp_path / "broken.yaml").write_text("kind: Component\n  bad: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml line \d+"):
        audit_directory(tmp_path)


def test_cli_json_and_exit_code():
    proc = subprocess.run(
        [sys.executable, "-m", "kugeldrill", "audit", "--json", str(SEED), "--compose", "/dev/null"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert {f["rule"] for f in data["findings"]} >= {"shared-consumer-group", "duration-units", "ignored-field"}


def test_standin_components_have_no_findings(tmp_path):
    from kugeldrill.stack.components import render_components

    out = render_components(tmp_path / "components", redis_host="127.0.0.1:6379", app_id="report")
    findings = [f for f in audit_directory(Path(out), compose_files=[]) if f.severity.value != "info"]
    assert findings == [], [f.to_dict() for f in findings]


def test_standin_defect_components_are_caught(tmp_path):
    from kugeldrill.stack.components import render_components

    out = render_components(tmp_path / "c", redis_host="127.0.0.1:6379", app_id="report",
                            defects=["shared_consumer_id", "database_index"])
    rules = _by_rule(audit_directory(Path(out), compose_files=[]))
    assert "shared-consumer-group" in rules
    assert any(f.field == "databaseIndex" for f in rules["ignored-field"])
