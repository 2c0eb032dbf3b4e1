"""docker-compose.yml runs only commands and options that this project has.

No Docker engine runs on the test machines, so the file is parsed and each
service's command is checked against the click application instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cli.main import COMMANDS, LazyGroup, cli

ROOT = Path(__file__).resolve().parents[1]


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def lcq_commands() -> list[tuple[str, list[str]]]:
    services = load_compose()["services"]
    return [
        (name, spec["command"])
        for name, spec in services.items()
        if isinstance(spec.get("command"), list) and spec["command"][0] == "lcq"
    ]


def test_compose_has_expected_services():
    services = load_compose()["services"]
    assert {"redis", "serve", "worker", "dashboard"} <= set(services)
    assert "checkpoints:/checkpoints" in services["worker"]["volumes"]


def test_compose_worker_has_no_fixed_replicas():
    worker = load_compose()["services"]["worker"]
    assert "container_name" not in worker, "a fixed name breaks --scale worker=N"


@pytest.mark.parametrize(("service", "command"), lcq_commands())
def test_compose_lcq_command_exists(service, command):
    import click

    name = command[1]
    assert name in COMMANDS, f"{service}: lcq has no command {name!r}"
    ctx = click.Context(cli)
    sub = LazyGroup.get_command(cli, ctx, name)
    assert sub is not None, f"{service}: lcq {name} cannot be imported"
    known = {opt for param in sub.params for opt in param.opts}
    for arg in command[2:]:
        if arg.startswith("--"):
            assert arg in known, f"{service}: lcq {name} has no option {arg}"


def test_compose_dashboard_is_packaged():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert any(dep.startswith("rq-dashboard") for dep in extras["dashboard"])
    dashboard = load_compose()["services"]["dashboard"]
    assert dashboard["command"][0] == "rq-dashboard"


def test_dockerfile_installs_dashboard_extra():
    assert "'.[dashboard]'" in (ROOT / "Dockerfile").read_text()
