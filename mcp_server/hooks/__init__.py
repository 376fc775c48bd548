"""Coding agents' hooks (`aletheia-mcp hook EVENT`): a thin client and a warm background server.

A hook runs once per prompt, file and turn, so it must answer in a fraction of a second, while
importing our services takes ~0.45 s and the default embedder loads in seconds. So the `hook`
command is `client.py`, which imports only the standard library: it sends the client's payload
over a Unix socket to `server.py` (`aletheia-mcp hook-server`), a process the first hook starts
and which keeps the database pool and the embedder warm until it has been idle for
HOOK_SERVER_IDLE_S. `protocol.py` is what both sides share (stdlib only too); `clients/` turns
each coding agent's payload into a neutral event and the answer back into what the agent expects.

This package's `__init__` imports nothing: the hook client's start-up time depends on it.
"""
