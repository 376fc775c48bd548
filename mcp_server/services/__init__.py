"""Use cases shared by the MCP tools and the CLI."""
