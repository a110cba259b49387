"""Independent tools agree with our formats (DESIGN.md §3, §10): ssh-keygen, age, 7z, bsdtar."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from securexport import api
from securexport.home.keystore import KeyStore
from tests.support.world import TEST_LOG_N, World

pytestmark = pytest.mark.tools


def _unpack(bundle: Path, dest: Path) -> dict[str, Path]:
    dest.mkdir()
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(dest)
        return {name: dest / name for name in zf.namelist()}


def test_ssh_keygen_verifies_approval_and_manifest(world: World, tmp_path: Path) -> None:
    result = world.export()
    parts = _unpack(result.bundle, tmp_path / "parts")
    # The data owner's allowed_signers file is used by ssh-keygen exactly as we wrote it.
    owner_signers = world.exporter.home.allowed_signers
    subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(owner_signers),
            "-I",
            "owner",
            "-n",
            "securexport-approval-v1",
            "-s",
            str(parts["approval.toml.sig"]),
        ],
        input=parts["approval.toml"].read_bytes(),
        check=True,
        capture_output=True,
    )
    exporter_line = world.ids["exporter"].signing_key.to_line()
    signers = tmp_path / "exporters"
    signers.write_text(f'analyst namespaces="securexport-manifest-v1" {exporter_line}\n')
    subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(signers),
            "-I",
            "analyst",
            "-n",
            "securexport-manifest-v1",
            "-s",
            str(parts["manifest.json.sig"]),
        ],
        input=parts["manifest.json"].read_bytes(),
        check=True,
        capture_output=True,
    )
    # And it is not a rubber stamp: a changed manifest fails.
    bad = subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(signers),
            "-I",
            "analyst",
            "-n",
            "securexport-manifest-v1",
            "-s",
            str(parts["manifest.json.sig"]),
        ],
        input=parts["manifest.json"].read_bytes() + b" ",
        capture_output=True,
        check=False,
    )
    assert bad.returncode != 0


def test_age_and_7z_and_bsdtar_open_what_decrypt_writes(world: World, tmp_path: Path) -> None:
    result = world.export()
    parts = _unpack(result.bundle, tmp_path / "parts")
    identity = KeyStore(world.recipient, scrypt_log_n=TEST_LOG_N).age_identity("force")
    id_file = tmp_path / "id.txt"
    id_file.write_text(identity + "\n")
    id_file.chmod(0o600)
    password = subprocess.run(
        ["age", "-d", "-i", str(id_file), str(parts["payload.key.age"])],
        check=True,
        capture_output=True,
    ).stdout.decode()
    assert len(password) == 43 and "\n" not in password

    out = tmp_path / "ours"
    api.decrypt(world.recipient, result.bundle, "force", out)
    ours = (out / "data" / "offenders.csv").read_bytes()

    sevenz = tmp_path / "7z"
    subprocess.run(
        ["7z", "x", f"-p{password}", f"-o{sevenz}", str(parts["payload.zip"])],
        check=True,
        capture_output=True,
    )
    assert (sevenz / "data" / "offenders.csv").read_bytes() == ours

    bsd = tmp_path / "bsdtar"
    bsd.mkdir()
    subprocess.run(
        ["bsdtar", "-x", "--passphrase", password, "-f", str(parts["payload.zip"]), "-C", str(bsd)],
        check=True,
        capture_output=True,
    )
    assert (bsd / "data" / "offenders.csv").read_bytes() == ours

    # 7z refuses a wrong password: the payload is really encrypted.
    wrong = subprocess.run(
        ["7z", "t", "-pnot-the-password", str(parts["payload.zip"])],
        capture_output=True,
        check=False,
    )
    assert wrong.returncode != 0
