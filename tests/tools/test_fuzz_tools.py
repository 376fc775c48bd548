"""Property-based robustness: every tool called with arguments generated from its own input schema.

For each tool, Hypothesis draws argument objects from the `inputSchema` the server advertises:
valid ones (types, enums, bounds, lengths) and deliberately invalid ones (a wrong type, a number
out of range, a string too long, a required field missing, extra fields, nasty strings: NUL,
unicode digits, 1 MB). A deterministic sweep then gives every property of every tool a list of
boundary values of each JSON type. Every call must come back as a result or a clean error: an
`isError` result with a message a model can act on (no traceback, no SQL or driver internals, not
the catch-all "Internal error" or "database refused": those mean an input went unvalidated), or an
`MCPError` for a protocol-level rejection. The server must log no error for any of them, answer
`server_status` afterwards, and what a successful write stored must not break the tools that read it.

The in-process client serializes NaN and +-Infinity as null, so those reach the server only over a
real transport: test_protocol_robustness sends them over stdio.

One server and one in-memory client serve the whole module (an anyio blocking portal keeps the
async client alive across Hypothesis' synchronous examples), over one database seeded with a few
rows so that generated ids hit real memories, patterns and exchanges.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from mcp import Client, MCPError

from mcp_server.db.embedded import with_database
from mcp_server.server import create_server
from tests.helpers import admin_execute, make_settings

EXAMPLES_PER_TOOL = 40
CALL_TIMEOUT = 30.0

# Every tool the server lists; test_every_tool_is_fuzzed fails when one is added and not listed here.
TOOLS = ["remember", "recall", "get_memory", "update_memory", "forget", "list_memories", "add_pattern",
         "update_pattern", "get_pattern", "delete_pattern", "find_patterns", "generate_context_file", "log_exchange",
         "search_conversations", "get_conversation", "server_status"]

# Reads that must still work after a successful write: stored data never breaks the tools that show it.
READERS_AFTER: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "remember": [("list_memories", {}), ("recall", {"query": "seed memory"})],
    "update_memory": [("list_memories", {}), ("recall", {"query": "seed memory"})],
    "add_pattern": [("find_patterns", {"file_path": "api/app.py"}), ("generate_context_file", {"format": "agents_md"})],
    "update_pattern": [("find_patterns", {"file_path": "api/app.py"}),
                       ("generate_context_file", {"format": "cursor_mdc"})],
    "log_exchange": [("search_conversations", {}), ("search_conversations", {"query": "hi"})],
}

# What must never reach a client in an error message.
FORBIDDEN_IN_ERRORS = ["Traceback", 'File "', "asyncpg", "sqlalchemy", "psycopg", "SQLSTATE", "postgresql://",
                       "Internal error in aletheia-mcp"]

# Strings that break naive code: empty, blank, NUL, unicode digits (`"²".isdigit()` but `int("²")` fails),
# format and SQL syntax, paths, globs, dates and not-quite-dates, and sizes around and far over the limits.
NASTY_STRINGS = [
    "", " ", "\n\t ", "\x00", "a\x00b", "tail\x00", "'; DROP TABLE memories; --", "%s %(x)s {0} {x}", "\\", '"',
    "ünïcödé ✓ 日本語 🙂", "\u202eevil", "e\u0301", "\ufeffbom", "²", "٣", "①", "0", "-1", "1.5", "9" * 30,
    "**/*.py", "[", "!", "**", "../../etc/passwd", "/abs/path.py", "C:\\win\\path.py", "api/*.py",
    "2024-01-01", "2024-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00", "0001-01-01", "2024-13-45", "infinity",
    "-infinity", "NaN", "now", "epoch", "1e309", "seed memory one", "seed pattern one",
    "x" * 201, "y" * 20_001, "z" * 100_000, "w " * 30_000, "q" * 1_000_000,
]
NASTY_INTEGERS = [0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30]
NASTY_NUMBERS = [math.nan, math.inf, -math.inf, 1e308, -0.0, 5e-324]

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def _nested(depth: int) -> dict[str, Any]:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"d": value}
    return value  # type: ignore[no-any-return]


# Objects: small random ones, NUL keys, deep nesting (still under the 200 levels a JSON-RPC line allows),
# and bigger than MAX_METADATA_BYTES.
json_objects = (st.dictionaries(st.text(max_size=10), json_values, max_size=5)
                | st.sampled_from([{"a\x00": 1}, {"k": "v\x00"}, {"project": "api", "kind": "decision"},
                                   _nested(150), {"big": "b" * 20_000}, {"n": 2**70}, {"": None}]))

# Hints by property name: realistic values mixed into the generic ones so valid calls also succeed.
HINTS: dict[str, st.SearchStrategy[Any]] = {
    "messages": st.lists(st.fixed_dictionaries({
        "role": st.sampled_from(["user", "assistant", "system", "", 5]),
        "content": st.text(max_size=30) | st.none() | st.lists(st.fixed_dictionaries({
            "type": st.just("text"), "text": st.text(max_size=20)}), max_size=2),
    }), max_size=3),
    "response": st.sampled_from(["an answer", {"choices": [{"message": {"content": "hi"}}]}, {"content": []},
                                 {"choices": []}, {"choices": [None]}, {"choices": ["x"]}, {"choices": "x"},
                                 {"choices": [{"message": None}]}, {"content": 5}, {"text": {"a": 1}}]),
    "cursor": st.sampled_from(["1", "2", "²", "٣", "9" * 30, "-1", "abc", "1 ", "00"]),
    "since": st.sampled_from(["2024-01-01", "2024-01-01T00:00:00+00:00", "9999-12-31", "0001-01-01", "yesterday",
                              "0001-01-01T00:00:00+14:00", "2024-01-01T25:00"]),
    "until": st.sampled_from(["2030-01-01", "2024-01-01T00:00:00-12:00", "10000-01-01", "", "2024-02-30",
                              "9999-12-31T23:59:59-14:00"]),
    "file_path": st.sampled_from(["api/app.py", "tests/test_x.py", "/abs/api/app.py", "../api/app.py", "api\\app.py",
                                  ".", "", "a" * 5_000]),
    "paths": st.lists(st.sampled_from(["api/app.py", "docs/x.md", "", "../x", "**"]), max_size=3),
    "target_contexts": st.lists(st.sampled_from(["api/**", "*.py", "!api/x.py", "[", "**/", "/", "a" * 1_000]),
                                max_size=3),
    "request_id": st.sampled_from(["req-1", "req-2", "", " ", "r\x00", "r" * 500]) | st.uuids().map(str),
}

TYPE_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=30) | st.sampled_from(NASTY_STRINGS),
    "integer": st.integers() | st.sampled_from(NASTY_INTEGERS),
    "number": st.floats() | st.sampled_from(NASTY_NUMBERS),
    "boolean": st.booleans(),
    "null": st.none(),
    "array": st.lists(json_values, max_size=4),
    "object": json_objects,
}


def _weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Pick a strategy with the given odds (`st.one_of` flattens nested alternatives into equal ones)."""
    return st.sampled_from([strategy for weight, strategy in choices for _ in range(weight)]).flatmap(lambda s: s)


