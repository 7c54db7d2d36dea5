"""The benchmark's generated definitions build the same graph in every flavour.

No timing here: benchmarks are programs (`python -m benchmarks`), these tests
only check that what they measure is what they claim to measure.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import TYPE_CHECKING, Any

import pytest

from benchmarks import generate

if TYPE_CHECKING:
    from pathlib import Path


def _import(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[path.stem]
    return module


def _plain_values(module: Any, n: int, shape: generate.Shape) -> list[int]:
    """Evaluate the plain functions in order: the reference result of the graph."""
    values: list[int] = []
    for i, ups in enumerate(generate.upstream(n, shape)):
        values.append(getattr(module, f"a{i}")(*(values[j] for j in ups)))
    return values


@pytest.mark.parametrize("shape", generate.SHAPES)
def test_upstream_only_points_backwards(shape: generate.Shape) -> None:
    deps = generate.upstream(35, shape)
    assert len(deps) == 35
    assert all(j < i for i, ups in enumerate(deps) for j in ups)
    roots = [i for i, ups in enumerate(deps) if not ups]
    expected_roots = {"chain": 1, "fanout": 1, "independent": 35, "layered": generate.LAYER_WIDTH}
    assert len(roots) == expected_roots[shape]


def test_layered_nodes_join_two_neighbours_above() -> None:
    deps = generate.upstream(3 * generate.LAYER_WIDTH, "layered")
    width = generate.LAYER_WIDTH
    assert deps[width] == (0, 1)
    assert deps[2 * width - 1] == (0, width - 1)  # wraps around the layer
    assert all(len(ups) == 2 for ups in deps[width:])


def test_upstream_rejects_an_empty_graph() -> None:
    with pytest.raises(ValueError, match="at least one node"):
        generate.upstream(0, "chain")


@pytest.mark.parametrize("shape", generate.SHAPES)
@pytest.mark.parametrize("is_async", [False, True])
def test_runtime_assets_have_the_generated_dependencies(
    tmp_path: Path, shape: generate.Shape, is_async: bool
) -> None:
    n = 25
    path = generate.write_assets(
        tmp_path / f"gen_assets_{shape}_{is_async}.py",
        n=n,
        shape=shape,
        flavor="runtime",
        is_async=is_async,
    )
    defs = _import(path).defs
    job = defs.get_job("__ASSET_JOB")
    assert len(job.steps) == n
    for i, ups in enumerate(generate.upstream(n, shape)):
        node = job.steps[f"a{i}"]
        assert set(node.upstream_keys) == {f"a{j}" for j in ups}
        assert node.op.is_async is is_async


@pytest.mark.parametrize("shape", generate.SHAPES)
@pytest.mark.parametrize("is_async", [False, True])
def test_runtime_ops_job_computes_what_the_plain_functions_compute(
    tmp_path: Path, shape: generate.Shape, is_async: bool
) -> None:
    n = 23
    plain = _import(
        generate.write_assets(tmp_path / f"gen_plain_{shape}.py", n=n, shape=shape, flavor="plain")
    )
    expected = _plain_values(plain, n, shape)
    ops = _import(
        generate.write_ops_job(
            tmp_path / f"gen_ops_{shape}_{is_async}.py",
            n=n,
            shape=shape,
            flavor="runtime",
            is_async=is_async,
        )
    )
    result = getattr(ops, generate.OPS_JOB).execute_in_process()
    assert result.success
    assert [result.output_for(f"o{i}") for i in range(n)] == expected


def test_dagster_flavour_is_valid_python_naming_the_same_nodes() -> None:
    source = generate.ops_job_source(12, "layered", "dagster")
    compile(source, "gen_dagster.py", "exec")
    assert "from dagster import Definitions, job, op" in source
    assets = generate.assets_source(12, "fanout", "dagster", is_async=True)
    compile(assets, "gen_dagster_assets.py", "exec")
    assert "async def a11(a0: int) -> int:" in assets


def test_plain_flavour_has_no_ops_job() -> None:
    with pytest.raises(ValueError, match="no plain flavour"):
        generate.ops_job_source(3, "chain", "plain")
