"""The README stays true to the code: every setting is documented, and the commands exist."""

from pathlib import Path

from pipeline.cli import parser
from cluster.settings import ENV_PREFIX, Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_documents_every_setting() -> None:
    missing = [name for name in Settings.model_fields if f"`{ENV_PREFIX}{name.upper()}`" not in README]
    assert not missing, f"settings missing from README: {missing}"


def test_readme_commands_are_real_subcommands() -> None:
    commands = parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    documented = ("import", "master", "topics", "snapshot", "cluster")
    assert all(f"ethercattle {command}" in README for command in documented)
    assert set(documented) | {"up"} <= set(commands)
