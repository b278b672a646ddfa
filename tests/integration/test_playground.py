"""The browser playground in a real headless Chromium (Debian's ``chromium``, driven by
playwright): a speech file is the microphone, and its words must appear on the page; the
text box's speech must arrive and play."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
from speech import SENTENCES, heard_as, synthesize, words

pytestmark = pytest.mark.serve
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SPOKEN = (SENTENCES[1], SENTENCES[3])


@pytest.fixture(scope="module")
def microphone(tmp_path_factory):
    """Speech with pauses as Chromium's fake microphone wants it: 16-bit PCM WAV, 48 kHz.

    Chromium plays the file in a loop, so the turns come round again. The pauses leave
    time for a spoken reply before the next turn would interrupt it.
    """
    rate = 48000
    parts = [np.zeros(rate, np.float32)]
    for sentence in SPOKEN:
        parts += [synthesize(sentence, rate), np.zeros(4 * rate, np.float32)]
    path = tmp_path_factory.mktemp("mic") / "speech.wav"
    sf.write(path, np.concatenate(parts), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(microphone):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium is not installed: apt-get install chromium (scripts/setup --test)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, serve_url):
    context = browser.new_context(permissions=["microphone"])
    page = context.new_page()
    page.goto(f"{serve_url}/playground")
    yield page
    context.close()


def turn_texts(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "lines => lines.map(l => l.textContent)")


def wait_for_words(page, selector: str, sentence: str) -> None:
    """Until a line matching ``selector`` holds the sentence's last two words."""
    tail = " ".join(words(sentence)[-2:])
    page.wait_for_function(
        """([selector, tail]) => [...document.querySelectorAll(selector)].some(
            line => line.textContent.toLowerCase().replace(/[^a-z0-9' ]/g, "").includes(tail))""",
        arg=[selector, tail],
        timeout=90_000,
    )


def test_microphone_words_appear_as_a_live_transcript(page):
    page.click("#mic")
    for sentence in SPOKEN:
        wait_for_words(page, "#transcript .turn.done", sentence)
    texts = turn_texts(page, "#transcript .turn.done")
    for sentence in SPOKEN:
        assert any(heard_as(text, sentence) for text in texts), texts
    page.click("#mic")  # stop
    assert page.text_content("#mic") == "Start microphone"


def test_conversation_mode_speaks_the_reply(page):
    page.select_option("#mode", "conversation")
    page.click("#mic")
    wait_for_words(page, "#transcript .reply", SPOKEN[0])
    page.wait_for_function("() => Number(document.getElementById('reply-bytes').textContent) > 0")
    replies = turn_texts(page, "#transcript .reply")
    assert any(heard_as(text, SPOKEN[0]) for text in replies), replies


def test_text_box_speaks_with_streamed_playback(page):
    page.fill("#speak-text", " ".join(SENTENCES[:3]))
    page.click("#speak")
    page.wait_for_function(
        "() => document.getElementById('speak-status').textContent.startsWith('done')",
        timeout=60_000,
    )
    received = int(page.text_content("#speak-bytes"))
    seconds = received / 2 / 24000  # pcm16 at 24 kHz
    assert seconds > 4.0, page.text_content("#speak-status")
    assert page.text_content("#log") == ""
