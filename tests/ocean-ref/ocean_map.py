#!/usr/bin/env python3
"""Reference oracle: Port Ocean's ocean-core JQ entity mapping, reproduced with libjq.

Usage:
    python ocean_map.py MAPPING.yaml ITEMS.jsonl [--summary SUMMARY.json] > OUT.jsonl

This is a small, self-contained re-implementation of the parts of port-ocean
(`port_ocean/core/handlers/entity_processor/jq_entity_processor_sync.py`,
`port_ocean/core/integrations/mixins/utils.py::handle_items_to_parse`,
`JQEntityProcessor._parse_items`, the pydantic `EntityMapping` / `Entity`
models) that decide which entities a resync produces from raw items. It uses the
PyPI `jq` binding (libjq), the same library Ocean uses, so jq semantics (number
handling, `join`, `from_entries`, `@csv`, `$__loc__`, error cases...) are libjq's.

What is reproduced (see README.md for the list of what is not):
  * routing: each raw item goes to every `resources[]` entry whose `kind` equals the
    item's `__Kind`, in mapping order;
  * Ocean's `_format_filter` single-quote rewrite on every expression;
  * env access disabled: every program is prefixed `def env: {}; {} as $ENV | `;
  * `itemsToParse` / `itemsToParseName` / `itemsToParseTopLevelTransform`
    (Ocean's `extract_jq_deletion_path_revised` + `del(...)`);
  * selector: first output must be a JSON boolean, anything else is an error;
  * every mapping leaf (including every leaf of a search-query object) is a jq
    expression whose FIRST output is used; errors / no output / null give null and a
    misconfiguration record `{dotted path: expression}`;
  * pydantic v1 coercion of the mapping (non-string scalars become strings) and of the
    entity (`icon`, `team`);
  * skip (count, no error) when identifier or blueprint is falsy in Python terms.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

import jq  # PyPI "jq" (jq.py), bundles libjq
import yaml

# --------------------------------------------------------------------------------------
# Ocean's expression pre-processing
# --------------------------------------------------------------------------------------

# JQEntityProcessorSync._format_filter (the TypeScript regex /(^|\s)'(?!\s|")|(?<!\s|")'(\s|$)/g)
_FORMAT_FILTER_RE = re.compile(r'(^|\s)\'(?!\s|")|(?<!\s|")\'(\s|$)')

# Prepended by JQEntityProcessor(Sync)._compile when
# ocean.config.allow_environment_variables_jq_access is False.
ENV_PREFIX = "def env: {}; {} as $ENV | "

_COMPILED: dict[str, Any] = {}


def format_filter(expression: str) -> str:
    return _FORMAT_FILTER_RE.sub(r'\1"\2', expression)


def compile_pattern(pattern: str) -> Any:
    """Ocean's _compile: _format_filter first, then the env prefix, then jq.compile (cached).

    A non-string pattern raises TypeError inside re.sub, exactly like Ocean."""
    program = ENV_PREFIX + format_filter(pattern)
    cached = _COMPILED.get(program)
    if cached is not None:
        return cached
    compiled = jq.compile(program)
    _COMPILED[program] = compiled
    return compiled


def search(data: Any, pattern: Any) -> Any:
    """JQEntityProcessorSync._search: first output, or None on no output / any error."""
    try:
        return next(iter(compile_pattern(pattern).input_value(data)), None)
    except Exception:  # noqa: BLE001 - Ocean swallows everything here (logs a WARNING)
        return None


class SelectorError(Exception):
    pass


def search_as_bool(data: Any, pattern: Any) -> bool:
    """JQEntityProcessorSync._search_as_bool: errors propagate; non-bool raises."""
    try:
        # `.first()` raises StopIteration when the program yields nothing.
        value = compile_pattern(pattern).input_value(data).first()
    except StopIteration:
        raise SelectorError("selector_failed: selector produced no output") from None
    except Exception as exc:  # noqa: BLE001
        first_line = (str(exc) or type(exc).__name__).split("\n")[0]
        raise SelectorError(f"selector_failed: {first_line}") from None
    if isinstance(value, bool):
        return value
    raise SelectorError(
        f"selector_not_boolean: expected boolean value, got {json.dumps(value, ensure_ascii=False)}"
        f" of type {type(value).__name__}"
    )


def search_as_object(
    data: Any,
    obj: dict[str, Any],
    misconfigurations: dict[str, str] | None,
    path: str = "",
) -> dict[str, Any]:
    """JQEntityProcessorSync._search_as_object, structure kept 1:1."""
    result: dict[str, Any] = {}
    for key, value in obj.items():
        current_path = f"{path}.{key}" if path else key
        try:
            if isinstance(value, list):
                result[key] = []
                for list_item in value:
                    search_result = search_as_object(
                        data, list_item, misconfigurations, path=current_path
                    )
                    result[key].append(search_result)
                    if search_result is None and misconfigurations is not None:
                        misconfigurations[current_path] = obj[key]
            elif isinstance(value, dict):
                search_result = search_as_object(
                    data, value, misconfigurations, path=current_path
                )
                result[key] = search_result
                if search_result is None and misconfigurations is not None:
                    misconfigurations[current_path] = obj[key]
            else:
                search_result = search(data, value)
                result[key] = search_result
                if search_result is None and misconfigurations is not None:
                    misconfigurations[current_path] = value
        except Exception:  # noqa: BLE001
            result[key] = None
    return result


# --------------------------------------------------------------------------------------
# itemsToParse (port_ocean/core/integrations/mixins/utils.py)
# --------------------------------------------------------------------------------------


def extract_jq_deletion_path_revised(jq_expression: str) -> str | None:
    """Verbatim logic of Ocean's extract_jq_deletion_path_revised."""
    expr = jq_expression.strip()
    if expr.startswith("("):
        match_paren = re.match(r"\((.*?)\)", expr, re.DOTALL)
        if match_paren:
            chain = match_paren.group(1).strip()
        else:
            return None
    else:
        chain = expr
    for segment in chain.split("|"):
        segment = segment.strip()
        if re.match(r"^\.\s+as\s+\$\w+", segment):
            continue
        if segment == "." or segment.startswith("$"):
            continue
        path_match = re.match(
            r"(\.[\w]+|\.\[[^\]]+\])(\.[\w]+|\[[^\]]+\]|\.\[[^\]]+\])*", segment
        )
        if path_match:
            return path_match.group(0).strip()
    return None


