"""``python -m fuzz TARGET [libFuzzer flags]`` or ``python -m fuzz --smoke [SECONDS]``."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run_target(name: str, flags: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["oso_gateway"]):
        from fuzz import targets
    from oso_gateway.errors import GatewayError

    target = targets.TARGETS[name]

    def one_input(data: bytes) -> None:
        try:
            target(data)
        except GatewayError:
            pass  # a typed refusal: what hostile input should get

    if any(Path(flag).is_file() for flag in flags):  # reproduce: run just those inputs
        atheris.Setup([sys.argv[0], *flags], one_input)
        atheris.Fuzz()
    work = Path(tempfile.mkdtemp(prefix=f"oso-fuzz-{name}-"))
    seeds = work / "seeds"
    seeds.mkdir()
    for i, seed in enumerate(targets.seeds(name)):
        (seeds / f"seed-{i}").write_bytes(seed)
    corpus = HERE / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], *flags, f"-artifact_prefix={work}/", str(corpus), str(seeds)]
    print(f"fuzz {name}: corpus {corpus}, crashes in {work}", flush=True)
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def smoke(seconds: int) -> int:
    """Every target for ``seconds`` each, in its own process; non-zero if any found a bug."""
    failed = []
    for name in ("parser", "open", "sealed", "dossier", "receipt"):
        flags = [f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048"]
        done = subprocess.run(
            [sys.executable, "-m", "fuzz", name, *flags],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        tail = [line for line in done.stderr.splitlines() if line.startswith("Done")]
        print(f"fuzz {name}: exit {done.returncode} {' '.join(tail)}", flush=True)
        if done.returncode != 0:
            print(done.stderr[-4000:], file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 2
    if argv[0] == "--smoke":
        return smoke(int(argv[1]) if len(argv) > 1 else 6)
    _run_target(argv[0], argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
