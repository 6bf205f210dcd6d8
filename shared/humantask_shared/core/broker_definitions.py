"""The RabbitMQ users of a deployment, one per service, and the least each may do.

RabbitMQ is the trust boundary between the services, so nobody shares a user and none is
`guest`. Each service's user may configure (declare), write (publish to, bind a queue to)
and read (consume from, bind from) only the exchanges and queues that service uses; on
the topic exchange `humantask.events` topic permissions also limit which routing keys a
user may publish or bind. What no permission can express, the receivers check: a
command's `user_id` (validated by the broker) must be one of its `senders`
(`broker_access`).

The same table feeds the RabbitMQ definitions that docker-compose.yml loads at boot
(`python -m humantask_shared.core.broker_definitions`, passwords from the environment, stored
as salted SHA-256 hashes) and the tests that prove it against a real broker.

What each service does on the broker, and so needs:

- every service declares the exchanges it uses (configure on all four of `topology`;
  which also lets it delete them: a denial of service, not a disclosure);
- the gateway publishes commands to both command exchanges, and binds a queue of its own
  to `credential.changed`; it reads nothing but its own queues;
- the task-store consumes `taskstore.commands`, replies through the default exchange
  (`amq.default`) and publishes events; it also consumes `taskstore.quality`, its own
  answers, completions, cancelations and blocks (bound on `humantask.events`), and
  follows its batches' progress (`batch.*` events, on `taskstore.batch-progress`);
- the notifier consumes completion events (tasks' and batches') and its own commands,
  schedules retries through the default exchange and asks the task-store for callback
  secrets; it has no
  read access to `humantask.commands`, so it can neither see nor answer the gateway's
  commands to the task-store;
- `humantask-admin` publishes commands to both command exchanges (the task-store's
  accounts, the notifier's failed deliveries and redeliveries) and reads its reply queue.
  It is also the operator's hand on the dead letters: it reads (lists, inspects,
  acknowledges away) the `*.dead-letter` queues and nothing else of the services', and
  replays a dead letter into its work queue through the default exchange (`amq.default`:
  RabbitMQ cannot narrow a write there to some queues). What that write could forge, the
  receivers still refuse: a command carries the broker-validated `user_id` of its
  sender, so one published as `humantask-admin` is refused unless the admin may send
  it. An event it could forge into the notifier's queue would be signed with a
  customer's callback secret, which this user can already replace (`rotate-secret`).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .placeholders import PLACEHOLDER, placeholder_message
from .topology import DEAD_LETTER_SUFFIX, EXCHANGES

VHOST = "humantask"
HASHING_ALGORITHM = "rabbit_password_hashing_sha256"

# Every service declares the exchanges it uses; the queues and exchanges each may
# read and write are tested against `topology` (tests/unit/test_topology.py).
_EXCHANGES = "|".join(re.escape(exchange.name) for exchange in EXCHANGES)


@dataclass(frozen=True)
class Permissions:
    """RabbitMQ's three regular expressions over exchange and queue names, and the topic
    permission on `humantask.events` (routing keys it may publish, and bind)."""

    configure: str
    write: str
    read: str
    events_write: str = "^$"
    events_read: str = "^$"


# service -> its permissions. The default user names are `humantask-<service>`.
SERVICE_PERMISSIONS: dict[str, Permissions] = {
    "gateway": Permissions(
        configure=rf"^({_EXCHANGES}|gateway\.(replies|credentials)\..+)$",
        write=r"^(humantask\.(commands|notifier-commands)|gateway\.credentials\..+)$",
        read=r"^(humantask\.events|gateway\.(replies|credentials)\..+)$",
        events_read=r"^credential\.changed$",
    ),
    "taskstore": Permissions(
        configure=rf"^({_EXCHANGES}|taskstore\..+)$",
        write=r"^(amq\.default|humantask\.(events|dead-letter)|taskstore\..+)$",
        read=r"^(humantask\.(commands|events|dead-letter)|taskstore\..+)$",
        events_write=r"^(task|credential|worker|batch)\.[a-z_]+$",
        events_read=(
            r"^(task\.(answered|completed|canceled)|worker\.blocked"
            r"|batch\.(task_settled|finalized))$"
        ),
    ),
    "notifier": Permissions(
        configure=rf"^({_EXCHANGES}|notifier\..+)$",
        write=r"^(amq\.default|humantask\.(commands|dead-letter)|notifier\..+)$",
        read=r"^(humantask\.(notifier-commands|events|dead-letter)|notifier\..+)$",
        events_read=r"^(task\.completed|batch\.completed|credential\.changed)$",
    ),
    "admin": Permissions(
        configure=r"^admin\.replies\..+$",
        write=r"^(amq\.default|humantask\.(commands|notifier-commands))$",
        read=rf"^(admin\.replies\..+|[a-z][a-z.-]*{re.escape(DEAD_LETTER_SUFFIX)})$",
    ),
}
# Not a service: the operator's login to the management UI (only when its password is set).
OPERATOR = "operator"


def default_user(service: str) -> str:
    return f"humantask-{service}"


def password_env(service: str) -> str:
    return f"RABBITMQ_{service.upper()}_PASSWORD"


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt + SHA-256(salt + password))."""
    salt = secrets.token_bytes(4) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return base64.b64encode(salt + digest).decode("ascii")


