"""JSON Schemas of the project's data files, and the one-line messages their errors become.

The schemas are YAML files in this package (``presets.yaml``: one engine preset; ``datasets.yaml``: the data
manifest). The workflow's config schema lives with the workflow (``workflow/schemas/config.schema.yaml``) and
its errors go through :func:`problem` too. A schema node may carry ``errorMessage``, a
:meth:`str.format` template with ``{instance!r}`` (the offending value), or a mapping from keyword (``type``,
``minimum``, ...) to such a template: that text replaces jsonschema's own message, so an error reads like the rest of the CLI (``--lr: must be a positive finite number, got -1.0``).
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

__all__ = ["ValidationError", "first_error", "load", "path_of", "problem"]

# `finite` (format): a number that is neither NaN nor infinite, which `minimum`/`maximum` cannot express
# (every comparison with NaN is false, so NaN passes both).
FORMATS = jsonschema.FormatChecker()
FORMATS.checks("finite")(lambda v: not isinstance(v, float) or math.isfinite(v))

# JSON Schema counts 1.0 as an integer and Python's bool as neither; the engine needs a real int here.
StrictValidator = jsonschema.validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool)
    ),
)


@cache
def load(name: str) -> dict[str, Any]:
    """The packaged schema ``name`` (``presets`` or ``datasets``), parsed and checked against its metaschema."""
    schema = yaml.safe_load(resources.files(__name__).joinpath(f"{name}.schema.yaml").read_text(encoding="utf-8"))
    StrictValidator.check_schema(schema)
    return schema


def first_error(instance: Any, name: str) -> ValidationError | None:
    """The most relevant violation of schema ``name`` by ``instance`` (jsonschema's best_match), or None."""
    validator = StrictValidator(load(name), format_checker=FORMATS)
    return best_match(validator.iter_errors(instance))


def path_of(error: ValidationError) -> str:
    """Where in the instance the error is, as dotted keys (``tasks.table1.drop``); '' for the top level."""
    return ".".join(str(p) for p in error.absolute_path)


def problem(error: ValidationError) -> str:
    """The error's text: the schema's ``errorMessage`` filled in, else jsonschema's message."""
    template = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    if isinstance(template, dict):  # one template per keyword: {minimum: ..., type: ...}
        template = template.get(error.validator)
    if template is None:
        return error.message
    return template.format(instance=error.instance)
