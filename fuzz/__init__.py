"""Coverage-guided fuzzing (atheris/libFuzzer) of what an untrusted peer's bytes reach: the
hardened parser, ``open_message``, dossier validation and the receipt check.

``python -m fuzz TARGET [libFuzzer flags]`` fuzzes one target; ``python -m fuzz --smoke`` runs
every target briefly (CI); ``make fuzz`` runs longer. Any exception other than our typed
``GatewayError`` is a bug, and so is an input that takes longer than ``-timeout`` seconds.
``docs/security.md`` §4 says how to run and what to do with a crash.
"""
