"""Typed keys for what the gateway application holds."""

from aiohttp import web

from .auth import Authenticator
from .boundary import Boundary
from .settings import GatewaySettings

settings_key = web.AppKey("settings", GatewaySettings)
boundary_key = web.AppKey("boundary", Boundary)
authenticator_key = web.AppKey("authenticator", Authenticator)
