"""Rule files and what they mean: globs, parsing rule files, rendering context files, and
syncing them with a repository's files. Pure (no database); the services use it."""
