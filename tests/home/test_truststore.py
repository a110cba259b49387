"""The trust store: allowed_signers (checked by ssh-keygen) and trusted ledger keys."""

from __future__ import annotations

import base64
import hashlib
import struct
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from securexport._crypto.sshkey import InvalidKeyError, SshPublicKey
from securexport._crypto.sshsig import NAMESPACE_APPROVAL, NAMESPACE_REVOCATION, sign, verify
from securexport.environment import Home
from securexport.errors import FileError, UsageError
from securexport.home.truststore import (
    TrustedKey,
    TrustStore,
    format_verifier_key,
    match_pattern_list,
    parse_verifier_key,
)

NS = f'namespaces="{NAMESPACE_APPROVAL},{NAMESPACE_REVOCATION}"'
# From the documentation of Go's golang.org/x/mod/sumdb/note (a signed-note implementation
# nobody here wrote): a verifier key and the signer key it belongs to.
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SIGNER_SEED_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"


def _new_key() -> tuple[Ed25519PrivateKey, SshPublicKey]:
    private = Ed25519PrivateKey.generate()
    return private, SshPublicKey.from_cryptography(private.public_key())


def _raw_line(raw: bytes, comment: str = "") -> str:
    """An ssh-ed25519 line for any 32 bytes (bypasses SshPublicKey's checks)."""
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", len(raw)) + raw
    line = "ssh-ed25519 " + base64.b64encode(blob).decode()
    return f"{line} {comment}" if comment else line


def _rsa_line() -> str:
    blob = b"".join(
        struct.pack(">I", len(p)) + p
        for p in (b"ssh-rsa", b"\x01\x00\x01", b"\x00" + b"\xc3" * 256)
    )
    return "ssh-rsa " + base64.b64encode(blob).decode() + " rsa@host"


@pytest.fixture
def store(home: Home) -> TrustStore:
    return TrustStore(home)


# --- add / list / remove -------------------------------------------------------------------------


def test_add_list_remove(store: TrustStore, home: Home) -> None:
    assert store.list() == []
    _, alice = _new_key()
    _, bob = _new_key()
    added = store.add("alice", alice.to_line("alice@laptop"), "approver")
    assert added == TrustedKey("alice", "approver", alice.to_line(), alice)
    assert added.fingerprint == alice.fingerprint()
    assert added.raw_key == alice.raw
    store.add("bob.smith@example.org", bob.to_line(), "approver")
    assert [k.name for k in store.list()] == ["alice", "bob.smith@example.org"]

    text = home.allowed_signers.read_text()
    assert f"alice {NS} {alice.to_line()}\n" in text
    assert "alice@laptop" not in text  # comments are not kept: keys are compared by bytes
    assert home.allowed_signers.stat().st_mode & 0o777 == 0o600

    assert store.remove("alice") == added
    assert [k.name for k in store.list()] == ["bob.smith@example.org"]
    assert store.approver_for(alice) is None
    assert store.approver_for(bob) is not None
    with pytest.raises(UsageError, match="not a trusted"):
        store.remove("alice")
    assert home.allowed_signers.stat().st_mode & 0o777 == 0o600


def test_approver_for_compares_key_bytes_not_lines(store: TrustStore) -> None:
    _, alice = _new_key()
    store.add("alice", alice.to_line("one comment"), "approver")
    found = store.approver_for(SshPublicKey.parse(alice.to_line("another comment")))
    assert found is not None
    assert found.name == "alice"
    assert store.approver_for(alice, NAMESPACE_REVOCATION) == found
    assert store.approver_for(alice, "securexport-manifest-v1") is None
    _, other = _new_key()
    assert store.approver_for(other) is None


def test_add_from_pub_file_contents(store: TrustStore, tmp_path: Path) -> None:
    pub = tmp_path / "id_ed25519.pub"
    owner = _new_key()[1]
    pub.write_text(f"# the data owner's signing key\n\n{owner.to_line('owner@host')}\r\n")
    added = store.add("owner", pub.read_text(), "approver")
    assert added.ssh == owner


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY=",
        "ssh-ed25519 not-base64!",
        "ssh-ed25519",
        "alice " + NS + " ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==",
    ],
)
def test_add_refuses_what_is_not_one_ed25519_key(store: TrustStore, home: Home, text: str) -> None:
    with pytest.raises(UsageError):
        store.add("alice", text, "approver")
    assert not home.allowed_signers.exists()