def _branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [branch for option in schema["anyOf"] for branch in _branches(option)] if "anyOf" in schema else [schema]


def _types_of(schema: dict[str, Any]) -> set[str]:
    """The JSON types a schema accepts (an integer is also a number)."""
    kinds: set[str] = set()
    for branch in _branches(schema):
        kind = branch.get("type")
        if kind is None:
            return set(TYPE_STRATEGIES)
        kinds.update([kind] if isinstance(kind, str) else kind)
    if "number" in kinds:
        kinds.add("integer")
    return kinds


def valid_value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the schema accepts (the server may still refuse them: an empty content, a NUL, an unknown id)."""
    if "anyOf" in schema:
        return st.one_of([valid_value(branch) for branch in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind is None:
        return json_values
    if isinstance(kind, list):
        return st.one_of([valid_value({**schema, "type": k}) for k in kind])
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        nasty = [s for s in NASTY_STRINGS if len(s) >= low and (high is None or len(s) <= high)]
        return st.text(min_size=low, max_size=min(high or 40, 40)) | st.sampled_from(nasty)
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        edges = [v for v in [low, high, *NASTY_INTEGERS] if v is not None
                 and (low is None or v >= low) and (high is None or v <= high)]
        near = st.integers(low, high if high is not None else (low or 0) + 10) if low is not None else st.integers()
        ints = _weighted((2, near), (1, st.integers(min_value=low, max_value=high)), (1, st.sampled_from(edges)))
        if kind == "integer":
            return ints
        return ints | st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(valid_value(schema.get("items", {})), max_size=4)
    if kind == "object":
        if "properties" in schema:
            return arguments(schema, valid_only=True)
        return json_objects
    raise AssertionError(f"unhandled JSON schema type {kind!r} in {schema}")


def invalid_value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the schema refuses: another JSON type, a number out of range, a string too long, not in the enum."""
    accepted = _types_of(schema)
    options = [strategy for kind, strategy in TYPE_STRATEGIES.items() if kind not in accepted
               and not (kind == "number" and "integer" in accepted)]
    if "integer" in accepted and "number" not in accepted:  # 3.0 is an integer to JSON Schema (and pydantic)
        options.append(st.floats().filter(lambda number: not number.is_integer()))
    for branch in _branches(schema):
        if "enum" in branch:
            options.append(st.text(max_size=12).filter(lambda s, allowed=branch["enum"]: s not in allowed))
        if "maxLength" in branch:
            options.append(st.just("m" * (branch["maxLength"] + 1)))
        if branch.get("type") in ("integer", "number"):
            if "minimum" in branch:
                options.append(st.sampled_from([branch["minimum"] - 1, -(2**63) - 1, -math.inf]))
            if "maximum" in branch:
                options.append(st.sampled_from([branch["maximum"] + 1, 2**64, math.inf, math.nan]))
            if branch["type"] == "integer":
                options.append(st.sampled_from([1.5, "ten", "", True]))
        if branch.get("type") == "array" and branch.get("items", {}).get("type"):
            options.append(st.lists(invalid_value(branch["items"]), min_size=1, max_size=3))
    assert options, f"nothing is invalid for {schema}"
    return st.one_of(options)


