"""The app in headless Chromium: upload a file, press the button, read the verdict, screenshot; bad uploads show a
readable message in the page. Set NES2NET_UPDATE_SCREENSHOT=1 to write the screenshot to docs/space.png."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from tests.space.space_fixtures import CHROMIUM, CHROMIUM_ARGS, MAX_SECONDS, REPO_ROOT

playwright = pytest.importorskip("playwright.sync_api")

TIMEOUT_MS = 60_000

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM}")


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, space_app):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(space_app.url)
    page.locator("#about").get_by_text("Trained on").wait_for()  # the page has loaded and described the model
    yield page
    page.close()


def upload(page, path: Path) -> None:
    page.locator("#recording input[type=file]").set_input_files(str(path))


def upload_and_check(page, path: Path) -> None:
    upload(page, path)
    page.locator("#recording [data-testid=download-link]").wait_for()  # the upload has reached the server
    page.locator("#check").click()


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_upload_check_read_verdict_and_screenshot(page, screenshot_audio, tmp_path):
    upload_and_check(page, screenshot_audio)
    verdict = page.locator("#verdict")
    verdict.get_by_text("p(bona fide) =").wait_for()
    text = verdict.inner_text()
    assert text.startswith(("Likely genuine speech", "Likely spoofed speech", "Partly spoofed"))
    assert "How sure:" in text and "Threshold:" in text and "Trained on:" in text and "Known to miss:" in text
    page.locator("#timeline img").wait_for()  # the timeline of a recording longer than one window
    target = REPO_ROOT / "docs" / "space.png" if os.environ.get("NES2NET_UPDATE_SCREENSHOT") == "1" else None
    shot = tmp_path / "space.png"
    page.screenshot(path=str(shot), full_page=True)
    width, height = png_size(shot)
    assert width == 1280 and height > 900
    if target is not None:
        target.parent.mkdir(exist_ok=True)
        os.replace(shot, target)


@pytest.mark.parametrize(
    ("name", "message", "sent"),
    [
        ("empty", "empty.wav: empty file (0 bytes)", True),
        ("twenty_minutes", f"twenty_minutes.ogg: longer than the {MAX_SECONDS} s limit", True),
        ("not_audio", "Invalid file type: notes.txt", False),  # refused by the page before any upload
        ("too_big", "exceed the maximum allowed size", False),
    ],
)
def test_bad_upload_shows_a_readable_message(page, space_audio, name, message, sent):
    if sent:
        upload_and_check(page, space_audio[name])
    else:
        upload(page, space_audio[name])
    toast = page.locator(".toast-body").filter(has_text=message)
    toast.wait_for()
    assert "Traceback" not in toast.inner_text()
    assert "p(bona fide)" not in page.locator("#verdict").inner_text()
