"""Streaming ASR over WebSockets: protocol, server (batched decode loop) and client.

The protocol is specified in :mod:`asrk2.serve.protocol`; ``local/serve.py``
and ``local/stream_client.py`` are the command-line entry points.
"""

from asrk2.serve.client import StreamResult, stream_audio, stream_file
from asrk2.serve.recognizer import (
    StreamingRecognizer,
    load_recognizer,
    make_recognizer,
)
from asrk2.serve.server import (
    AsrServer,
    ServerConfig,
    ServerThread,
    run_server,
    serve_model,
)

__all__ = [
    "AsrServer",
    "ServerConfig",
    "ServerThread",
    "StreamResult",
    "StreamingRecognizer",
    "load_recognizer",
    "make_recognizer",
    "run_server",
    "serve_model",
    "stream_audio",
    "stream_file",
]