def test_add_refuses_two_keys(store: TrustStore) -> None:
    _, a = _new_key()
    _, b = _new_key()
    with pytest.raises(UsageError, match="exactly one key"):
        store.add("alice", a.to_line() + "\n" + b.to_line() + "\n", "approver")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(bytes(32), id="all-zero"),
        pytest.param(b"\x01" + bytes(31), id="identity"),
        pytest.param(bytes.fromhex("ec" + "ff" * 30 + "7f"), id="order-2"),
        pytest.param(
            bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
            id="order-8",
        ),
        pytest.param(bytes.fromhex("ed" + "ff" * 30 + "7f"), id="non-canonical"),
        pytest.param(bytes(31), id="short"),
    ],
)
def test_small_order_and_bad_keys_refused(store: TrustStore, home: Home, raw: bytes) -> None:
    with pytest.raises(UsageError) as info:
        store.add("evil", _raw_line(raw), "approver")
    assert info.value.hint
    assert not home.allowed_signers.exists()
    # ... and also when written into the file by hand: the whole file is refused.
    home.allowed_signers.write_text(f"evil {NS} {_raw_line(raw)}\n")
    home.allowed_signers.chmod(0o600)
    with pytest.raises(FileError, match=":1:"):
        store.list()


def test_duplicate_name_refused(store: TrustStore) -> None:
    _, a = _new_key()
    _, b = _new_key()
    store.add("alice", a.to_line(), "approver")
    with pytest.raises(UsageError, match="already named"):
        store.add("alice", b.to_line(), "approver")
    with pytest.raises(UsageError, match="already named"):
        store.add("alice", format_verifier_key("log", _new_key()[1].raw), "ledger")
    assert len(store.list()) == 1


def test_same_key_under_another_name_refused(store: TrustStore) -> None:
    _, a = _new_key()
    store.add("alice", a.to_line("laptop"), "approver")
    with pytest.raises(UsageError, match="already trusted as 'alice'"):
        store.add("alice2", a.to_line("desktop"), "approver")
    # never reuse a key across purposes: the same bytes as a ledger key are refused too
    with pytest.raises(UsageError, match="already trusted"):
        store.add("log", format_verifier_key("example.org/log", a.raw), "ledger")


@pytest.mark.parametrize(
    "name", ["", "-alice", ".alice", "al ice", "al,ice", 'al"ice', "a*", "x" * 65, "ålice", "a\nb"]
)
def test_invalid_names_refused(store: TrustStore, name: str) -> None:
    with pytest.raises(UsageError, match="invalid name"):
        store.add(name, _new_key()[1].to_line(), "approver")


def test_unknown_role_refused(store: TrustStore) -> None:
    with pytest.raises(UsageError, match="role"):
        store.add("alice", _new_key()[1].to_line(), "exporter")


def test_role_mismatch_hints(store: TrustStore) -> None:
    with pytest.raises(UsageError) as info:
        store.add("log", GO_VERIFIER, "approver")
    assert "--role ledger" in (info.value.hint or "")
    with pytest.raises(UsageError, match="ledger key"):
        store.add("alice", _new_key()[1].to_line(), "ledger")


# --- ledger keys ----------------------------------------------------------------------------------


def test_parse_verifier_key_matches_go_note_vector() -> None:
    name, raw = parse_verifier_key(GO_VERIFIER)
    assert name == "PeterNeumann"
    seed = base64.b64decode(GO_SIGNER_SEED_B64)
    assert seed[0] == 1
    derived = SshPublicKey.from_cryptography(
        Ed25519PrivateKey.from_private_bytes(seed[1:]).public_key()
    )
    assert derived.raw == raw
    assert format_verifier_key(name, raw) == GO_VERIFIER


@pytest.mark.parametrize(
    "text",
    [
        GO_VERIFIER.replace("c74f20a3", "c74f20a4"),  # hash does not match
        GO_VERIFIER.replace("c74f20a3", "C74F20A3"),  # upper-case hex
        GO_VERIFIER.replace("PeterNeumann", "PeterNeuman"),  # the hash covers the name
        GO_VERIFIER.replace("+ARpc", "+Apc"),  # wrong key bytes
        GO_VERIFIER[:-1],  # truncated base64
        GO_VERIFIER + "\n",
        " " + GO_VERIFIER,
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "a+b+" + GO_VERIFIER,
        "PeterNeumann+c74f20a3",
    ],
)
def test_parse_verifier_key_rejects(text: str) -> None:
    with pytest.raises(InvalidKeyError):
        parse_verifier_key(text)


