"""A small HTTP client for the supervisor's API (used by the CLI; usable from any app).

Standard library only, so an application can talk to its sidecar without the
supervisor's own dependencies mattering. Errors come back as ``ClientError`` carrying
the API's ``code`` and message, or a clear "cannot reach" when nothing listens.

``Client.for_config(settings)`` finds the supervisor the way the CLI does: the config's
HTTP address, and its token (``auth_token``, else the one the supervisor generated into
``state_dir/http.token``, readable by its owner only). Tests and scripts use it too, so
there is one way to find the token.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final, NamedTuple

if TYPE_CHECKING:
    from supervisor.config import Settings

TERMINAL: Final = frozenset({"completed", "failed", "cancelled"})
DEFAULT_URL: Final = "http://127.0.0.1:8765"
_OMITTED: Any = object()  # ``submit`` without data: the server's default ({}) applies
# Named here: inside ``Client``, ``list`` is its method.
JsonList = list[dict[str, Any]]


def configured_url(settings: Settings) -> str:
    """The URL of the supervisor that ``settings`` configures."""
    if settings.http_host is None:
        from supervisor.errors import ConfigError  # noqa: PLC0415 - only on this error

        raise ConfigError(f"{settings.source}: http: the HTTP API is disabled")
    host = settings.http_host
    if host in ("0.0.0.0", "::"):  # noqa: S104 - a wildcard bind: talk to it locally
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http_port}"


def configured_token(settings: Settings) -> str:
    """The token for the supervisor that ``settings`` configures; "" if there is none
    (``http_auth = "none"``, or it has not started yet, or the file is not ours)."""
    if settings.http_auth == "none":
        return ""
    if settings.auth_token:
        return settings.auth_token
    try:
        with open(settings.token_file, encoding="ascii", errors="replace") as file:
            return file.read().strip()
    except OSError:
        # Missing or unreadable (another user's supervisor): the server answers 401.
        return ""


class LogRead(NamedTuple):
    data: bytes  # the log's bytes from the requested offset
    offset: int  # where the next read starts
    status: str  # the job's status
    complete: bool  # the job is finished and its worker gone: nothing more will come


class StreamEvent(NamedTuple):
    """One event read from ``GET /events`` (docs/http-api.md, "Events (SSE)")."""

    id: str  # "" for an event without one
    name: str  # e.g. "job.completed", or "reset": re-read the state over the API
    data: Any  # the JSON payload (with "time"), or the raw text if it is not JSON


class SseParser:
    """The text/event-stream format, line by line (sans-IO): ``feed`` a line, get an
    event when a blank line ends one. Comments (``: keep-alive``) and unknown fields
    are skipped, as the format says."""

    def __init__(self) -> None:
        self._id = ""
        self._name = ""
        self._data: list[str] = []

    def feed(self, line: str) -> StreamEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._name = value
        elif field == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> StreamEvent | None:
        if not self._data:
            self._name = ""
            return None
        text = "\n".join(self._data)
        try:
            data = json.loads(text)
        except ValueError:
            data = text
        event = StreamEvent(self._id, self._name or "message", data)
        self._name, self._data = "", []
        return event


class ClientError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})" if status else message)
        self.status = status
        self.code = code
        self.message = message


class Client:
    def __init__(self, url: str = DEFAULT_URL, token: str = "", timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def for_config(
        cls, settings: Settings, *, url: str | None = None, token: str | None = None
    ) -> Client:
        """A client of the supervisor ``settings`` configures; ``url`` and ``token``, when
        given, win (``token`` also falls back to ``JOBVISOR_AUTH_TOKEN``, which the
        config loader folds into ``auth_token``)."""
        return cls(url or configured_url(settings), token or configured_token(settings))

    def _request(
        self, method: str, path: str, body: Any = None
    ) -> tuple[int, dict[str, str], bytes]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - http(s) URL from config
        if data is not None:
            request.add_header("content-type", "application/json")
        with self._open(request, self.timeout) as response:
            return response.status, dict(response.headers.items()), response.read()

    def _open(self, request: urllib.request.Request, timeout: float) -> http.client.HTTPResponse:
        """Send ``request`` with the token; the response, or ``ClientError`` (an HTTP error
        with the API's code, or ``unreachable``)."""
        if self.token:
            request.add_header("authorization", f"Bearer {self.token}")
        try:
            response: http.client.HTTPResponse = urllib.request.urlopen(  # noqa: S310
                request, timeout=timeout
            )
        except urllib.error.HTTPError as exc:
            raise _client_error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClientError(
                0, "unreachable", f"cannot reach the supervisor at {self.url}: {reason}"
            ) from None
        return response

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        _status, _headers, payload = self._request(method, path, body)
        return json.loads(payload)

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/healthz")
        return result

    def metrics(self) -> str:
        """``GET /metrics``: the Prometheus text."""
        _status, _headers, payload = self._request("GET", "/metrics")
        return payload.decode()

    def submit(
        self,
        name: str,
        data: Any = _OMITTED,
        *,
        max_attempts: int | None = None,
        run_at: float | str | None = None,
    ) -> str:
        """Submit a job; without ``data`` the server's default (``{}``) applies."""
        body: dict[str, Any] = {"name": name}
        if data is not _OMITTED:
            body["data"] = data
        if max_attempts is not None:
            body["max_attempts"] = max_attempts
        if run_at is not None:
            body["run_at"] = run_at
        return str(self._json("POST", "/jobs", body)["id"])

    def get(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/jobs/{urllib.parse.quote(job_id, safe='')}")
        return result

    def list(
        self,
        *,
        name: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Jobs, newest first (``GET /jobs``); ``offset`` skips that many first."""
        query = urllib.parse.urlencode(
            {
                k: v
                for k, v in {
                    "name": name,
                    "status": status,
                    "limit": limit,
                    "offset": offset,
                }.items()
                if v
            }
        )
        jobs: list[dict[str, Any]] = self._json("GET", f"/jobs?{query}")["jobs"]
        return jobs

    def cancel(self, job_id: str, reason: str | None = None) -> dict[str, Any]:
        body = {"reason": reason} if reason else None
        result: dict[str, Any] = self._json(
            "POST", f"/jobs/{urllib.parse.quote(job_id, safe='')}/cancel", body
        )
        return result

    def events(
        self,
        channels: Iterable[str] = (),
        last_event_id: str | None = None,
        *,
        reconnect: bool = True,
        retry: float = 0.5,
        give_up: float | None = 60.0,
        read_timeout: float = 60.0,
    ) -> Iterator[StreamEvent]:
        """Stream ``GET /events`` (``channels``: ``job:ID``, ``workflow:ID``, ``kind:NAME``;
        none for every event), yielding each event as it comes, forever.

        After a dropped connection or a supervisor restart it reconnects (every ``retry``
        seconds, for at most ``give_up`` seconds without success; ``None``: forever) and
        resumes with ``Last-Event-ID``: nothing is missed or repeated while the server
        still holds what followed. Otherwise the server sends a ``reset`` event, yielded
        like the others: the caller re-reads what it shows over the API. ``read_timeout``
        (longer than the server's keep-alive interval) detects a silently dead
        connection. ``reconnect=False`` ends the iteration when the connection does.
        Refusals (401, 400) raise ``ClientError`` at once.
        """
        query = urllib.parse.urlencode([("channel", c) for c in channels])
        path = "/events" + (f"?{query}" if query else "")
        position = last_event_id or None
        failing_since: float | None = None
        while True:
            try:
                response = self._open_stream(path, position, read_timeout)
            except ClientError as exc:
                if exc.code not in ("unreachable", "too_many_streams") or not reconnect:
                    raise
                now = time.monotonic()
                failing_since = failing_since or now
                if give_up is not None and now - failing_since > give_up:
                    raise
                time.sleep(retry)
                continue
            failing_since = None
            with response:
                if position is None:
                    position = response.headers.get("x-last-event-id") or None
                parser = SseParser()
                try:
                    for raw in iter(response.readline, b""):
                        event = parser.feed(raw.decode("utf-8", "replace"))
                        if event is None:
                            continue
                        if event.id:
                            position = event.id
                        yield event
                except (OSError, http.client.HTTPException):
                    pass  # a dead or timed-out connection: reconnect below
            if not reconnect:
                return
            time.sleep(retry)

    def event_position(self) -> str:
        """The id of the newest event (``HEAD /events``): streaming from it later with
        ``events(last_event_id=...)`` misses nothing that happens after this call — say,
        to follow a job submitted in between."""
        _status, headers, _body = self._request("HEAD", "/events")
        lower = {k.lower(): v for k, v in headers.items()}
        return lower.get("x-last-event-id", "")

    def _open_stream(
        self, path: str, position: str | None, read_timeout: float
    ) -> http.client.HTTPResponse:
        request = urllib.request.Request(self.url + path)  # noqa: S310 - http(s) URL from config
        request.add_header("accept", "text/event-stream")
        if position:
            request.add_header("last-event-id", position)
        return self._open(request, read_timeout)

    def retry(self, job_id: str, max_attempts: int | None = None) -> dict[str, Any]:
        """Queue a failed or cancelled job again (same id); the job, now pending."""
        body = None if max_attempts is None else {"max_attempts": max_attempts}
        result: dict[str, Any] = self._json(
            "POST", f"/jobs/{urllib.parse.quote(job_id, safe='')}/retry", body
        )
        return result

    def delete(self, job_id: str) -> dict[str, Any]:
        """Delete a finished job and its log: ``{"deleted": id, "status": ...}``."""
        result: dict[str, Any] = self._json(
            "DELETE", f"/jobs/{urllib.parse.quote(job_id, safe='')}"
        )
        return result

    def logs(self, job_id: str, offset: int = 0) -> LogRead:
        """The job's log from byte ``offset`` (see ``LogRead``)."""
        _status, headers, data = self._request(
            "GET", f"/jobs/{urllib.parse.quote(job_id, safe='')}/logs?offset={offset}"
        )
        lower = {k.lower(): v for k, v in headers.items()}
        return LogRead(
            data,
            int(lower.get("x-log-offset", offset + len(data))),
            lower.get("x-job-status", ""),
            lower.get("x-log-complete") == "true",
        )

    def wait(
        self, job_id: str, *, timeout: float | None = None, interval: float = 0.2
    ) -> dict[str, Any]:
        """Poll until the job is finished; returns its final JSON."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job["status"] in TERMINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout} s")
            time.sleep(interval)

    def follow(self, job_id: str, *, interval: float = 0.25) -> Iterator[LogRead]:
        """Poll the job's log, one ``LogRead`` per poll, until it is complete (the job
        finished and its worker gone) and read to the end."""
        offset = 0
        while True:
            read = self.logs(job_id, offset)
            offset = read.offset
            yield read
            if read.data:
                continue
            if read.complete:
                return
            time.sleep(interval)

    def follow_logs(self, job_id: str, *, interval: float = 0.25) -> Iterator[bytes]:
        """Yield log chunks as they are written, until the job is finished and read out."""
        for read in self.follow(job_id, interval=interval):
            if read.data:
                yield read.data

    # --- workflows (docs/http-api.md, "Workflows") ------------------------------------------

    def workflows(self) -> JsonList:
        """``GET /workflows``: every registered workflow with its step graph."""
        found: JsonList = self._json("GET", "/workflows")["workflows"]
        return found

    def start_workflow(self, name: str, input: Any = _OMITTED) -> str:
        """Start an instance of workflow ``name``; returns its id. Without ``input`` the
        server's default (``{}``) applies."""
        body: dict[str, Any] = {} if input is _OMITTED else {"input": input}
        path = f"/workflows/{urllib.parse.quote(name, safe='')}/instances"
        return str(self._json("POST", path, body)["id"])

    def instance(self, instance_id: str) -> dict[str, Any]:
        """One workflow instance, its parallel steps' branches included."""
        result: dict[str, Any] = self._json("GET", _instance_path(instance_id))
        return result

    def instances(
        self,
        workflow: str | None = None,
        status: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
    ) -> JsonList:
        """Top-level instances, newest first."""
        query = urllib.parse.urlencode(
            {
                k: v
                for k, v in {
                    "workflow": workflow,
                    "status": status,
                    "limit": limit,
                    "offset": offset,
                }.items()
                if v
            }
        )
        found: JsonList = self._json("GET", f"/workflows/instances?{query}")["instances"]
        return found

    def cancel_instance(self, instance_id: str, reason: str | None = None) -> dict[str, Any]:
        body = {"reason": reason} if reason else None
        result: dict[str, Any] = self._json("POST", _instance_path(instance_id) + "/cancel", body)
        return result

    def resume_instance(self, instance_id: str) -> dict[str, Any]:
        """Continue a failed or cancelled instance from the step that did not complete."""
        result: dict[str, Any] = self._json("POST", _instance_path(instance_id) + "/resume")
        return result

    def wait_instance(
        self, instance_id: str, timeout: float | None = None, *, interval: float = 0.2
    ) -> dict[str, Any]:
        """Poll until the instance is finished; returns its final JSON (``TimeoutError``
        after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            instance = self.instance(instance_id)
            if instance["status"] in TERMINAL:
                return instance
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"workflow {instance['workflow']!r} instance {instance_id} still "
                    f"{instance['status']} after {timeout} s"
                )
            time.sleep(interval)


def _client_error(exc: urllib.error.HTTPError) -> ClientError:
    """The API's ``{"error": {"code", "message"}}`` answer as a ``ClientError``."""
    payload = exc.read()
    try:
        error = json.loads(payload)["error"]
        return ClientError(exc.code, error["code"], error["message"])
    except (ValueError, KeyError, TypeError):
        return ClientError(exc.code, "http_error", payload.decode(errors="replace"))


def _instance_path(instance_id: str) -> str:
    return f"/workflows/instances/{urllib.parse.quote(instance_id, safe='')}"
