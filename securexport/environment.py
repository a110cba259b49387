"""The outside world, injected: clock, terminal detection, streams, passphrases, home.

Tests build an :class:`Environment` directly instead of monkeypatching; the CLI builds the real
one with :func:`Environment.from_os`.
"""

from __future__ import annotations

import getpass
import itertools
import os
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import platformdirs

from securexport.errors import FileError, KeyUnavailableError, UsageError
from securexport.fsutil import ensure_private_dir
from securexport.limits import DEFAULT_LIMITS

PASSPHRASE_FILE_VAR = "SECUREXPORT_PASSPHRASE_FILE"  # noqa: S105 (a variable name)
HOME_VAR = "SECUREXPORT_HOME"
PROMPT_TRIES = 3  # passphrase tries on a terminal, as ssh and gpg give
MIN_PASSPHRASE_CHARS = 12
# Trivial passphrases refused for a new key file, compared without case, digits, spaces and
# punctuation at their ends ("Password123!" is "password").
_TRIVIAL = frozenset(
    {
        "password",
        "passphrase",
        "passwordpassword",
        "qwerty",
        "qwertyuiop",
        "qwertyuiopasdf",
        "asdfghjkl",
        "letmein",
        "iloveyou",
        "welcome",
        "admin",
        "secret",
        "securexport",
        "changeme",
        "abcdefghijkl",
        "",
    }
)


def passphrase_weakness(phrase: str) -> str | None:
    """Why ``phrase`` is too weak to protect a new key file, or None.

    A length rule (DESIGN.md §6's keys are only as strong as it) plus a refusal of the
    trivially guessable: one repeated character or pair, a run like "123456789012" or
    "abcdefghijkl", or a common password padded with digits.  A zxcvbn-style estimate would
    need a dependency for little more than this catches.
    """
    if len(phrase) < MIN_PASSPHRASE_CHARS:
        return f"a new passphrase needs at least {MIN_PASSPHRASE_CHARS} characters"
    if len(set(phrase)) <= 2:
        return "a new passphrase must not repeat one or two characters"
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(phrase)}
    if steps <= {1} or steps <= {-1}:
        return "a new passphrase must not be a run of consecutive characters"
    core = phrase.lower().strip("0123456789 !?.,;:-_*#@$%&")
    if core in _TRIVIAL:
        return "a new passphrase must not be a common password"
    return None