class ItemError(Exception):
    pass


def handle_items_to_parse(
    item: Any, items_to_parse: str, name: str, top_level_transform: bool
) -> list[Any]:
    """Ocean's handle_items_to_parse for one raw item; returns the merged items.

    Ocean logs a WARNING and skips the item when the expression does not give a list;
    this oracle reports that as an error (see README)."""
    delete_target = extract_jq_deletion_path_revised(items_to_parse) or "."
    del_expression = f". | del({delete_target})"
    items_data = search(item, items_to_parse)
    if top_level_transform:
        item = search(item, del_expression)
    if not isinstance(items_data, list):
        raise ItemError(
            "items_to_parse_not_list: expected list, got "
            + ("null" if items_data is None else type(items_data).__name__)
        )
    merged_items = []
    for element in items_data:
        try:
            merged = {**item}
        except TypeError:
            # Ocean: TypeError escapes handle_items_to_parse -> OceanAbortException for the
            # whole raw batch (happens when del() yields a non-object, e.g. del(.) -> null).
            raise ItemError(
                f"items_to_parse_merge_failed: parent after `{del_expression}` is "
                + ("null" if item is None else type(item).__name__)
            ) from None
        merged[name] = element
        merged_items.append(merged)
    return merged_items


# --------------------------------------------------------------------------------------
# Mapping model (pydantic v1 semantics of port_ocean.core.handlers.port_app_config.models)
# --------------------------------------------------------------------------------------


class MappingConfigError(Exception):
    pass


