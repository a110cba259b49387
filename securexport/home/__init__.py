"""This installation (``$SECUREXPORT_HOME``): its key store, trust store, revocations,
``config.toml``, and the ledger and witness mirrors it opens.  Public functions the api and
nothing below it use."""
