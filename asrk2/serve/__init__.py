"""Streaming ASR over WebSockets and gRPC: protocol, servers (one batched decode
loop) and clients.

The protocol is specified in :mod:`asrk2.serve.protocol` and
``asr.proto``; ``local/serve.py`` and ``local/stream_client.py`` are the
command-line entry points.
"""

import os

# gRPC (1.80) installs fork handlers by default; a process that runs gRPC
# pollers and then forks (subprocess.run, DataLoader workers) may see the
# child abort in them before it execs ("epoll_wait error: Bad file
# descriptor"). asrk2 never uses gRPC across a fork, so it turns them off
# unless the user set it. Read when grpc is first imported: keep it above.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

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
