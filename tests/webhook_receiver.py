"""A real webhook receiver on 127.0.0.1 for tests: answers 500, times out, or accepts,
and deduplicates on ``webhook-id`` as the Standard Webhooks spec tells receivers to."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    """``mode`` is "ok", "fail" (500) or "hang" (answers after ``hang_seconds``)."""

    def __init__(self, hang_seconds: float = 2.0, delay_seconds: float = 0.0):
        self.mode = "ok"
        self.hang_seconds = hang_seconds
        self.delay_seconds = delay_seconds
        self.requests: list[dict] = []  # every request, whatever was answered
        self.accepted: dict[str, dict] = {}  # deduplicated by webhook-id
        self.accepted_count = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                mode = receiver.mode
                with receiver._lock:
                    receiver.requests.append({"headers": headers, "body": body, "mode": mode})
                if mode == "hang":
                    time.sleep(receiver.hang_seconds)
                    status = 200  # too late: the sender gave up, and will send it again
                elif mode == "fail":
                    status = 500
                else:
                    time.sleep(receiver.delay_seconds)
                    status = 200
                    with receiver._lock:
                        receiver.accepted_count += 1
                        receiver.accepted.setdefault(
                            headers["webhook-id"], headers | {"body": body}
                        )
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
