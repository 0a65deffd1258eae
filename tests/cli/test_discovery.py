"""``deepaas-host list``, ``--version`` and what ``run`` does with broken plugins."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import cli
from fixtures.broken_plugins import DISTRIBUTION, ENTRY_POINTS

import deepaas_host

if TYPE_CHECKING:
    from conftest import Host

EXAMPLES = {
    # name: (namespace, distribution)
    "demo": ("deepaas_host.model.v2", "deepaas-host-demo"),
    "iris": ("deepaas_host.model.v2", "deepaas-host-sklearn-iris"),
    "legacy": ("deepaas.v2.model", "deepaas-legacy-plugin"),
    "legacy_class": ("deepaas.v2.model", "deepaas-legacy-plugin"),
    "legacy_instance": ("deepaas.v2.model", "deepaas-legacy-plugin"),
    "word-counts": ("deepaas_host.model.v2", "deepaas-host-river-models"),
    "trump-approval": ("deepaas_host.model.v2", "deepaas-host-river-models"),
    "phishing": ("deepaas_host.model.v2", "deepaas-host-river-models"),
    "image-segments": ("deepaas_host.model.v2", "deepaas-host-river-models"),
    "text-clusters": ("deepaas_host.model.v2", "deepaas-host-river-models"),
    "running-mean": ("deepaas_host.model.v2", "deepaas-host-river-models"),
}
#: Online-learning plugins are served under /v2/online/, not /v2/models/.
ONLINE = {"trump-approval", "phishing", "image-segments", "text-clusters", "running-mean"}
BROKEN_REASONS = {
    "broken_import": "ModuleNotFoundError: No module named 'totally_not_installed_module_xyz'",
    "broken_contract": "does not implement predict",
}


def table(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    assert lines[0].split() == ["NAME", "NAMESPACE", "DISTRIBUTION", "VERSION", "TARGET"]
    return {line.split()[0]: line.split() for line in lines[1:]}


def test_list_shows_every_example_plugin_in_both_namespaces() -> None:
    result = cli("list")
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    for name, (namespace, distribution) in EXAMPLES.items():
        assert rows[name][:4] == [name, namespace, distribution, version(distribution)]
    assert rows["legacy"][4] == "deepaas_legacy_plugin.api"
    assert rows["demo"][4] == "deepaas_host_demo.model:DemoModel"


def test_list_json_matches_the_table() -> None:
    result = cli("list", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    rows = table(cli("list").stdout)
    assert set(plugins) == set(rows)
    for name, row in rows.items():
        p = plugins[name]
        assert [p["name"], p["namespace"], p["distribution"], p["version"], p["target"]] == row


def test_list_imports_no_plugin() -> None:
    code = (
        "import sys\n"
        "from deepaas_host.cli import main\n"
        "assert main(['list']) == 0\n"
        "loaded = [m for m in ('deepaas_host_demo', 'deepaas_host_sklearn_iris',"
        " 'deepaas_legacy_plugin', 'sklearn', 'PIL') if m in sys.modules]\n"
        "print('LOADED', loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "LOADED []"


def test_list_shows_a_plugin_that_cannot_be_imported(broken_env: dict[str, str]) -> None:
    result = cli("list", env=broken_env)
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    for name, target in ENTRY_POINTS.items():
        assert rows[name] == [name, "deepaas_host.model.v2", DISTRIBUTION, "0.1", target]
    assert set(EXAMPLES) <= set(rows)


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"deepaas-host {deepaas_host.__version__}"


@pytest.mark.parametrize("name", sorted(BROKEN_REASONS))
def test_run_refuses_a_broken_plugin_by_name(
    name: str, broken_env: dict[str, str], tmp_path: Path
) -> None:
    result = cli(
        "run", "--model", "demo", "--model", name, "--data-dir", str(tmp_path), env=broken_env
    )
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"deepaas-host: Plugin '{name}' (package {DISTRIBUTION}):")
    assert BROKEN_REASONS[name] in message
    assert ENTRY_POINTS[name] in message


def test_run_refuses_when_an_installed_plugin_is_broken(
    broken_env: dict[str, str], tmp_path: Path
) -> None:
    # No --model: every installed plugin is selected, the broken ones too.
    result = cli("run", "--data-dir", str(tmp_path), env=broken_env)
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    named = [n for n in BROKEN_REASONS if f"Plugin '{n}' (package {DISTRIBUTION})" in message]
    assert len(named) == 1, message
    assert BROKEN_REASONS[named[0]] in message


def test_an_unknown_model_is_named_with_what_is_installed(
    tmp_path: Path,
) -> None:
    result = cli("run", "--model", "nope", "--data-dir", str(tmp_path))
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("deepaas-host: Plugin 'nope' (package not installed): no such plugin")
    assert f"installed: {', '.join(sorted(EXAMPLES))})" in message


def test_skip_broken_serves_the_others(
    start_host: Callable[..., Host], broken_env: dict[str, str]
) -> None:
    host = start_host(["--skip-broken"], env=broken_env)
    health = host.health()
    assert health["ready"] is True
    assert health["pools"]["predict"]["ready"] == 1
    models = [m["id"] for m in host.get("/v2/models/").json()["models"]]
    assert sorted(models) == sorted(set(EXAMPLES) - ONLINE)
    assert host.post("/v2/models/demo/predict/").status_code == 200
    assert host.post("/v2/models/broken_import/predict/").status_code == 404
    log = host.log()
    for name, reason in BROKEN_REASONS.items():
        assert f"Plugin '{name}' (package {DISTRIBUTION})" in log
        assert reason in log


def test_skip_broken_reports_an_unknown_model(start_host: Callable[..., Host]) -> None:
    host = start_host(["--skip-broken", "--model", "demo", "--model", "nope"])
    assert [m["id"] for m in host.get("/v2/models/").json()["models"]] == ["demo"]
    assert "Plugin 'nope' (package not installed)" in host.log()