def test_verifier_key_wrong_type_and_small_order() -> None:
    _, key = _new_key()
    good = format_verifier_key("log.example", key.raw)
    name, _, b64 = good.split("+", 2)
    blob = base64.b64decode(b64)

    def craft(type_byte: int, raw: bytes) -> str:
        digest = hashlib.sha256(name.encode() + b"\n" + bytes([type_byte]) + raw).digest()[:4]
        return f"{name}+{digest.hex()}+{base64.b64encode(bytes([type_byte]) + raw).decode()}"

    assert parse_verifier_key(craft(1, blob[1:])) == (name, key.raw)  # the crafting is right
    with pytest.raises(InvalidKeyError, match="type"):
        parse_verifier_key(craft(2, blob[1:]))
    with pytest.raises(InvalidKeyError, match="small-order"):
        parse_verifier_key(craft(1, bytes(32)))
    with pytest.raises(InvalidKeyError, match="small-order"):
        parse_verifier_key(craft(1, b"\x01" + bytes(31)))


def test_ledger_keys(store: TrustStore, home: Home) -> None:
    _, approver = _new_key()
    store.add("alice", approver.to_line(), "approver")
    before = home.allowed_signers.read_bytes()
    added = store.add("go-log", f"# from the log operator\n{GO_VERIFIER}\n", "ledger")
    assert added == TrustedKey("go-log", "ledger", GO_VERIFIER, None)
    assert added.fingerprint == "PeterNeumann+c74f20a3"
    assert added.raw_key == parse_verifier_key(GO_VERIFIER)[1]
    assert store.ledger_keys() == [added]
    assert [k.role for k in store.list()] == ["approver", "ledger"]
    assert home.allowed_signers.read_bytes() == before  # allowed_signers holds only SSH keys
    assert f"go-log {GO_VERIFIER}\n" in home.trusted_logs.read_text()
    assert home.trusted_logs.stat().st_mode & 0o777 == 0o600
    with pytest.raises(UsageError, match="already trusted"):
        store.add("again", GO_VERIFIER, "ledger")
    assert store.remove("go-log") == added
    assert store.ledger_keys() == []
    assert [k.name for k in store.list()] == ["alice"]


def test_trusted_logs_strict(store: TrustStore, home: Home) -> None:
    home.trusted_logs.write_text(f"# comment\n\ngo-log {GO_VERIFIER}\n")
    home.trusted_logs.chmod(0o600)
    assert [k.name for k in store.ledger_keys()] == ["go-log"]
    for bad in (f"go-log {GO_VERIFIER} extra\n", f"{GO_VERIFIER}\n", f"go log {GO_VERIFIER}\n"):
        home.trusted_logs.write_text(bad)
        with pytest.raises(FileError, match=":1:"):
            store.ledger_keys()


# --- permissions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666, 0o660])
def test_writable_by_others_refused(store: TrustStore, home: Home, mode: int) -> None:
    _, key = _new_key()
    store.add("alice", key.to_line(), "approver")
    home.allowed_signers.chmod(mode)
    with pytest.raises(FileError) as info:
        store.approver_for(key)
    assert info.value.hint == f"chmod 600 {home.allowed_signers}"
    with pytest.raises(FileError):
        store.add("bob", _new_key()[1].to_line(), "approver")
    home.allowed_signers.chmod(0o644)  # readable is fine: public keys
    assert store.approver_for(key) is not None
    store.add("log", GO_VERIFIER, "ledger")
    home.trusted_logs.chmod(0o622)
    with pytest.raises(FileError, match="writable by other users"):
        store.ledger_keys()


def test_rewrite_restores_0600_and_keeps_hand_written_lines(store: TrustStore, home: Home) -> None:
    _, bob = _new_key()
    hand = f"# maintained by hand\n\nbob {NS} {bob.to_line('bob@host')}\n# trailing comment"
    home.allowed_signers.write_text(hand)
    home.allowed_signers.chmod(0o644)
    _, alice = _new_key()
    store.add("alice", alice.to_line(), "approver")
    text = home.allowed_signers.read_text()
    assert text.startswith(hand + "\n")
    assert home.allowed_signers.stat().st_mode & 0o777 == 0o600
    store.remove("bob")
    assert "bob" not in home.allowed_signers.read_text().replace("bob@host", "")
    assert "# maintained by hand" in home.allowed_signers.read_text()


