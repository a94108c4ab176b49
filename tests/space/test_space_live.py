"""Live microphone scoring: a stream cut into windows as it arrives gives the file's timeline, and in headless
Chromium, with a fake microphone playing a recording, the timeline grows while it "speaks"; the delay from speech to
displayed score is measured and printed (run with -s to see it; it is a figure of the machine's load, not asserted)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pytest
import soundfile
from nes2net_space.live import LiveSession
from tests.space.space_fixtures import CHROMIUM, CHROMIUM_ARGS
from tests.tiny_models import tiny_model

from modeling_nes2net.detection import Nes2NetDetector
from modeling_nes2net.examples import speech_like
from modeling_nes2net.protocols import HOP_SAMPLES, WINDOW_SAMPLES

WINDOWS = 2  # live verdicts waited for: at 4.04 and 6.06 s of the stream
CHUNK_SECONDS = 0.1  # what Gradio's recorder captures per streamed chunk


@pytest.fixture(scope="module")
def detector():
    return Nes2NetDetector(tiny_model(), device="cpu")


def test_a_stream_in_chunks_gives_the_file_timeline_and_verdict(detector, space_audio):
    waveform, rate = soundfile.read(space_audio["long"], dtype="int16")
    waveform = np.resize(waveform, WINDOW_SAMPLES + 3 * HOP_SAMPLES)  # four windows, the last one ends the file
    session = LiveSession(rate)
    chunk = rate // 2
    scored = [session.add(rate, waveform[start : start + chunk], detector) for start in range(0, len(waveform), chunk)]
    assert sum(scored) == 4 and scored[0] == 0  # windows are scored as soon as their last sample arrives
    live = session.result(detector)
    whole = detector.detect((waveform, rate))
    assert [(s.start, s.end) for s in live.segments] == [(s.start, s.end) for s in whole.segments]
    assert [s.log_odds for s in live.segments] == pytest.approx([s.log_odds for s in whole.segments], abs=1e-5)
    assert live.label == whole.label and live.aggregation == whole.aggregation == "mean"
    assert live.bonafide_probability == pytest.approx(whole.bonafide_probability, abs=1e-6)
    assert live.duration == pytest.approx(whole.duration)
    # the live verdict looks for no stretch, so it names no margin; the file's names the one it searched under
    assert (live.stretches, live.stretch_margin, whole.stretch_margin) == ([], None, detector.stretch_margin)


def test_a_resampled_stream_matches_the_resampled_file(detector, tmp_path):
    rate = 48_000
    seconds = (WINDOW_SAMPLES + HOP_SAMPLES + 1_600) / 16_000  # + the resampler's delay
    waveform = np.round(speech_like(seconds, rate, seed=3) * 32767).astype(np.int16)
    session = LiveSession(16_000)
    for start in range(0, len(waveform), 24_000):
        session.add(rate, np.stack([waveform[start : start + 24_000]] * 2, axis=1), detector)  # stereo chunks
    whole = detector.detect((waveform, rate))
    assert len(session.segments) == 2  # the file adds a third window aligned to its end
    assert [(s.start, s.end) for s in session.segments] == [(s.start, s.end) for s in whole.segments[:2]]
    assert [s.log_odds for s in session.segments] == pytest.approx([s.log_odds for s in whole.segments[:2]], abs=1e-4)


playwright = pytest.importorskip("playwright.sync_api")


@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM}")
def test_the_live_timeline_grows_while_the_microphone_speaks(space_app, space_audio):
    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={space_audio['long']}"]  # played in a loop as the microphone
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context = browser.new_context()
            context.grant_permissions(["microphone"])
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(space_app.url)
            page.locator("#about").get_by_text("Trained on").wait_for()
            page.get_by_role("tab", name="Live microphone").click()
            page.evaluate("""() => {
                window.liveUpdates = [];
                const verdict = document.querySelector('#live-verdict');
                new MutationObserver(() => window.liveUpdates.push([performance.now(), verdict.innerText]))
                    .observe(verdict, {childList: true, subtree: true, characterData: true});
                window.recordClicked = performance.now();
            }""")
            page.locator("#live-microphone button.record-button").click()
            page.wait_for_function(f"""() => new Set(window.liveUpdates
                .filter(([, text]) => text.includes('scored up to'))
                .map(([, text]) => text.split('scored up to ')[1].split(' s')[0])).size >= {WINDOWS}""", timeout=150_000)
            page.locator("#live-timeline img").wait_for()
            updates = page.evaluate("() => window.liveUpdates")
            # Gradio's recorder uploads each chunk (0.1 s) the moment it is captured, then streams it to the app.
            uploads = page.evaluate("""() => performance.getEntriesByType('resource')
                .filter(entry => entry.name.includes('/gradio_api/upload') && entry.startTime > window.recordClicked)
                .map(entry => entry.startTime / 1000)""")
        finally:
            browser.close()
    shown_at = {}
    for shown, text in updates:
        if "scored up to" in text:
            shown_at.setdefault(float(text.split("scored up to ")[1].split(" s")[0]), shown / 1000)
    ends = sorted(shown_at)
    assert ends[0] == pytest.approx(WINDOW_SAMPLES / 16_000, abs=0.01)  # the first verdict: after one window
    assert np.allclose(np.diff(ends), HOP_SAMPLES / 16_000, atol=0.01)  # then one per hop, none skipped
    # The window ending at `end` s of the stream was completed by chunk `end / CHUNK_SECONDS` (counting from 1),
    # captured just before its upload started: from then to the score on screen is the delay a speaker sees.
    completing = [uploads[math.ceil(round(end / CHUNK_SECONDS, 6)) - 1] for end in ends]
    latencies = [shown_at[end] - captured for end, captured in zip(ends, completing)]
    print(f"\nlive microphone, speech to displayed score: median {statistics.median(latencies):.2f} s, "
          f"max {max(latencies):.2f} s over {len(latencies)} windows")
    assert min(latencies) > 0  # a score shown before its speech was captured would mean the timing is wrong
