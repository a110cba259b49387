"""securexport: approved, minimised, AES-256 exports of personal data with a signed ledger.

The library is the product; ``securexport.cli`` is one client of it.  Start with
:mod:`securexport.api`.
"""

__version__ = "0.1.0"
