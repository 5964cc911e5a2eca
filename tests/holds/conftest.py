from tests.cli.conftest import run_cli  # noqa: F401  (the installed command in a fresh folder)
