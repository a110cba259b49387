"""Pure rules: the approval model and its strict parser, the manifest, revocation documents and
the authorisation checks.  Bytes in, typed objects or verdicts out: no disk, database, network
or keyring (an import-linter contract in ``make lint`` holds this)."""
