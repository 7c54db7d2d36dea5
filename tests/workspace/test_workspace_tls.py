"""grpc_server locations over TLS: a real code server with a certificate from a private CA."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runtime.host.workspace import Workspace
from runtime.workspace.config import grpc_server_spec
from tests.helpers_server import start_code_server

if TYPE_CHECKING:
    from runtime.workspace.options import SupervisorOptions

pytestmark = pytest.mark.anyio

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello_world" / "definitions.py"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a server certificate it signed for 127.0.0.1, made with openssl."""
    d = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=runtime test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=127.0.0.1",
    )  # fmt: skip
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "server.ext",
    )  # fmt: skip
    return {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}


def _port(address: str) -> int:
    return int(address.rpartition(":")[2])


async def test_a_tls_location_loads_and_runs_when_its_ca_is_trusted(
    certificates: dict[str, Path],
    fast_options: SupervisorOptions,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["ca"]))
    tls = ("--ssl-certfile", str(certificates["cert"]), "--ssl-keyfile", str(certificates["key"]))
    async with start_code_server("-f", str(HELLO), "-p", "0", *tls) as server:
        spec = grpc_server_spec(
            host="127.0.0.1",
            port=_port(server.address),
            socket=None,
            ssl=True,
            auth_token=server.auth_token,
        )
        async with Workspace.from_specs([spec], options=fast_options) as ws:
            location = ws.locations[spec.name]
            assert location.status == "loaded", location.error
            assert location.server_id == server.server_id
            result = await (await ws.launch_run(job="etl")).wait()
            assert result.status == "SUCCESS"


async def test_an_untrusted_certificate_is_an_error_naming_the_address(
    certificates: dict[str, Path],
    fast_options: SupervisorOptions,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # A trust store that does not hold the test CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "empty.pem"))
    (tmp_path / "empty.pem").write_text("")
    tls = ("--ssl-certfile", str(certificates["cert"]), "--ssl-keyfile", str(certificates["key"]))
    async with start_code_server("-f", str(HELLO), "-p", "0", *tls) as server:
        spec = grpc_server_spec(
            host="127.0.0.1",
            port=_port(server.address),
            socket=None,
            ssl=True,
            auth_token=server.auth_token,
        )
        async with Workspace.from_specs([spec], options=fast_options) as ws:
            location = ws.locations[spec.name]
            assert location.status == "error"
            assert location.error is not None
            assert f"127.0.0.1:{_port(server.address)}" in location.error.message
            assert "CERTIFICATE_VERIFY_FAILED" in location.error.describe()


async def test_plain_text_to_a_tls_server_is_an_error(
    certificates: dict[str, Path], fast_options: SupervisorOptions
) -> None:
    tls = ("--ssl-certfile", str(certificates["cert"]), "--ssl-keyfile", str(certificates["key"]))
    async with start_code_server("-f", str(HELLO), "-p", "0", *tls) as server:
        spec = grpc_server_spec(
            host="127.0.0.1", port=_port(server.address), socket=None, auth_token=server.auth_token
        )
        async with Workspace.from_specs([spec], options=fast_options) as ws:
            location = ws.locations[spec.name]
            assert location.status == "error"
            assert location.error is not None
            assert f"127.0.0.1:{_port(server.address)}" in location.error.message


def test_a_bad_certificate_is_one_clear_line(tmp_path: Path) -> None:
    import sys

    missing = tmp_path / "missing.pem"
    result = subprocess.run(
        [sys.executable, "-m", "runtime", "api", "grpc", "-f", str(HELLO), "-p", "0",
         "--ssl-certfile", str(missing)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "RUNTIME_CODE_SERVER_TOKEN": "a-test-token"},
    )  # fmt: skip
    assert result.returncode == 1
    assert f"cannot serve TLS with certificate {missing}" in result.stderr
    assert "Traceback" not in result.stderr
