"""``oso-gateway preview FILE``: what a dossier will share, per categorie_uitlevering category.

The default output holds no personal data (categories, statuses, counts, sizes). ``--details``
adds the values, for the parents' own review; it says so in its heading.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from lxml import etree

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
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),  # a directory: OSO-E501, as a missing file
    default=None,
    help="A sending gateway's configuration: apply the parents' recorded objections.",
)
def preview_command(
    file: Path, as_json: bool, details: bool, lang: str, config_file: Path | None
) -> None:
    """Show what FILE (an OSO 2019 dossier) will share, category by category."""
    from dataclasses import replace

    from oso_gateway.transfer.send import dossier_version

    try:
        data = file.read_bytes()
        root = parse_xml(data).getroot()
        if root.tag != q("dossier"):
            raise DossierParseError("the root element is not an OSO 2019 dossier")
        objected = _objections(config_file, root) if config_file is not None else []
        # the version a push of this file makes, which an inzage may name (`inzage record
        # --previewed`): with the objections the sending gateway holds (--config)
        version = dossier_version(data, objections=lambda _school, _number: objected)
        shown = preview(root, include_details=details)
        if objected:
            from oso_gateway.dossier.minimise import minimise, with_opt_out

            # an objected category reads "removed", with what it holds (it read "not present",
            # as if the school held no such data: a walkthrough); values only of what leaves
            shown = preview(with_opt_out(root, objected))
            if details:
                leaving = preview(minimise(root, opt_out=objected).root, include_details=True)
                shown = replace(shown, details=leaving.details)
    except GatewayError as exc:
        click.echo(f"{exc.code}: {exc.public_message}", err=True)
        raise SystemExit(1) from None
    if objected and not as_json:
        click.echo(f"parents' objections (withheld, shown as OPT-UIT): {', '.join(objected)}")
    p = replace(shown, version=version)
    if as_json:
        click.echo(json.dumps(p.as_dict(include_details=details), ensure_ascii=False, indent=2))
    else:
        click.echo(render_text(p, language=lang, show_details=details), nl=False)


def _objections(config_file: Path, root: etree._Element) -> list[str]:
    """The categories the parents objected to at the dossier's sending school."""
    from oso_gateway.commands.db import settings_or_exit
    from oso_gateway.dossier.disclosure import pupil_number
    from oso_gateway.store import open_store
    from oso_gateway.store.disclosures import PrivacyRecords
    from oso_gateway.transfer.schools import sending_school

    number = pupil_number(root)
    if number is None:
        return []
    store = open_store(settings_or_exit(config_file))
    try:
        records = PrivacyRecords(store.engine, store.cipher)
        return records.objections_for(sending_school(root).code, number)
    finally:
        store.engine.dispose()


def register(group: click.Group) -> None:
    group.add_command(preview_command)
