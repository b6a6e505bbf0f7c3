"""A target drill judges its own tenant's events: earlier drills' republished events are left out."""

from __future__ import annotations

from pathlib import Path

from kugeldrill.checkers.adapters.kugelpos import ObservationSources, load_kugelpos_inputs

LINE = ("2026-12-07 04:25:00,000 [INFO] app.api.v1.tran: cashlog received successfully. event_id: {eid}, "
        "cashlog: {{'tenant_id': '{tenant}', 'store_code': '5678', 'terminal_no': 9, "
        "'generate_date_time': '2026-12-07T13:21:21+09:00', 'description': 'cash-in kd-{eid}'}}\n")


def test_applications_of_another_tenant_are_not_this_drills(tmp_path: Path) -> None:
    log = tmp_path / "report.log"
    log.write_text(LINE.format(eid="e1", tenant="T1111") + LINE.format(eid="e2", tenant="T2222"))
    sources = ObservationSources(logs={"report": [log]}, tenant_id="T2222", clock_offset=0.0)
    inputs = load_kugelpos_inputs(None, sources)
    assert [a.event_id for a in inputs.applications] == ["e2"]
    assert any("other tenants" in n and "T2222" in n for n in inputs.notes)
    everyone = load_kugelpos_inputs(None, ObservationSources(logs={"report": [log]}, clock_offset=0.0))
    assert sorted(a.event_id for a in everyone.applications) == ["e1", "e2"]
