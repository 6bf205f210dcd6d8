"""Typed keys for what the gateway application holds."""

from aiohttp import web

from humantask_shared.command_client import CommandClient

from .auth import Authenticator
from .settings import GatewaySettings

settings_key = web.AppKey("settings", GatewaySettings)
taskstore_key = web.AppKey("taskstore", CommandClient)
notifier_key = web.AppKey("notifier", CommandClient)
authenticator_key = web.AppKey("authenticator", Authenticator)
