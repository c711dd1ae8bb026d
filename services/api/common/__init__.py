"""What every API feature uses: auth, correlation ids, the database unit of work, problem
details, access log, metrics, slow-client deadlines, messaging, signing and keyset cursors.

Nothing here imports a feature package (import-linter holds it)."""
