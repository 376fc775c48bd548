"""aletheia-mcp: long-term memory and engineering patterns for AI coding assistants."""

__version__ = "0.1.0"
