"""The database users of a deployment, one per service that uses the database, and the
least each may do; made over the wire protocol, on MongoDB 7 and on FerretDB 2 alike.

`python -m humantask_shared.runtime.database_users` is the one-shot job of docker-compose.yml that
runs before the task-store and the notifier start (as the broker's users come from
`broker_definitions`). It logs in with MONGODB_ADMIN_URL (MongoDB's root user, or the
PostgreSQL user FerretDB runs as) and makes, or brings up to date:

- `humantask-taskstore` (MONGODB_TASKSTORE_PASSWORD): reads and writes the humantask
  database (tasks, customers, workers, credentials, the outbox), which it owns;
- `humantask-notifier` (MONGODB_NOTIFIER_PASSWORD): only its delivery records, never
  customers or their callback secrets (it asks the task-store for those, and the
  task-store checks who asks).

The gateway and `humantask-admin` have no database user at all. Passwords are set again
on every run, so a password changed in `.env` takes effect at the next `up`.

MongoDB enforces those roles. FerretDB 2.7 does not: it checks each user's password
against PostgreSQL, then runs every command as its own PostgreSQL user, and DocumentDB
offers two roles only (read-only, or read-write on every database with cluster admin),
never one collection's. There both services get the read-write role, and what keeps the
notifier from the customers' collection is the code, not the database
(docs/operations/compose.md, "Least privilege").
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, OperationFailure

from ..core.placeholders import refuse_placeholder, refuse_placeholder_in_url

TASKSTORE_USER = "humantask-taskstore"
NOTIFIER_USER = "humantask-notifier"
# A role of the notifier's own (MongoDB only): its collections, and only what it does
# to them (humantask_notifier.repository).
NOTIFIER_ROLE = "humantask-notifier"
NOTIFIER_COLLECTIONS = ("callback_deliveries", "callback_attempts")
NOTIFIER_ACTIONS = ("find", "insert", "update", "remove", "createIndex")
# The only read-write role DocumentDB knows (FerretDB 2.7 passes createUser on to it).
FERRETDB_READ_WRITE_ROLES = (
    {"role": "clusterAdmin", "db": "admin"},
    {"role": "readWriteAnyDatabase", "db": "admin"},
)


@dataclass(frozen=True)
class User:
    name: str
    password_env: str


USERS = (
    User(TASKSTORE_USER, "MONGODB_TASKSTORE_PASSWORD"),
    User(NOTIFIER_USER, "MONGODB_NOTIFIER_PASSWORD"),
)

Document = dict[str, Any]


def is_ferretdb(client: MongoClient[Document]) -> bool:
    """FerretDB says so in `buildInfo` (a `ferretdb` field MongoDB does not have)."""
    return "ferretdb" in client.admin.command("buildInfo")


def mongodb_roles(database: str) -> dict[str, list[dict[str, str]]]:
    """Each user's roles on MongoDB, in `database`."""
    return {
        TASKSTORE_USER: [{"role": "readWrite", "db": database}],
        NOTIFIER_USER: [{"role": NOTIFIER_ROLE, "db": database}],
    }


def notifier_privileges(database: str) -> list[dict[str, Any]]:
    return [
        {"resource": {"db": database, "collection": collection}, "actions": list(NOTIFIER_ACTIONS)}
        for collection in NOTIFIER_COLLECTIONS
    ]


def _exists(db: Database[Document], kind: str, name: str) -> bool:
    """Does the user (`kind` "users") or role ("roles") exist in `db`?"""
    answer = db.command(f"{kind}Info", name)
    return bool(answer.get(kind))


def _set_up_mongodb(db: Database[Document], passwords: Mapping[str, str]) -> list[str]:
    done = []
    privileges = notifier_privileges(db.name)
    if _exists(db, "roles", NOTIFIER_ROLE):
        db.command("updateRole", NOTIFIER_ROLE, privileges=privileges, roles=[])
    else:
        db.command("createRole", NOTIFIER_ROLE, privileges=privileges, roles=[])
    done.append(f"role {NOTIFIER_ROLE} ({', '.join(NOTIFIER_COLLECTIONS)})")
    for name, roles in mongodb_roles(db.name).items():
        verb = "updateUser" if _exists(db, "users", name) else "createUser"
        db.command(verb, name, pwd=passwords[name], roles=roles)
        done.append(f"user {name} ({', '.join(role['role'] for role in roles)} on {db.name})")
    return done


def _set_up_ferretdb(client: MongoClient[Document], passwords: Mapping[str, str]) -> list[str]:
    # FerretDB's users are PostgreSQL roles, one namespace for every database.
    admin = client.admin
    done = []
    for name, password in passwords.items():
        if _exists(admin, "users", name):
            admin.command("updateUser", name, pwd=password)  # its roles cannot change
        else:
            admin.command("createUser", name, pwd=password, roles=list(FERRETDB_READ_WRITE_ROLES))
        done.append(f"user {name} (clusterAdmin + readWriteAnyDatabase: FerretDB has no other)")
    return done


def set_up(client: MongoClient[Document], database: str, passwords: Mapping[str, str]) -> list[str]:
    """Make or update every service's user; what was done, one line each."""
    if is_ferretdb(client):
        return _set_up_ferretdb(client, passwords)
    return _set_up_mongodb(client[database], passwords)


def passwords_from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """user -> password, each required and none the placeholder of .env.example."""
    missing = [user.password_env for user in USERS if not environ.get(user.password_env)]
    if missing:
        raise SystemExit(f"set {', '.join(missing)} (see .env.example)")
    passwords = {}
    for user in USERS:
        try:
            refuse_placeholder(user.password_env, environ[user.password_env])
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        passwords[user.name] = environ[user.password_env]
    return passwords


def connect(url: str, deadline_seconds: float) -> MongoClient[Document]:
    """A client that answered a ping before the deadline (the server may be starting)."""
    client: MongoClient[Document] = MongoClient(url, serverSelectionTimeoutMS=2000)
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            client.admin.command("ping")
            return client
        except ConnectionFailure as exc:
            if time.monotonic() > deadline:
                client.close()
                raise SystemExit(
                    f"the database did not answer within {deadline_seconds} s: {exc}"
                ) from None
            time.sleep(1)


def main(argv: list[str] | None = None) -> None:
    """Make or update the services' database users (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for the server")
    args = parser.parse_args(argv)
    url = os.environ.get("MONGODB_ADMIN_URL", "")
    if not url:
        raise SystemExit("set MONGODB_ADMIN_URL (an administrator's URL, naming the database)")
    try:
        refuse_placeholder_in_url("MONGODB_ADMIN_URL", url)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    passwords = passwords_from_environment(os.environ)
    client = connect(url, args.timeout)
    try:
        database = client.get_default_database("humantask").name
        for line in set_up(client, database, passwords):
            sys.stderr.write(f"database users: {line}\n")
    except OperationFailure as exc:
        raise SystemExit(f"the database refused to set up the users: {exc}") from None
    finally:
        client.close()


if __name__ == "__main__":
    main()
