"""A script written like Microsoft's API samples runs against remedium with only its base URL
and token changed (in a subprocess, over real HTTP)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from remedium.auth.principal import Right
from tests.support.orgs.defender import Organisation

SCRIPT = Path(__file__).parent / "scripts" / "tvm_report.py"


@pytest.mark.scenario("defender")
def test_microsoft_style_script_runs_unchanged(
    org: Organisation, live_server: str, token_for: Callable[..., str], tmp_path: Path
) -> None:
    token = token_for(rights=frozenset({Right.VIEW, Right.INVENTORY}))
    text = SCRIPT.read_text()
    changed = text.replace(
        'BASE_URL = "https://api.securitycenter.microsoft.com"', f'BASE_URL = "{live_server}"'
    ).replace('TOKEN = "<your AAD token>"', f'TOKEN = "{token}"')
    # Only the two lines differ.
    differences = [
        (a, b) for a, b in zip(text.splitlines(), changed.splitlines(), strict=True) if a != b
    ]
    assert len(differences) == 2
    script = tmp_path / "tvm_report.py"
    script.write_text(changed)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["machines"] == ["srv-01", "srv-02", "ws-01", "ws-02"]
    assert report["vulnerable"] == {
        "srv-01": {"cves": ["CVE-2024-0001"], "software": ["chrome"], "recommendations": 1},
        "ws-01": {
            "cves": ["CVE-2024-0001", "CVE-2024-0002"],
            "software": ["chrome"],
            "recommendations": 2,
        },
        "ws-02": {
            "cves": ["CVE-2024-0002", "CVE-2024-0003"],
            "software": ["chrome", "firefox"],
            "recommendations": 2,
        },
    }
    assert report["assessment_rows"] == 5
    assert report["critical_rows"] == 2
    assert report["export_lines"] == 5
    assert report["exploitable_recommendations"] == ["va-_-google-_-chrome"]
    assert report["vip"] == ["ws-01"]
    assert report["set_device_value"] == 200
    assert report["has_score"] is True
