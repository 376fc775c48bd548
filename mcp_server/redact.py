"""Keep secrets out of everything we print, log, return or store.

Two tools live here:

* `redact_url` hides the password of a URL we show (error messages, `doctor`, logs).
* `Redactor` scrubs secrets (API keys, tokens, private keys, passwords in URLs and in
  `password=...` style assignments) out of free text and JSON-like structures before an LLM
  exchange is stored. Each secret becomes `[REDACTED:<rule>]`, so a reader still sees that
  something was there and what kind of thing it was.

The rules are tuned for precision as much as for recall: an exchange is full of look-alikes (git
SHAs, UUIDs, digests, base64 images, `max_tokens: 4096`, `password=os.environ[...]`), and mangling
those would make the stored conversation wrong. Rules run in order, the specific token shapes first
and the generic assignment rule last; text already replaced by a marker is never matched again, so
redacting twice gives the same text and reports 0 the second time.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from mcp_server.errors import ConfigurationError


def redact_url(url: str) -> str:
    """Return `url` with any password replaced by `***` (user, host, port and database kept)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable database URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    user = parts.username or ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# --------------------------------------------------------------------------------------------------
# Secret redaction
# --------------------------------------------------------------------------------------------------

MARKER_PREFIX = "[REDACTED:"
_MARKER_RE = re.compile(r"\[REDACTED:[^\]\s]*\]")


@dataclass(frozen=True)
class Rule:
    """One kind of secret.

    `group` is the part of a match that gets replaced (the whole match by default; e.g. only the
    password of a URL). `accept`, when given, is asked about every match and can veto it (return
    False to leave the text alone) for checks a regular expression expresses badly.

    `anchors` is an optimisation: literal strings one of which every match starts with. When given,
    the pattern is only tried where an anchor occurs (found with `str.find`) instead of at every
    position, which matters for patterns the regex engine cannot search quickly (case-insensitive
    alternations, a leading lookbehind or character class). With `anchors_ignore_case` they are
    looked for in a lower-cased copy of the text, so give them in lower case. An anchor list that
    misses a way a match can start makes the rule miss it: leave `anchors` empty when unsure.
    """

    name: str
    pattern: re.Pattern[str]
    group: int | str = 0
    accept: Callable[[re.Match[str]], bool] | None = None
    anchors: tuple[str, ...] = ()
    anchors_ignore_case: bool = False


# ---- value heuristics shared by `database_url`, `password_assignment` and `Redactor.redact_json`

# Values that say "no value here" rather than being one (type names, schema words, masks).
_NOT_A_VALUE = frozenset(
    {
        "string",
        "secretstr",
        "secretbytes",
        "optional",
        "required",
        "undefined",
        "boolean",
        "number",
        "integer",
        "redacted",
        "hidden",
        "masked",
        "omitted",
        "not set",
        "notset",
        "<none>",
    }
)
_ENV_PREFIXES = ("os.environ", "os.getenv", "environ.get", "getenv", "process.env", "env[", "env(", "env.")
_DOTTED_NAME_RE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_PATHLIKE_RE = re.compile(r"[/~.]|[A-Za-z]:[\\/]")


def _words(name: str) -> list[str]:
    """`DB_PASSWORD` -> [db, password]; `dbPassword` -> [db, password]; `APIKey` -> [api, key]."""
    return [w.lower() for w in _WORD_RE.findall(name)]


