"""Benchmarks: our server and its peers over stdio with the official MCP client (`make bench`)."""
