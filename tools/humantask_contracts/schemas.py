"""JSON Schema from the pydantic models, shared by both documents, and stable YAML."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

Json = dict[str, Any]

JSON_MEDIA_TYPE = "application/json"
API_VERSION = "1.0.0"  # the contract's version; deliberately not the package version
SCHEMA_REF_TEMPLATE = "#/components/schemas/{model}"
GENERATED_HEADER = (
    "# Generated from the pydantic models by scripts/generate_contracts.py.\n"
    "# Do not edit by hand: change the models, then run `make contracts`.\n"
)

# ---------------------------------------------------------------------------------------
# JSON Schema, shared by both documents
# ---------------------------------------------------------------------------------------

ModelUse = tuple[type[BaseModel], JsonSchemaMode]


@dataclass(frozen=True)
class Schemas:
    """The JSON Schemas of some models, ready for `components.schemas`.

    `ref()` must be used rather than guessing names: pydantic names a model that is
    used both as input and as output `Name-Input` / `Name-Output`.
    """

    refs: dict[ModelUse, Json]
    components: dict[str, Json]

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> Json:
        return dict(self.refs[(model, mode)])

    def name(self, model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> str:
        ref: str = self.refs[(model, mode)]["$ref"]
        return ref.rsplit("/", 1)[1]

    def add(self, name: str, schema: Json) -> Json:
        """A hand-made schema next to the generated ones; returns its `$ref`."""
        if name in self.components:
            raise ValueError(f"schema name {name!r} is taken by a model")
        self.components[name] = schema
        return {"$ref": SCHEMA_REF_TEMPLATE.format(model=name)}


def collect_schemas(uses: Iterable[ModelUse]) -> Schemas:
    """One pydantic pass over all models, so shared sub-models are defined once."""
    unique_uses = list(dict.fromkeys(uses))
    refs, top = models_json_schema(unique_uses, ref_template=SCHEMA_REF_TEMPLATE)
    components = dict(sorted(top.get("$defs", {}).items()))
    return Schemas(refs={use: refs[use] for use in unique_uses}, components=components)


def without_null(schema: Json) -> Json:
    """A field's schema minus its `null` branch: query strings and forms omit, not null."""
    branches = schema.get("anyOf")
    if branches is None:
        return copy.deepcopy(schema)
    rest = [branch for branch in branches if branch != {"type": "null"}]
    outer = {key: value for key, value in schema.items() if key != "anyOf"}
    if "default" in outer and outer["default"] is None:
        del outer["default"]
    if len(rest) == 1:
        return copy.deepcopy({**rest[0], **outer})
    return copy.deepcopy({**outer, "anyOf": rest})


def json_types(schema: Json) -> set[str]:
    """The JSON types a schema admits (a `$ref` is a nested model: an object)."""
    if "$ref" in schema:
        return {"object"}
    kinds = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        kinds |= json_types(branch)
    return kinds


def render_yaml(document: Json) -> str:
    """Stable YAML: keys in insertion order, no anchors, multi-line strings as blocks.

    PyYAML is a dev/test dependency only: this is imported by the generator and tests,
    never by a running service.
    """
    import yaml

    class ContractDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # repeated dicts are written out
            return True

    def represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
        style = "|" if "\n" in text else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)

    ContractDumper.add_representer(str, represent_str)
    body = yaml.dump(
        document,
        Dumper=ContractDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return GENERATED_HEADER + body
