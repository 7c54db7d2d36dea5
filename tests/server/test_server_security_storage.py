"""Exploits a local user could try on a code server's stored outputs, and why each fails.

Stored outputs are pickles, so a server tricked into unpickling a file of the
attacker's runs the attacker's code. These tests plant such a file and send
crafted ExecuteRun requests over TCP (with the server's token: the attacker
here is a client that got past authentication, the worst case).
"""

from __future__ import annotations

import os
import pickle
import stat
import textwrap
from typing import TYPE_CHECKING

import msgspec
import pytest

from runtime.errors import CodeLocationError
from runtime.execution.io_manager import FilesystemIOManager
from runtime.protocol import messages as m
from runtime.protocol.auth import TOKEN_METADATA_KEY
from runtime.protocol.envelope import unwrap
from runtime.protocol.transport import open_channel, parse_address
from tests.helpers_server import start_code_server
from tests.server.server_helpers import collect

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers_server import ServerProcess

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

DEFINITIONS = textwrap.dedent(
    """
    from runtime import Definitions, asset


    @asset
    def numbers() -> list[int]:
        return [1, 2, 3]


    @asset
    def total(numbers: list[int]) -> int:
        return sum(numbers)


    defs = Definitions(assets=[numbers, total])
    """
)


class _Payload:
    """Unpickling this runs a shell command: what an attacker plants as a stored output."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def plant(directory: Path, run_id: str, marker: Path) -> Path:
    """An output log for `run_id` under `directory` whose `numbers` output runs `touch marker`."""
    files = FilesystemIOManager(directory, run_id)
    files.store_pickled("numbers", "result", pickle.dumps(_Payload(marker)))
    files.flush()
    return directory / run_id / "outputs.log"


def files_under(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*")}


async def crafted_execute_run(server: ServerProcess, fields: dict[str, object]) -> list[m.RunEvent]:
    """ExecuteRun with a payload built by hand, so it may carry fields the client never sends."""
    from runtime.protocol._generated.runtime_api import CodeLocationStub, Envelope

    host, port, path = parse_address(server.address)
    assert server.auth_token is not None
    envelope = Envelope(protocol_version=m.PROTOCOL_VERSION, payload=msgspec.msgpack.encode(fields))
    batch = m.decoder(m.EventBatch)
    events: list[m.RunEvent] = []
    async with open_channel(host=host, port=port, path=path) as channel:
        stub = CodeLocationStub(channel, metadata={TOKEN_METADATA_KEY: server.auth_token})
        async for reply in stub.execute_run(envelope, timeout=30):
            events.extend(unwrap(reply, batch, peer="test").events)
    return events


def step_failure(events: list[m.RunEvent], step: str) -> str:
    (failure,) = [e for e in events if e.event_type == "STEP_FAILURE" and e.step_key == step]
    assert isinstance(failure.payload, m.StepFailurePayload)
    return failure.payload.error.message


async def test_a_storage_dir_in_the_request_is_ignored(location: Path, tmp_path: Path) -> None:
    root, attacker, marker = tmp_path / "root", tmp_path / "attacker", tmp_path / "pwned"
    plant(attacker, "evil", marker)
    planted = files_under(attacker)
    args = ("-f", str(location), "--port", "0", "--storage-dir", str(root))
    async with start_code_server(*args) as server:
        events = await crafted_execute_run(
            server,
            {
                "run_id": "child",
                "job_name": "__ASSET_JOB",
                "parent_run_id": "evil",
                "reused_steps": ["numbers"],
                "storage_dir": str(attacker),  # what older hosts sent; never honoured now
            },
        )
    assert events[-1].event_type == "RUN_FAILURE"
    # The parent's outputs were looked for under the server's own root only.
    assert "nor in parent run 'evil'" in step_failure(events, "total")
    assert str(root / "child" / "outputs.log") in step_failure(events, "total")
    assert not marker.exists()
    assert files_under(attacker) == planted
    assert set(os.listdir(tmp_path)) <= {"root", "attacker", "location.py"}


@pytest.mark.parametrize(
    ("run_id", "parent_run_id", "refused"),
    [
        ("child", "../attacker/evil", "The parent run id '../attacker/evil' is not a plain id"),
        ("../attacker/child", None, "The run id '../attacker/child' is not a plain id"),
        ("..", None, "The run id '..' is not a plain id"),
        ("child", "/abs/evil", "The parent run id '/abs/evil' is not a plain id"),
    ],
)
async def test_run_ids_that_are_paths_are_refused(
    location: Path, tmp_path: Path, run_id: str, parent_run_id: str | None, refused: str
) -> None:
    root, attacker, marker = tmp_path / "root", tmp_path / "attacker", tmp_path / "pwned"
    plant(attacker, "evil", marker)
    planted = files_under(attacker)
    args = ("-f", str(location), "--port", "0", "--storage-dir", str(root))
    async with start_code_server(*args) as server:
        request = m.ExecuteRunRequest(
            run_id=run_id,
            job_name="__ASSET_JOB",
            parent_run_id=parent_run_id,
            reused_steps=["numbers"] if parent_run_id else [],
        )
        with pytest.raises(CodeLocationError) as caught:
            await collect(server, request)
        # Still serving, and the refused request left nothing behind.
        fine = await collect(server, m.ExecuteRunRequest(run_id="ok", job_name="__ASSET_JOB"))
    assert "(INVALID_ARGUMENT)" in str(caught.value) and refused in str(caught.value)
    assert fine[-1].event_type == "RUN_SUCCESS"
    assert not marker.exists()
    assert files_under(attacker) == planted
    assert not (root / "child").exists()


async def test_outputs_others_could_write_are_never_unpickled(
    location: Path, tmp_path: Path
) -> None:
    root, marker = tmp_path / "root", tmp_path / "pwned"
    group_writable_file = plant(root, "loose-file", marker)
    group_writable_file.chmod(0o620)
    plant(root, "loose-dir", marker)
    (root / "loose-dir").chmod(0o777)
    plant(tmp_path / "elsewhere", "linked", marker)
    (root / "linked").symlink_to(tmp_path / "elsewhere" / "linked")
    args = ("-f", str(location), "--port", "0", "--storage-dir", str(root))
    async with start_code_server(*args) as server:
        failures = {}
        for parent in ("loose-file", "loose-dir", "linked"):
            events = await collect(
                server,
                m.ExecuteRunRequest(
                    run_id=f"child-of-{parent}",
                    job_name="__ASSET_JOB",
                    parent_run_id=parent,
                    reused_steps=["numbers"],
                ),
            )
            assert events[-1].event_type == "RUN_FAILURE"
            failures[parent] = step_failure(events, "total")
    assert not marker.exists()
    assert failures["loose-file"] == (
        f"The file {group_writable_file} has mode 620: other users may write to it, so stored "
        f"outputs are not read through it. Run `chmod go-w {group_writable_file}` if you trust "
        "its contents."
    )
    assert f"The directory {root / 'loose-dir'} has mode 777" in failures["loose-dir"]
    assert failures["linked"] == (
        f"{root / 'linked'} is not a directory (a link or a file); stored outputs are not "
        "kept there."
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a file to another user takes root")
async def test_outputs_another_user_owns_are_never_unpickled(
    location: Path, tmp_path: Path
) -> None:
    root, marker = tmp_path / "root", tmp_path / "pwned"
    log = plant(root, "theirs", marker)
    os.chown(log, 65534, 65534)
    args = ("-f", str(location), "--port", "0", "--storage-dir", str(root))
    async with start_code_server(*args) as server:
        events = await collect(
            server,
            m.ExecuteRunRequest(
                run_id="child",
                job_name="__ASSET_JOB",
                parent_run_id="theirs",
                reused_steps=["numbers"],
            ),
        )
    assert not marker.exists()
    assert step_failure(events, "total").startswith(f"The file {log} belongs to user id 65534")


async def test_everything_under_the_storage_root_is_private(location: Path, tmp_path: Path) -> None:
    root = tmp_path / "store" / "root"
    args = ("-f", str(location), "--port", "0", "--storage-dir", str(root))
    # A permissive umask in the server: the modes must not depend on it.
    previous = os.umask(0)
    try:
        async with start_code_server(*args) as server:
            os.umask(previous)
            parent = await collect(server, m.ExecuteRunRequest(run_id="p", job_name="__ASSET_JOB"))
            child = await collect(
                server,
                m.ExecuteRunRequest(
                    run_id="c", job_name="__ASSET_JOB", parent_run_id="p", reused_steps=["numbers"]
                ),
            )
    finally:
        os.umask(previous)
    assert parent[-1].event_type == "RUN_SUCCESS" and child[-1].event_type == "RUN_SUCCESS"
    paths = [root, *root.rglob("*")]
    assert {str(p.relative_to(root)) for p in paths} == {
        ".",
        "p",
        "p/outputs.log",
        "c",
        "c/outputs.log",
        "assets",
        "assets/numbers.pickle",
        "assets/total.pickle",
    }
    modes = {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in paths}
    assert modes == {
        name: (0o600 if name.endswith((".log", ".pickle")) else 0o700) for name in modes
    }
    assert stat.S_IMODE((tmp_path / "store").stat().st_mode) == 0o700


async def test_without_a_storage_dir_re_execution_is_refused(location: Path) -> None:
    async with start_code_server("-f", str(location), "--port", "0") as server:
        events = await collect(
            server,
            m.ExecuteRunRequest(
                run_id="c", job_name="__ASSET_JOB", parent_run_id="p", reused_steps=["numbers"]
            ),
        )
    assert [e.event_type for e in events] == ["RUN_FAILURE"]
    assert isinstance(events[0].payload, m.RunFailurePayload)
    assert "keeps run outputs in memory only (it was started without --storage-dir)" in (
        events[0].payload.message
    )


@pytest.mark.parametrize("mode", [0o777, 0o770])
def test_a_storage_dir_others_may_write_is_refused_at_start(tmp_path: Path, mode: int) -> None:
    import subprocess

    from tests.helpers_server import code_server_command
    from tests.server.server_helpers import HELLO

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    result = subprocess.run(
        code_server_command(
            "-f", HELLO, "--socket", str(tmp_path / "s"), "--storage-dir", str(shared)
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"runtime api grpc: --storage-dir: The storage directory {shared} has mode {mode:o}: "
        f"other users may write to it. Run `chmod 700 {shared}` or use another directory.\n"
    )
