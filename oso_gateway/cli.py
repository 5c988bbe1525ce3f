"""Command-line interface: thin click commands that call the services.

Exit codes: 0 success, 1 the input was rejected (invalid dossier, rejected message), 2 usage error.
"""

from __future__ import annotations

from pathlib import Path

import click

from oso_gateway import __version__
from oso_gateway.commands.db import GLOBAL_CONFIG_KEY


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oso-gateway")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),  # a directory: OSO-E501, as a missing file
    default=None,
    help="Configuration file (TOML) for every command below (a command's own --config wins).",
)
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    """oso-gateway: hand a pupil's OSO dossier to the next school, signed and encrypted."""
    ctx.meta[GLOBAL_CONFIG_KEY] = config_file


# Command groups live in oso_gateway/commands/<name>.py and register themselves here, so
# several people can work on the CLI without editing one file.
from oso_gateway.commands import register_all  # noqa: E402

register_all(main)


if __name__ == "__main__":  # pragma: no cover
    main()
