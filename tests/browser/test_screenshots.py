"""The README's screenshot script still runs: one PNG per page and screen."""

from __future__ import annotations

from tests.browser.screenshots import SCREENS, take_screenshots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_screenshot_script_writes_every_page(browser, tmp_path):
    written = take_screenshots(browser, tmp_path, tmp_path / "out")

    assert len(written) == 3 * len(SCREENS)
    for path in written:
        assert path.read_bytes().startswith(PNG_SIGNATURE)
