"""HTTP conventions shared by routers and middleware: cursors, conditional requests,
idempotency fingerprints and small response helpers. Services and the domain never import it."""
