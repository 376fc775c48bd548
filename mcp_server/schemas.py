"""The contract: the tools' structured results, and every limit and enumeration of the contract.

The models are the MCP tools' output schemas: field names and meanings are the contract of
README.md ("Tools"). Ids are integers. The limits and enumerations are declared here once and
imported where they are used: tools (as `Annotated` parameter types, so they appear in the input
schemas), services (the same checks for the CLI), the CLI's options and the settings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field

JsonObject = dict[str, Any]

# --- enumerations ---------------------------------------------------------------------------------

SearchMode = Literal["hybrid", "vector", "lexical"]  # what a search ran
# What recall is asked to rank by: meaning and keywords (keywords alone while the embedder is
# unavailable), meaning alone, or keywords alone (the query is not embedded).
RecallMode = Literal["hybrid", "vector", "keywords"]
RECALL_MODES: tuple[str, ...] = get_args(RecallMode)
ContextFormat = Literal["agents_md", "claude_md", "cursor_mdc", "copilot", "windsurf", "cline", "gemini_md"]
CONTEXT_FORMATS: tuple[str, ...] = get_args(ContextFormat)
EmbeddingProvider = Literal["fastembed", "openai", "sentence-transformers", "hashing"]
EMBEDDING_PROVIDERS: tuple[str, ...] = get_args(EmbeddingProvider)
# Which rows a call reads or writes: the current project's (reads add the global ones), the
# global ones (no project), or every project's.
ReadScope = Literal["project", "global", "all"]
WriteScope = Literal["project", "global"]
ConversationScope = Literal["project", "all"]
# Which logged exchanges a search or an export covers: replays (`conversations replay`) too, only
# them, or only the originals.
ReplaySelection = Literal["include", "only", "exclude"]
GatewayProvider = Literal["openai", "anthropic"]
# How a call through the gateway ended: the upstream answered (completed) or answered with an error
# status (upstream_error); its stream broke off (upstream_dropped); the client left before the end
# (client_disconnected); or the upstream could not be reached (unreachable).
CallOutcome = Literal["completed", "upstream_error", "upstream_dropped", "client_disconnected", "unreachable"]
ProjectDetection = Literal["setting", "argument", "header", "git remote", "git root"]

# --- limits -----------------------------------------------------------------------------------------

MAX_RECALL_LIMIT = 100  # recall(limit)
MAX_MEMORY_PAGE = 200  # list_memories(limit)
MAX_FIND_LIMIT = 100  # find_patterns(limit)
MAX_CONTEXT_PATTERNS = 200  # generate_context_file(max_patterns)
MAX_FILE_CHARS = 100_000  # a generated context file's budget (generate_context_file(max_chars), --max-chars)
MIN_FILE_CHARS = 1_000  # room for a shared file's frame and its left-out line, and a short rule
MAX_CONVERSATION_PAGE = 200  # search_conversations(limit)
MAX_PATTERN_LISTING = 10_000  # `patterns list --limit`
MAX_SOURCE_CHARS = 200  # a memory's source, an exchange's provider / model / request_id
MAX_TITLE_CHARS = 300  # a pattern's title
# A pattern's text: rule files reach ~60 KB, far over what a memory may be (MAX_CONTENT_CHARS); only
# the start is embedded (db/vectors.PATTERN_EMBED_CHARS), the full-text index holds all of it.
MAX_PATTERN_CHARS = 100_000
MAX_LABEL_CHARS = 100  # a pattern's tag or strategy_type
MAX_TAGS = 50
MAX_METADATA_BYTES = 16_384  # JSON of a metadata object
MAX_MESSAGES = 2_000  # messages of one logged exchange
MAX_CONVERSATION_QUERY_CHARS = 1_000
# A recall or find_patterns query (and a hook's prompt, as one): a memory may be far longer
# (MAX_CONTENT_CHARS), but each word of a query costs the keyword search a term.
MAX_QUERY_CHARS = 20_000
STATUS_CODES = (100, 599)  # an exchange's HTTP status code, inclusive
MAX_LATENCY_MS = 86_400_000
MAX_PROJECT_CHARS = 200  # a project name (key)

# --- bounded parameter types (tools add their own descriptions) -------------------------------------

RowId = Annotated[int, Field(ge=1)]
RecallLimit = Annotated[int, Field(ge=1, le=MAX_RECALL_LIMIT)]
MemoryPageSize = Annotated[int, Field(ge=1, le=MAX_MEMORY_PAGE)]
FindLimit = Annotated[int, Field(ge=1, le=MAX_FIND_LIMIT)]
ContextPatternCount = Annotated[int, Field(ge=1, le=MAX_CONTEXT_PATTERNS)]
ContextFileChars = Annotated[int, Field(ge=MIN_FILE_CHARS, le=MAX_FILE_CHARS)]
ConversationPageSize = Annotated[int, Field(ge=1, le=MAX_CONVERSATION_PAGE)]
CosineThreshold = Annotated[float, Field(ge=-1, le=1)]
StatusCode = Annotated[int, Field(ge=STATUS_CODES[0], le=STATUS_CODES[1])]
LatencyMs = Annotated[int, Field(ge=0)]


class RememberResult(BaseModel):
    id: int = Field(description="The memory's id.")
    created: bool = Field(description="False when this user already stored the same content (the existing id).")
    embedded: bool = Field(description="False when the embedder was unavailable: the memory waits for a vector "
                                       "and is found by keywords meanwhile.")
    project: str | None = Field(default=None, description="The project (repository) it belongs to, e.g. "
                                                          "github.com/org/repo; null when it is global.")
    redactions: int = Field(default=0, description="Secrets replaced by [REDACTED:<rule>] before storing.")


class Memory(BaseModel):
    id: int
    content: str
    source: str | None
    metadata: JsonObject
    created_at: datetime
    updated_at: datetime
    embedded: bool = Field(description="Whether the memory has a vector from the current embedding model.")
    project: str | None = Field(default=None, description="The project (repository) it belongs to, e.g. "
                                                          "github.com/org/repo; null when it is global.")


FoundBy = Literal["vector", "keywords", "both"]
SIMILARITY = ("Cosine similarity of the memory's vector to the query's (-1..1); null when the memory has no "
              "vector from the current embedding model yet, or the query has none (embedder unavailable).")
KEYWORD_SCORE = ("Share of the query's search terms (its words, stemmed, stop words left out) that the memory "
                 "contains, 0..1 (1: every one); null when the query has no search terms, or in mode \"vector\".")


class RecalledMemory(BaseModel):
    id: int
    content: str
    source: str | None
    metadata: JsonObject
    created_at: datetime
    score: float = Field(description="What `min_score` is compared with: `similarity` when the memory has one, "
                                     "else `keyword_score`.")
    found_by: FoundBy = Field(description="Why it was found: its vector is among the nearest to the query's "
                                          "(vector), it matched the query's keywords (keywords), or both.")
    similarity: float | None = Field(default=None, description=SIMILARITY)
    keyword_score: float | None = Field(default=None, description=KEYWORD_SCORE)
    project: str | None = Field(default=None, description="The project (repository) it belongs to, e.g. "
                                                          "github.com/org/repo; null when it is global.")
    truncated: bool = Field(default=False, description="True when `content` is only the start of the memory, "
                                                      "shortened so that every result fits MAX_RESPONSE_CHARS: "
                                                      "read it whole with get_memory(id).")
    content_chars: int | None = Field(default=None, description="When truncated: the whole content's length.")


class RecallResult(BaseModel):
    results: list[RecalledMemory]
    mode: SearchMode = Field(
        description="What ran. hybrid: meaning + keywords; vector: meaning only (mode \"vector\"); lexical: "
                    "keywords only (mode \"keywords\", or the embedder was unavailable in mode \"hybrid\")."
    )
    next_cursor: str | None = Field(default=None, description="More results did not fit in this response even "
                                    "with long contents shortened: pass as `cursor`, with the same other "
                                    "arguments, for the next page; null on the last page.")


class DeleteResult(BaseModel):
    deleted: bool


class MemoryPage(BaseModel):
    items: list[Memory]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class EmbedderStatus(BaseModel):
    provider: str
    model: str
    dimension: int
    state: Literal["loading", "ready", "degraded", "failed"] = Field(
        description="degraded: loaded, but the latest embedding calls failed (writes are stored without a vector, "
                    "recall uses keywords); it is ready again after the next call that succeeds.")
    detail: str | None = Field(default=None, description="Why the embedder is not ready, when it is not.")
    consecutive_failures: int = Field(default=0, description="Embedding calls failed since the last one that "
                                                             "succeeded.")
    last_error_at: datetime | None = Field(default=None, description="When the latest embedding call failed.")
    last_success_at: datetime | None = Field(default=None, description="When an embedding call last succeeded.")


class DatabaseConnectionStatus(BaseModel):
    """Whether this server reaches its database, and what it does while it does not."""

    state: Literal["available", "reconnecting"] = Field(
        description="reconnecting: the connection was lost; the server retries with backoff (and restarts the "
                    "embedded PostgreSQL if it stopped). Calls made meanwhile fail and can be repeated.")
    attempts: int = Field(description="Failed attempts to reconnect since the connection was lost (0 when available).")
    next_retry_at: datetime | None = Field(description="When the next attempt is due, while reconnecting.")
    last_error: str | None = Field(description="The latest failure (never a password), or null when none since "
                                               "the server started.")
    last_error_at: datetime | None
    restarts: int = Field(description="How often this server restarted the embedded PostgreSQL after it stopped.")


class DatabaseStatus(BaseModel):
    kind: Literal["embedded", "external"]
    location: str | None = Field(description="Data directory or URL, never with a password; the data directory "
                                             "only for the server's own user (null for other users).")
    connection: DatabaseConnectionStatus
    server_version: str | None = Field(description="Null while the database is unreachable (also below).")
    pgvector_version: str | None
    schema_revision: str | None
    schema_head: str


class TableCounts(BaseModel):
    memories: int = Field(description="Memories of the configured user.")
    memories_awaiting_embedding: int
    patterns: int
    patterns_awaiting_embedding: int
    conversations: int = Field(description="Logged exchanges of the configured user.")


class ProjectStatus(BaseModel):
    key: str = Field(description="The project rows are stored under and searched in by default.")
    detection: ProjectDetection = Field(description="How it was chosen: the ALETHEIA_PROJECT setting, or the "
                                                    "git repository of the working directory (its origin remote, "
                                                    "else its root path).")
    root: str | None = Field(description="The repository's root, against which absolute file paths are made "
                                         "relative (null when not known, and for users other than the "
                                         "server's own).")


class ServerStatus(BaseModel):
    version: str
    user_id: str
    project: ProjectStatus | None = Field(description="Null outside any git repository and without "
                                                      "ALETHEIA_PROJECT: only global rows then.")
    database: DatabaseStatus
    embedder: EmbedderStatus
    counts: TableCounts | None = Field(description="Null while the database is unreachable.")


class PatternCreated(BaseModel):
    id: int
    created: bool = Field(description="False when an identical pattern (same title and content) already existed.")


CREATED_BY = ("The user who created it (recorded by the database, not chosen by the caller); null for a pattern "
              "created before the history was kept.")
UPDATED_BY = "The user who last changed it (recorded by the database, not chosen by the caller)."


class Pattern(BaseModel):
    id: int
    title: str | None
    content: str
    tags: list[str]
    strategy_type: str | None
    target_contexts: list[str] = Field(description="Globs relative to the repository root; empty = everywhere.")
    author: str | None
    metadata: JsonObject
    last_updated: datetime
    source_path: str | None = Field(default=None, description="The rule file it was imported from (relative to "
                                                              "its repository's root), if any.")
    project: str | None = Field(default=None, description="The project (repository) it belongs to, e.g. "
                                                          "github.com/org/repo; null when it is global.")
    created_by: str | None = Field(default=None, description=CREATED_BY)
    updated_by: str | None = Field(default=None, description=UPDATED_BY)


class FoundPattern(BaseModel):
    id: int
    title: str | None
    content: str
    tags: list[str]
    strategy_type: str | None
    target_contexts: list[str]
    author: str | None
    metadata: JsonObject
    last_updated: datetime
    score: float = Field(description="Higher is more relevant: file-context fit plus query relevance.")
    matched_contexts: list[str] = Field(description="The globs that matched `file_path` (empty when the pattern "
                                                    "applies everywhere or no file_path was given).")
    project: str | None = Field(default=None, description="The project (repository) it belongs to, e.g. "
                                                          "github.com/org/repo; null when it is global.")
    created_by: str | None = Field(default=None, description=CREATED_BY)
    updated_by: str | None = Field(default=None, description=UPDATED_BY)
    truncated: bool = Field(default=False, description="True when `content` is only the start of the pattern: "
                                                      "alone it is larger than MAX_RESPONSE_CHARS. Read it whole "
                                                      "with the aletheia://patterns/{id} resource or get_pattern.")
    content_chars: int | None = Field(default=None, description="When truncated: the whole content's length.")


class PatternVersion(BaseModel):
    """One change of a pattern, as eng_pattern_versions records it."""

    pattern_id: int
    version: int
    action: Literal["baseline", "create", "update", "delete"]
    changed_by: str
    changed_at: datetime
    note: str | None
    snapshot: JsonObject = Field(description="The pattern's fields after the change (before it, for a delete).")


class FindPatternsResult(BaseModel):
    results: list[FoundPattern]
    next_cursor: str | None = Field(default=None, description="More results did not fit in this response: pass "
                                    "as `cursor`, with the same other arguments, for the next page; null on the "
                                    "last page.")


class ContextFile(BaseModel):
    path: str = Field(description="Where the file goes, relative to the repository root.")
    content: str
    pattern_ids: list[int] = Field(default_factory=list, description="The patterns this file holds.")


class FileSummary(BaseModel):
    """A generated file too large for one response, described instead of returned cut short."""

    path: str = Field(description="Where the file goes, relative to the repository root.")
    content_chars: int = Field(description="The whole file's length.")
    pattern_ids: list[int] = Field(description="The patterns it holds (read each with get_pattern).")
    note: str = Field(description="How to get the file itself.")


class LeftOutPattern(BaseModel):
    id: int
    title: str | None
    reason: str = Field(description="Why it is not in the files, e.g. over the budget of the file it belongs in.")


class ContextFiles(BaseModel):
    files: list[ContextFile]
    pattern_ids: list[int] = Field(description="The patterns in `files` (of this page).")
    left_out: list[LeftOutPattern] = Field(
        default_factory=list, description="Patterns selected that the files do not hold (over the size budget).")
    left_out_unlisted: int = Field(
        default=0, description="Patterns left out that `left_out` does not list, to leave room for the files "
                               "(`left_out` comes on the first page only; `aletheia-mcp context generate` "
                               "reports them all).")
    summarised: list[FileSummary] = Field(
        default_factory=list, description="Files of this page larger than MAX_RESPONSE_CHARS on their own: "
                                          "described, never returned cut short.")
    next_cursor: str | None = Field(
        default=None, description="More files did not fit in this response: pass as `cursor`, with the same "
                                  "other arguments, for the next page; null on the last page.")


# Fields of exchanges captured by `aletheia-mcp gateway` (null for exchanges logged otherwise).
ENDPOINT = "The API path the call went to (e.g. /v1/chat/completions, /v1/messages): gateway calls only."
STREAM = "Whether the response was streamed (server-sent events): gateway calls only."
OUTCOME = ("How the call ended: completed, upstream_error (an error status), upstream_dropped (the stream broke "
           "off), client_disconnected (the client left first), unreachable (no upstream): gateway calls only.")
TTFT_MS = "Time to first token: from the request to the first part of a streamed answer, in milliseconds."
USAGE = "Token usage as the provider reported it."
REPLAY_OF = "The id of the exchange this one replays (`aletheia-mcp conversations replay`); null for an original."


class CapturedCall(BaseModel):
    """One call through the gateway, as the gateway hands it to ExchangeSpool (and the spool's file
    keeps it while the database is away): stored by ConversationService.log_captured."""

    request_id: str = Field(description="The client's x-request-id, else one the gateway made (uuid4 hex).")
    provider: GatewayProvider
    endpoint: str = Field(description="e.g. /v1/chat/completions, /v1/responses, /v1/messages.")
    model: str | None = Field(description="From the request body (the response's if it names one).")
    request: JsonObject = Field(description="The JSON body the client sent (never headers or credentials).")
    response: Any = Field(description="The response's JSON (a streamed one rebuilt from its events), or the "
                                      "upstream's error body (JSON or text).")
    status_code: int = Field(description="What the client got (502 when the upstream was unreachable).")
    latency_ms: int = Field(description="From the request's arrival to the response's end (or the client leaving).")
    ttft_ms: int | None = Field(description=TTFT_MS + " Null when not streamed.")
    usage: JsonObject | None = Field(description=USAGE)
    outcome: CallOutcome
    stream: bool
    project: str | None = Field(description="The Aletheia-Project header, else the gateway's default project.")
    replay_of: int | None = Field(default=None, description=REPLAY_OF)
    created_at: datetime = Field(description="When the request arrived (UTC).")


class LoggedExchange(BaseModel):
    id: int
    request_id: str
    redactions: int = Field(description="Secrets replaced by [REDACTED:<rule>] before storing.")
    created: bool = Field(description="False when this request_id was already logged (nothing changed).")


class ConversationSummary(BaseModel):
    id: int
    request_id: str | None
    created_at: datetime
    provider: str | None
    model: str | None
    status_code: int | None
    latency_ms: int | None
    preview: str = Field(description="The start of the last user message and of the response.")
    project: str | None = Field(default=None, description="The project (repository) it belongs to, e.g. "
                                                          "github.com/org/repo; null when it is global.")
    endpoint: str | None = Field(default=None, description=ENDPOINT)
    stream: bool | None = Field(default=None, description=STREAM)
    outcome: CallOutcome | None = Field(default=None, description=OUTCOME)
    ttft_ms: int | None = Field(default=None, description=TTFT_MS)
    usage: JsonObject | None = Field(default=None, description=USAGE)
    replay_of: int | None = Field(default=None, description=REPLAY_OF)


class ConversationPage(BaseModel):
    items: list[ConversationSummary]
    next_cursor: str | None = Field(default=None, description="More exchanges did not fit in this response: "
                                    "pass as `cursor`, with the same other arguments, for the next page; null "
                                    "on the last page.")


class ShortenedText(BaseModel):
    field: str = Field(description="Where the text is in the stored exchange, as a JSON Pointer (e.g. "
                                   "/messages/3/content or /response): pass it as get_conversation's `field`.")
    total_chars: int = Field(description="The whole text's length.")
    shown_from: int = Field(description="Offset of the first character shown.")
    shown_chars: int = Field(description="Characters shown: the rest starts at offset shown_from + shown_chars.")


class Conversation(BaseModel):
    id: int
    request_id: str | None
    created_at: datetime
    provider: str | None
    model: str | None
    messages: list[Any]
    response: Any
    status_code: int | None
    latency_ms: int | None
    redactions: int
    memory_ids: list[int] = Field(description="Memories this server returned (recall) in the same session "
                                              "before this exchange was logged.")
    pattern_ids: list[int] = Field(description="Patterns this server returned (find_patterns, "
                                               "generate_context_file) in the same session.")
    project: str | None = Field(default=None, description="The project (repository) it belongs to, e.g. "
                                                          "github.com/org/repo; null when it is global.")
    endpoint: str | None = Field(default=None, description=ENDPOINT)
    request: JsonObject | None = Field(default=None, description="The rest of the request body besides the "
                                       "messages (system prompt, tools, parameters): gateway calls only.")
    stream: bool | None = Field(default=None, description=STREAM)
    outcome: CallOutcome | None = Field(default=None, description=OUTCOME)
    ttft_ms: int | None = Field(default=None, description=TTFT_MS)
    usage: JsonObject | None = Field(default=None, description=USAGE)
    replay_of: int | None = Field(default=None, description=REPLAY_OF)
    shortened: list[ShortenedText] = Field(default_factory=list, description="Texts shortened to fit "
                                           "MAX_RESPONSE_CHARS (empty: every text is whole).")
    omitted_messages: list[int] = Field(default_factory=list, description="Indices of the messages left out "
                                        "to fit MAX_RESPONSE_CHARS (read one with field=/messages/<index>/content).")
    note: str | None = Field(default=None, description="When something was shortened: what, and how to read it "
                                                       "whole.")
