"""Ed25519 key files: created private, refused when others can read them, interoperable with OpenSSH."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from piguard import keys
from piguard._fs import atomic_write_text, create_secret_file


def test_generate_writes_private_0600_and_public_line(tmp_path):
    sk = keys.generate(tmp_path / "supplier", owner="Acme Data Ltd")
    priv, pub = tmp_path / "supplier.key", tmp_path / "supplier.pub"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert pub.read_text().startswith("ssh-ed25519 ")
    assert pub.read_text().rstrip().endswith("Acme Data Ltd")
    loaded = keys.load_signing_key(priv)
    assert loaded.key_id == sk.key_id == keys.load_public_key(pub).key_id
    assert loaded.public.owner == "Acme Data Ltd"
    sig = loaded.sign(b"payload")
    assert keys.load_public_key(pub).verify(sig, b"payload")
    assert not keys.load_public_key(pub).verify(sig, b"payloaD")


def test_key_id_is_openssh_fingerprint(tmp_path):
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed here")
    sk = keys.generate(tmp_path / "k")
    out = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True)
    assert sk.key_id in out.stdout


def test_refuses_overwrite_and_world_readable_key(tmp_path):
    keys.generate(tmp_path / "k")
    with pytest.raises(keys.KeyFileError, match="already exists"):
        keys.generate(tmp_path / "k")
    os.chmod(tmp_path / "k.key", 0o644)
    with pytest.raises(keys.KeyFileError, match="chmod 600"):
        keys.load_signing_key(tmp_path / "k.key")


def test_encrypted_key_needs_passphrase_and_never_echoes_it(tmp_path, monkeypatch):
    monkeypatch.delenv(keys.PASSPHRASE_ENV, raising=False)
    sk = keys.generate(tmp_path / "k", passphrase=b"correct horse")
    assert b"ENCRYPTED" in (tmp_path / "k.key").read_bytes()
    with pytest.raises(keys.KeyFileError, match="encrypted"):
        keys.load_signing_key(tmp_path / "k.key")
    with pytest.raises(keys.KeyFileError) as bad:
        keys.load_signing_key(tmp_path / "k.key", b"wrong horse")
    assert "wrong horse" not in str(bad.value)
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "correct horse")
    assert keys.load_signing_key(tmp_path / "k.key").key_id == sk.key_id
    assert "PRIVATE" not in repr(sk) and "correct" not in repr(sk)


@pytest.mark.parametrize(
    "content",
    [b"", b"ssh-rsa AAAAB3NzaC1yc2E user", b"ssh-ed25519 !!!notbase64", b"\xff\xfe\x00garbage", b"x" * 70000],
)
def test_bad_public_key_files_are_named_errors(tmp_path, content):
    p = tmp_path / "bad.pub"
    p.write_bytes(content)
    with pytest.raises(keys.KeyFileError, match=r"bad\.pub"):
        keys.load_public_key(p)


def test_trust_directory_reads_pub_files_only(tmp_path):
    a = keys.generate(tmp_path / "a")
    b = keys.generate(tmp_path / "b")
    store = keys.load_trust(tmp_path)
    assert a.key_id in store and b.key_id in store and len(store) == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(keys.KeyFileError, match=r"no \.pub"):
        keys.load_trust(tmp_path / "empty")


def test_private_key_passed_as_public_is_refused(tmp_path):
    keys.generate(tmp_path / "k")
    with pytest.raises(keys.KeyFileError, match="private key"):
        keys.load_public_key(tmp_path / "k.key")


def test_create_secret_file_races_to_one_complete_winner(tmp_path):
    target = tmp_path / "ledger.db.key"

    def attempt(i: int) -> bool:
        return create_secret_file(target, f"{i:064d}".encode())

    with ThreadPoolExecutor(16) as pool:
        won = list(pool.map(attempt, range(64)))
    assert won.count(True) == 1
    assert len(target.read_bytes()) == 64
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.db.key"]


def test_atomic_write_keeps_old_file_when_directory_missing(tmp_path):
    good = tmp_path / "report.json"
    atomic_write_text(good, "{}")
    with pytest.raises(ValueError, match="does not exist"):
        atomic_write_text(tmp_path / "nope" / "r.json", "x")
    assert good.read_text() == "{}"
    atomic_write_text(tmp_path / "name-\udcff.txt", "odd name")  # a non-UTF-8 byte in a name
    assert any(p.name.startswith("name-") for p in tmp_path.iterdir())
