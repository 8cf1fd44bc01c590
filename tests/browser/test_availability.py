"""The browser the other tests need is there, or the reason it is not is shown.

This module imports nothing from playwright, so it is collected even where
the package is missing and the other browser test modules are not.
"""


def test_headless_chromium_starts(browser):
    assert browser.is_connected()
    assert browser.version