def _is_reference(value: str, *, quoted: bool) -> bool:
    """Whether `value` names where a secret comes from instead of being one.

    Decision: an expression or template (`os.environ["DB_PASSWORD"]`, `getpass()`, `${DB_PASSWORD}`,
    `{{ secrets.token }}`, `%(password)s`, `settings.db_password`) is code, not a secret, so it is
    kept: redacting it would corrupt code in the stored conversation without protecting anything.
    Unquoted values are code-like as soon as they contain `(`, `[` or `{`, are a dotted name or a
    YAML tag; quoted ones (string literals, which may legitimately contain brackets and dots) only
    when they are a whole template.
    """
    low = value.lower()
    if low.startswith(_ENV_PREFIXES) or value.startswith("$") or "${" in value or "$(" in value:
        return True
    if quoted:
        return "{{" in value or "%(" in value or (value.startswith("{") and value.endswith("}"))
    return (
        any(c in value for c in "([{")
        or value.startswith("!")  # a YAML tag: `password: !vault |`, `!Ref DbPassword`
        or _DOTTED_NAME_RE.fullmatch(value) is not None
    )


def _is_placeholder(value: str) -> bool:
    """`********`, `xxxxxxxx`, `<your-api-key>`, `[REDACTED]`, `string`, `undefined`: not a secret."""
    return (
        len(set(value)) == 1
        or (value.startswith("<") and value.endswith(">"))
        or (value.startswith("[") and value.endswith("]"))
        or value.lower() in _NOT_A_VALUE
        or MARKER_PREFIX in value
    )


def _secret_value(key: str, value: str, *, quoted: bool) -> bool:
    """Whether `value`, assigned to a key ending in the secret keyword `key`, should be redacted."""
    value = value.strip()
    if len(value) < 6 or _is_placeholder(value) or _is_reference(value, quoted=quoted):
        return False
    key_words = _words(key)
    keyword = key_words[-1] if key_words else key.lower()
    if not quoted and value.isidentifier() and keyword in _words(value):
        return False  # `password=password`, `api_key=openai_api_key`, `token=dbToken`: a variable
    if keyword == "token":
        # "token" is also an LLM word: logprobs carry {"token": " Hello"}, configs carry
        # `eos_token: "</s>"` and counts. A credential token is one random word with digits and letters.
        return (
            not any(c.isspace() for c in value) and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
        )
    # PWD=/home/me/project is the working directory, not a password.
    return not (keyword == "pwd" and _PATHLIKE_RE.match(value))


# ---- the rules

_ALNUM = "A-Za-z0-9"

# Keywords that make `<identifier ending in keyword> = value` a secret assignment. The identifier may
# carry any prefix (DB_PASSWORD, client_secret, x-api-key, clientSecret, HF_TOKEN) but must end with
# the keyword, so `max_tokens`, `password_reset_url`, `token_type` and `tokenizer` never match.
_SECRET_KEYWORDS = (
    r"passw(?:or)?d(?:[_-]?confirm(?:ation)?)?|passphrase|pwd|secret(?:[_-]?(?:access[_-]?)?key)?|api[_-]?key|token"
)
_SECRET_KEY_RE = re.compile(rf"(?i:{_SECRET_KEYWORDS})\Z")

_PASSWORD_ASSIGNMENT_RE = re.compile(
    rf"""
    (?P<key>(?i:{_SECRET_KEYWORDS}))
    (?:\\?["'])?\]?                     # "password": / \"password\": / 'pwd' => / cfg["pwd"] = / user[pwd]=
    [ \t]*(?:=>|:=|===?|[:=])[ \t]*     # never across a line: "Password:\nPlease..." is prose
    (?P<open>\\?["'])?
    (?P<value>
        (?<=\\")(?:[^"\\\n]|\\(?!")[^\n])+(?=\\"|\n|\Z)  # \"inside an encoded JSON string\"
      | (?<=")(?:[^"\\\n]|\\.)+(?="|\n|\Z)              # "double quoted" (JSON escapes allowed)
      | (?<=')[^'\n]+(?='|\n|\Z)                       # 'single quoted'
      | [^\s"'`,;&]*[^\s"'`,;&)\]}}]                   # bare, up to a space or delimiter
    )
    """,
    re.VERBOSE,
)


def _accept_assignment(m: re.Match[str]) -> bool:
    return _secret_value(m.group("key"), m.group("value"), quoted=m.group("open") is not None)


