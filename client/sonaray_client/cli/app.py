"""The app every `sonaray` command hangs on: global options, exit codes, error reporting
and the option types and helpers the commands share."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from sonaray_client.async_client import AsyncSonaray
from sonaray_client.batch import STDIN, STDOUT, PlanError
from sonaray_client.client import Sonaray
from sonaray_client.core import format_for
from sonaray_client.errors import SonarayError, describe_error, is_refusal
from sonaray_client.types import AudioFormat


class ExitCode(IntEnum):
    """What `sonaray`'s exit status means, for scripts."""

    OK = 0
    INPUTS_FAILED = 1  # some inputs failed (the server refused them, or a file was unreadable)
    USAGE = 2  # bad arguments or options; nothing was sent
    SERVER_UNAVAILABLE = 3  # the server could not be reached, or refused the caller


EXIT_CODES_HELP = (
    "Exit status: 0 ok; 1 some inputs failed; 2 usage error; "
    "3 server unreachable or refusing (connection, 401/403, 429, 502-504)."
)

app = typer.Typer(
    help="Sonaray: talk to an audio inference cluster.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    # Markdown joins a docstring's wrapped lines, and keeps the examples' code blocks.
    rich_markup_mode="markdown",
)
models_app = typer.Typer(
    help="Without a subcommand: list the models the cluster serves.",
    invoke_without_command=True,
)
app.add_typer(models_app, name="models")
console = Console()
err_console = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    """Connection settings from the global options; tests inject ``transport``."""

    base_url: str | None = None
    api_key: str | None = None
    timeout: float | None = None
    transport: httpx.MockTransport | None = None

    @contextmanager
    def client(self) -> Iterator[Sonaray]:
        with httpx.Client(transport=self.transport) as http:
            yield Sonaray(**self._settings(), http_client=http)

    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[AsyncSonaray]:
        async with httpx.AsyncClient(transport=self.transport) as http:
            yield AsyncSonaray(**self._settings(), http_client=http)

    def _settings(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "api_key": self.api_key, "timeout": self.timeout}


def exit_code_for(exc: BaseException) -> ExitCode:
    """3 when the server is the trouble; 2 for a bad option or argument (pydantic's
    ``ValidationError``, bad JSON and ``PlanError`` are all ``ValueError``s); else 1."""
    if is_refusal(exc):
        return ExitCode.SERVER_UNAVAILABLE
    if isinstance(exc, ValueError):
        return ExitCode.USAGE
    return ExitCode.INPUTS_FAILED


def reports_errors(command: F) -> F:
    """Turn an SDK, option or file error into one red line and its exit status."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (SonarayError, ValueError, OSError) as exc:
            err_console.print(f"[red]error:[/red] {escape(describe_error(exc))}")
            raise typer.Exit(exit_code_for(exc)) from exc

    return run  # type: ignore[return-value]


def example(*lines: str) -> str:
    """A command's help epilog: its example invocations, one per line."""
    return (
        "**Examples**\n\n" + "\n".join(f"    $ {line}" for line in lines) + "\n\n" + EXIT_CODES_HELP
    )


@app.callback()
def global_options(
    ctx: typer.Context,
    base_url: Annotated[
        str | None, typer.Option(envvar="SONARAY_BASE_URL", help="Server URL.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="SONARAY_API_KEY", help="Bearer API key.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds per request (default: 120 plus twice the audio's length)."),
    ] = None,
) -> None:
    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    state.base_url, state.api_key, state.timeout = base_url, api_key, timeout
    ctx.obj = state


ModelOption = Annotated[str | None, typer.Option(help="Model id (server default when omitted).")]
AudioPath = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Audio file.")]
OutputOption = Annotated[
    str, typer.Option("--output", "-o", help="File to write, or - for stdout.")
]
FormatOption = Annotated[
    AudioFormat | None,
    typer.Option(
        "--format", "-f", help="Audio format (default: from --output's suffix, else wav)."
    ),
]


def read_stdin_bytes() -> bytes:
    return typer.get_binary_stream("stdin").read()


def text_or_stdin(text: str | None) -> str:
    """The text argument, or standard input when it is omitted or ``-``."""
    if text is None or text == STDIN:
        text = typer.get_text_stream("stdin").read()
    if not text.strip():
        raise PlanError("no text given (pass it as an argument or on standard input)")
    return text


def write_audio(audio: bytes, output: str) -> None:
    if output == STDOUT:
        typer.get_binary_stream("stdout").write(audio)
    else:
        Path(output).write_bytes(audio)
        console.print(output, markup=False, highlight=False)


def audio_format(fmt: AudioFormat | None, output: str) -> AudioFormat:
    return fmt or ("wav" if output == STDOUT else format_for(Path(output)))


def given(**options: Any) -> dict[str, Any]:
    """The options the user set; the server's defaults apply to the rest."""
    return {name: value for name, value in options.items() if value is not None}
