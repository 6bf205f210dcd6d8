"""The checked-in OpenAPI/AsyncAPI documents match the models and hold together.

Structural checks only: no spec validator is a project dependency (yet); when
`openapi-spec-validator` is installed, the OpenAPI document is validated with it too.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from humantask_contracts import CONTRACT_FILES, build_asyncapi, build_openapi, rendered_contracts
from humantask_contracts.openapi import documented_routes
from humantask_contracts.schemas import render_yaml
from humantask_gateway.app import create_app
from humantask_gateway.settings import GatewaySettings
from humantask_shared.core.messages.base import Command, Event
from humantask_shared.core.messages.envelope import EventStamp
from humantask_shared.core.messages.events import EVENTS
from humantask_shared.core.models import TaskListQuery
from humantask_shared.core.topology import (
    COMMANDS,
    COMMANDS_EXCHANGE,
    EVENTS_EXCHANGE,
    NOTIFIER_COMMANDS_EXCHANGE,
    QUEUES,
    TASKSTORE_COMMANDS_QUEUE,
    command_queue,
    queue_arguments,
)
from humantask_shared.runtime.broker import DEADLINE_HEADER, REQUEST_ID_HEADER
from humantask_shared.runtime.health import health_app
from humantask_shared.runtime.http_routes import UndeclaredRoute
from tests.support.fake_boundary import FakeBoundary

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO_ROOT / "contracts"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
TASK_FIELDS = {
    "task_id",
    "created_at",
    "completed_at",
    "callback_url",
    "type",
    "status",
    "instruction",
    "params",
    "response",
    "metadata",
    "unique_id",
    "canceled_at",
    # docs/reference/contract.md §10, each only when the customer set it.
    "min_workers",
    "max_workers",
    "confidence",
    "gold_category",
}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return build_openapi()


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    return build_asyncapi()


def iter_refs(node: Any, path: str = "#") -> Iterator[tuple[str, str]]:
    """(where, $ref) for every `$ref` in a document."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield path, node["$ref"]
        for key, value in node.items():
            yield from iter_refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from iter_refs(value, f"{path}/{index}")


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def deref(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(document, node["$ref"])
    return node


def operations(openapi: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


# --- drift --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONTRACT_FILES))
def test_checked_in_contract_matches_the_models(name: str) -> None:
    expected = rendered_contracts()[name]
    path = CONTRACTS_DIR / name
    current = path.read_text(encoding="utf-8") if path.exists() else None
    assert current == expected, (
        f"contracts/{name} is out of date with the models: run `make contracts` "
        f"(python scripts/generate_contracts.py) and commit the result"
    )


def test_rendering_is_deterministic_and_round_trips() -> None:
    for name, build in CONTRACT_FILES.items():
        text = render_yaml(build())
        assert text == render_yaml(build()), name
        assert yaml.safe_load(text) == build(), name
        assert "&id" not in text and "*id" not in text, f"{name}: YAML anchors leaked"


def load_generator_script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "generate_contracts", REPO_ROOT / "scripts" / "generate_contracts.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_mode_reports_stale_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_generator_script()
    monkeypatch.setattr(script, "CONTRACTS_DIR", tmp_path)
    monkeypatch.setattr(script, "GATEWAY_REFERENCE_DIR", tmp_path / "reference")

    assert script.main([]) == 0
    assert (tmp_path / "reference/openapi.yaml").read_text() == (
        tmp_path / "openapi.yaml"
    ).read_text()
    assert script.main(["--check"]) == 0

    stale = tmp_path / "openapi.yaml"
    stale.write_text(stale.read_text().replace("humantask API", "stale API"))
    capsys.readouterr()
    assert script.main(["--check"]) == 1
    out, err = capsys.readouterr()
    assert "-  title: stale API" in out and "+  title: humantask API" in out
    assert "make contracts" in err


# --- OpenAPI ------------------------------------------------------------------------


def test_openapi_is_3_1_with_local_server_and_basic_auth(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"] == "3.1.0"
    assert openapi["info"]["version"] == "1.0.0"
    assert openapi["servers"][0]["url"] == "http://localhost:8080"
    scheme = openapi["components"]["securitySchemes"]["customerApiKey"]
    assert scheme == {**scheme, "type": "http", "scheme": "basic"}


@pytest.mark.parametrize("build", [build_openapi, build_asyncapi], ids=["openapi", "asyncapi"])
def test_every_ref_resolves(build: Any) -> None:
    document = build()
    refs = list(iter_refs(document))
    assert refs
    for where, ref in refs:
        assert ref.startswith("#/"), f"{where}: {ref} is not local"
        resolve(document, ref)


def test_the_customer_api_is_all_there(openapi: dict[str, Any]) -> None:
    published = {(method, path) for path, method, _ in operations(openapi)}
    assert {
        ("post", "/v1/task/categorize"),
        ("post", "/v1/task/categorization"),
        ("get", "/v1/task/{task_id}"),
        ("get", "/v1/tasks"),
        ("post", "/v1/task/{task_id}/cancel"),
        ("get", "/v1/task/{task_id}/callbacks"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
    } <= published
    ids = [operation["operationId"] for _, _, operation in operations(openapi)]
    assert len(ids) == len(set(ids)), "operationIds must be unique"


def served_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route `app` serves, but the HEAD aiohttp adds to a GET."""
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD"
    }


def test_the_document_has_every_route_the_gateway_serves_and_no_other(
    openapi: dict[str, Any],
) -> None:
    """Read independently of the generator: what the routers serve against the document."""
    public = create_app(GatewaySettings(), FakeBoundary())  # type: ignore[arg-type]
    health_port = health_app(public)
    # Pages for people, outside the document: the workbench and the API reference's page.
    page_files = ("reference.js", "reference.css", "swagger-ui-bundle.js", "swagger-ui.css")
    pages = {("get", "/work"), ("get", "/work/workbench.js"), ("get", "/work/workbench.css")}
    pages |= {("get", "/docs")} | {("get", f"/docs/{name}") for name in page_files}
    documented = {(method, path) for path, method, _ in operations(openapi)}
    assert documented == (served_routes(public) | served_routes(health_port)) - pages
    assert served_routes(health_port) == {
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
    }
    public_paths = {path for _, path in served_routes(public)}
    for path, item in openapi["paths"].items():
        assert ("servers" in item) == (path not in public_paths), path


def test_a_route_served_without_a_declaration_fails_the_build() -> None:
    public = create_app(GatewaySettings(), FakeBoundary())  # type: ignore[arg-type]

    async def sneaky(request: Any) -> Any:
        raise AssertionError("never called")

    public.router.add_post("/v1/sneaky", sneaky)
    with pytest.raises(UndeclaredRoute, match="POST /v1/sneaky"):
        documented_routes(public, health_app(public))


def test_every_operation_has_responses_and_errors_are_error_bodies(
    openapi: dict[str, Any],
) -> None:
    for path, method, operation in operations(openapi):
        responses = operation.get("responses")
        assert responses, f"{method} {path} has no responses"
        assert any(status.startswith("2") for status in responses), f"{method} {path}"
        if not path.startswith("/v1/"):
            continue
        for status, response in responses.items():
            if int(status) >= 400:
                schema = deref(openapi, response)["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)


def test_customer_operations_need_credentials_and_health_does_not(
    openapi: dict[str, Any],
) -> None:
    for path, method, operation in operations(openapi):
        if path.startswith(("/v1/", "/scale/v1/")):
            scheme = "workerToken" if path.startswith("/v1/work/") else "customerApiKey"
            assert operation["security"] == [{scheme: []}], (method, path)
            assert "401" in operation["responses"], (method, path)
            assert "503" in operation["responses"], (method, path)
        else:
            assert operation["security"] == [], (method, path)


def test_401_and_503_carry_their_headers(openapi: dict[str, Any]) -> None:
    responses = openapi["components"]["responses"]
    assert "WWW-Authenticate" in responses["Unauthorized"]["headers"]
    assert "Retry-After" in responses["ServiceUnavailable"]["headers"]
    statuses = {status for _, _, op in operations(openapi) for status in op["responses"]}
    assert {"400", "401", "404", "409", "413", "415", "503"} <= statuses
    assert "MethodNotAllowed" in responses  # 405: any path, any other method


def test_task_schema_has_exactly_the_seed_fields(openapi: dict[str, Any]) -> None:
    task = openapi["components"]["schemas"]["Task"]
    assert set(task["properties"]) == TASK_FIELDS


def test_task_id_path_parameter_is_24_hex(openapi: dict[str, Any]) -> None:
    for path, method, operation in operations(openapi):
        if "{task_id}" in path:
            parameters = [deref(openapi, p) for p in operation["parameters"]]
            (task_id,) = [p for p in parameters if p["name"] == "task_id"]
            assert task_id["in"] == "path" and task_id["required"] is True
            assert task_id["schema"]["pattern"] == "^[0-9a-f]{24}$", (method, path)


def test_list_query_parameters_are_the_task_list_query(openapi: dict[str, Any]) -> None:
    operation = openapi["paths"]["/v1/tasks"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == set(TaskListQuery.model_fields)
    assert all(p["in"] == "query" and p["required"] is False for p in parameters.values())
    assert parameters["limit"]["schema"] == {
        "default": 100,
        "maximum": 100,
        "minimum": 1,
        "type": "integer",
    }
    assert parameters["offset"]["schema"]["minimum"] == 0
    for name in ("start_time", "end_time"):
        assert parameters[name]["schema"] == {"format": "date-time", "type": "string"}

    ok = operation["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Task"},
    }
    assert "Link" in ok["headers"]


@pytest.mark.parametrize("path", ["/v1/task/categorize", "/v1/task/categorization"])
def test_create_takes_json_or_a_form(openapi: dict[str, Any], path: str) -> None:
    operation = openapi["paths"][path]["post"]
    content = operation["requestBody"]["content"]
    assert content["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateTaskRequest"
    }
    form = deref(openapi, content["application/x-www-form-urlencoded"]["schema"])
    assert {"categories", "categories[]"} <= set(form["properties"])
    assert "metadata" not in form["properties"]  # JSON bodies only
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Task"
    }


def test_openapi_passes_a_spec_validator_when_installed(openapi: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(yaml.safe_load(render_yaml(openapi)))


# --- AsyncAPI -----------------------------------------------------------------------


def channel_at(asyncapi: dict[str, Any], address: str, exchange: str) -> dict[str, Any]:
    matches = [
        channel
        for channel in asyncapi["channels"].values()
        if channel["address"] == address
        and channel["bindings"]["amqp"].get("exchange", {}).get("name") == exchange
    ]
    assert len(matches) == 1, f"no single channel for {address} on {exchange}"
    return matches[0]


def operations_on(asyncapi: dict[str, Any], channel: dict[str, Any]) -> dict[str, dict]:
    return {
        operation_id: operation
        for operation_id, operation in asyncapi["operations"].items()
        if deref(asyncapi, operation["channel"]) is channel
    }


def test_asyncapi_is_3_0(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["servers"]["rabbitmq"]["protocol"] == "amqp"


def test_only_the_notifiers_commands_go_to_the_notifier_exchange() -> None:
    """The notifier's broker user reads its own command exchange, never the task-store's."""
    routed = {command.routing_key: command_queue(command).exchange for command in COMMANDS}
    notifiers = {"callback.list", "callback.redeliver", "callback.list_failed"}
    assert {name for name, exchange in routed.items() if exchange != COMMANDS_EXCHANGE} == notifiers
    assert {routed[name] for name in notifiers} == {NOTIFIER_COMMANDS_EXCHANGE}


@pytest.mark.parametrize("command", COMMANDS, ids=[c.routing_key for c in COMMANDS])
def test_every_command_is_in_asyncapi(
    asyncapi: dict[str, Any], command: type[Command[Any]]
) -> None:
    name = command.routing_key
    queue = command_queue(command)
    assert queue.exchange is not None
    channel = channel_at(asyncapi, name, queue.exchange.name)
    assert channel["bindings"]["amqp"]["exchange"]["type"] == "direct"
    (message,) = [deref(asyncapi, m) for m in channel["messages"].values()]
    assert message["name"] == name
    payload = deref(asyncapi, message["payload"])
    assert set(payload["properties"]) == set(command.model_fields)
    headers = deref(asyncapi, message["headers"])
    assert {REQUEST_ID_HEADER, DEADLINE_HEADER} <= set(headers["properties"])

    sends = operations_on(asyncapi, channel)
    assert [op["action"] for op in sends.values()] == ["send"] * len(command.senders)
    assert all("reply" in op for op in sends.values())
    # The senders are those the receiver lets send it (`CommandServer`, `broker_access`).
    assert {operation_id.split(".send.")[0] for operation_id in sends} == command.senders

    queue_channel = asyncapi["channels"][f"queue.{queue.name}"]
    receives = [
        op
        for op in operations_on(asyncapi, queue_channel).values()
        if op["action"] == "receive" and deref(asyncapi, op["messages"][0])["name"] == name
    ]
    assert len(receives) == 1, f"nobody receives {name}"
    reply_payload = deref(asyncapi, deref(asyncapi, receives[0]["reply"]["messages"][0])["payload"])
    assert reply_payload["allOf"][0] == {"$ref": "#/components/schemas/Reply"}


def test_the_command_queue_is_durable_and_dead_letters(asyncapi: dict[str, Any]) -> None:
    addresses = {c["address"]: c for c in asyncapi["channels"].values()}
    queue = addresses[TASKSTORE_COMMANDS_QUEUE.name]["bindings"]["amqp"]
    assert queue["is"] == "queue" and queue["queue"]["durable"] is True
    dead_letter = f"{TASKSTORE_COMMANDS_QUEUE.name}.dead-letter"
    assert queue["x-dead-letter-routing-key"] == TASKSTORE_COMMANDS_QUEUE.name
    assert addresses[dead_letter]["bindings"]["amqp"]["queue"]["durable"] is True


@pytest.mark.parametrize("queue", QUEUES, ids=[queue.name for queue in QUEUES])
def test_every_declared_queue_is_a_channel_with_its_arguments(
    asyncapi: dict[str, Any], queue: Any
) -> None:
    (channel,) = [c for c in asyncapi["channels"].values() if c["address"] == queue.name]
    binding = channel["bindings"]["amqp"]
    assert binding["queue"]["exclusive"] is queue.per_process
    assert {k: v for k, v in binding.items() if k.startswith("x-")} == queue_arguments(
        queue, "classic"
    )
    carried = {deref(asyncapi, m)["title"] for m in channel["messages"].values()}
    assert {model.__name__ for model in queue.carries} <= carried
    assert set(channel.get("parameters", {})) == set(queue.parameters)
    assert all("{" + name + "}" in queue.name for name in queue.parameters)


def test_the_notifiers_own_queues_are_there(asyncapi: dict[str, Any]) -> None:
    """The completion, retry and delay queues were once missing from the document."""
    addresses = {c["address"] for c in asyncapi["channels"].values()}
    assert {
        "notifier.task-completed",
        "notifier.task-completed.dead-letter",
        "notifier.callback-retry",
        "notifier.callback-retry.dead-letter",
        "notifier.callback-retry.delay-{delay_ms}ms",
        "{owner}.replies.{id}",
        "{owner}.credentials.{id}",
    } <= addresses


@pytest.mark.parametrize("event", EVENTS, ids=[e.routing_key for e in EVENTS])
def test_every_event_is_in_asyncapi(asyncapi: dict[str, Any], event: type[Event]) -> None:
    routing_key = event.routing_key
    channel = channel_at(asyncapi, routing_key, EVENTS_EXCHANGE.name)
    assert channel["bindings"]["amqp"]["exchange"]["type"] == "topic"
    (message,) = [deref(asyncapi, m) for m in channel["messages"].values()]
    payload = deref(asyncapi, message["payload"])
    # The event's own fields and its stamp, as `StampedEvent.body` writes them.
    assert set(payload["properties"]) == {
        *event.model_fields,
        *EventStamp.model_fields,
        "event_type",
    }

    publishes = [op for op in operations_on(asyncapi, channel).values() if op["action"] == "send"]
    assert len(publishes) == 1
    assert publishes[0]["bindings"]["amqp"]["deliveryMode"] == 2  # persistent


def test_subscribers_receive_their_events_from_their_queues(asyncapi: dict[str, Any]) -> None:
    expected = {
        ("notifier", "task.completed", "notifier.task-completed"),
        ("notifier", "credential.changed", "{owner}.credentials.{id}"),
        ("gateway", "credential.changed", "{owner}.credentials.{id}"),
    }
    for service, routing_key, address in expected:
        operation = asyncapi["operations"][f"{service}.receive.{routing_key}"]
        assert operation["action"] == "receive"
        assert deref(asyncapi, operation["channel"])["address"] == address


def test_callback_log_entries_are_the_spec_fields(openapi: dict[str, Any]) -> None:
    ok = openapi["paths"]["/v1/task/{task_id}/callbacks"]["get"]["responses"]["200"]
    schema = ok["content"]["application/json"]["schema"]
    assert schema["type"] == "array"
    entry = deref(openapi, schema["items"])
    # The spec's fields, and `delivery`, present only on a redelivery's attempts.
    assert set(entry["properties"]) == {
        "attempt",
        "at",
        "status_code",
        "error",
        "delivered",
        "delivery",
    }
    assert "delivery" not in entry["required"]
    assert entry["properties"]["delivery"]["type"] == "integer"


def test_commands_name_who_answers_them(asyncapi: dict[str, Any]) -> None:
    operations = asyncapi["operations"]
    assert "notifier.receive.callback.list" in operations
    assert "gateway.send.callback.list" in operations
    assert "notifier.send.customer.callback_secret" in operations
    assert "taskstore.receive.customer.callback_secret" in operations
    channel = deref(asyncapi, operations["notifier.receive.callback.list"]["channel"])
    assert channel["address"] == "notifier.commands"
    retry = asyncapi["operations"]["notifier.send.callback.retry_due"]
    assert deref(asyncapi, retry["channel"])["address"].startswith("notifier.callback-retry.delay-")
