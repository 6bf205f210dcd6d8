"""humantask's Python client: the Scale v1 API of a humantask server.

import humantask

api = humantask.authorize('YOUR_API_KEY', base_url='http://localhost:8080')
task = api.tasks.createCategorization(callback_url=..., instruction=...,
                                      attachment_type='text', attachment='car',
                                      categories=['big', 'small'])
api.tasks.get(task.task_id)
for task in api.tasks.list(status='pending'):
    ...
api.tasks.cancel(task.task_id)
"""

from ._http import (
    API_KEY_VARIABLE,
    BASE_URL_VARIABLE,
    DEFAULT_BASE_URL,
    RETRY_STATUSES,
    RetryPolicy,
)
from ._version import __version__
from .callbacks import parse_callback, sign, verify_callback
from .client import (
    AsyncBatches,
    AsyncClient,
    AsyncProjects,
    AsyncTasks,
    Batches,
    Client,
    Projects,
    Tasks,
    authorize,
    authorize_async,
)
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    BadRequest,
    Conflict,
    HumantaskError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from .models import (
    TASK_STATUSES,
    Batch,
    BatchStatus,
    CallbackAttempt,
    Project,
    Task,
    TaskParams,
    TaskResponse,
)
from .pagination import AsyncPage, Page

__all__ = [
    "API_KEY_VARIABLE",
    "BASE_URL_VARIABLE",
    "DEFAULT_BASE_URL",
    "RETRY_STATUSES",
    "TASK_STATUSES",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncBatches",
    "AsyncClient",
    "AsyncPage",
    "AsyncProjects",
    "AsyncTasks",
    "BadRequest",
    "Batch",
    "BatchStatus",
    "Batches",
    "CallbackAttempt",
    "Client",
    "Conflict",
    "HumantaskError",
    "MethodNotAllowed",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "Project",
    "Projects",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
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
