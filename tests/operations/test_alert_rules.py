"""The shipped alert rules: valid for Prometheus, and each fires when it should and not
before (deploy/prometheus/alerts.test.yml, run by promtool)."""

import subprocess
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["promtool", *args], cwd=RULES, capture_output=True, text=True, timeout=60
    )


def test_alert_rules_are_valid():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_alert_rules_fire_when_they_should():
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_sample_scrape_configuration_is_valid(tmp_path):
    # The credentials file it names must exist for promtool; the rules beside it load.
    config = (RULES / "prometheus.yml").read_text()
    token = tmp_path / "token"
    token.write_text("secret\n")
    config = config.replace("/etc/prometheus/portal-metrics-token", str(token))
    config = config.replace("- alerts.yml", f"- {RULES / 'alerts.yml'}")
    (tmp_path / "prometheus.yml").write_text(config)
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
