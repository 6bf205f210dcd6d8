"""The `change-me` placeholders of .env.example are refused by every reader of a password:
the services' settings, the jobs that make the broker's and the database's users, and the
check docker-compose.yml runs before anything keeps a password."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from humantask_gateway.settings import GatewaySettings
from humantask_notifier.settings import NotifierSettings
from humantask_shared.core import broker_definitions, placeholders
from humantask_shared.runtime import database_users
from humantask_taskstore.settings import TaskStoreSettings

MESSAGE = "is still the placeholder 'change-me' of .env.example"


@pytest.mark.parametrize("settings_class", [GatewaySettings, TaskStoreSettings, NotifierSettings])
@pytest.mark.parametrize("variable", ["AMQP_URL", "MONGODB_URL"])
def test_a_service_refuses_the_placeholder_in_its_urls(
    monkeypatch: pytest.MonkeyPatch, settings_class: type, variable: str
) -> None:
    scheme = variable.split("_")[0].lower()
    monkeypatch.setenv(variable, f"{scheme}://humantask-x:change-me@somewhere:1/humantask")
    with pytest.raises(ValidationError) as raised:
        settings_class()
    assert f"the password in {variable} {MESSAGE}" in str(raised.value)


def test_a_service_takes_any_other_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://humantask-taskstore:change-me-not@rabbitmq:5672/x")
    monkeypatch.setenv("MONGODB_URL", "mongodb://mongodb:27017/humantask")  # no password
    settings = TaskStoreSettings()
    assert settings.broker_user == "humantask-taskstore"


def test_an_escaped_placeholder_is_the_placeholder() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        placeholders.refuse_placeholder_in_url("X", "amqp://u:change%2Dme@h/")


def test_the_broker_definitions_refuse_it_naming_the_variable() -> None:
    environ = {broker_definitions.password_env(s): "s3cret" for s in ("gateway", "admin")}
    environ |= {
        broker_definitions.password_env("taskstore"): "change-me",
        broker_definitions.password_env("notifier"): "s3cret",
        broker_definitions.password_env("operator"): "change-me",
    }
    with pytest.raises(SystemExit) as raised:
        broker_definitions.passwords_from_environment(environ)
    message = str(raised.value)
    assert f"RABBITMQ_TASKSTORE_PASSWORD {MESSAGE}" in message
    assert f"RABBITMQ_OPERATOR_PASSWORD {MESSAGE}" in message
    assert "RABBITMQ_GATEWAY_PASSWORD" not in message


def test_the_database_users_job_refuses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match=f"MONGODB_NOTIFIER_PASSWORD {MESSAGE}"):
        database_users.passwords_from_environment(
            {"MONGODB_TASKSTORE_PASSWORD": "s3cret", "MONGODB_NOTIFIER_PASSWORD": "change-me"}
        )
    monkeypatch.setenv("MONGODB_ADMIN_URL", "mongodb://root:change-me@mongodb:27017/humantask")
    with pytest.raises(SystemExit, match=f"the password in MONGODB_ADMIN_URL {MESSAGE}"):
        database_users.main([])


def test_the_check_names_every_password_left_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RABBITMQ_GATEWAY_PASSWORD", "change-me")
    monkeypatch.setenv("MONGODB_ROOT_PASSWORD", " change-me ")
    monkeypatch.setenv("MONGODB_NOTIFIER_PASSWORD", "4f1c9e")
    monkeypatch.setenv("HUMANTASK_DEMO_API_KEY", "change-me")  # not a password variable
    with pytest.raises(SystemExit) as raised:
        placeholders.main()
    assert raised.value.code == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"MONGODB_ROOT_PASSWORD {MESSAGE}: give it a random value of its own "
        "(openssl rand -hex 24) in .env",
        f"RABBITMQ_GATEWAY_PASSWORD {MESSAGE}: give it a random value of its own "
        "(openssl rand -hex 24) in .env",
    ]
    monkeypatch.setenv("RABBITMQ_GATEWAY_PASSWORD", "9d2a")
    monkeypatch.setenv("MONGODB_ROOT_PASSWORD", "77e0")
    placeholders.main()