# The stages of an export, in the order it reaches them (Environment.on_stage):
#   after-count           the source is read and counted (rows wait in the encrypted spool)
#   after-payload         payload.zip is written and fsynced (as <out>.payload.partial)
#   after-manifest-sign   the manifest is built and signed
#   ledger-before-commit  inside the ledger's append transaction, before COMMIT
#   after-ledger-commit   the entry is committed; the bundle is not written yet
#   before-rename         the bundle is complete as <out>.partial, not yet renamed
STAGES = (
    "after-count",
    "after-payload",
    "after-manifest-sign",
    "ledger-before-commit",
    "after-ledger-commit",
    "before-rename",
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _no_stage(stage: str) -> None:
    return None


@dataclass(frozen=True)
class Home:
    """``$SECUREXPORT_HOME``: trust store, key files, ledger, config.  Directories are 0700."""

    path: Path

    @property
    def allowed_signers(self) -> Path:
        return self.path / "allowed_signers"

    @property
    def trusted_logs(self) -> Path:
        return self.path / "trusted_logs"

    @property
    def keys_dir(self) -> Path:
        return self.path / "keys"

    @property
    def ledger_path(self) -> Path:
        return self.path / "ledger.db"

    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    @property
    def revocations_dir(self) -> Path:
        return self.path / "revocations"

    def mirror_path(self, origin: str) -> Path:
        """The owner's witness mirror of the log ``origin``: ``witness/<origin, %-encoded>.db``."""
        return self.path / "witness" / (urllib.parse.quote(origin, safe="") + ".db")

    def ensure(self) -> Home:
        ensure_private_dir(self.path)
        ensure_private_dir(self.keys_dir)
        return self

    @classmethod
    def resolve(cls, explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Home:
        if explicit:
            return cls(Path(explicit).expanduser().absolute())
        if environ.get(HOME_VAR):
            return cls(Path(environ[HOME_VAR]).expanduser().absolute())
        return cls(Path(platformdirs.user_data_dir("securexport", appauthor=False)))


@dataclass
class Environment:
    """Everything securexport reads from the world besides its arguments."""

    home: Home
    now: Callable[[], datetime] = _utc_now
    stdin_isatty: bool = False
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stderr_isatty: bool = False
    interactive: bool = True  # False with --no-input: never prompt
    passphrase_file: str | None = None
    prompt: Callable[[str], str] | None = None  # reads a passphrase from the terminal
    keystore: str = "auto"  # auto | keyring | file
    ledger_url: str | None = None  # --ledger: a shared PostgreSQL ledger instead of ledger.db
    progress: bool = True  # a progress bar on a terminal (False with -q)
    # The scrypt work factor of new key files: age's default, fixed and documented (DESIGN.md
    # §9).  Only a caller building its own Environment (the test suite) passes a lower one.
    scrypt_log_n: int = DEFAULT_LIMITS.max_scrypt_log_n
    # Called with each stage an export passes, in order (STAGES, DESIGN.md §8.3); does nothing
    # by default.  The crash tests stop the process there, as a power cut would.
    on_stage: Callable[[str], None] = _no_stage
    _notices: set[str] = field(default_factory=set)

    def notice(self, message: str) -> None:
        """Print a one-line notice on stderr, once per process."""
        if message not in self._notices:
            self._notices.add(message)
            print(f"securexport: notice: {message}", file=self.stderr)

    def warn(self, message: str) -> None:
        print(f"securexport: warning: {message}", file=self.stderr)

    def passphrase(self, purpose: str, *, confirm: bool = False) -> bytes:
        """The passphrase: first line of ``$SECUREXPORT_PASSPHRASE_FILE``, or the terminal.

        Never from a flag or an environment value (DESIGN.md §6).  With ``confirm`` (a new
        passphrase) one typed on the terminal must be strong enough
        (:func:`passphrase_weakness`) and typed twice alike, else UsageError; a passphrase
        file is taken as it is.  One call is one try: the key store asks again after a wrong
        one (:attr:`passphrase_tries`).
        """
        if self.passphrase_file:
            try:
                with open(self.passphrase_file, "rb") as fh:
                    first = fh.readline()
            except OSError as exc:
                raise FileError(
                    f"cannot read the passphrase file named by {PASSPHRASE_FILE_VAR}: "
                    f"{exc.strerror}"
                ) from exc
            phrase = first.rstrip(b"\r\n") if first.endswith(b"\n") else first
            if not phrase:
                raise KeyUnavailableError(
                    f"the passphrase file named by {PASSPHRASE_FILE_VAR} is empty"
                )
            return phrase
        if not self.interactive or not self.stdin_isatty or self.prompt is None:
            raise KeyUnavailableError(
                f"a passphrase is needed to {purpose}, and there is no terminal to ask",
                hint=f"run in a terminal, or set {PASSPHRASE_FILE_VAR} to a 0600 file holding it",
            )
        first_entry = self.prompt(f"Passphrase to {purpose}: ")
        if confirm:
            # A new passphrase: every refusal is the same usage error (exit 2), the user
            # typed something that cannot be used; nothing was written yet.
            if not first_entry:
                raise UsageError("an empty passphrase is not accepted")
            weakness = passphrase_weakness(first_entry)
            if weakness is not None:
                raise UsageError(
                    weakness,
                    hint="several unrelated words make a passphrase that is long and memorable",
                )
            if self.prompt(f"Confirm passphrase to {purpose}: ") != first_entry:
                raise UsageError("the passphrases do not match")
        if not first_entry:
            raise KeyUnavailableError("an empty passphrase is not accepted")
        return first_entry.encode()

    @property
    def passphrase_tries(self) -> int:
        """How often an unlock may ask: a file is read once (the same bytes each time), a
        terminal gets :data:`PROMPT_TRIES` tries."""
        return 1 if self.passphrase_file else PROMPT_TRIES

    @classmethod
    def from_os(
        cls, *, home: str | None = None, interactive: bool = True, ledger_url: str | None = None
    ) -> Environment:
        """The real world: this process's streams, terminal and environment variables."""
        environ = os.environ
        return cls(
            home=Home.resolve(home, environ),
            stdin_isatty=sys.stdin.isatty(),
            stderr=sys.stderr,
            stderr_isatty=sys.stderr.isatty(),
            interactive=interactive,
            passphrase_file=environ.get(PASSPHRASE_FILE_VAR) or None,
            prompt=lambda text: getpass.getpass(text, stream=sys.stderr),
            keystore=environ.get("SECUREXPORT_KEYSTORE", "auto"),
            ledger_url=ledger_url,
        )
