"""A common generator (openapi-python-client) builds a working client from `oso-gateway api
spec`, and the generated client talks to a live gateway."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import SCHOOL_B, LiveApi, live_api
from click.testing import CliRunner

from oso_gateway.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    yield from live_api(Path(tmp_path_factory.mktemp("client")))


def test_generated_client_lists_and_fetches_the_inbox(api: LiveApi, tmp_path: Path) -> None:
    generator = Path(sys.executable).parent / "openapi-python-client"
    if not generator.exists():
        found = shutil.which("openapi-python-client")
        assert found, "openapi-python-client is a test dependency (pyproject [test])"
        generator = Path(found)
    spec = tmp_path / "openapi.json"
    result = CliRunner().invoke(main, ["api", "spec"])
    assert result.exit_code == 0
    spec.write_text(result.output)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [str(generator), "generate", "--path", str(spec), "--output-path", str(tmp_path / "gen"),
         "--meta", "none"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        package = importlib.import_module("gen")
        list_inbox = importlib.import_module("gen.api.inbox.list_inbox")
        get_message = importlib.import_module("gen.api.inbox.get_inbox_message")
        token = api.credentials[SCHOOL_B].split()[1]
        client = package.AuthenticatedClient(base_url=api.url.removesuffix("/api/v1/"), token=token)
        page = list_inbox.sync(client=client)
        assert [item.message_id for item in page.items] == [api.inbox_ids[SCHOOL_B]]
        shown = get_message.sync(client=client, message_id=api.inbox_ids[SCHOOL_B])
        assert shown.status in ("imported", "fetched") and shown.events
        anonymous = package.Client(base_url=api.url.removesuffix("/api/v1/"))
        refused = list_inbox.sync_detailed(client=anonymous)
        assert refused.status_code == 401
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == "gen" or n.startswith("gen.")]:
            del sys.modules[name]
