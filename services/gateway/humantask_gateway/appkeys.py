"""Typed keys for what the gateway application holds."""

from aiohttp import web

from .auth import Authenticator
from .settings import GatewaySettings
from .taskstore import TaskStoreClient

settings_key = web.AppKey("settings", GatewaySettings)
taskstore_key = web.AppKey("taskstore", TaskStoreClient)
authenticator_key = web.AppKey("authenticator", Authenticator)
