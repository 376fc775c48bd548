"""The logging gateway (`aletheia-mcp gateway`): an HTTP pass-through for the OpenAI and Anthropic
APIs that logs every exchange to `raw_conversations` off the request path.

app.py: the Starlette app, its lifespan and the server; proxy.py: one pass-through; assemble.py:
a streamed answer rebuilt on the side. An adapter like http_transport.py: it reaches the database
only through services (the ExchangeSpool and ConversationService).
"""
