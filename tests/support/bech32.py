"""BIP 173 Bech32, written from the specification for the tests, independently of
securexport's decoder: age recipients for keys no product code would produce (low-order,
non-canonical, other types)."""

from __future__ import annotations

_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= generator[i] if (top >> i) & 1 else 0
    return chk


def bech32(hrp: str, data: bytes) -> str:
    """BIP 173 Bech32 of ``data`` (8-bit groups to 5-bit, zero padded), lower case."""
    five: list[int] = []
    acc = bits = 0
    for byte in data:
        acc, bits = (acc << 8) | byte, bits + 8
        while bits >= 5:
            bits -= 5
            five.append((acc >> bits) & 31)
    if bits:
        five.append((acc << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = _bech32_polymod(expanded + five + [0] * 6) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[d] for d in five + checksum)


def bech32_data(text: str) -> bytes:
    """The bytes of a Bech32 string (checksum not checked): the inverse of :func:`bech32`."""
    five = [_BECH32.index(c) for c in text[text.rindex("1") + 1 : -6]]
    acc = bits = 0
    out = bytearray()
    for value in five:
        acc, bits = (acc << 5) | value, bits + 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    return bytes(out)


def age_recipient(raw: bytes) -> str:
    """``raw`` (32 bytes) as an ``age1…`` recipient."""
    return bech32("age", raw)