# --- hand-written OpenSSH lines -----------------------------------------------------------------


def test_hand_written_lines_parse(store: TrustStore, home: Home) -> None:
    keys = [_new_key()[1] for _ in range(9)]
    home.allowed_signers.write_text(
        "\n".join(
            [
                "# OpenSSH allowed_signers, written by hand",
                "",
                f"   alice,alice@example.org {NS} {keys[0].to_line('alice laptop key')}",
                f'carol\tNamespaces="securexport-*"\t{keys[1].to_line()}',
                f"dave {keys[2].to_line()}",  # no namespaces: not a securexport approver
                f'erin namespaces="git,file" {keys[3].to_line()}',
                f'frank namespaces="*,!securexport-approval-v1" {keys[4].to_line()}',
                f'ca-key cert-authority,namespaces="securexport-approval-v1" {keys[5].to_line()}',
                f'rsa-user namespaces="securexport-approval-v1" {_rsa_line()}',
                f'grace namespaces="securexport-approval-v?" {keys[6].to_line("x y z")}',
                f'*@example.gov.uk namespaces="securexport-approval-v1" {keys[7].to_line()}',
                "   # indented comment",
                "",
            ]
        )
    )
    home.allowed_signers.chmod(0o600)
    approvers = store.list()
    assert [(k.name, k.ssh) for k in approvers] == [
        ("alice,alice@example.org", keys[0]),
        ("carol", keys[1]),
        ("grace", keys[6]),
        ("*@example.gov.uk", keys[7]),
    ]
    for index in (2, 3, 4, 5, 8):
        assert store.approver_for(keys[index]) is None
    assert store.approver_for(keys[4], "securexport-revocation-v1") is None  # frank: no role
    ignored = store.ignored_lines()
    assert [line.split(":")[-2] for line in ignored] == ["5", "6", "7", "8", "9"]
    # remove by one principal of a shared line is refused; by the whole field it works
    with pytest.raises(UsageError, match="other principals"):
        store.remove("alice")
    store.remove("alice,alice@example.org")
    assert store.approver_for(keys[0]) is None
    with pytest.raises(UsageError, match="not a trusted approver") as info:
        store.remove("dave")
    assert "line 4" in (info.value.hint or "")  # alice's line is gone
    assert "not used by securexport" in (info.value.hint or "")
    with pytest.raises(UsageError, match="already named"):
        store.add("dave", keys[8].to_line(), "approver")
    with pytest.raises(UsageError, match="already trusted as 'dave'"):
        store.add("dave2", keys[2].to_line(), "approver")


@pytest.mark.parametrize(
    "line",
    [
        pytest.param('alice valid-before="20300101" {key}', id="valid-before"),
        pytest.param(
            'alice valid-after="20200101",namespaces="securexport-approval-v1" {key}',
            id="valid-after",
        ),
        pytest.param('alice unknown-option="x" {key}', id="unknown-option"),
        pytest.param("alice namespaces=securexport-approval-v1 {key}", id="unquoted"),
        pytest.param('alice namespaces="securexport-approval-v1 {key}', id="unterminated"),
        pytest.param('alice namespaces="a",namespaces="b" {key}', id="repeated"),
        pytest.param('alice namespaces="a\\"b" {key}', id="backslash"),
        pytest.param('alice namespaces="a",,cert-authority {key}', id="empty-option"),
        pytest.param("{key}", id="no-principal"),
        pytest.param("alice", id="principal-only"),
        pytest.param(f"alice {NS}", id="no-key"),
        pytest.param(f"alice {NS} ssh-ed25519", id="no-key-data"),
        pytest.param(f"alice {NS} ssh-ed25519 AAAA", id="bad-key-data"),
        pytest.param(f"alice {NS} ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIA==", id="type-mismatch"),
        pytest.param(f"alice {NS} ssh-foo AAAA", id="unknown-type"),
        pytest.param('"alice smith" ' + NS + " {key}", id="quoted-principal"),
        pytest.param(",alice " + NS + " {key}", id="empty-principal"),
        pytest.param("alice " + NS + " " + NS + " {key}", id="options-twice"),
        pytest.param("alice " + NS + " {key}\r", id="crlf"),
        pytest.param("# comment\x0calice " + NS + " {key}", id="form-feed-in-comment"),
    ],
)
def test_malformed_lines_refuse_the_file(store: TrustStore, home: Home, line: str) -> None:
    key = _new_key()[1].to_line()
    home.allowed_signers.write_text(
        f"# ok\nbob {NS} {_new_key()[1].to_line()}\n" + line.format(key=key) + "\n"
    )
    home.allowed_signers.chmod(0o600)
    with pytest.raises(FileError, match=":3:"):
        store.list()


