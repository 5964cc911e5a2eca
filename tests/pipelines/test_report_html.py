"""The HTML report renders in headless Chromium (Debian's `chromium`) to a screenshot that is not blank."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.report_support import Lake

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed through scripts/install-chromium when missing, else skip saying why."""
    found = find_chromium()
    if found is None:
        proc = subprocess.run([str(ROOT / "scripts" / "install-chromium")], capture_output=True, text=True,
                              timeout=900)
        found = find_chromium()
        if found is None:
            pytest.skip("chromium is not installed and could not be installed "
                        f"(scripts/install-chromium: {proc.stderr.strip() or 'no output'})")
    return found


def screenshot(chromium: str, page: Path, png: Path, profile: Path, size: str = "1200,1600") -> None:
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                           f"--window-size={size}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert png.exists(), proc.stderr[-2000:]


def test_html_report_renders_in_headless_chromium(chromium, tmp_path):
    from PIL import Image

    (tmp_path / "lake").mkdir()
    lake = Lake(tmp_path / "lake", delete_raw=False)
    lake.forget("anna", hours_ago=30)
    lake.forget("bo", hours_ago=2)
    _, report = lake.run()
    page = lake.settings.report_dir / report["run"]["run_id"] / "report.html"
    png = tmp_path / "shot.png"
    screenshot(chromium, page, png, tmp_path / "chromium-profile")

    image = Image.open(png).convert("RGB")
    assert image.size == (1200, 1600)
    colors = image.getcolors(maxcolors=1 << 20) or []
    white = sum(n for n, rgb in colors if min(rgb) >= 245)
    assert len(colors) > 50, "screenshot has almost no colours: blank page?"
    assert white < 0.97 * image.width * image.height, "screenshot is (nearly) all white"
    # the red "deadline missed" banner and the charts' colours are drawn
    red = sum(n for n, (r, g, b) in colors if r > 150 and g < 80 and b < 80)
    blue = sum(n for n, (r, g, b) in colors if b > 150 and r < 80 and 90 < g < 150)
    assert red > 500 and blue > 500, (red, blue)
