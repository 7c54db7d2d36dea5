from __future__ import annotations

import subprocess
import sys

import runtime


def test_every_exported_name_resolves() -> None:
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None, name


def test_unknown_attribute_raises() -> None:
    try:
        runtime.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_is_light() -> None:
    # `import runtime` must not pull in the heavy machinery.
    code = (
        "import sys, runtime; "
        "heavy = [m for m in ('grpclib', 'betterproto', 'asyncio', 'sqlite3', 'ruamel') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_all_lists_every_export() -> None:
    assert set(runtime.__all__) == {"__version__", *runtime._EXPORTS}
