"""docker-compose.yml cannot run here (no Docker engine); check it points at real things."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from recsys.cli import app

ROOT = Path(__file__).resolve().parents[1]


def resolve(argv: list[str]) -> object:
    """Walk the CLI's command tree along ``argv``; fail if a verb does not exist."""
    command = typer.main.get_command(app)
    for word in argv:
        if word.startswith("-") or not hasattr(command, "commands"):
            break
        assert word in command.commands, f"`recsys {' '.join(argv)}`: no verb {word!r}"
        command = command.commands[word]
    return command


def test_compose_describes_the_production_services() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {
        "postgres", "migrate", "api", "api-replica", "balancer", "trainer", "trainer-ranking"
    }  # fmt: skip
    assert "healthcheck" in services["postgres"]
    assert any(v.startswith("pgdata:") for v in services["postgres"]["volumes"])
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("migrate", "api", "api-replica", "trainer", "trainer-ranking"):
        assert services[name]["environment"]["RECSYS_DATABASE_URL"].startswith(
            "postgresql+psycopg://"
        )
        assert (ROOT / services[name]["build"] / "Dockerfile").is_file()


def test_compose_commands_are_real_cli_verbs_with_real_options() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for service in ("migrate", "api", "api-replica", "trainer", "trainer-ranking"):
        program, *argv = compose["services"][service]["command"]
        assert program == "recsys"
        command = resolve(argv)
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        for word in argv:
            if word.startswith("--"):
                assert word in options, f"{service}: `recsys {' '.join(argv)}` has no option {word}"


def test_the_replicas_profile_balances_two_api_replicas() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["api-replica"]["command"] == services["api"]["command"]
    assert services["api-replica"]["profiles"] == services["balancer"]["profiles"] == ["replicas"]
    mount = services["balancer"]["volumes"][0].split(":")[0]
    config = (ROOT / mount).read_text()
    assert "server api:8000;" in config
    assert "server api-replica:8000;" in config
