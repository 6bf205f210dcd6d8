"""humantask's Python client for the Scale v1 API.

import scale

api = scale.authorize('YOUR_API_KEY', base_url='http://localhost:8080')
task = api.tasks.createCategorization(callback_url=..., instruction=...,
                                      attachment_type='text', attachment='car',
                                      categories=['big', 'small'])
api.tasks.get(task.task_id)
for task in api.tasks.list(status='pending'):
    ...
api.tasks.cancel(task.task_id)
"""

from ._core import BASE_URL_VARIABLE, DEFAULT_BASE_URL, RetryPolicy, __version__
from .callbacks import parse_callback, sign, verify_callback
from .client import AsyncClient, AsyncTasks, Client, Tasks, authorize, authorize_async
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    BadRequest,
    Conflict,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ScaleError,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from .models import CallbackAttempt, Task, TaskParams, TaskResponse

__all__ = [
    "BASE_URL_VARIABLE",
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncTasks",
    "BadRequest",
    "CallbackAttempt",
    "Client",
    "Conflict",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RetryPolicy",
    "ScaleError",
    "ServiceUnavailable",
    "Task",
    "TaskParams",
    "TaskResponse",
    "Tasks",
    "Unauthorized",
    "UnsupportedMediaType",
    "__version__",
    "authorize",
    "authorize_async",
    "parse_callback",
    "sign",
    "verify_callback",
]
