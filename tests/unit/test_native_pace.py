"""The native runner's pace settings, without starting anything: the services' lazily read
CA directory (trust.py)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from kugeldrill.stack.native import trust


def _paths(capath: Path) -> ssl.DefaultVerifyPaths:
    return ssl.DefaultVerifyPaths(cafile=None, capath=str(capath), openssl_cafile_env="SSL_CERT_FILE",
                                  openssl_cafile="", openssl_capath_env="SSL_CERT_DIR", openssl_capath="")


def test_a_hashed_ca_directory_replaces_the_inherited_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "5ad8a5d6.0").write_text("")
    monkeypatch.setattr(trust.ssl, "get_default_verify_paths", lambda: _paths(tmp_path))
    env = {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "OTHER": "x"}
    trust.apply_lazy_trust(env)
    assert env == {"SSL_CERT_DIR": str(tmp_path), "OTHER": "x"}


def test_without_a_hashed_directory_the_inherited_settings_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "ca-certificates.crt").write_text("")  # a bundle, not c_rehash links
    monkeypatch.setattr(trust.ssl, "get_default_verify_paths", lambda: _paths(tmp_path))
    env = {"SSL_CERT_FILE": "/x.pem"}
    trust.apply_lazy_trust(env)
    assert env == {"SSL_CERT_FILE": "/x.pem"}


@pytest.mark.skipif(trust.ca_directory() is None, reason="this system has no hashed CA directory")
def test_with_the_runner_setting_an_http_client_parses_no_certificate_up_front(monkeypatch: pytest.MonkeyPatch):
    """What Kugelpos pays per client: certifi's whole bundle without the setting, nothing with it."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert httpx.create_ssl_context().cert_store_stats()["x509_ca"] > 50
    env: dict[str, str] = {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}
    trust.apply_lazy_trust(env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert httpx.create_ssl_context().cert_store_stats()["x509_ca"] == 0
