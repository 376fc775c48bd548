"""Keep secrets out of everything we print, log, return or store.

Two tools live here:

* `redact_url` hides the password of a URL we show (error messages, `doctor`, logs).
* `Redactor` scrubs secrets out of free text and JSON-like structures before anything is stored
  (exchanges, memories, patterns). Each secret becomes `[REDACTED:<rule>]`, so a reader still
  sees that something was there and what kind of thing it was.

What it finds: the token formats of ~60 providers (mcp_server/redaction/formats.py: GitHub,
GitLab, OpenAI, Anthropic, AWS, Google, Azure, Slack, Stripe, npm, PyPI, Hugging Face, SendGrid,
Twilio, Vault, ...), PEM private keys, JWTs, HTTP credentials (`Authorization: Bearer/Basic`,
`Cookie:` headers, `curl -u user:password`, `.netrc`), passwords in URLs, and values assigned to
secret-named keys (`DB_PASSWORD=`, `"api_key": "..."`, `AccountKey=`, `secret_key_base:`,
`PRIVATE_KEY=`), in text and in JSON (keys, header maps, `[name, value]` pairs). Its recall and
false positives are measured on tests/redaction_corpus.py (`python -m bench.redaction`).

The rules are tuned for precision as much as for recall: an exchange is full of look-alikes (git
SHAs, UUIDs, digests, base64 images, `max_tokens: 4096`, `password=os.environ[...]`), and mangling
those would make the stored conversation wrong. Rules run in order, the specific token shapes first
and the generic assignment rule last; text already replaced by a marker is never matched again, so
redacting twice gives the same text and reports 0 the second time.
"""

from __future__ import annotations

import base64
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import re2  # type: ignore[import-untyped]  # (google-re2 ships no type information)

from mcp_server.errors import ConfigurationError
from mcp_server.redaction.formats import TOKEN_FORMATS


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

    `anchors` is an optimisation: literal strings one of which every match starts with (or contains
    `anchor_offset` characters after its start). When given,
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
    anchor_offset: int | tuple[int, ...] = 0  # a match starts this many characters before its anchor


# ---- value heuristics shared by the context rules and `Redactor.redact_json`

# Values that say "no value here" rather than being one (type names, schema words, masks, placeholders).
_NOT_A_VALUE = frozenset(
    {
        "string", "secretstr", "secretbytes", "optional", "required", "undefined", "boolean", "number",
        "integer", "redacted", "hidden", "masked", "omitted", "not set", "notset", "<none>", "none", "null",
        "changeme", "change_me", "changeit", "replace_me", "replaceme", "placeholder", "example", "dummy",
        "todo", "tbd", "secret", "password", "token",
    }
)
_PLACEHOLDER_PARTS = ("xxxx", "****", "...", "…", "your_", "your-", "yourapi", "_here", "-here", "replace_me",
                      "changeme", "<", ">")
_ENV_PREFIXES = ("os.environ", "os.getenv", "environ.get", "getenv", "process.env", "env[", "env(", "env.")
_DOTTED_NAME_RE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_PATHLIKE_RE = re.compile(r"[/~.]|[A-Za-z]:[\\/]")
_PROSE_AFTER_RE = re.compile(r"[ \t]+[A-Za-z]")


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
    if "{{" in value or "<%" in value:
        return True
    if quoted:
        return "%(" in value or (value.startswith("{") and value.endswith("}"))
    return (
        any(c in value for c in "([{")
        or value.startswith("!")  # a YAML tag: `password: !vault |`, `!Ref DbPassword`
        or _DOTTED_NAME_RE.fullmatch(value) is not None
    )


def _is_placeholder(value: str) -> bool:
    """`********`, `xxxxxxxx`, `<your-api-key>`, `[REDACTED]`, `sk-...`, `changeme`: not a secret."""
    low = value.lower()
    return (
        len(set(value)) == 1
        or (value.startswith("[") and value.endswith("]"))
        or low in _NOT_A_VALUE
        or MARKER_PREFIX in value
        or any(part in low for part in _PLACEHOLDER_PARTS)
    )


