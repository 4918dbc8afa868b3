"""The JSON Schemas shipped with casesync, and schema errors turned into located problems."""

from __future__ import annotations

import json
import os
import re
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casesync.errors import ConfigError
from casesync.problems import Problem
from casesync.project.yamlload import LoadedYaml

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

EDITOR_SCHEMAS_DIR = ".casesync-schemas"  # committed: the $schema lines must resolve in a clone


def schema_header(yaml_file: Path, root: Path, name: str) -> str:
    """The editor hint line for ``yaml_file``, relative so it works in every clone."""
    target = root / EDITOR_SCHEMAS_DIR / f"{name}.schema.json"
    relative = os.path.relpath(target, yaml_file.parent)
    return f"# yaml-language-server: $schema={Path(relative).as_posix()}\n"


SCHEMA_NAMES = ("case", "project", "lock")


def schema_text(name: str) -> str:
    """The schema's JSON text, as shipped inside the package (``casesync schema NAME``)."""
    if name not in SCHEMA_NAMES:
        raise ConfigError(
            f"no schema named {name!r}", hint=f"choose one of {', '.join(SCHEMA_NAMES)}"
        )
    return files("casesync.schemas").joinpath(f"{name}.schema.json").read_text(encoding="utf-8")


@cache
def _validator(name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # only when a schema is checked

    return Draft202012Validator(json.loads(schema_text(name)))


# Marks a schema whose choices the validator checks itself, with a "did you mean" hint; the
# enumeration is there for editors (completion), so its bare "not valid" error is not repeated.
VOCABULARY_KEYWORD = "x-casesync-vocabulary"
YAML11_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n"})


def schema_problems(name: str, loaded: LoadedYaml) -> list[Problem]:
    """Every schema violation of the document, each at its line and column."""
    errors = sorted(_validator(name).iter_errors(loaded.data), key=lambda e: list(e.path))
    return [_problem(loaded, error) for error in _leaf_errors(errors) if not _vocabulary(error)]


def _vocabulary(error: ValidationError) -> bool:
    return (
        error.validator == "anyOf"
        and isinstance(error.schema, dict)
        and VOCABULARY_KEYWORD in error.schema
    )


def _leaf_errors(errors: list[ValidationError]) -> list[ValidationError]:
    """For oneOf/anyOf failures, report the most specific sub-error instead of a wall of text."""
    result: list[ValidationError] = []
    for error in errors:
        if error.validator in ("oneOf", "anyOf") and error.context:
            deepest = max(error.context, key=lambda e: len(e.path))
            if len(deepest.path) > 0:
                result.append(deepest)
                continue
        result.append(error)
    return result


def _problem(loaded: LoadedYaml, error: ValidationError) -> Problem:
    path = tuple(error.absolute_path)
    field = ".".join(str(part) for part in path) or "(document)"
    if error.validator == "additionalProperties":
        extra = _unexpected_keys(error)
        if extra:
            line, col = loaded.where_key((*path, extra[0]))
            allowed = ", ".join(sorted(error.schema.get("properties", {})))
            return Problem(
                loaded.file,
                line,
                col,
                f"unknown field {extra[0]!r}" + (f" in {field}" if path else ""),
                f"allowed fields: {allowed}",
                code="unknown-field",
            )
    both = _exclusive_pair(error)
    if both:
        line, col = loaded.where_key((*path, both[1]))
        return Problem(
            loaded.file,
            line,
            col,
            f"give either {both[0]} or {both[1]}, not both",
            code="either-or",
        )
    line, col = loaded.where(path)
    code = "schema-" + re.sub(r"(?<!^)(?=[A-Z])", "-", str(error.validator)).lower()
    return Problem(loaded.file, line, col, f"{field}: {_describe(error)}", _hint(error), code=code)


def _exclusive_pair(error: ValidationError) -> list[str]:
    """``not: {required: [a, b]}``: a field given both inline and as a file."""
    if error.validator != "not" or not isinstance(error.validator_value, dict):
        return []
    both = error.validator_value.get("required", [])
    return [str(name) for name in both] if len(both) == 2 else []


def _unexpected_keys(error: ValidationError) -> list[str]:
    instance: Any = error.instance
    known = set(error.schema.get("properties", {}))
    return sorted(key for key in instance if key not in known) if isinstance(instance, dict) else []


def _describe(error: ValidationError) -> str:
    if error.validator == "required":
        return str(error.message).replace("is a required property", "is required")
    if _yaml11_boolean(error):
        return f"{error.instance!r} is not a boolean in YAML 1.2"
    if error.validator == "type":
        expected = error.validator_value
        kinds = " or ".join(expected) if isinstance(expected, list) else expected
        return f"must be {kinds}, not {type(error.instance).__name__}"
    if error.validator == "maxLength":
        return f"is {len(error.instance)} characters, over the limit of {error.validator_value}"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    choices = _const_choices(error)
    if choices:
        return f"{error.instance!r} is not one of {', '.join(choices)}"
    return str(error.message)


def _const_choices(error: ValidationError) -> list[str]:
    """The choices of an anyOf made only of constants (an enumeration with descriptions)."""
    alternatives = error.validator_value if error.validator == "anyOf" else None
    if not isinstance(alternatives, list) or not all(
        isinstance(alt, dict) and "const" in alt for alt in alternatives
    ):
        return []
    return [str(alt["const"]) for alt in alternatives]


def _hint(error: ValidationError) -> str | None:
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if error.validator == "required":
        return "add the field"
    if _yaml11_boolean(error):
        return "write true or false"
    return str(description) if description else None


def _yaml11_boolean(error: ValidationError) -> bool:
    """``yes``/``no``/``on``/``off`` where a boolean is due: YAML 1.1 booleans, strings in 1.2."""
    return (
        error.validator == "type"
        and error.validator_value == "boolean"
        and isinstance(error.instance, str)
        and error.instance.lower() in YAML11_BOOLEANS
    )
