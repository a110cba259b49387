"""The adversarial suite (issue 4): hostile inputs as data, each with its expected exit code.

Cases are registered with :func:`tests.adversarial.registry.case` in the ``test_*`` modules;
``scripts/gen_adversarial_table.py`` renders them into docs/adversarial.md.
"""
