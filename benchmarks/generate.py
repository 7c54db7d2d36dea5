"""Generated definitions: the same graph of N assets or ops in three flavours.

- `runtime`: this project's authoring API (`@asset`, `@op`, `@job`, `Definitions`);
- `plain`: the same functions with no framework at all, the floor to compare with;
- `dagster`: Dagster's API, for the peer benchmarks.

Node i is named `a{i}` (assets) or `o{i}` (ops); its upstream nodes are given by
`upstream(n, shape)`, so every flavour builds exactly the same graph.

Run as a program to write one file, e.g. for profiling by hand:
    python -m benchmarks.generate --n 1000 --shape layered --flavor runtime /tmp/defs.py
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal, get_args

Shape = Literal["chain", "fanout", "layered", "independent"]
Flavor = Literal["runtime", "plain", "dagster"]

SHAPES: tuple[Shape, ...] = get_args(Shape)
FLAVORS: tuple[Flavor, ...] = get_args(Flavor)

# Width of one layer of the `layered` shape: each node depends on two nodes of
# the layer above, so every pair of neighbours forms a diamond.
LAYER_WIDTH = 10

ASSET_JOB = "__ASSET_JOB"
OPS_JOB = "bench_job"


def upstream(n: int, shape: Shape) -> list[tuple[int, ...]]:
    """For each of the n nodes, the indices of the nodes it depends on (all lower)."""
    if n < 1:
        raise ValueError(f"A generated graph needs at least one node; got n={n}.")
    deps: list[tuple[int, ...]] = []
    for i in range(n):
        if shape == "chain":
            deps.append((i - 1,) if i else ())
        elif shape == "fanout":
            deps.append((0,) if i else ())
        elif shape == "independent":
            deps.append(())
        elif shape == "layered":
            layer, column = divmod(i, LAYER_WIDTH)
            if layer == 0:
                deps.append(())
            else:
                above = (layer - 1) * LAYER_WIDTH
                pair = {above + column, above + (column + 1) % LAYER_WIDTH}
                deps.append(tuple(sorted(pair)))
        else:
            raise ValueError(f"Unknown shape {shape!r}; expected one of {', '.join(SHAPES)}.")
    return deps


def _function(name: str, params: list[str], *, is_async: bool, decorator: str | None) -> str:
    args = ", ".join(f"{p}: int" for p in params)
    body = " + ".join(params) + " + 1" if params else "1"
    head = f"@{decorator}\n" if decorator else ""
    kw = "async def" if is_async else "def"
    return f"{head}{kw} {name}({args}) -> int:\n    return {body}\n"


def assets_source(n: int, shape: Shape, flavor: Flavor, *, is_async: bool = False) -> str:
    """Python source defining n assets of the given shape; `defs` holds them (not for `plain`)."""
    deps = upstream(n, shape)
    lines = [f'"""{n} generated assets, shape {shape}, flavour {flavor}."""', ""]
    if flavor == "runtime":
        lines.append("from runtime import Definitions, asset\n")
    elif flavor == "dagster":
        lines.append("from dagster import Definitions, asset\n")
    decorator = None if flavor == "plain" else "asset"
    for i, ups in enumerate(deps):
        params = [f"a{j}" for j in ups]
        lines.append(_function(f"a{i}", params, is_async=is_async, decorator=decorator))
    if flavor != "plain":
        names = ", ".join(f"a{i}" for i in range(n))
        lines.append(f"defs = Definitions(assets=[{names}])\n")
    return "\n".join(lines)


def ops_job_source(n: int, shape: Shape, flavor: Flavor, *, is_async: bool = False) -> str:
    """Python source defining n trivial ops wired by `@job def bench_job()` in the given shape."""
    if flavor == "plain":
        raise ValueError("An ops job has no plain flavour; use assets_source for the floor.")
    deps = upstream(n, shape)
    package = "runtime" if flavor == "runtime" else "dagster"
    lines = [
        f'"""{n} generated ops in one job, shape {shape}, flavour {flavor}."""',
        "",
        f"from {package} import Definitions, job, op\n",
    ]
    # One op per node: distinct names keep step keys identical across frameworks.
    for i, ups in enumerate(deps):
        params = [f"x{k}" for k in range(len(ups))]
        lines.append(_function(f"o{i}", params, is_async=is_async, decorator="op"))
    lines.append("@job")
    lines.append(f"def {OPS_JOB}() -> None:")
    for i, ups in enumerate(deps):
        args = ", ".join(f"v{j}" for j in ups)
        lines.append(f"    v{i} = o{i}({args})")
    lines.append("")
    lines.append(f"defs = Definitions(jobs=[{OPS_JOB}])\n")
    return "\n".join(lines)


def write_assets(
    path: Path, *, n: int, shape: Shape, flavor: Flavor, is_async: bool = False
) -> Path:
    """Write `assets_source(...)` to path (its folder is created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(assets_source(n, shape, flavor, is_async=is_async))
    return path


def write_ops_job(
    path: Path, *, n: int, shape: Shape, flavor: Flavor, is_async: bool = False
) -> Path:
    """Write `ops_job_source(...)` to path (its folder is created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ops_job_source(n, shape, flavor, is_async=is_async))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write generated benchmark definitions.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--shape", choices=SHAPES, default="chain")
    parser.add_argument("--flavor", choices=FLAVORS, default="runtime")
    parser.add_argument("--async", dest="is_async", action="store_true")
    parser.add_argument("--ops", action="store_true", help="an ops job instead of assets")
    args = parser.parse_args(argv)
    writer = write_ops_job if args.ops else write_assets
    out = writer(args.out, n=args.n, shape=args.shape, flavor=args.flavor, is_async=args.is_async)
    print(out)


if __name__ == "__main__":
    main()
