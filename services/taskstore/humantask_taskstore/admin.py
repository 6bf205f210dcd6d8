"""`humantask-admin`: operator commands that create customers and workers.

Talks to MongoDB directly (operators run it next to the database, like a migration).
Prints one JSON object; the key or token in it is shown this once and stored only hashed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson

from humantask_shared.credentials import (
    credential_hash,
    new_api_key,
    new_callback_secret,
    new_worker_token,
)
from humantask_shared.mongo import mongo_context
from humantask_shared.settings import CommonSettings
from humantask_shared.timeutil import utcnow

from .repository import AccountRepository, ensure_indexes


async def create_customer(settings: CommonSettings, name: str) -> dict[str, str]:
    api_key, callback_secret = new_api_key(), new_callback_secret()
    async for database in mongo_context(settings.mongodb_url, settings.mongodb_database, "humantask-admin"):
        await ensure_indexes(database)
        principal = await AccountRepository(database).add_customer(
            name, credential_hash(api_key), callback_secret, utcnow()
        )
    return {"customer_id": principal.principal_id, "api_key": api_key, "callback_secret": callback_secret}


async def create_worker(settings: CommonSettings, name: str) -> dict[str, str]:
    token = new_worker_token()
    async for database in mongo_context(settings.mongodb_url, settings.mongodb_database, "humantask-admin"):
        principal = await AccountRepository(database).add_worker(name, credential_hash(token), utcnow())
    return {"worker_id": principal.principal_id, "token": token}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="humantask-admin", description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True)
    for group, help_text in (("customers", "API customers"), ("workers", "human workers")):
        actions = groups.add_parser(group, help=help_text).add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help=f"create one of the {help_text}")
        create.add_argument("--name", required=True)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if not args.name.strip():
        sys.exit("humantask-admin: --name must not be empty")
    settings = CommonSettings()
    create = create_customer if args.group == "customers" else create_worker
    result = asyncio.run(create(settings, args.name))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
