"""The microphone page in real headless Chromium, over the DevTools protocol.

Chromium's fake microphone plays a file of two "utterances" (tones, read by
the scripted model of ``tone_model``) separated by a pause; the test clicks
Start, lets the file play, clicks Stop and reads the page: one final per
utterance, as the page shows them to a user. A screenshot of the page after
the run is saved next to the test's files (its path is printed).
"""

import base64
import itertools
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
import soundfile as sf
from tone_model import PIECES, SAMPLE_RATE, V, ToneModel, silence, tone, words
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from asrk2.decode.streaming import StreamingOptions
from asrk2.lang.graphs import build_H
from asrk2.serve.recognizer import make_recognizer
from asrk2.serve.server import ServerConfig, ServerThread

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (tools/install_system_deps.sh)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page."""

    def __init__(self, ws: Connection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict:
        request_id = next(self.ids)
        message = {"id": request_id, "method": method, "params": params}
        self.ws.send(json.dumps(message))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == request_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def eval(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True
        )
        return result["result"].get("value")

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        end = time.monotonic() + timeout
        while not check():
            if time.monotonic() > end:
                status = self.eval("document.getElementById('status').textContent")
                raise AssertionError(f"timed out waiting for {what}; status: {status}")
            time.sleep(0.1)


@pytest.fixture
def server() -> Iterator[ServerThread]:
    options = StreamingOptions(chunk_size=4, left_context_frames=8)
    recognizer = make_recognizer(
        ToneModel(), build_H(V - 1), words, options, 4, PIECES  # type: ignore[arg-type]
    )
    with ServerThread(recognizer, ServerConfig(port=0, streaming=options)) as running:
        yield running


def test_the_page_shows_one_final_per_utterance(server, tmp_path: Path) -> None:
    audio = np.concatenate(
        [silence(0.5), tone("A", 0.5), silence(2.5), tone("C", 0.5), tone("B", 0.4),
         silence(2.5)]
    )  # fmt: skip
    wav = tmp_path / "two-utterances.wav"
    sf.write(str(wav), audio, SAMPLE_RATE, subtype="PCM_16")
    port = _free_port()
    assert CHROMIUM is not None
    browser = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
         f"--remote-debugging-port={port}", f"--user-data-dir={tmp_path / 'profile'}",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
         f"--use-file-for-fake-audio-capture={wav}%noloop",
         "--autoplay-policy=no-user-gesture-required", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):  # until DevTools listens
            try:
                urllib.request.urlopen(f"{base}/json/version", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        page_url = server.url.replace("ws://", "http://")
        request = urllib.request.Request(f"{base}/json/new?{page_url}", method="PUT")
        target = json.load(urllib.request.urlopen(request, timeout=10))
        with connect(target["webSocketDebuggerUrl"], max_size=2**26) as ws:
            page = DevTools(ws)
            page.call("Page.enable")
            page.wait_for(
                "the page", lambda: page.eval("!!document.getElementById('start')"), 10
            )
            page.eval("document.getElementById('start').click()")
            page.wait_for(
                "'ready'",
                lambda: page.eval(
                    "document.getElementById('status').textContent"
                ).startswith("Listening"),
                10,
            )

            def finals() -> list:
                return page.eval(
                    "[...document.querySelectorAll('#finals li')]"
                    ".map((li) => li.textContent)"
                )

            page.wait_for("two finals", lambda: len(finals()) >= 2, 20)
            page.eval("document.getElementById('stop').click()")
            page.wait_for(
                "the close",
                lambda: "closed (1000" in page.eval(
                    "document.getElementById('status').textContent"
                ),
                10,
            )
            shown = finals()
            shot = page.call("Page.captureScreenshot", format="png")
            png = tmp_path / "microphone-page.png"
            png.write_bytes(base64.b64decode(shot["data"]))
            print(f"screenshot: {png}")
    finally:
        browser.terminate()
        browser.wait(10)
    texts = [text.split(" (")[0] for text in shown]
    assert texts == ["A", "C B"], shown
