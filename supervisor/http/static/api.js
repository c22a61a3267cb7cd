// The dashboard's door to the supervisor: the token, JSON requests, and the event stream.
//
// The token arrives in the page's URL (the `listening` line's ?token=...). It is kept in
// memory only and removed from the address bar at once (history.replaceState), so it
// does not linger in the history, a bookmark or a screenshot. Every request sends it:
// fetch as an Authorization header; EventSource, which cannot set headers, as ?token=.

let token = null;

export function takeTokenFromUrl() {
  const url = new URL(window.location.href);
  const given = url.searchParams.get("token");
  if (given) {
    token = given;
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return token !== null;
}

export function setToken(value) {
  token = value.trim() || null;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await response.text();
  if (!response.ok) {
    let code = "http_" + response.status;
    let message = text || response.statusText;
    try {
      const parsed = JSON.parse(text);
      code = parsed.error.code;
      message = parsed.error.message;
    } catch (_) {
      /* not our JSON error: keep the raw text */
    }
    throw new ApiError(response.status, code, message);
  }
  return { text, headers: response.headers };
}

export async function getJson(path) {
  return JSON.parse((await request("GET", path)).text);
}

export async function postJson(path, body) {
  return JSON.parse((await request("POST", path, body)).text);
}

export async function getText(path) {
  return request("GET", path);
}

// The SSE stream, resumed after any break. The browser's own EventSource retries a
// dropped connection with Last-Event-ID; when it gives up (an error answer, e.g. while
// the supervisor restarts), we open a new one after a back-off, carrying the last id we
// saw as ?last_event_id= so the server replays what we missed (or says `reset`).
export class EventStream {
  constructor(names, { onEvent, onState }) {
    this.names = names;
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastId = null;
    this.source = null;
    this.delay = 500;
    this.timer = null;
  }

  open() {
    const params = new URLSearchParams();
    if (token) params.set("token", token);
    if (this.lastId) params.set("last_event_id", this.lastId);
    const source = new EventSource("/events?" + params.toString());
    this.source = source;
    this.onState("connecting");
    source.onopen = () => {
      this.delay = 500;
      this.onState("live");
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        this.onState("offline");
        this.retry();
      } else {
        this.onState("reconnecting");
      }
    };
    for (const name of this.names) {
      source.addEventListener(name, (message) => {
        if (message.lastEventId) this.lastId = message.lastEventId;
        let data = {};
        try {
          data = JSON.parse(message.data || "{}");
        } catch (_) {
          return; // not the contract's JSON: ignore the event, keep the stream
        }
        this.onEvent(name, data);
      });
    }
  }

  retry() {
    if (this.source) this.source.close();
    this.source = null;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), this.delay);
    this.delay = Math.min(this.delay * 2, 5000);
  }
}