def _accept_url_password(m: re.Match[str]) -> bool:
    # Any length counts here (`postgres://u:x@h` has a password), but `***` is redact_url's output.
    password = m.group("password")
    return not (set(password) == {"*"} or MARKER_PREFIX in password or _is_reference(password, quoted=True))


def _rule(name: str, pattern: str, anchors: tuple[str, ...], **kwargs: Any) -> Rule:
    return Rule(name, re.compile(pattern), anchors=anchors, **kwargs)


DEFAULT_RULES: tuple[Rule, ...] = (
    # A whole PEM block (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP ...), whatever its line layout (real
    # newlines, literal "\n" escapes, quoted lines). The END line is looked for within 20,000
    # characters (an 8192-bit RSA key is ~6,500) and before any other BEGIN line, which keeps a text
    # full of BEGIN lines linear. A truncated block (no END line) is redacted up to the end of the
    # base64 lines that follow it.
    _rule(
        "private_key",
        r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:(?:[^-]|-(?!----BEGIN )){0,20000}?-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
        r"|(?:(?:\r?\n|\\r\\n|\\n)[ \t]*(?:[A-Za-z0-9+/]+={0,2}|[A-Za-z-]+: ?[^\n\\]*)?)*)",
        ("-----BEGIN ",),
    ),
    _rule(
        "anthropic_api_key",
        rf"(?<![{_ALNUM}_-])sk-ant-(?:api|admin|oat|ort|sid)\d\d-[{_ALNUM}_-]{{32,}}",
        ("sk-ant-",),
    ),
    # Project/service-account/admin keys are long base64url; legacy keys are `sk-` + 48 alnum (any
    # long alnum run after `sk-` is taken). A digit is required so `sk-learn`-style words never match;
    # `sk-ant-...` has a dash where these have alnum, so it is never taken for an OpenAI key.
    _rule(
        "openai_api_key",
        rf"(?<![{_ALNUM}_-])sk-(?:(?:proj|svcacct|admin|None)-(?=[{_ALNUM}_-]*[0-9])[{_ALNUM}_-]{{32,}}"
        rf"|(?=[A-Za-z]*[0-9])[{_ALNUM}]{{32,}}(?![{_ALNUM}_-]))",
        ("sk-",),
    ),
    _rule(
        "github_token",
        rf"(?<![{_ALNUM}_])(?:gh[pousr]_[{_ALNUM}]{{36,}}|github_pat_[{_ALNUM}]{{22,}}_[{_ALNUM}]{{59,}})"
        rf"(?![{_ALNUM}_])",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    # Only the secret path is replaced: https://hooks.slack.com/services/[REDACTED:slack_webhook]
    _rule(
        "slack_webhook",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>T[A-Z0-9]{6,}/[A-Z0-9]{6,}/[A-Za-z0-9/]{16,})",
        ("hooks.slack.com/",),
        group="secret",
    ),
    # xoxb-<team>-<bot>-<secret>, xoxp-..., xoxa-2-..., xoxe.xoxp-1-..., plus app-level xapp-1-...
    # A digit segment is required after the prefix so "xoxo-hugs-and-kisses" is left alone.
    _rule(
        "slack_token",
        rf"(?<![{_ALNUM}])(?:xox[abposr]|xapp)-(?=[{_ALNUM}-]{{15,}})\d+-[{_ALNUM}-]*[{_ALNUM}]",
        ("xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xapp-"),
    ),
    _rule(
        "stripe_key",
        rf"(?<![{_ALNUM}_])(?:(?:sk|rk)_(?:live|test)|pk_live)_[{_ALNUM}]{{24,}}|whsec_[{_ALNUM}]{{32,}}",
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_", "pk_live_", "whsec_"),
    ),
    _rule("google_api_key", r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])", ("AIza",)),
    _rule("aws_access_key", rf"(?<![{_ALNUM}])(?:AKIA|ASIA)[A-Z0-9]{{16}}(?![{_ALNUM}])", ("AKIA", "ASIA")),
    # The 40-character secret has no recognisable shape of its own (a git SHA looks the same), so it
    # is only taken when a key introduces it: aws_secret_access_key=, "SecretAccessKey": "...",
    # `AWS Secret Access Key [None]: ...` (the `aws configure` prompt), "aws secret key is ...".
    Rule(
        "aws_secret_key",
        re.compile(
            r"(?i:aws[_ -]?secret(?:[_ -]?access)?(?:[_ -]?key)?|secret[_ -]?access[_ -]?key)"
            r"(?:\\?[\"'])?(?:[ \t]*\[[^\]\n]*\])?[ \t]*(?:=>|:=|[:=]|[ \t]|\s+is\s)[ \t]*(?:\\?[\"'])?"
            r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        group="secret",
        anchors=("aws", "secret"),
        anchors_ignore_case=True,
    ),
    # header.payload.signature, both JSON segments base64url of "{" (eyJ). Base64 in data: URLs uses
    # + and / and has no dots, and a match may not start inside a base64 run.
    _rule(
        "jwt",
        r"(?<![A-Za-z0-9_+/-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}(?![A-Za-z0-9_+/-])",
        ("eyJ",),
    ),
    # scheme://user:PASSWORD@host for any scheme (postgres, mysql, mongodb+srv, redis, amqp, https
    # ...): only the password is replaced. The password runs to the authority's last "@", so an
    # unencoded "@" in it is still covered. `user:***@host` (redact_url's output) and
    # `user:${DB_PASSWORD}@host` are left alone.
    _rule(
        "database_url",
        r"://(?<=[A-Za-z0-9]://)[^\s:@/?#'\"<>\[\]]*:(?P<password>[^\s/?#'\"<>]+)@(?=[A-Za-z0-9\[_-])",
        ("://",),
        group="password",
        accept=_accept_url_password,
    ),
    # Generic `key = value` / `key: value` / "key": "value" for password-like keys; only the value
    # is replaced. See `_secret_value` for what counts as a value.
    Rule(
        "password_assignment",
        _PASSWORD_ASSIGNMENT_RE,
        group="value",
        accept=_accept_assignment,
        anchors=("pass", "pwd", "secret", "api", "token"),
        anchors_ignore_case=True,
    ),
)

