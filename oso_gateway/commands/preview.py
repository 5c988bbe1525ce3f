"""``oso-gateway preview FILE``: what a dossier will share, per categorie_uitlevering category.

The default output holds no personal data (categories, statuses, counts, sizes). ``--details``
adds the values, for the parents' own review; it says so in its heading.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from oso_gateway.dossier.categories import q
from oso_gateway.dossier.preview import preview, render_text
from oso_gateway.errors import DossierParseError, GatewayError
from oso_gateway.security.xmlparse import parse_xml


@click.command("preview")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the preview as JSON.")
@click.option(
    "--details",
    is_flag=True,
    help="Include the actual values (personal data) for the parents' review.",
)
@click.option(
    "--lang", type=click.Choice(["nl", "en"]), default="nl", show_default=True, help="Language."
)
def preview_command(file: Path, as_json: bool, details: bool, lang: str) -> None:
    """Show what FILE (an OSO 2019 dossier) will share, category by category."""
    try:
        root = parse_xml(file.read_bytes()).getroot()
        if root.tag != q("dossier"):
            raise DossierParseError("the root element is not an OSO 2019 dossier")
    except GatewayError as exc:
        click.echo(f"{exc.code}: {exc.public_message}", err=True)
        raise SystemExit(1) from None
    p = preview(root, include_details=details)
    if as_json:
        click.echo(json.dumps(p.as_dict(include_details=details), ensure_ascii=False, indent=2))
    else:
        click.echo(render_text(p, language=lang, show_details=details), nl=False)


def register(group: click.Group) -> None:
    group.add_command(preview_command)
