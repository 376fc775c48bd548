"""Parameters several tools share: which project a call is about, and which rows it covers."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mcp_server.schemas import ConversationScope, ReadScope, WriteScope

ProjectArgument = Annotated[str | None, Field(
    description="The project (repository) to use instead of the one this server detected, e.g. "
                "github.com/org/repo. Usually left out.")]
ReadScopeArgument = Annotated[ReadScope, Field(
    description='"project" (default): this project\'s and the global ones; "global": only the global ones; '
                '"all": every project\'s.')]
WriteScopeArgument = Annotated[WriteScope, Field(
    description='"project" (default): belongs to this project; "global": holds in every project (e.g. a '
                'personal preference, an organisation-wide rule).')]
ConversationScopeArgument = Annotated[ConversationScope, Field(
    description='"project" (default): this project\'s exchanges; "all": every project\'s.')]
