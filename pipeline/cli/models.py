"""``lead-scoring promote``, ``history`` and ``diff``: the registered versions."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.main import (
    ConfigOpt,
    app,
    registry_context,
)
from pipeline.workflow import say

# --------------------------------------------------------------------------- registry


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="version number (or NAME/VERSION)")],
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option(help="registered model name")] = None,
    reason: Annotated[str, typer.Option(help="why (kept in the audit trail)")] = "manual promote",
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI")] = None,
) -> None:
    """Point @champion at a version explicitly (recorded in the audit trail)."""
    from pipeline.registry import aliases
    from pipeline.registry import store as registry

    model_name = registry_context(config, name, tracking_uri)
    import mlflow

    registry.check_store_writable(mlflow.get_tracking_uri())
    ref = registry.resolve(version if "/" in version else f"{model_name}/{version}")
    aliases.promote(ref, reason=f"explicit: {reason}")
    say(f"{ref.name} @champion -> version {ref.version} ({reason})")


@app.command()
def history(
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option(help="registered model name")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI")] = None,
) -> None:
    """The audit trail: versions, aliases, champion periods and gate decisions (80 columns)."""
    from pipeline.registry import aliases
    from pipeline.registry.trail import history_lines

    model_name = registry_context(config, name, tracking_uri)
    frame = aliases.history(model_name)
    moves = aliases.audit_log(model_name)
    for line in history_lines(model_name, frame, moves):
        print(line)



@app.command()
def diff(
    old: Annotated[str, typer.Argument(help="NAME/VERSION or a version number")],
    new: Annotated[str, typer.Argument(help="NAME/VERSION or a version number")],
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option(help="registered model name")] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="also list unchanged rules")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI")] = None,
) -> None:
    """Which factors and levels changed points between two versions, and by how much."""
    from pipeline.exports.diff import diff_rules
    from pipeline.registry import store as registry

    model_name = registry_context(config, name, tracking_uri)

    def ref_of(text: str):
        return registry.resolve(text if ("/" in text or "@" in text) else f"{model_name}/{text}")

    a, b = ref_of(old), ref_of(new)
    table = diff_rules(registry.load_rules(a), registry.load_rules(b), include_unchanged=all_rows)
    if table.empty:
        say(f"{a.name} v{a.version} and v{b.version}: identical points")
        return
    print(table.to_string(index=False))
