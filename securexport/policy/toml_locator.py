"""Where a key is in TOML text: key paths mapped to line numbers, for error messages (pure).

``tomllib`` reports no positions for keys, so :class:`TomlLocator` rescans text that tomllib
already accepted, for table headers and key assignments.  That is best effort: a key is found
on the line where it is assigned, a value inside a multi-line array on its own line, and a
table on its header line; text the scanner does not understand ends the scan, keeping the lines
found so far.  The approval parser (:mod:`securexport.policy.approval`) uses it.
"""

from __future__ import annotations

import bisect
import tomllib

# A key path as the parsed document nests it: keys and array indices.
KeyPath = tuple[str | int, ...]


class _ScanError(Exception):
    """The locator met text it does not understand; lines found so far are kept."""


class TomlLocator:
    """Map key paths to 1-based line numbers by rescanning valid TOML text.

    Paths are tuples of keys and array indices, as the parsed document nests them:
    ``("column", 2, "granularity")`` is the key in the third ``[[column]]``.  The first place
    a path appears wins.  Runs only after tomllib accepted the text.
    """

    _STOP = frozenset(" \t\r\n#,]}")

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines: dict[KeyPath, int] = {}
        self._newlines = [i for i, c in enumerate(text) if c == "\n"]
        self._aot: dict[KeyPath, int] = {}
        try:
            self._scan()
        except (_ScanError, IndexError, RecursionError):
            pass  # best effort: keep what was found

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, else of the nearest enclosing key or table found; else None."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return None

    # -- scanning --------------------------------------------------------------------------

    def _line_at(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def _record(self, path: KeyPath, pos: int) -> None:
        self.lines.setdefault(path, self._line_at(pos))

    def _skip_ws(self, i: int) -> int:
        text = self.text
        while i < len(text) and text[i] in " \t":
            i += 1
        return i

    def _skip_blank(self, i: int) -> int:
        """Skip whitespace, newlines and comments."""
        text = self.text
        while i < len(text):
            c = text[i]
            if c in " \t\r\n":
                i += 1
            elif c == "#":
                end = text.find("\n", i)
                i = len(text) if end < 0 else end + 1
            else:
                break
        return i

    def _basic_string_end(self, i: int) -> int:
        """``i`` is just after the opening quote; return the index after the closing one."""
        text = self.text
        while i < len(text):
            c = text[i]
            if c == "\\":
                i += 2
            elif c == '"':
                return i + 1
            else:
                i += 1
        raise _ScanError

    def _key(self, i: int) -> tuple[tuple[str, ...], int]:
        text = self.text
        parts: list[str] = []
        while True:
            i = self._skip_ws(i)
            if i >= len(text):
                raise _ScanError
            c = text[i]
            if c == '"':
                end = self._basic_string_end(i + 1)
                try:
                    part = tomllib.loads("k = " + text[i:end])["k"]
                except tomllib.TOMLDecodeError as exc:
                    raise _ScanError from exc
                parts.append(str(part))
                i = end
            elif c == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise _ScanError
                parts.append(text[i + 1 : end])
                i = end + 1
            else:
                start = i
                while i < len(text) and (
                    text[i].isascii() and (text[i].isalnum() or text[i] in "_-")
                ):
                    i += 1
                if i == start:
                    raise _ScanError
                parts.append(text[start:i])
            i = self._skip_ws(i)
            if i < len(text) and text[i] == ".":
                i += 1
                continue
            return tuple(parts), i

    def _resolve(self, parts: tuple[str, ...]) -> KeyPath:
        """A header's key path, with the current index of each array of tables on the way."""
        out: KeyPath = ()
        for part in parts:
            out = (*out, part)
            count = self._aot.get(out)
            if count is not None:
                out = (*out, count - 1)
        return out

    def _value(self, i: int, path: KeyPath) -> int:
        text = self.text
        self._record(path, i)
        if text.startswith('"""', i):
            i += 3
            while i < len(text):
                if text[i] == "\\":
                    i += 2
                elif text.startswith('"""', i):
                    i += 3
                    extra = 0
                    while extra < 2 and i < len(text) and text[i] == '"':
                        i += 1
                        extra += 1
                    return i
                else:
                    i += 1
            raise _ScanError
        if text.startswith("'''", i):
            end = text.find("'''", i + 3)
            if end < 0:
                raise _ScanError
            i = end + 3
            extra = 0
            while extra < 2 and i < len(text) and text[i] == "'":
                i += 1
                extra += 1
            return i
        c = text[i]
        if c == '"':
            return self._basic_string_end(i + 1)
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise _ScanError
            return end + 1
        if c == "[":
            return self._array(i + 1, path)
        if c == "{":
            return self._inline_table(i + 1, path)
        start = i
        while i < len(text) and text[i] not in self._STOP:
            i += 1
        # A date-time may hold one space ("1979-05-27 07:32:00Z"): tomllib accepted the text,
        # so a following token that is not a comment/comma/bracket belongs to this value.
        if i < len(text) and text[i] == " " and i + 1 < len(text) and text[i + 1].isdigit():
            i += 1
            while i < len(text) and text[i] not in self._STOP:
                i += 1
        if i == start:
            raise _ScanError
        return i

    def _array(self, i: int, path: KeyPath) -> int:
        text = self.text
        index = 0
        while True:
            i = self._skip_blank(i)
            if i >= len(text):
                raise _ScanError
            if text[i] == "]":
                return i + 1
            i = self._value(i, (*path, index))
            index += 1
            i = self._skip_blank(i)
            if i < len(text) and text[i] == ",":
                i += 1

    def _inline_table(self, i: int, path: KeyPath) -> int:
        text = self.text
        while True:
            i = self._skip_blank(i)
            if i >= len(text):
                raise _ScanError
            if text[i] == "}":
                return i + 1
            key_start = i
            parts, i = self._key(i)
            for end in range(1, len(parts) + 1):
                self._record((*path, *parts[:end]), key_start)
            i = self._skip_ws(i)
            if i >= len(text) or text[i] != "=":
                raise _ScanError
            i = self._value(self._skip_ws(i + 1), (*path, *parts))
            i = self._skip_blank(i)
            if i < len(text) and text[i] == ",":
                i += 1

    def _scan(self) -> None:
        text = self.text
        current: KeyPath = ()
        i = 0
        while True:
            i = self._skip_blank(i)
            if i >= len(text):
                return
            start = i
            if text.startswith("[[", i):
                parts, i = self._key(i + 2)
                if not text.startswith("]]", i):
                    raise _ScanError
                i += 2
                full = (*self._resolve(parts[:-1]), parts[-1])
                index = self._aot.get(full, 0)
                self._aot[full] = index + 1
                current = (*full, index)
                self._record(full, start)
                self._record(current, start)
            elif text[i] == "[":
                parts, i = self._key(i + 1)
                if not text.startswith("]", i):
                    raise _ScanError
                i += 1
                current = self._resolve(parts)
                self._record(current, start)
            else:
                parts, i = self._key(i)
                for end in range(1, len(parts) + 1):
                    self._record((*current, *parts[:end]), start)
                if i >= len(text) or text[i] != "=":
                    raise _ScanError
                i = self._value(self._skip_ws(i + 1), (*current, *parts))
