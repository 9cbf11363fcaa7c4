"""The README's configuration table lists exactly the settings there are."""

import re
from pathlib import Path

from betting.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_lists_every_setting() -> None:
    rows = set(re.findall(r"^\| `(BETTING_[A-Z0-9_]+)` \|", README.read_text(), re.MULTILINE))
    assert rows == {f"BETTING_{name.upper()}" for name in Settings.model_fields}
