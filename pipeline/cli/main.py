"""The ``lead-scoring`` command line: the I/O edge that wires config, files, stages and MLflow."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from pipeline import workflow
from pipeline.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Predictive lead scoring: learn FIT + PAIN points from won/lost history.")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="dataset config (YAML)")]
MasterOpt = Annotated[str | None, typer.Option(
    "--master", help="Spark master for events.engine spark (default: events.master, else "
                     "$LEAD_SCORING_SPARK_MASTER, else local[2])")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m",
                                              help="NAME@ALIAS or NAME/VERSION (default: the "
                                                   "config's model at @champion)")]
_DEBUG = {"on": False}


def rich_console():
    """A rich console on stdout for the tables commands print."""
    from rich.console import Console

    return Console(stderr=False, highlight=False, soft_wrap=True)


def _quiet_third_party() -> None:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # MLflow sets its loggers' level when it is imported (INFO unless this says otherwise):
    # the level set below alone is undone when mlflow is imported after it
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    import logging

    for name in ("mlflow", "alembic", "urllib3", "py4j", "matplotlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"mlflow\..*")
    warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict` method.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"sklearn\..*")

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        print(f"warning: {message}", file=sys.stderr, flush=True)

    warnings.showwarning = show


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
          quiet: Annotated[bool, typer.Option(
              "--quiet", "-q", help="no progress bars and no step lines (warnings and errors "
                                    "still show)")] = False) -> None:
    from pipeline import progress

    _DEBUG["on"] = debug
    _quiet_third_party()
    progress.configure(quiet=quiet)  # bars only on a terminal


# --------------------------------------------------------------------------- helpers


def load_config(config: Path | None, data: Path | None = None, master: str | None = None):
    from pipeline.config import load_config

    if config is None:
        raise UserError("this command needs --config FILE (or --model NAME@ALIAS where accepted)")
    return with_master(load_config(config, data=data), master)


def with_master(cfg, master: str | None):
    """``cfg`` with ``events.master`` set to ``--master`` (when given)."""
    if master is None:
        return cfg
    return cfg.model_copy(update={"events": cfg.events.model_copy(update={"master": master})})


# shared with the training workflow, where they are defined
connect = workflow.connect
read_leads = workflow.read_leads
events_source = workflow.events_source
say_warnings = workflow.say_warnings


def _connect_uri(tracking_uri: str | None) -> None:
    from pipeline.config import default_settings, resolve_tracking_uri
    from pipeline.registry import store as registry

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or \
        default_settings()["registry"]["tracking_uri"]
    registry.connect(resolve_tracking_uri(uri, Path.cwd()))


def registry_context(config: Path | None, name: str | None, tracking_uri: str | None) -> str:
    """Connect to the config's store (or ``--tracking-uri`` / the default) and return the
    registered model name: ``--name``, else the config's, else ``lead-scoring``."""
    cfg = load_config(config) if config else None
    if cfg:
        connect(cfg)
    else:
        _connect_uri(tracking_uri)
    return name or (cfg.model_name if cfg else "lead-scoring")


def resolve_model(model: str | None, config: Path | None, tracking_uri: str | None = None):
    """(ModelRef, Config | None) from --model or --config (its model at @champion)."""
    from pipeline.registry import store as registry

    cfg = None
    if config is not None:
        cfg = load_config(config)
        connect(cfg)
    else:
        _connect_uri(tracking_uri)
    if model is None:
        if cfg is None:
            raise UserError("give --model NAME@ALIAS (or NAME/VERSION) or --config FILE")
        model = f"{cfg.model_name}@champion"
    return registry.resolve(model), cfg


def model_config(ref, cfg):
    """The config a version was trained with (logged as config.json), unless one was given."""
    if cfg is not None:
        return cfg
    from pipeline.config import logged_config
    from pipeline.registry import store as registry

    return logged_config(registry.load_run_json(ref, "config.json"))


def lookup_adder(cfg, missing_values: list[str]):
    """A function adding the data.lookups columns to a batch of leads, or None."""
    if not cfg.data.lookups:
        return None
    from pipeline.inputs.intake import lookup_adder, read_lookups

    return lookup_adder(read_lookups(cfg.data.lookups), missing_values,
                        source=str(cfg.data.leads))


def _lock_path(cfg, what: str) -> Path:
    return Path(cfg.root) / "models" / f".{cfg.model_name}.{what}.lock"


def maybe_lock(cfg, lock: bool, what: str):
    from pipeline.inputs.reader import run_lock

    return run_lock(_lock_path(cfg, what), what=f"'{what}' for {cfg.model_name}") if lock \
        else contextlib.nullcontext()



def _register_optional_commands() -> None:
    """Commands that live in their own modules (report, drift; audit, edit, register-rules)."""
    import importlib

    for module in ("pipeline.cli.report", "pipeline.cli.people"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.register(app)


def run() -> None:
    """The console script: :func:`main`, then exit without tearing the interpreter down.

    A 1M-lead training leaves millions of Python objects behind; freeing them one by one
    at exit took 1.6 s and served nothing (the OS takes the memory back at once). The
    atexit handlers still run and the output is flushed first, so nothing is lost."""
    code: int | str | None = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    if not isinstance(code, int):  # sys.exit("message") prints it, like Python does
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    _exit_now(code)


def _exit_now(code: int) -> None:
    """What the interpreter does at exit (wait for threads, atexit handlers, flush), short of
    freeing every object, then end the process with ``code``."""
    import atexit
    import threading

    shutdown = getattr(threading, "_shutdown", None)  # what the interpreter itself calls
    if shutdown is None:
        sys.exit(code)  # an unknown Python: the ordinary exit
    shutdown()  # tells thread pools to stop, then waits for every non-daemon thread
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


def main() -> None:
    """Entry point: user errors print one clear message (no traceback) and exit non-zero."""
    _register_optional_commands()
    try:
        app()
    except UserError as exc:
        if _DEBUG["on"]:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


# the command modules register their commands on ``app`` when imported (in --help order)
from pipeline.cli import train  # noqa: E402, F401, I001
from pipeline.cli import score  # noqa: E402, F401
from pipeline.cli import analysis  # noqa: E402, F401
from pipeline.cli import models  # noqa: E402, F401
from pipeline.cli import exports  # noqa: E402, F401
