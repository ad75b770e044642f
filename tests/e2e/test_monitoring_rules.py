"""The alerting rules with the real promtool (github.com/prometheus/prometheus
cmd/promtool, built by kubenova_e2e.build): `check rules` lints them, `test rules`
runs manifests/monitoring/alerts-test.yaml, in which every alert fires on series that
should fire it and stays quiet on series that should not. No cluster needed; here with
the e2e tests because promtool is a built peer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml
from kubenova_e2e.build import promtool_binary

from tests.monitoring import RULE_TESTS, rule_groups


def _rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups(), sort_keys=False))
    shutil.copy(RULE_TESTS, tmp_path / "alerts-test.yaml")
    return tmp_path


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool_binary()), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_rules_pass_promtool_check(tmp_path: Path) -> None:
    result = _promtool("check", "rules", "rules.yaml", cwd=_rules_dir(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_alerts_fire_and_stay_quiet_as_tested(tmp_path: Path) -> None:
    result = _promtool("test", "rules", "--diff", "alerts-test.yaml", cwd=_rules_dir(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_catches_a_broken_rule(tmp_path: Path) -> None:
    """The checks can fail: a rule whose alert no longer fires fails `test rules`."""
    directory = _rules_dir(tmp_path)
    groups = rule_groups()
    for group in groups["groups"]:
        for rule in group["rules"]:
            if rule["alert"] == "KubenovaTenantNearBudget":
                rule["expr"] = rule["expr"].replace("0.9", "0.99")
    (directory / "rules.yaml").write_text(yaml.safe_dump(groups, sort_keys=False))
    result = _promtool("test", "rules", "alerts-test.yaml", cwd=directory)
    assert result.returncode != 0
    assert "KubenovaTenantNearBudget" in result.stdout + result.stderr
