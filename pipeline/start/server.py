"""The HTTP server of `hearing start`: the review page's handler (its guards on every request: Host,
Origin, the fetch site, the session's token; its answers, byte ranges and one-line failures) with this
page's routes; and ``serve``, which listens until Ctrl-C as `hearing review` does. A recording is named
by its id on the page and nothing else; every file served (a still, a preview) lies inside OUT."""

from __future__ import annotations

import dataclasses
import logging
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline import run_record
from pipeline.errors import UsageError
from pipeline.report import RunOptions
from pipeline.review.changes import read_json
from pipeline.review.guards import HOST, page_address
from pipeline.review.server import Server, _Handler
from pipeline.start.fields import BadPage
from pipeline.start.session import Refused, Start

log = logging.getLogger(__name__)

PAGE_FILES = {"start.js": "text/javascript", "start.css": "text/css"}


class _StartHandler(_Handler):
    server: StartServer
    page_package = "pipeline.start"
    page_files = PAGE_FILES

    def _session_token(self) -> str:
        return self.server.start.token

    def _served_root(self) -> Path:
        return self.server.start.out_dir

    def _get(self) -> None:
        if not self._trusted():
            return
        start = self.server.start
        path = urlsplit(self.path).path
        if self._page(path):
            return
        if path == "/api/state":
            self._json(start.state())
        elif path == "/api/job":
            self._json(
                {"job": start.job.to_json(), "review_url": start.review_url(), "delivery": start.delivery()}
            )
        elif path.startswith(("/still/", "/media/")):
            recording = start.by_id.get(path.split("/", 2)[2])
            if recording is None or recording.statement is None:
                self._refuse(HTTPStatus.NOT_FOUND, "no such recording")
            elif path.startswith("/still/"):
                if not recording.has_video:
                    self._refuse(HTTPStatus.NOT_FOUND, "a sound recording has no picture")
                else:
                    self._file(start.media.still(recording.statement), "image/jpeg")
            else:
                self._file(start.media.preview(recording.statement), "video/mp4")
        else:
            self._refuse(HTTPStatus.NOT_FOUND, "no such page")

    def _post(self) -> None:
        if not self._trusted():
            return
        start = self.server.start
        path = urlsplit(self.path).path
        body = self._read_body()
        if body is None:
            return
        if path == "/api/save":
            try:
                answer = start.save(read_json(body))
            except Refused as refused:
                self._json({"error": refused.message}, HTTPStatus(refused.status))
                return
            except (BadPage, ValueError) as error:
                self._json({"error": " ".join(str(error).split())[:500]}, HTTPStatus.BAD_REQUEST)
                return
            self._json(answer, HTTPStatus.OK if answer["saved"] else HTTPStatus.UNPROCESSABLE_ENTITY)
        elif path == "/api/run":
            self._json(start.start_run())
        elif path == "/api/zip":
            self._json(start.start_zip())
        elif path == "/api/rescan":
            start.scan()
            self._json(start.state())
        elif path == "/api/open-folder":
            self._json({"opened": start.open_folder()})
        else:
            self._refuse(HTTPStatus.NOT_FOUND, "no such action")


class StartServer(Server):
    """The review page's server (its connection handling, its one-line failures), serving this page."""

    def __init__(self, start: Start, port: int) -> None:
        self.start = start
        ThreadingHTTPServer.__init__(self, (HOST, port), _StartHandler)


def serve(options: RunOptions, *, port: int = 0, open_browser: bool = True, on_ready: Any = None) -> int:
    """Serve the page of `hearing start` until Ctrl-C; ``on_ready(url)`` is told its address."""
    from pipeline.out_folder import default_out_dir
    from pipeline.preflight import check_places
    from pipeline.review.session import serve_page

    out_dir = (options.out_dir or default_out_dir(options.meeting_dir)).resolve()
    meeting_dir = check_places(options.meeting_dir, out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {out_dir}: cannot be made ({error.strerror or error})") from None
    start = Start(
        dataclasses.replace(options, meeting_dir=meeting_dir, out_dir=out_dir), open_folders=open_browser
    )
    try:
        server = StartServer(start, port)
    except OSError as error:
        raise UsageError(f"--port {port}: cannot listen there ({error.strerror or error})") from None
    url = page_address(server.server_address[1], start.token)
    earlier = run_record.read_in(out_dir) or {}
    if (earlier.get("options") or {}).get("meeting_dir") == str(meeting_dir):
        start.open_review()  # the page opened again after a run: its review is there to go on with
    try:
        serve_page(server, url, on_ready=on_ready, open_browser=open_browser, name="start")
    finally:
        start.stop()
    return 0
