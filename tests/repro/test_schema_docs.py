"""The config schema is the single source of truth for the configuration reference.

Checks that every key of workflow/schemas/config.schema.yaml carries a description
and a default (unless its parent requires it), that config.yaml and the tiny test
config are valid, and that the reference in docs/CONFIG.md is the one generated from
the schema. After changing the schema, regenerate that page's block with

    make config-docs        # runs: python tests/repro/test_schema_docs.py --write
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
REFERENCE_PATH = REPO_ROOT / "docs" / "CONFIG.md"
BEGIN_MARKER = "<!-- BEGIN config-reference: generated from the schema by `make config-docs` -->"
END_MARKER = "<!-- END config-reference -->"
# Longer defaults (whole lists of datasets) would swamp the table.
MAX_DEFAULT_CHARS = 60


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def _describe_type(node: dict) -> str:
    if "type" not in node and "enum" in node:
        return "one of " + ", ".join(json.dumps(value) for value in node["enum"])
    types = node.get("type", "any")
    types = types if isinstance(types, list) else [types]
    words = []
    for name in types:
        if name == "array" and isinstance(node.get("items"), dict):
            words.append(f"list of {_describe_type(node['items'])}")
        elif name == "object" and isinstance(node.get("additionalProperties"), dict):
            words.append("mapping")
        else:
            words.append(name)
    text = " or ".join(words)
    if "minItems" in node:
        text += f", at least {node['minItems']} item{'s' if node['minItems'] != 1 else ''}"
    bounds = [
        f"{symbol} {node[keyword]}"
        for keyword, symbol in (
            ("minimum", "≥"),
            ("exclusiveMinimum", ">"),
            ("maximum", "≤"),
            ("exclusiveMaximum", "<"),
        )
        if keyword in node
    ]
    if "enum" in node:
        bounds.append("one of " + ", ".join(json.dumps(value) for value in node["enum"]))
    return f"{text} ({'; '.join(bounds)})" if bounds else text


def _describe_default(node: dict, required: bool) -> str:
    if "default" not in node:
        return "required" if required else "—"
    text = json.dumps(node["default"], ensure_ascii=False)
    return f"`{text}`" if len(text) <= MAX_DEFAULT_CHARS else "(long; see the schema)"


def _is_section(node: dict) -> bool:
    return node.get("type") == "object" and "properties" in node


def iter_keys(node: dict, prefix: str = ""):
    """Yield ``(dotted_key, schema_node, required)`` for every key below ``node``, depth first.

    Entries of a free-form mapping (``additionalProperties`` with a schema) appear
    under the placeholder ``<name>``.
    """
    required = set(node.get("required", []))
    for name, child in node.get("properties", {}).items():
        key = f"{prefix}{name}"
        yield key, child, name in required
        yield from iter_keys(child, f"{key}.")
        entry = child.get("additionalProperties")
        if isinstance(entry, dict):
            yield from iter_keys(entry, f"{key}.<name>.")


def reference_markdown(schema: dict) -> str:
    """The configuration reference: one table for the global keys, one per section."""
    header = "| key | type | default | description |\n|---|---|---|---|"

    def rows(node: dict, prefix: str) -> list[str]:
        return [
            f"| `{key}` | {_one_line(_describe_type(child))} | {_describe_default(child, required)} "
            f"| {_one_line(child.get('description', ''))} |"
            for key, child, required in iter_keys(node, prefix)
        ]

    top = schema["properties"]
    global_keys = {name: node for name, node in top.items() if not _is_section(node)}
    parts = ["## Global keys", "", header, *rows({"properties": global_keys}, "")]
    for name, node in top.items():
        if not _is_section(node):
            continue
        parts += ["", f"## `{name}`", "", _one_line(node.get("description", "")), ""]
        if node["properties"]:
            parts += [header, *rows(node, f"{name}.")]
        else:
            parts.append("(no keys yet)")
    return "\n".join(parts) + "\n"


def page_with_reference(page: str, reference: str) -> str:
    """``page`` with the text between the markers replaced by ``reference``."""
    pattern = re.compile(re.escape(BEGIN_MARKER) + r"\n.*?" + re.escape(END_MARKER), re.DOTALL)
    if not pattern.search(page):
        raise ValueError(
            f"{REFERENCE_PATH.relative_to(REPO_ROOT)} lacks the markers {BEGIN_MARKER!r} ... {END_MARKER!r}; put them "
            "where the configuration reference belongs"
        )
    return pattern.sub(lambda _: f"{BEGIN_MARKER}\n{reference}{END_MARKER}", page)


def _merge(base: dict, override: dict) -> dict:
    """Recursive dict update, as Snakemake merges --configfile files over config.yaml."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def test_every_key_has_a_description_and_a_default_unless_required():
    problems = []
    for key, node, required in iter_keys(load_schema()):
        if not node.get("description", "").strip():
            problems.append(f"{key}: no description")
        if "default" not in node and not required:
            problems.append(f"{key}: no default (give one, or list it in its parent's required)")
    assert problems == []


def test_sections_reject_unknown_keys():
    # A typo in a key must be an error, never a silent fall-back to the default.
    schema = load_schema()
    loose = [
        name
        for name, node in schema["properties"].items()
        if _is_section(node) and node.get("additionalProperties") is not False
    ]
    assert schema.get("additionalProperties") is False
    assert loose == []


@pytest.mark.parametrize("overrides", [[], ["tests/config/config.yaml"]], ids=["default", "tiny"])
def test_configs_are_valid(overrides):
    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    for path in overrides:
        config = _merge(config, yaml.safe_load((REPO_ROOT / path).read_text()) or {})
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(config)]
    assert errors == []


def test_generated_reference_documents_every_key():
    schema = load_schema()
    reference = reference_markdown(schema)
    undocumented = [
        key for key, _, _ in iter_keys(schema) if f"| `{key}` |" not in reference and f"## `{key}`" not in reference
    ]
    assert undocumented == []


def test_config_page_is_up_to_date():
    page = REFERENCE_PATH.read_text()
    expected = page_with_reference(page, reference_markdown(load_schema()))
    assert page == expected, "the configuration reference in docs/CONFIG.md is out of date: run `make config-docs`"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/CONFIG.md in place")
    args = parser.parse_args(argv)
    reference = reference_markdown(load_schema())
    if args.write:
        REFERENCE_PATH.write_text(page_with_reference(REFERENCE_PATH.read_text(), reference))
    else:
        sys.stdout.write(reference)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
