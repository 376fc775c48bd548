"""The secret redactor: every rule on realistic (fake, generated) secrets, the broad corpus's recall
and false-positive goals, the look-alikes it must leave alone, JSON structures as LLM APIs send
them, NULs, extra patterns, and a guard against super-linear patterns (its speed is measured by
`python -m bench.redaction`)."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import re
import time

import pytest

from mcp_server.errors import ConfigurationError
from mcp_server.redact import (
    DEFAULT_RULE_NAMES,
    DEFAULT_RULES,
    Redactor,
    Rule,
    redact_url,
    redactor_from_settings,
)
from tests.redaction_cases import (
    ALNUM,
    B64URL,
    HEX,
    LOOK_ALIKES,
    PNG,
    SECRETS,
    fake_jwt,
    openai_project_key,
    pem,
    rand,
)
from tests.redaction_corpus import LOOK_ALIKE_CASES, SECRET_CASES, measure

# For cases where the marker replaces more than the generated secret (SECRET_KEY value keeps its prefix).
_WHOLE_VALUE = {"settings.SECRET_KEY = 'django-insecure-{s}'": "django-insecure-{s}"}


def _case_id(case: tuple[str, str, str]) -> str:
    return f"{case[0]}:{case[2][:30]}"


def _expected(rule: str, secret: str, template: str) -> tuple[str, str]:
    """(input text, expected output)."""
    replaced = _WHOLE_VALUE.get(template, "{s}").format(s=secret)
    text = template.format(s=secret)
    return text, text.replace(replaced, f"[REDACTED:{rule}]")


def test_every_default_rule_has_cases() -> None:
    """Each rule redacts something in the cases or the corpus (a rule nothing exercises is untested)."""
    redactor = Redactor()
    texts = [template.format(s=secret) for _, secret, template in SECRETS]
    texts += [json.dumps(case.value) if not isinstance(case.value, str) else case.value for case in SECRET_CASES]
    used = set(re.findall(r"\[REDACTED:(\w+)\]", json.dumps(redactor.redact_json(texts)[0])))
    assert set(DEFAULT_RULE_NAMES) <= used
    assert DEFAULT_RULE_NAMES[-1] == "password_assignment"  # generic rule last


def test_the_corpus_meets_the_recall_and_false_positive_goals() -> None:
    """>= 98% of secret placements redacted, <= 1% of look-alike placements changed (issue 16, item 4).
    `python -m bench.redaction` prints the same figures per secret type."""
    figures = measure(Redactor().redact_json)
    assert len(figures.total) >= 60  # secret types
    missed = {kind: figures.total[kind] - figures.redacted[kind] for kind in figures.total
              if figures.redacted[kind] < figures.total[kind]}
    assert figures.recall >= 0.98, missed
    assert figures.false_positive_rate <= 0.01, figures.changed


@pytest.mark.parametrize(
    "text",
    [
        "The secret: always write the test first.",
        "Secret: Remember to run the migrations before deploying.",
        "Password: choose something long and unique.",
        "Authorization: Bearer tokens are sent in the header.",
        'curl -H "Authorization: Bearer $GITHUB_TOKEN" https://api.github.com/user',
        "Cookie: theme=dark; lang=en",
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "SECRET_KEY=changeme",
    ],
)
def test_prose_references_and_placeholders_are_kept(text: str) -> None:
    assert Redactor().redact_text(text) == (text, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("curl -H 'Authorization: Bearer {s}' https://x.test",
         "curl -H 'Authorization: Bearer [REDACTED:http_authorization]' https://x.test"),
        ("Cookie: sid={s}; theme=dark", "Cookie: [REDACTED:cookie]"),
        ("AccountKey={s}==;EndpointSuffix=core.windows.net",
         "AccountKey=[REDACTED:password_assignment];EndpointSuffix=core.windows.net"),
        ("PRIVATE_KEY=0x{s}", "PRIVATE_KEY=[REDACTED:password_assignment]"),
        ("secret_key_base: {s}", "secret_key_base: [REDACTED:password_assignment]"),
        ("curl -u admin:{s} https://ci.test", "curl -u admin:[REDACTED:basic_auth_password] https://ci.test"),
    ],
)
def test_http_credentials_and_keyed_secrets(text: str, expected: str) -> None:
    secret = rand(ALNUM, 40)
    assert Redactor().redact_text(text.format(s=secret)) == (expected, 1)


def test_a_basic_credential_must_decode_to_user_and_password() -> None:
    credential = base64.b64encode(b"deploy:" + rand(ALNUM, 16).encode()).decode()
    assert Redactor().redact_text(f"Authorization: Basic {credential}") == (
        "Authorization: Basic [REDACTED:http_authorization]", 1)
    assert Redactor().redact_text("Basic Authentication2024 is off") == ("Basic Authentication2024 is off", 0)


def test_a_token_after_a_json_newline_escape_is_found() -> None:
    token = "npm_" + rand(ALNUM, 36)
    arguments = json.dumps({"command": f"cat ~/.npmrc\n{token}"})
    out, count = Redactor().redact_text(arguments)
    assert token not in out and count == 1


@pytest.mark.parametrize("case", SECRETS, ids=_case_id)
def test_secret_is_redacted_and_the_rest_kept(case: tuple[str, str, str]) -> None:
    rule, secret, template = case
    text, expected = _expected(rule, secret, template)
    out, count = Redactor().redact_text(text)
    assert secret not in out
    assert f"[REDACTED:{rule}]" in out
    assert out == expected
    assert count == 1


@pytest.mark.parametrize("case", SECRETS, ids=_case_id)
def test_redaction_is_idempotent(case: tuple[str, str, str]) -> None:
    redactor = Redactor()
    once, _ = redactor.redact_text(case[2].format(s=case[1]))
    twice, count = redactor.redact_text(once)
    assert twice == once
    assert count == 0


def test_all_secrets_in_one_text_are_counted() -> None:
    text = "\n\n".join(template.format(s=secret) for _, secret, template in SECRETS)
    out, count = Redactor().redact_text(text)
    assert count == len(SECRETS)
    for _, secret, _ in SECRETS:
        assert secret not in out
    assert Redactor().redact_text(out) == (out, 0)


def test_only_the_password_of_a_url_goes() -> None:
    secret = rand(ALNUM, 16)
    out, _ = Redactor().redact_text(f"postgresql://app_user:{secret}@db.internal:5432/app")
    assert out == "postgresql://app_user:[REDACTED:database_url]@db.internal:5432/app"


def test_a_truncated_private_key_is_still_redacted() -> None:
    key = pem("RSA").split("-----END")[0].rstrip("\n")
    out, count = Redactor().redact_text(f"The file starts with:\n{key}")
    assert out == "The file starts with:\n[REDACTED:private_key]"
    assert count == 1


def test_a_token_inside_an_assignment_is_named_by_its_specific_rule() -> None:
    key = openai_project_key("proj")
    jwt = fake_jwt()
    ghp = "ghp_" + rand(ALNUM, 36)
    out, count = Redactor().redact_text(
        f'api_key = "{key}"\n{{"access_token": "{jwt}"}}\npostgresql://u:{ghp}@h/db\npassword={ghp}'
    )
    assert out == (
        'api_key = "[REDACTED:openai_api_key]"\n{"access_token": "[REDACTED:jwt]"}\n'
        "postgresql://u:[REDACTED:github_token]@h/db\npassword=[REDACTED:github_token]"
    )
    assert count == 4




@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert Redactor().redact_text(text) == (text, 0)


# ---- JSON structures


def test_openai_messages() -> None:
    key = openai_project_key("proj")
    db_password = rand(ALNUM, 16)
    api_password = rand(ALNUM, 12)
    arguments = json.dumps({"dsn": f"postgresql://app:{db_password}@db/app", "password": api_password, "limit": 5})
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": f"My key is {key}, why does it fail?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_abc123", "type": "function", "function": {"name": "connect", "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc123", "content": "connected"},
    ]
    original = copy.deepcopy(messages)
    out, count = Redactor().redact_json(messages)
    assert messages == original  # a new structure; the input is untouched
    assert count == 3
    assert out[0] == messages[0]
    assert out[1] == {"role": "user", "content": "My key is [REDACTED:openai_api_key], why does it fail?"}
    assert out[2]["content"] is None
    assert json.loads(out[2]["tool_calls"][0]["function"]["arguments"]) == {
        "dsn": "postgresql://app:[REDACTED:database_url]@db/app",
        "password": "[REDACTED:password_assignment]",
        "limit": 5,
    }
    assert out[2]["tool_calls"][0]["id"] == "call_abc123"
    assert out[3] == messages[3]
    assert Redactor().redact_json(out) == (out, 0)


def test_anthropic_content_blocks() -> None:
    google = "AIza" + rand(B64URL, 35)
    key = pem("EC")
    blocks = [
        {"type": "text", "text": "Let me geocode that."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "geocode",
            "input": {"key": google, "q": "Paris"},
        },
        {
            "type": "tool_result",
            "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
            "content": [{"type": "text", "text": key}],
        },
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    ]
    out, count = Redactor().redact_json(blocks)
    assert count == 2
    assert out[0] == blocks[0]
    assert out[1]["input"] == {"key": "[REDACTED:google_api_key]", "q": "Paris"}
    assert out[2]["content"] == [{"type": "text", "text": "[REDACTED:private_key]"}]
    assert out[3] == blocks[3]  # image data is not a JWT or anything else


def test_nested_response_dict_and_secret_keys() -> None:
    jwt = fake_jwt()
    password = rand(ALNUM, 12)
    token = rand(ALNUM, 40)
    response = {
        "id": "chatcmpl-9abcDEF123",
        "object": "chat.completion",
        "created": 1717000000,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"Use this bearer: {jwt}"},
                "logprobs": {"content": [{"token": " Hello", "logprob": -0.01, "bytes": [32, 72]}]},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        "meta": {
            "config": {"password": password, "api_key": "${OPENAI_API_KEY}", "max_tokens": 4096},
            "session": {"refresh_token": token, "token": "ization", "flags": (True, None, 1.5)},
        },
    }
    out, count = Redactor().redact_json(response)
    assert count == 3
    assert out["choices"][0]["message"]["content"] == "Use this bearer: [REDACTED:jwt]"
    assert out["choices"][0]["logprobs"] == response["choices"][0]["logprobs"]
    assert out["usage"] == response["usage"]
    assert out["meta"]["config"] == {
        "password": "[REDACTED:password_assignment]",
        "api_key": "${OPENAI_API_KEY}",
        "max_tokens": 4096,
    }
    assert out["meta"]["session"] == {
        "refresh_token": "[REDACTED:password_assignment]",
        "token": "ization",
        "flags": (True, None, 1.5),
    }
    assert Redactor().redact_json(out) == (out, 0)


def test_keys_lose_their_nuls_and_secret_keys_are_redacted() -> None:
    key = openai_project_key("proj")
    other = openai_project_key("proj")
    out, count = Redactor().redact_json({"a\x00b": "x\x00y", key: 1, other: 2, 7: "seven"})
    assert out == {"ab": "xy", "[REDACTED:openai_api_key]": 1, "[REDACTED:openai_api_key] #2": 2, 7: "seven"}
    assert count == 2


def test_header_lists_and_name_value_objects_are_redacted_by_name() -> None:
    api_key, password = rand(HEX, 32), rand(ALNUM, 16)
    headers = [["Accept", "application/json"], ("X-Api-Key", api_key)]
    env = [{"name": "DB_PASSWORD", "value": password}, {"name": "LOG_LEVEL", "value": "debug"}]
    out, count = Redactor().redact_json({"headers": headers, "env": env})
    assert out == {
        "headers": [["Accept", "application/json"], ("X-Api-Key", "[REDACTED:password_assignment]")],
        "env": [{"name": "DB_PASSWORD", "value": "[REDACTED:password_assignment]"},
                {"name": "LOG_LEVEL", "value": "debug"}],
    }
    assert count == 2


@pytest.mark.parametrize("scalar", [None, True, 0, 3.5, "plain"])
def test_json_scalars_pass_through(scalar: object) -> None:
    assert Redactor().redact_json(scalar) == (scalar, 0)


# ---- NULs, extra patterns, disabled


def test_nuls_are_removed_and_not_counted() -> None:
    assert Redactor().redact_text("a\x00b\x00\x00c") == ("abc", 0)


def test_a_secret_split_by_nuls_is_still_found() -> None:
    token = "ghp_" + rand(ALNUM, 36)
    out, count = Redactor().redact_text(f"token {token[:10]}\x00{token[10:]} leaked")
    assert (out, count) == ("token [REDACTED:github_token] leaked", 1)


def test_extra_patterns_become_custom_rules() -> None:
    ghp = "ghp_" + rand(ALNUM, 36)
    redactor = Redactor(extra_patterns=[r"ACME-\d{6}", r"(?i)internal-[a-z]+"])
    out, count = redactor.redact_text(f"ticket ACME-123456 on Internal-Zephyr with {ghp}")
    assert out == "ticket [REDACTED:custom] on [REDACTED:custom] with [REDACTED:github_token]"
    assert count == 3
    assert redactor.rules[-1].name == "custom"
    assert len(redactor.rules) == len(DEFAULT_RULES) + 2


def test_extra_patterns_never_touch_markers_or_loop_on_empty_matches() -> None:
    redactor = Redactor(extra_patterns=[r"REDACTED|github_token", r"z*"])
    ghp = "ghp_" + rand(ALNUM, 36)
    assert redactor.redact_text(f"{ghp} zz") == ("[REDACTED:github_token] [REDACTED:custom]", 2)


def test_invalid_extra_pattern_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        Redactor(extra_patterns=[r"ok-\d+", "([unclosed"])
    message = str(excinfo.value)
    assert "#1" in message
    assert "unterminated character set" in message or "missing )" in message
    assert "([unclosed" not in message  # the pattern may be a literal secret: never echoed


def test_custom_rule_with_a_group() -> None:
    rule = Rule("employee_id", re.compile(r"employee (?P<id>E\d{5})"), group="id")
    assert Redactor(rules=[rule]).redact_text("employee E12345 joined") == (
        "employee [REDACTED:employee_id] joined",
        1,
    )


def test_redactor_from_settings() -> None:
    ghp = "ghp_" + rand(ALNUM, 36)
    enabled = redactor_from_settings(True, [r"ACME-\d{6}"])
    assert enabled.redact_text(f"{ghp} ACME-123456") == ("[REDACTED:github_token] [REDACTED:custom]", 2)

    disabled = redactor_from_settings(False, [r"ACME-\d{6}"])
    assert disabled.rules == ()
    assert disabled.redact_text(f"{ghp}\x00 ACME-123456") == (f"{ghp} ACME-123456", 0)
    assert disabled.redact_json({"password\x00": "hunter22x"}) == ({"password": "hunter22x"}, 0)

    with pytest.raises(ConfigurationError):
        redactor_from_settings(False, ["(unclosed"])


def test_redact_url_is_unchanged() -> None:
    assert redact_url("postgresql://u:pw@db.example:5433/app") == "postgresql://u:***@db.example:5433/app"
    assert redact_url("postgresql://u@db/app") == "postgresql://u@db/app"


def test_anchors_find_what_a_full_scan_finds() -> None:
    """The anchor optimisation must not change results: compare with the same rules unanchored."""
    unanchored = Redactor(rules=[dataclasses.replace(rule, anchors=()) for rule in DEFAULT_RULES])
    texts = [template.format(s=secret) for _, secret, template in SECRETS] + LOOK_ALIKES
    texts += [json.dumps(value) for value in [*(case.value for case in SECRET_CASES), *LOOK_ALIKE_CASES]]
    texts.append("\n".join(texts))
    for text in texts:
        assert Redactor().redact_text(text) == unanchored.redact_text(text)


def test_text_whose_lower_case_is_longer_falls_back_to_a_full_scan() -> None:
    password = rand(ALNUM, 12)
    # "İ".lower() is two characters, so positions in the lower-cased copy would not line up.
    out, count = Redactor().redact_text(f"İstanbul office: PASSWORD={password}")
    assert (out, count) == ("İstanbul office: PASSWORD=[REDACTED:password_assignment]", 1)


# ---- cost


@pytest.mark.parametrize(
    "unit",
    [
        "-----BEGIN PRIVATE KEY-----\n",
        "password=",
        'password: "',
        "postgresql://u:p",
        "eyJabcdefgh.eyJ",
        "aws_secret_access_key = ",
        "sk-proj-",
        "token=abc ",
        "Authorization: Bearer ",
        "Cookie: a=b; ",
        "A",
        "0123456789",
        "password is ",
        "curl -u a:",
        "0123456789abcdef",
        "xQ~",
    ],
)
def test_adversarial_repetition_stays_linear(unit: str) -> None:
    """A guard against a pattern that backtracks: 200 KB of one repeated fragment. Linear work takes
    well under a second here; a quadratic pattern would take minutes. Speed is measured by
    `python -m bench.redaction`, not asserted."""
    text = unit * (200_000 // len(unit))
    start = time.perf_counter()
    Redactor().redact_text(text)
    assert time.perf_counter() - start < 20.0