DEFAULT_RULE_NAMES: tuple[str, ...] = tuple(rule.name for rule in DEFAULT_RULES)


class Redactor:
    """Replace secrets with `[REDACTED:<rule>]` and drop NUL characters (PostgreSQL rejects them)."""

    def __init__(self, rules: Sequence[Rule] = DEFAULT_RULES, extra_patterns: Sequence[str] = ()) -> None:
        compiled = list(rules)
        for index, source in enumerate(extra_patterns):
            try:
                pattern = re.compile(source)
            except re.error as exc:
                # The pattern itself is not quoted: it may well be a literal secret someone wants gone.
                raise ConfigurationError(
                    f"Extra redaction pattern #{index} (counting from 0) is not a valid regular expression: {exc}. "
                    "Fix or remove it."
                ) from exc
            compiled.append(Rule("custom", pattern))
        self._rules: tuple[Rule, ...] = tuple(compiled)
        self._by_key = any(rule.name == "password_assignment" for rule in self._rules)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def redact_text(self, text: str) -> tuple[str, int]:
        """Return `text` with every secret replaced and NULs removed, and how many secrets were replaced."""
        if "\x00" in text:
            text = text.replace("\x00", "")
        total = 0
        lowered: str | None = None  # lower-cased `text` for case-insensitive anchors, made when needed
        for rule in self._rules:
            if rule.anchors_ignore_case and lowered is None:
                lowered = text.lower()
            new_text, count = _apply(rule, text, lowered)
            if count:
                text, lowered = new_text, None
                total += count
        return text, total

    def redact_json(self, value: Any) -> tuple[Any, int]:
        """Redact every string in a JSON-like structure; return a new structure and the count.

        Keys only lose their NULs. A string value under a password-like key (`{"password": "..."}`)
        is redacted whole when it looks like a secret, because its text alone carries no hint.
        Lists and tuples keep their type; other values (numbers, booleans, None) are returned as is.
        """
        total = 0

        def walk(node: Any) -> Any:
            nonlocal total
            if isinstance(node, str):
                redacted, count = self.redact_text(node)
                total += count
                return redacted
            if isinstance(node, dict):
                out: dict[Any, Any] = {}
                for key, item in node.items():
                    clean_key = key.replace("\x00", "") if isinstance(key, str) else key
                    new_item = walk(item)
                    if self._by_key and isinstance(clean_key, str) and isinstance(new_item, str):
                        found = _SECRET_KEY_RE.search(clean_key)
                        if found and _secret_value(found.group(), new_item, quoted=True):
                            new_item = f"{MARKER_PREFIX}password_assignment]"
                            total += 1
                    out[clean_key] = new_item
                return out
            if isinstance(node, list):
                return [walk(item) for item in node]
            if isinstance(node, tuple):
                return tuple(walk(item) for item in node)
            return node

        return walk(value), total