def _looks_random(value: str, *, min_length: int = 12) -> bool:
    """A credential-like word: long enough, no spaces, letters and digits mixed, many distinct characters.
    Used where only the value itself can tell (cookies, `password is X`, header lists)."""
    return (
        len(value) >= min_length
        and not any(c.isspace() for c in value)
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
        and len(set(value)) >= min(8, len(value) // 2)
        and not _is_placeholder(value)
        and not _is_reference(value, quoted=False)
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
# carry any prefix (DB_PASSWORD, client_secret, x-api-key, clientSecret, HF_TOKEN, DD_APP_KEY) but
# must end with the keyword, so `max_tokens`, `password_reset_url`, `token_type`, `secret_name` and
# `tokenizer` never match.
_KEY_KINDS = r"api|access|secret|private|account|app|application|master|signing|encryption|subscription|auth|license"
_SECRET_KEYWORDS = (
    r"passw(?:or)?d(?:[_-]?confirm(?:ation)?)?|passphrase|pwd|secret[_-]?key[_-]?base"
    rf"|secret(?:[_-]?(?:access[_-]?)?key)?|(?:{_KEY_KINDS})[ _-]?key|apikey|token"
)
_SECRET_KEY_RE = re.compile(rf"(?i:{_SECRET_KEYWORDS})\Z")

_PASSWORD_ASSIGNMENT_RE = re.compile(
    rf"""
    (?P<key>(?i:{_SECRET_KEYWORDS}))
    (?P<close>\\?["'])?\]?              # "password": / \"password\": / 'pwd' => / cfg["pwd"] = / user[pwd]=
    (?P<sep>
        [ \t]*(?:=>|:=|===?|[:=])[ \t]*  # never across a line: "Password:\nPlease..." is prose
      | (?<=["'])\s*,\s*(?=\\?["'])      # ("X-Api-Key", "...") pairs: only for random-looking quoted values
      | [ \t]+(?:is[ \t]+)?              # `password is X`, `password X`: only for random-looking values,
        (?=[^\s"'`,;&]{{8}})(?=[^\s"'`,;&]*?[0-9])  # so at least 8 characters and a digit (checked here: cheap)
    )
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
    value = m.group("value")
    quoted = m.group("open") is not None
    sep = m.group("sep")
    if "=" not in sep and ":" not in sep and ">" not in sep:  # a comma or a space: the value must tell
        return (quoted or "," not in sep) and _looks_random(value, min_length=8)
    if not quoted and value.isalpha() and _PROSE_AFTER_RE.match(m.string, m.end("value")):
        return False  # "The secret: always write the test first" is a sentence
    return _secret_value(m.group("key"), value, quoted=quoted)


def _accept_url_password(m: re.Match[str]) -> bool:
    # Any length counts here (`postgres://u:x@h` has a password), but `***` is redact_url's output.
    password = m.group("password")
    return not (set(password) == {"*"} or MARKER_PREFIX in password or _is_reference(password, quoted=True))


def _accept_token(m: re.Match[str]) -> bool:
    """A provider token is random: `ghp_xxxx...` or `npm_TOKEN_GOES_HERE`-like text is a placeholder."""
    token = m.group()
    return len(set(token)) >= 8 and not _is_placeholder(token)


def _accept_twitter(m: re.Match[str]) -> bool:
    # App-only bearer tokens are URL-encoded (%2B, %3D); a run of A's in base64 data is not one.
    return "%" in m.group() and _accept_token(m)


def _accept_bearer(m: re.Match[str]) -> bool:
    credential = m.group("secret")
    if m.group("scheme").lower() == "basic":
        try:
            decoded = base64.b64decode(credential + "=" * (-len(credential) % 4), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return ":" in decoded and decoded.isprintable()
    return _looks_random(credential, min_length=8)


def _accept_cookie(m: re.Match[str]) -> bool:
    """A Cookie header is redacted when one of its values is a session-like random word."""
    pairs = (pair.partition("=") for pair in m.group("value").split(";"))
    return any(sep and _looks_random(value.strip().strip('"'), min_length=10) for _, sep, value in pairs)


def _accept_random(m: re.Match[str]) -> bool:
    return _looks_random(m.group("secret"), min_length=6)


def _rule(name: str, pattern: str, anchors: tuple[str, ...], **kwargs: Any) -> Rule:
    return Rule(name, re.compile(pattern), anchors=anchors, **kwargs)


_TOKEN_EDGE = r"A-Za-z0-9_-"
# A token starts after a non-word character (`-` included: `run-ghp_...`), or right after a `\n`-style
# escape of JSON text held in a string (tool_calls arguments): `"line\nghp_..."`. It ends before one.
_TOKEN_START = r"(?:(?<![A-Za-z0-9_])|(?<=\\[nrt]))"
_SPECIAL_ACCEPT: dict[str, Callable[[re.Match[str]], bool]] = {"twitter_bearer_token": _accept_twitter}


def _format_rules() -> tuple[Rule, ...]:
    """mcp_server.redaction.formats as rules: each token between token boundaries (a format that
    starts with its own lookbehind says itself what may precede it)."""
    return tuple(
        Rule(
            name,
            re.compile(("" if pattern.startswith("(?:(?<") else _TOKEN_START)
                       + rf"(?:{pattern})(?![{_TOKEN_EDGE}])"),
            group=group,
            accept=_SPECIAL_ACCEPT.get(name, _accept_token),
            anchors=anchors,
            anchor_offset=offset,
        )
        for name, pattern, anchors, offset, group in TOKEN_FORMATS
    )


# The HTTP credentials of a logged request: `Authorization: Bearer X`, `Basic <base64 user:pass>`,
# `token X` (GitHub), also without the header name (`"Bearer " + ...` is code: not a credential).
_AUTH_SCHEME_RE = (
    r"(?<![A-Za-z0-9])(?P<scheme>(?i:bearer|basic|token|bot|sso-key|apikey))[ \t]+"
    r"(?P<secret>[A-Za-z0-9._~+/=:-]{8,})(?![A-Za-z0-9._~+/=-])"
)

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
    *_format_rules(),
    # Only the secret path is replaced: https://hooks.slack.com/services/[REDACTED:slack_webhook]
    _rule(
        "slack_webhook",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>T[A-Z0-9]{6,}/[A-Z0-9]{6,}/[A-Za-z0-9/]{16,})",
        ("hooks.slack.com/",),
        group="secret",
    ),
    _rule(
        "discord_webhook",
        r"discord(?:app)?\.com/api/webhooks/\d+/(?P<secret>[A-Za-z0-9_-]{60,})",
        ("discord.com/", "discordapp.com/"),
        group="secret",
    ),
    # A Twilio auth token is 32 hex: taken when it follows its account SID (`AC...:token@`, `Client(sid, token)`).
    _rule(
        "twilio_auth_token",
        r"(?<![A-Za-z0-9])AC[a-f0-9]{32}[\"']?[ \t]*[,:][ \t]*[\"']?(?P<secret>[a-f0-9]{32})(?![A-Za-z0-9])",
        ("AC",),
        group="secret",
    ),
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
    Rule(
        "http_authorization",
        re.compile(_AUTH_SCHEME_RE),
        group="secret",
        accept=_accept_bearer,
        anchors=("bearer", "basic", "token", "bot", "sso-key", "apikey"),
        anchors_ignore_case=True,
    ),
    # `Cookie: a=1; session=<random>` and `Set-Cookie: session=<random>; Path=/`: the header's value.
    Rule(
        "cookie",
        re.compile(r"(?i:(?:set-)?cookie)\\?[\"']?[ \t]*[:=][ \t]*\\?[\"']?(?P<value>[^\r\n\"'\\]+)"),
        group="value",
        accept=_accept_cookie,
        anchors=("cookie",),
        anchors_ignore_case=True,
    ),
    # `curl -u user:password`, `--user user:password`, `.netrc`'s `login me password X`.
    Rule(
        "basic_auth_password",
        re.compile(r"(?:(?<!\S)(?:-u|--user)[ \t=]+[\"']?[^\s:\"'@]+:|\blogin[ \t]+\S+[ \t\r\n]+password[ \t]+)"
                   r"(?P<secret>[^\s\"']+)"),
        group="secret",
        accept=_accept_random,
        anchors=("-u", "--user", "login"),
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
        # One anchor per keyword's start; `app` and `auth` only as key words (not "apply", "author").
        anchors=("pass", "pwd", "secret", "api", "token", "access", "private", "account", "app_", "app-",
                 "appkey", "app key", "application", "master", "signing", "encryption", "subscription",
                 "auth_", "auth-", "authkey", "auth key", "license"),
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
        self._index = _AnchorIndex(self._rules)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def redact_text(self, text: str) -> tuple[str, int]:
        """Return `text` with every secret replaced and NULs removed, and how many secrets were replaced."""
        if "\x00" in text:
            text = text.replace("\x00", "")
        total = 0
        lowered: str | None = None  # lower-cased `text` for case-insensitive anchors, made when needed
        for rule in self._index.rules_for(text):
            if rule.anchors_ignore_case and lowered is None:
                lowered = text.lower()
            new_text, count = _apply(rule, text, lowered)
            if count:
                text, lowered = new_text, None
                total += count
        return text, total

    def redact_json(self, value: Any) -> tuple[Any, int]:
        """Redact every string in a JSON-like structure, keys included; return a new structure and the count.

        A string value under a password-like key (`{"password": "..."}`, `{"X-Api-Key": "..."}`,
        `{"Authorization": "..."}`) is redacted whole when it looks like a secret, because its text alone
        carries no hint; so are the values of `[name, value]` pairs and `{"name": ..., "value": ...}`
        objects (header lists, environment variables). A key that is itself a secret is replaced by its
        marker (numbered when two would collide). Lists and tuples keep their type; other values
        (numbers, booleans, None) are returned as is.
        """
        total = 0

        def text(node: str) -> str:
            nonlocal total
            redacted, count = self.redact_text(node)
            total += count
            return redacted

        def under_key(key: Any, item: Any) -> Any:
            nonlocal total
            if self._by_key and isinstance(key, str) and isinstance(item, str):
                rule = _secret_under_key(key, item)
                if rule is not None:
                    total += 1
                    return f"{MARKER_PREFIX}{rule}]"
            return item

        def walk(node: Any) -> Any:
            if isinstance(node, str):
                return text(node)
            if isinstance(node, dict):
                out: dict[Any, Any] = {}
                for key, item in node.items():
                    clean_key = text(key) if isinstance(key, str) else key
                    while clean_key in out:  # two secrets as keys became the same marker
                        clean_key = f"{clean_key} #{len(out)}"
                    out[clean_key] = under_key(clean_key, walk(item))
                named = out.get("name", out.get("key"))
                if isinstance(named, str) and "value" in out:
                    out["value"] = under_key(named, out["value"])
                return out
            if isinstance(node, list | tuple):
                items = [walk(item) for item in node]
                if len(items) == 2 and isinstance(items[0], str):
                    items[1] = under_key(items[0], items[1])
                return items if isinstance(node, list) else tuple(items)
            return node

        return walk(value), total


_CREDENTIAL_HEADERS = {"authorization": "http_authorization", "proxy-authorization": "http_authorization",
                       "cookie": "cookie", "set-cookie": "cookie"}


def _secret_under_key(key: str, value: str) -> str | None:
    """The rule that redacts `value` stored under `key` (None: keep it)."""
    header_rule = _CREDENTIAL_HEADERS.get(key.lower())
    if header_rule is not None:
        words = value.replace(";", " ").replace("=", " ").split()
        return header_rule if any(_looks_random(word, min_length=10) for word in words) else None
    found = _SECRET_KEY_RE.search(key)
    if found and _secret_value(found.group(), value, quoted=True):
        return "password_assignment"
    return None


class _AnchorIndex:
    """Which rules can match a text, found in one linear pass over it.

    Most strings of an exchange are short (roles, ids, one sentence) and hold no anchor at all; asking
    each of the ~80 rules in turn (a `str.find` per anchor) would cost far more than the search. An
    RE2 set of every anchor (`re2.Set`: one automaton, linear time) says which anchors occur: only
    the rules with one of them run, plus those without anchors. Replacing a secret by a marker only
    removes anchors from the text outside markers, so the rules found stay those that can match.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._anchors: list[tuple[str, bool]] = sorted(
            {(a.lower() if rule.anchors_ignore_case else a, rule.anchors_ignore_case)
             for rule in rules for a in rule.anchors})
        self._set = re2.Set.SearchSet(_RE2_OPTIONS)
        for anchor, ignore_case in self._anchors:
            self._set.Add(("(?i)" if ignore_case else "") + re.escape(anchor))
        self._set.Compile()
        # for each anchor, the positions of the rules it belongs to; rules without anchors always run
        self._by_anchor = [frozenset(p for p, rule in enumerate(self.rules) if rule.anchors_ignore_case == ignore_case
                                     and anchor in (a.lower() if ignore_case else a for a in rule.anchors))
                           for anchor, ignore_case in self._anchors]
        self._always = frozenset(p for p, rule in enumerate(self.rules) if not rule.anchors)

    def rules_for(self, text: str) -> list[Rule]:
        positions = set(self._always)
        for index in self._set.Match(text) or ():
            positions |= self._by_anchor[index]
        return [self.rules[p] for p in sorted(positions)]


def _re2_options() -> Any:
    options = re2.Options()
    options.max_mem = 64 << 20  # room for the DFA of ~150 literals over long texts
    return options


_RE2_OPTIONS = _re2_options()


def _candidates(rule: Rule, text: str, lowered: str | None) -> Iterator[re.Match[str]]:
    """Non-overlapping matches of `rule`, left to right, as `finditer` would give them."""
    haystack = lowered if rule.anchors_ignore_case else text
    if not rule.anchors or haystack is None or len(haystack) != len(text):
        # No anchors, or lower() changed the length (e.g. "İ"), so positions would not line up.
        yield from rule.pattern.finditer(text)
        return
    starts: list[int] = []
    offsets = (rule.anchor_offset,) if isinstance(rule.anchor_offset, int) else rule.anchor_offset
    for anchor in rule.anchors:
        i = haystack.find(anchor, min(offsets))
        while i >= 0:
            starts.extend(i - offset for offset in offsets if offset <= i)
            i = haystack.find(anchor, i + 1)
    if len(rule.anchors) > 1 or len(offsets) > 1:
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
            # A match whose context starts inside a marker (`[REDACTED:github_token] X`: "token") is no match.
            if m.start() < start and bisect_left(protected, m.start() + 1) % 2 == 1:
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