def definitions(
    passwords: Mapping[str, str],
    vhost: str = VHOST,
    users: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """RabbitMQ definitions (for `load_definitions` or `rabbitmqctl import_definitions`):
    the vhost, a user per service in `passwords` (service -> password) and its
    permissions. `users` renames them (service -> user name; tests use throwaway ones).
    With an `operator` password, an administrator for the management UI too."""
    names = {service: (users or {}).get(service, default_user(service)) for service in passwords}
    document: dict[str, Any] = {
        "vhosts": [{"name": vhost}],
        "users": [],
        "permissions": [],
        "topic_permissions": [],
    }
    for service, password in passwords.items():
        if not password:
            raise ValueError(f"no password for the {service} broker user")
        operator = service == OPERATOR
        document["users"].append(
            {
                "name": names[service],
                "password_hash": password_hash(password),
                "hashing_algorithm": HASHING_ALGORITHM,
                "tags": ["administrator"] if operator else [],
            }
        )
        allowed = Permissions(".*", ".*", ".*") if operator else SERVICE_PERMISSIONS[service]
        document["permissions"].append(
            {
                "user": names[service],
                "vhost": vhost,
                "configure": allowed.configure,
                "write": allowed.write,
                "read": allowed.read,
            }
        )
        if not operator:
            document["topic_permissions"].append(
                {
                    "user": names[service],
                    "vhost": vhost,
                    "exchange": "humantask.events",
                    "write": allowed.events_write,
                    "read": allowed.events_read,
                }
            )
    return document


def passwords_from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Every service's password (required), and the operator's if set."""
    missing = [password_env(s) for s in SERVICE_PERMISSIONS if not environ.get(password_env(s))]
    if missing:
        raise SystemExit(f"set {', '.join(missing)} (see .env.example)")
    placeholders = [
        name
        for name in (*map(password_env, SERVICE_PERMISSIONS), password_env(OPERATOR))
        if environ.get(name, "").strip() == PLACEHOLDER
    ]
    if placeholders:
        raise SystemExit("\n".join(placeholder_message(name) for name in placeholders))
    passwords = {service: environ[password_env(service)] for service in SERVICE_PERMISSIONS}
    if environ.get(password_env(OPERATOR)):
        passwords[OPERATOR] = environ[password_env(OPERATOR)]
    return passwords


def main(argv: list[str] | None = None) -> None:
    """Write the definitions for the passwords in RABBITMQ_<SERVICE>_PASSWORD."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("output", help="file to write (`-`: standard output)")
    parser.add_argument("--vhost", default=os.environ.get("RABBITMQ_VHOST", VHOST))
    args = parser.parse_args(argv)
    text = json.dumps(definitions(passwords_from_environment(os.environ), args.vhost), indent=2)
    if args.output == "-":
        sys.stdout.write(text + "\n")
        return
    with open(args.output, "w", encoding="utf-8") as output:
        output.write(text + "\n")
    os.chmod(args.output, 0o644)  # read by the rabbitmq container's own user
    users = ", ".join(user["name"] for user in json.loads(text)["users"])
    sys.stderr.write(f"wrote {args.output}: users {users}\n")


if __name__ == "__main__":
    main()