def _candidates(rule: Rule, text: str, lowered: str | None) -> Iterator[re.Match[str]]:
    """Non-overlapping matches of `rule`, left to right, as `finditer` would give them."""
    haystack = lowered if rule.anchors_ignore_case else text
    if not rule.anchors or haystack is None or len(haystack) != len(text):
        # No anchors, or lower() changed the length (e.g. "İ"), so positions would not line up.
        yield from rule.pattern.finditer(text)
        return
    starts: list[int] = []
    for anchor in rule.anchors:
        i = haystack.find(anchor)
        while i >= 0:
            starts.append(i)
            i = haystack.find(anchor, i + 1)
    if len(rule.anchors) > 1:
        starts.sort()
    resume = 0
    match = rule.pattern.match
    for start in starts:
        if start < resume:
            continue
        m = match(text, start)
        if m is not None:
            yield m
            resume = max(m.end(), start + 1)


def _apply(rule: Rule, text: str, lowered: str | None = None) -> tuple[str, int]:
    """Run one rule over `text`, skipping matches that touch an existing marker."""
    protected: list[int] = []  # flattened [start0, end0, start1, end1, ...] of markers, ascending
    if MARKER_PREFIX in text:
        for existing in _MARKER_RE.finditer(text):
            protected.extend(existing.span())
    marker = f"{MARKER_PREFIX}{rule.name}]"
    pieces: list[str] = []
    pos = 0
    count = 0
    for m in _candidates(rule, text, lowered):
        start, end = m.span(rule.group)
        if start < pos or start == end:  # group did not take part (-1), or an empty match
            continue
        if protected:
            # Overlap with marker k means start < end_k and end > start_k. bisect finds the first
            # boundary after `start`; an odd index means `start` is inside a marker, and an even one
            # means the next marker begins at protected[i], which we overlap if it is before `end`.
            i = bisect_left(protected, start + 1)
            if i % 2 == 1 or (i < len(protected) and protected[i] < end):
                continue
        if rule.accept is not None and not rule.accept(m):
            continue
        pieces.append(text[pos:start])
        pieces.append(marker)
        pos = end
        count += 1
    if not count:
        return text, 0
    pieces.append(text[pos:])
    return "".join(pieces), count


def redactor_from_settings(enabled: bool, extra_patterns: Sequence[str]) -> Redactor:
    """The redactor the settings ask for. Disabled, it only strips NULs; the extra patterns are still
    compiled, so a broken one is reported at start-up rather than when redaction is switched on."""
    if not enabled:
        Redactor(rules=(), extra_patterns=extra_patterns)
        return Redactor(rules=())
    return Redactor(extra_patterns=extra_patterns)
