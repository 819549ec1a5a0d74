import pytest

from core.errors import SettingsError
from core.serving.access import check_serving, credentials, is_loopback
from core.settings import Settings, load_settings


@pytest.mark.parametrize(
    "host, loop",
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("macmini.local", False),
    ],
)
def test_is_loopback(host, loop):
    assert is_loopback(host) is loop


def test_public_bind_without_auth_is_refused():
    with pytest.raises(SettingsError, match="Refusing to listen on 0.0.0.0 without a password"):
        check_serving(Settings(host="0.0.0.0"))


def test_public_bind_with_auth_or_explicit_opt_out_is_allowed():
    assert check_serving(Settings(host="0.0.0.0", auth="anna:s3cret")) == [("anna", "s3cret")]
    assert check_serving(Settings(host="0.0.0.0", insecure_no_auth=True)) == []
    assert check_serving(Settings()) == []


def test_credentials_from_file_and_setting(tmp_path):
    file = tmp_path / "users.txt"
    file.write_text("# studio users\nanna:pa:ss\n\nben:pw2\n")
    pairs = credentials(Settings(auth="root:x", auth_file=file))
    assert pairs == [("root", "x"), ("anna", "pa:ss"), ("ben", "pw2")]


def test_bad_credentials_are_clear_and_never_echo_the_secret(tmp_path):
    with pytest.raises(SettingsError) as info:
        load_settings({"auth": "justapassword"}, env={}, config_path=tmp_path / "x.toml")
    assert "user:password" in str(info.value) and "justapassword" not in str(info.value)
    bad = tmp_path / "users.txt"
    bad.write_text("nocolon\n")
    with pytest.raises(SettingsError, match="entry 1: expected user:password"):
        credentials(Settings(auth_file=bad))
    with pytest.raises(SettingsError, match="Could not read the credentials file"):
        credentials(Settings(auth_file=tmp_path / "missing.txt"))


def test_settings_repr_hides_the_password():
    assert "s3cret" not in repr(Settings(auth="anna:s3cret"))


def test_tls_needs_both_files(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(SettingsError, match="both --ssl-certfile and --ssl-keyfile"):
        check_serving(Settings(ssl_certfile=cert))
    with pytest.raises(SettingsError, match="does not exist"):
        check_serving(Settings(ssl_certfile=cert, ssl_keyfile=tmp_path / "nokey.pem"))