def _v1_str(value: Any, where: str) -> str:
    """pydantic v1 str_validator: str as is, int/float/bool -> str(value), else error."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):  # bool is an int: True -> "True"
        return str(value)
    raise MappingConfigError(f"{where}: expected a string, got {type(value).__name__}")


def _rule(value: Any, where: str) -> dict[str, Any]:
    """Rule | IngestSearchQuery (pydantic v1 union: first that validates)."""
    if not isinstance(value, dict):
        raise MappingConfigError(f"{where}: expected an object")
    if all(k in value for k in ("property", "operator", "value")):
        try:
            return {
                "property": _v1_str(value["property"], where + ".property"),
                "operator": _v1_str(value["operator"], where + ".operator"),
                "value": _v1_str(value["value"], where + ".value"),
            }
        except MappingConfigError:
            pass
    return _search_query(value, where)


def _search_query(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or "combinator" not in value or "rules" not in value:
        raise MappingConfigError(f"{where}: expected {{combinator, rules}}")
    rules = value["rules"]
    if not isinstance(rules, list):
        raise MappingConfigError(f"{where}.rules: expected a list")
    return {
        "combinator": _v1_str(value["combinator"], where + ".combinator"),
        "rules": [_rule(r, f"{where}.rules[{i}]") for i, r in enumerate(rules)],
    }


def _str_or_query(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return _search_query(value, where)
    return _v1_str(value, where)


def normalize_entity_mappings(mappings: Any, where: str) -> dict[str, Any]:
    """EntityMapping(**raw).dict(exclude_unset=True) - field order of the model."""
    if not isinstance(mappings, dict):
        raise MappingConfigError(f"{where}: expected an object")
    out: dict[str, Any] = {}
    if "identifier" not in mappings or mappings["identifier"] is None:
        raise MappingConfigError(f"{where}.identifier is required")
    out["identifier"] = _str_or_query(mappings["identifier"], where + ".identifier")
    for key in ("title", "icon"):
        if key in mappings:
            v = mappings[key]
            out[key] = None if v is None else _v1_str(v, f"{where}.{key}")
    if "blueprint" not in mappings or mappings["blueprint"] is None:
        raise MappingConfigError(f"{where}.blueprint is required")
    out["blueprint"] = _v1_str(mappings["blueprint"], where + ".blueprint")
    if "team" in mappings:
        v = mappings["team"]
        out["team"] = None if v is None else _str_or_query(v, where + ".team")
    if "properties" in mappings:
        props = mappings["properties"] or {}
        if not isinstance(props, dict):
            raise MappingConfigError(f"{where}.properties: expected an object")
        out["properties"] = {
            str(k): _v1_str(v, f"{where}.properties.{k}") for k, v in props.items()
        }
    if "relations" in mappings:
        rels = mappings["relations"] or {}
        if not isinstance(rels, dict):
            raise MappingConfigError(f"{where}.relations: expected an object")
        out["relations"] = {
            str(k): _str_or_query(v, f"{where}.relations.{k}") for k, v in rels.items()
        }
    return out


class Resource:
    def __init__(self, index: int, raw: dict[str, Any]):
        where = f"resources[{index}]"
        self.index = index
        self.kind = _v1_str(raw.get("kind"), where + ".kind")
        selector = raw.get("selector") or {}
        if "query" not in selector:
            raise MappingConfigError(f"{where}.selector.query is required")
        self.selector_query = _v1_str(selector["query"], where + ".selector.query")
        port = raw.get("port") or {}
        entity = port.get("entity") or {}
        self.mappings = normalize_entity_mappings(
            entity.get("mappings"), where + ".port.entity.mappings"
        )
        itp = port.get("itemsToParse")
        self.items_to_parse = None if itp is None else _v1_str(itp, where + ".port.itemsToParse")
        self.items_to_parse_name = _v1_str(
            port.get("itemsToParseName", "item"), where + ".port.itemsToParseName"
        )
        tlt = port.get("itemsToParseTopLevelTransform", True)
        if isinstance(tlt, str):  # pydantic v1 bool parsing of strings
            tlt = tlt.strip().lower() in ("1", "on", "t", "true", "y", "yes")
        self.items_to_parse_top_level_transform = bool(tlt)


def load_resources(path: str) -> list[Resource]:
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    if not isinstance(doc, dict) or not isinstance(doc.get("resources"), list):
        raise MappingConfigError("mapping must be an object with a `resources` list")
    return [Resource(i, r) for i, r in enumerate(doc["resources"])]


# --------------------------------------------------------------------------------------
# Entity model (pydantic v1 Entity.parse_obj + .dict(exclude_unset=True))
# --------------------------------------------------------------------------------------

ENTITY_KEY_ORDER = ("identifier", "title", "blueprint", "team", "icon", "properties", "relations")


def build_entity(mapped: dict[str, Any]) -> dict[str, Any]:
    entity = dict(mapped)
    if "icon" in entity:  # icon: str | None
        icon = entity["icon"]
        if icon is not None and not isinstance(icon, str):
            if isinstance(icon, (int, float)):
                entity["icon"] = str(icon)
            else:
                raise ItemError(f"entity_validation: icon must be a string, got {type(icon).__name__}")
    if "team" in entity:  # team: str | None | list | dict (v1 union, str first)
        team = entity["team"]
        if isinstance(team, (int, float)) and not isinstance(team, str):
            entity["team"] = str(team)
    return {k: entity[k] for k in ENTITY_KEY_ORDER if k in entity}


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mapping")
    ap.add_argument("items")
    ap.add_argument("--summary", help="write the JSON summary to this file")
    args = ap.parse_args(argv)

    resources = load_resources(args.mapping)

    kinds: dict[str, dict[str, int]] = {}

    def counters(kind: str) -> dict[str, int]:
        return kinds.setdefault(
            kind, {"items": 0, "entities": 0, "filtered_out": 0, "skipped": 0, "errors": 0}
        )

    for r in resources:
        counters(r.kind)

    misconfigurations: set[tuple[int, str, str]] = set()
    errors: list[list[Any]] = []
    out = sys.stdout

    with open(args.items, encoding="utf-8") as fh:
        for line_number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append([line_number, None, f"invalid_json: {exc}"])
                continue
            kind = raw.get("__Kind") if isinstance(raw, dict) else None
            if not isinstance(kind, str):
                errors.append([line_number, None, "unroutable: item has no string __Kind"])
                continue
            c = counters(kind)
            c["items"] += 1

            for res in resources:
                if res.kind != kind:
                    continue
                try:
                    if res.items_to_parse is not None:
                        candidates = handle_items_to_parse(
                            raw,
                            res.items_to_parse,
                            res.items_to_parse_name,
                            res.items_to_parse_top_level_transform,
                        )
                    else:
                        candidates = [dict(raw)]
                except ItemError as exc:
                    c["errors"] += 1
                    errors.append([line_number, res.index, str(exc)])
                    continue

                for data in candidates:
                    try:
                        passed = search_as_bool(data, res.selector_query)
                    except SelectorError as exc:
                        c["errors"] += 1
                        errors.append([line_number, res.index, str(exc)])
                        continue
                    if not passed:
                        c["filtered_out"] += 1
                        continue
                    misconf: dict[str, str] = {}
                    mapped = search_as_object(data, res.mappings, misconf)
                    for field_path, expression in misconf.items():
                        misconfigurations.add((res.index, field_path, expression))
                    # JQEntityProcessor._parse_items: Python truthiness on the raw values
                    if not (mapped.get("identifier") and mapped.get("blueprint")):
                        c["skipped"] += 1
                        continue
                    try:
                        entity = build_entity(mapped)
                    except ItemError as exc:
                        c["errors"] += 1
                        errors.append([line_number, res.index, str(exc)])
                        continue
                    c["entities"] += 1
                    out.write(dumps({"resource_index": res.index, "entity": entity}) + "\n")

    if args.summary:
        summary = {
            "kinds": {k: kinds[k] for k in sorted(kinds)},
            "misconfigurations": [list(m) for m in sorted(misconfigurations)],
            "errors": errors,
        }
        with open(args.summary, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
