"""Data for mcp_server.redact: the token formats of the major providers (formats.py)."""
