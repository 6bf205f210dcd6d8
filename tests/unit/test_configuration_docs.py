"""docs/operations/configuration.md lists every setting: each field of every settings
class of the services and of `humantask-admin` has a row in its table, under the
environment variable pydantic-settings reads it from."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

from pydantic_settings import BaseSettings

CONFIGURATION = Path(__file__).parents[2] / "docs" / "operations" / "configuration.md"
PACKAGES = ("humantask_shared", "humantask_gateway", "humantask_taskstore", "humantask_notifier")


def subclasses(cls: type[BaseSettings]) -> Iterator[type[BaseSettings]]:
    for subclass in cls.__subclasses__():
        yield subclass
        yield from subclasses(subclass)


def settings_classes() -> list[type[BaseSettings]]:
    """Every settings class the product's packages define, found by importing each of
    their modules: a new service or settings class is held to the page without a word."""
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            importlib.import_module(module.name)
    found = {c for c in subclasses(BaseSettings) if c.__module__.split(".")[0] in PACKAGES}
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


SETTINGS_CLASSES = settings_classes()

# Settings that are deliberately not rows of the table. Test hooks only: the page names
# them in a paragraph of their own, as never to be set outside the tests.
NOT_IN_TABLE = frozenset(
    {
        "HUMANTASK_TEST_EXIT_AFTER_COMPLETION_WRITE",  # the outbox relay's crash test
        "HUMANTASK_TEST_EXIT_AFTER_BATCH_COMPLETION_WRITE",  # the batches' relay's
    }
)


def environment_names(settings: type[BaseSettings]) -> set[str]:
    """The variables the class reads: its env prefix and each field's name, or the alias
    it is read from instead, upper-cased (every settings class is case-insensitive)."""
    prefix = str(settings.model_config.get("env_prefix") or "")
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias or field.alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif alias is not None:  # AliasChoices/AliasPath: every string choice is read
            choices = getattr(alias, "choices", [alias])
            names.update(str(choice).upper() for choice in choices if isinstance(choice, str))
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def documented_names() -> set[str]:
    """The variables named in the first cell of the rows of the page's first table, the
    services' settings (a cell may name several, `` `A`, `B` ``). The page's later table
    is the compose files' own variables, which no service reads."""
    names: set[str] = set()
    in_table = False
    for line in CONFIGURATION.read_text(encoding="utf-8").splitlines():
        if line.startswith("|"):
            in_table = True
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
        elif in_table:
            break
    return names


def test_every_service_and_the_admin_tool_have_their_settings_found() -> None:
    names = {settings.__name__ for settings in SETTINGS_CLASSES}
    assert {"GatewaySettings", "TaskStoreSettings", "NotifierSettings", "AdminSettings"} <= names


def test_settings_classes_are_case_insensitive() -> None:
    # The upper-cased name is the variable only while this holds.
    for settings in SETTINGS_CLASSES:
        assert settings.model_config.get("case_sensitive") is False, settings.__name__


def test_every_setting_has_a_row_in_configuration_md() -> None:
    documented = documented_names()
    missing = {
        f"{name} ({settings.__name__})"
        for settings in SETTINGS_CLASSES
        for name in environment_names(settings) - NOT_IN_TABLE
        if name not in documented
    }
    assert not missing, "settings without a row in docs/operations/configuration.md: " + ", ".join(
        sorted(missing)
    )


def test_the_test_hooks_left_out_of_the_table_are_settings_and_said_to_be_tests_only() -> None:
    every_name = set().union(*(environment_names(s) for s in SETTINGS_CLASSES))
    text = CONFIGURATION.read_text(encoding="utf-8")
    for name in NOT_IN_TABLE:
        assert name.startswith("HUMANTASK_TEST_"), "only test hooks may be left out"
        assert name in every_name, f"{name} is no longer a setting: drop it from the list"
        assert name in text, f"configuration.md should still say {name} is for tests only"


def test_the_table_names_no_setting_that_does_not_exist() -> None:
    # Rows for variables read outside the settings classes: the OpenTelemetry SDK's own.
    read_elsewhere = {name for name in documented_names() if name.startswith("OTEL_")}
    every_name = set().union(*(environment_names(s) for s in SETTINGS_CLASSES))
    stale = documented_names() - every_name - read_elsewhere
    assert not stale, f"configuration.md's table names no setting of any service: {stale}"
