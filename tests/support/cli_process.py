"""The securexport CLI in a fresh process, as the suite runs it: ``python cli_process.py ARGS``.

It is the real ``securexport.cli.main``, given an Environment built by the suite
(tests.support.cli.suite_environment): key files at a low scrypt cost, and for the crash tests
death by a signal at a named export stage.  Those test-only variables are read in tests/ only;
the installed ``securexport`` never reads them (tests/system/test_wheel.py proves it).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from securexport.cli import main
from tests.support.cli import suite_environment

if __name__ == "__main__":
    main(sys.argv[1:], environment=suite_environment)