def property_value(name: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    generic = valid_value(schema)
    return generic | HINTS[name] if name in HINTS else generic


@st.composite
def _with_one_invalid(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    args = draw(arguments(schema, valid_only=True))
    name = draw(st.sampled_from(sorted(schema["properties"])))
    args[name] = draw(invalid_value(schema["properties"][name]))
    return args


@st.composite
def _without_a_required(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    args = draw(arguments(schema, valid_only=True))
    args.pop(draw(st.sampled_from(schema["required"])), None)
    return args


@st.composite
def _with_extras(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    args = draw(arguments(schema, valid_only=True))
    extras = draw(st.dictionaries(st.sampled_from(["ctx", "_meta", "self", "__proto__", "user_id", "zzz"])
                                  | st.text(max_size=8), json_values, min_size=1, max_size=3))
    return {**extras, **args} if draw(st.booleans()) else {**args, **extras}


def arguments(schema: dict[str, Any], *, valid_only: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Argument objects for a tool's input schema: valid, or (unless valid_only) broken in one way."""
    properties: dict[str, Any] = schema.get("properties", {})
    required: list[str] = schema.get("required", [])
    valid = st.fixed_dictionaries(
        {name: property_value(name, properties[name]) for name in required},
        optional={name: property_value(name, sub) for name, sub in properties.items() if name not in required},
    )
    if valid_only:
        return valid
    broken: list[st.SearchStrategy[dict[str, Any]]] = [_with_extras(schema), st.dictionaries(
        st.text(max_size=10), json_values, max_size=4)]
    if properties:
        broken.append(_with_one_invalid(schema))
    if required:
        broken.append(_without_a_required(schema))
    return _weighted((1, valid), (1, st.one_of(broken)))  # half valid, half broken in one of the ways above


class ErrorRecords(logging.Handler):
    """Every ERROR (or worse) logged anywhere while the fuzzed server runs: `logger.exception` included."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Fuzzed:
    portal: BlockingPortal
    client: Client
    schemas: dict[str, dict[str, Any]]
    errors: ErrorRecords
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)

    def call(self, tool: str, args: dict[str, Any]) -> Any:
        async def bounded() -> Any:
            with anyio.fail_after(CALL_TIMEOUT):
                return await self.client.call_tool(tool, args)

        return self.portal.call(bounded)


@pytest.fixture(scope="module")
def fuzzed(pg_admin_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    name = f"t_fuzz_{uuid.uuid4().hex[:12]}"
    admin_execute(pg_admin_uri, f'CREATE DATABASE "{name}"')
    settings = make_settings(with_database(pg_admin_uri, name), tmp_path_factory.mktemp("fuzz"))
    errors = ErrorRecords()
    logging.getLogger().addHandler(errors)
    try:
        with start_blocking_portal() as portal, \
                portal.wrap_async_context_manager(Client(create_server(settings))) as client:
            listed = portal.call(client.list_tools)
            fuzz = Fuzzed(portal, client, {tool.name: tool.input_schema for tool in listed.tools}, errors)
            for content in ("seed memory one", "seed memory two", "seed memory three"):
                assert not fuzz.call("remember", {"content": content, "metadata": {"seed": True}}).is_error
            for index, globs in enumerate([["api/**"], ["*.py", "!api/x.py"], []]):
                assert not fuzz.call("add_pattern", {"content": f"seed pattern {index}", "tags": ["seed"],
                                                     "target_contexts": globs}).is_error
            for request_id in ("req-1", "req-2"):
                assert not fuzz.call("log_exchange", {"messages": [{"role": "user", "content": "q"}],
                                                      "response": "a", "request_id": request_id}).is_error
            yield fuzz
    finally:
        logging.getLogger().removeHandler(errors)
        admin_execute(pg_admin_uri, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _text(result: Any) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", None) == "text")


def check_one_call(fuzz: Fuzzed, tool: str, args: dict[str, Any], *, status: bool = True) -> str:
    """Call `tool` once; assert the answer is clean and the server alive. Returns the outcome's kind."""
    logged_before = len(fuzz.errors.records)
    shown = json.dumps(args, default=repr)[:300]
    try:
        result = fuzz.call(tool, args)
    except MCPError as exc:  # a protocol-level rejection is a clean answer too
        message = exc.error.message
        assert message.strip(), f"{tool}({shown}): empty MCPError"
        assert not [bad for bad in FORBIDDEN_IN_ERRORS if bad in message], f"{tool}({shown}): {message[:2000]}"
        kind = "protocol_error"
    else:
        # A successful result was already validated against the tool's outputSchema by the client.
        if result.is_error:
            text = _text(result)
            assert text.strip(), f"{tool}({shown}): an error without a message"
            leaked = [bad for bad in FORBIDDEN_IN_ERRORS if bad in text]
            assert not leaked, f"{tool}({shown}) -> {text[:2000]}"
            kind = "tool_error"
        else:
            assert result.structured_content is not None, f"{tool}({shown}): no structured result"
            kind = "ok"
    if kind == "ok":
        for reader, reader_args in READERS_AFTER.get(tool, []):  # what a write stored must not break a reader
            read = fuzz.call(reader, reader_args)
            assert not read.is_error, f"{reader} after {tool}({shown}): {_text(read)}"
    new_errors = fuzz.errors.records[logged_before:]
    assert not new_errors, f"{tool}({shown}) logged: " + "\n".join(
        f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else f"{r.name}: {r.getMessage()}"
        for r in new_errors)
    if status:
        alive = fuzz.call("server_status", {})
        assert not alive.is_error, f"server_status after {tool}({shown}): {_text(alive)}"
    return kind


def test_every_tool_is_fuzzed(fuzzed: Fuzzed) -> None:
    assert sorted(fuzzed.schemas) == sorted(TOOLS)


@pytest.mark.parametrize("tool", TOOLS)
def test_generated_arguments_get_a_result_or_a_clean_error(fuzzed: Fuzzed, tool: str) -> None:
    schema = fuzzed.schemas[tool]
    outcomes = fuzzed.outcomes.setdefault(tool, Counter())

    @hypothesis_settings(max_examples=EXAMPLES_PER_TOOL, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck), print_blob=True)
    @given(args=arguments(schema))
    def one_call(args: dict[str, Any]) -> None:
        outcomes[check_one_call(fuzzed, tool, args)] += 1

    one_call()
    print(f"{tool}: {dict(outcomes)}")
    # The generator reaches both sides: calls the server accepts and calls it refuses.
    assert outcomes["ok"] > 0, dict(outcomes)
    if tool != "server_status":  # it takes no arguments; extra ones are ignored
        assert outcomes["tool_error"] + outcomes["protocol_error"] > 0, dict(outcomes)


def test_generators_cover_the_schema_keywords() -> None:
    """The converter itself: invalid values really are refused by the schema's own keywords."""
    schema = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 5}, {"type": "null"}]}
    probe = {"type": "object", "properties": {"n": schema, "s": {"type": "string", "maxLength": 3},
                                              "e": {"enum": ["a", "b"], "type": "string"}}, "required": ["n"]}
    seen: list[Any] = []

    @hypothesis_settings(max_examples=100, derandomize=True, database=None, deadline=None)
    @given(value=invalid_value(schema))
    def refused(value: Any) -> None:
        seen.append(value)
        ok_int = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5
        assert not ok_int and value is not None

    @hypothesis_settings(max_examples=100, derandomize=True, database=None, deadline=None)
    @given(args=arguments(probe, valid_only=True))
    def accepted(args: dict[str, Any]) -> None:
        assert "n" in args and (args["n"] is None or 1 <= args["n"] <= 5)
        assert len(args.get("s", "")) <= 3 and args.get("e", "a") in ("a", "b")

    refused()
    accepted()
    assert len(seen) > 30


# Boundary values by JSON type, swept over every property of every tool (deterministic, complements the
# random search): each property gets all the values of the types it accepts and one of each other type.
BOUNDARY: dict[str, list[Any]] = {
    "string": ["", " ", "\x00", "a\x00b", "²", "①", "9" * 30, "-1", "[", "../x", "ünïcödé 🙂",
               "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "y" * 20_001],
    "integer": [0, -1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, True, 1.5, "7"],
    "number": [-1.0001, 1.0001, 5e-324, -0.0, "0.5"],
    "boolean": [0, "true"],
    "object": [{}, {"a\x00": 1}, {"k": "v\x00"}, _nested(150), {"big": "b" * 20_000}, {"n": 2**70},
               {"choices": [None]}, {"choices": ["x"]}, {"choices": "x"}, {"choices": [{"message": None}]},
               {"content": [None]}],
    "array": [[], [None], [""], ["\x00"], ["["], ["²"], ["a"] * 51, [{"role": "user"}],
              [{"role": "user", "content": [None]}], [{"role": "user", "content": [{"text": None}]}],
              [{"role": "user", "content": {"a": 1}}]],
    "null": [None],
}
# A good value for each required property, so that only the swept property is at its boundary.
GOOD: dict[str, Any] = {"content": "sweep content", "query": "seed memory", "id": 1, "format": "agents_md",
                        "messages": [{"role": "user", "content": "q"}], "response": "an answer"}


def boundary_values(schema: dict[str, Any]) -> list[Any]:
    accepted = _types_of(schema)
    values = [value for kind in BOUNDARY if kind in accepted for value in BOUNDARY[kind]]
    values += [BOUNDARY[kind][0] for kind in BOUNDARY if kind not in accepted]
    values += [enum_value for branch in _branches(schema) for enum_value in branch.get("enum", [])]
    return values


@pytest.mark.parametrize("tool", TOOLS)
def test_boundary_values_get_a_result_or_a_clean_error(fuzzed: Fuzzed, tool: str) -> None:
    schema = fuzzed.schemas[tool]
    base = {name: GOOD[name] for name in schema.get("required", [])}
    failures: list[str] = []
    calls = 0
    for name, sub in schema.get("properties", {}).items():
        for value in boundary_values(sub):
            calls += 1
            try:
                check_one_call(fuzzed, tool, {**base, name: value}, status=False)
            except AssertionError as exc:  # collect them all: one run lists every bad boundary
                failures.append(str(exc).split("\nassert ")[0][:600])
    alive = fuzzed.call("server_status", {})
    assert not alive.is_error, _text(alive)
    print(f"{tool}: {calls} boundary calls")
    assert not failures, f"{len(failures)} of {calls} calls:\n" + "\n".join(failures)
