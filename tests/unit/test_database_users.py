"""The database-users job against a recording server: on MongoDB, a role of the
notifier's own and each user with the least it needs; on FerretDB, the only read-write
role there is; and on a second run, the same users with their passwords set again.
(tests/compose runs it against the real engines.)"""

from __future__ import annotations

from typing import Any

import pytest

from humantask_shared.runtime import database_users
from humantask_shared.runtime.database_users import NOTIFIER_ROLE, NOTIFIER_USER, TASKSTORE_USER

PASSWORDS = {TASKSTORE_USER: "t-secret", NOTIFIER_USER: "n-secret"}


class RecordingDatabase:
    def __init__(self, server: RecordingServer, name: str) -> None:
        self.server, self.name = server, name

    def command(self, command: str, value: Any = 1, **fields: Any) -> dict[str, Any]:
        self.server.commands.append((self.name, command, value, fields))
        if command == "buildInfo":
            return {"version": "7.0.0"} | ({"ferretdb": {}} if self.server.ferretdb else {})
        if command in ("usersInfo", "rolesInfo"):  # the role and a user share a name
            kind = command.removesuffix("Info")
            exists = (self.name, kind, value) in self.server.existing
            return {kind: [{"name": value}] if exists else []}
        if command in ("createUser", "createRole"):
            kind = command.removeprefix("create").lower() + "s"
            self.server.existing.add((self.name, kind, value))
        return {"ok": 1}


class RecordingServer:
    def __init__(self, ferretdb: bool) -> None:
        self.ferretdb = ferretdb
        self.existing: set[tuple[str, str, str]] = set()
        self.commands: list[tuple[str, str, Any, dict[str, Any]]] = []

    def __getitem__(self, name: str) -> RecordingDatabase:
        return RecordingDatabase(self, name)

    @property
    def admin(self) -> RecordingDatabase:
        return self["admin"]

    def writes(self) -> list[tuple[str, str, Any, dict[str, Any]]]:
        return [c for c in self.commands if not c[1].endswith("Info")]


def test_on_mongodb_the_notifier_reaches_its_collections_only() -> None:
    server = RecordingServer(ferretdb=False)
    database_users.set_up(server, "humantask", PASSWORDS)  # type: ignore[arg-type]
    privileges = database_users.notifier_privileges("humantask")
    assert server.writes() == [
        ("humantask", "createRole", NOTIFIER_ROLE, {"privileges": privileges, "roles": []}),
        (
            "humantask",
            "createUser",
            TASKSTORE_USER,
            {"pwd": "t-secret", "roles": [{"role": "readWrite", "db": "humantask"}]},
        ),
        (
            "humantask",
            "createUser",
            NOTIFIER_USER,
            {"pwd": "n-secret", "roles": [{"role": NOTIFIER_ROLE, "db": "humantask"}]},
        ),
    ]
    assert {action for p in privileges for action in p["actions"]} == {
        "find",
        "insert",
        "update",
        "remove",
        "createIndex",
    }


def test_on_mongodb_a_second_run_sets_the_passwords_again() -> None:
    server = RecordingServer(ferretdb=False)
    database_users.set_up(server, "humantask", PASSWORDS)  # type: ignore[arg-type]
    server.commands.clear()
    database_users.set_up(server, "humantask", {**PASSWORDS, NOTIFIER_USER: "new"})  # type: ignore[arg-type]
    assert [(c[1], c[2], c[3].get("pwd")) for c in server.writes()] == [
        ("updateRole", NOTIFIER_ROLE, None),
        ("updateUser", TASKSTORE_USER, "t-secret"),
        ("updateUser", NOTIFIER_USER, "new"),
    ]


@pytest.mark.parametrize("runs", [1, 2])
def test_on_ferretdb_each_user_gets_the_one_read_write_role(runs: int) -> None:
    server = RecordingServer(ferretdb=True)
    for _ in range(runs):
        server.commands.clear()
        lines = database_users.set_up(server, "humantask", PASSWORDS)  # type: ignore[arg-type]
    verb = "createUser" if runs == 1 else "updateUser"
    roles = {"roles": list(database_users.FERRETDB_READ_WRITE_ROLES)} if runs == 1 else {}
    assert server.writes() == [
        ("admin", verb, TASKSTORE_USER, {"pwd": "t-secret", **roles}),
        ("admin", verb, NOTIFIER_USER, {"pwd": "n-secret", **roles}),
    ]
    assert all("FerretDB has no other" in line for line in lines)