def test_match_pattern_list() -> None:
    assert match_pattern_list("securexport-approval-v1", "securexport-approval-v1")
    assert match_pattern_list("securexport-approval-v1", "git,securexport-*")
    assert match_pattern_list("securexport-approval-v1", "securexport-approval-v?")
    assert not match_pattern_list("securexport-approval-v1", "securexport-approval")
    assert not match_pattern_list("securexport-approval-v1", "*,!securexport-a*")
    assert not match_pattern_list("securexport-approval-v1", "")
    assert not match_pattern_list("securexport-approval-v1", "Securexport-approval-v1")
    assert not match_pattern_list("securexport-approval-v1", "securexport-approval-v[1]")


# --- ssh-keygen reads our store as is ---------------------------------------------------------


def _ssh_verify(
    allowed: Path, principal: str, namespace: str, sig: bytes, message: bytes, tmp_path: Path
) -> bool:
    sig_path = tmp_path / "message.sig"
    sig_path.write_bytes(sig)
    result = subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(allowed),
            "-I",
            principal,
            "-n",
            namespace,
            "-s",
            str(sig_path),
        ],
        input=message,
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


@pytest.mark.tools
def test_ssh_keygen_verifies_with_our_store(store: TrustStore, home: Home, tmp_path: Path) -> None:
    alice_key, alice = _new_key()
    bob_key, bob = _new_key()
    store.add("alice", alice.to_line(), "approver")
    store.add("bob", bob.to_line(), "approver")
    store.add("go-log", GO_VERIFIER, "ledger")
    message = b'schema = "securexport.approval/1"\n'
    sig = sign(alice_key, message, NAMESPACE_APPROVAL)
    assert _ssh_verify(home.allowed_signers, "alice", NAMESPACE_APPROVAL, sig, message, tmp_path)
    revocation = sign(bob_key, message, NAMESPACE_REVOCATION)
    assert _ssh_verify(
        home.allowed_signers, "bob", NAMESPACE_REVOCATION, revocation, message, tmp_path
    )
    # ssh-keygen really checks: wrong principal, wrong namespace, removed signer all fail
    assert not _ssh_verify(home.allowed_signers, "bob", NAMESPACE_APPROVAL, sig, message, tmp_path)
    manifest_sig = sign(alice_key, message, "securexport-manifest-v1")
    assert not _ssh_verify(
        home.allowed_signers, "alice", "securexport-manifest-v1", manifest_sig, message, tmp_path
    )
    store.remove("alice")
    assert not _ssh_verify(
        home.allowed_signers, "alice", NAMESPACE_APPROVAL, sig, message, tmp_path
    )
    # and our side agrees
    assert store.approver_for(verify(sig, message, NAMESPACE_APPROVAL)) is None


@pytest.mark.tools
def test_ssh_keygen_agrees_on_hand_written_namespaces(
    store: TrustStore, home: Home, tmp_path: Path
) -> None:
    """Where both give an answer, ssh-keygen and we agree on who may sign approvals."""
    cases = [
        ("p1", 'namespaces="securexport-approval-v1"', True),
        ("p2", 'namespaces="git,securexport-*"', True),
        ("p3", 'namespaces="securexport-approval-v?"', True),
        ("p4", 'namespaces="*,!securexport-approval-v1"', False),
        ("p5", 'namespaces="file"', False),
        ("p6", 'NAMESPACES="securexport-approval-v1"', True),
        ("p7", 'cert-authority,namespaces="securexport-approval-v1"', False),
    ]
    keys = {name: _new_key() for name, _, _ in cases}
    home.allowed_signers.write_text(
        "".join(f"{name} {opts} {keys[name][1].to_line()}\n" for name, opts, _ in cases)
    )
    home.allowed_signers.chmod(0o600)
    message = b"approval bytes\n"
    for name, _, expected in cases:
        private, public = keys[name]
        sig = sign(private, message, NAMESPACE_APPROVAL)
        theirs = _ssh_verify(home.allowed_signers, name, NAMESPACE_APPROVAL, sig, message, tmp_path)
        ours = store.approver_for(public) is not None
        assert (theirs, ours) == (expected, expected), name
