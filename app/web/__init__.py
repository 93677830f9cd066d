"""The web layer: what only a web process needs (errors, headers, sessions, URLs)."""
