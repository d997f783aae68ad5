// The live event stream (GET /api/v1/events), read with fetch() instead of EventSource:
// EventSource cannot send an Authorization header, and a token must never go in a URL.
// Frames (`id:`, `event:`, `data:`, blank line) are parsed here. After a drop, a daemon
// restart or a stalled connection it reconnects with `Last-Event-ID`, so nothing is
// missed or repeated; a GAP event says the log no longer reaches back that far.

import {authHeaders} from "./api.js";

const PATH = "/api/v1/events";
// The daemon sends a heartbeat comment every 15 s by default; a connection that stays
// silent much longer than that is dead even if no error says so.
const SILENCE_LIMIT = 65000;
const FIRST_RETRY = 500;
const MAX_RETRY = 5000;

export class EventStream {
  // onEvent({id, type, data}); onState("connecting" | "live" | "offline", {resumed});
  // onUnauthorized(): the token was refused (expired, revoked, logged out elsewhere).
  constructor({onEvent, onState, onUnauthorized}) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.onUnauthorized = onUnauthorized;
    this.lastId = null;
    this.stopped = true;
    this.controller = null;
    this.wake = null;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.run();
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
    if (this.wake) this.wake();
  }

  async run() {
    let delay = FIRST_RETRY;
    let connectedBefore = false;
    this.onState("connecting", {});
    while (!this.stopped) {
      this.controller = new AbortController();
      try {
        const headers = authHeaders({Accept: "text/event-stream"});
        if (this.lastId !== null) headers["Last-Event-ID"] = String(this.lastId);
        const response = await fetch(PATH, {headers, signal: this.controller.signal,
                                            cache: "no-store", credentials: "same-origin"});
        if (response.status === 401) {
          this.stopped = true;
          this.onUnauthorized();
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        this.onState("live", {resumed: connectedBefore});
        connectedBefore = true;
        delay = FIRST_RETRY;
        await this.read(response.body);
      } catch (error) {
        // A refused connection, a reset, an abort after silence: all mean "try again".
      }
      if (this.stopped) return;
      this.onState("offline", {});
      await new Promise((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, delay * (0.8 + Math.random() * 0.4));
      });
      this.wake = null;
      delay = Math.min(delay * 2, MAX_RETRY);
    }
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let timer = null;
    const watchdog = () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.controller.abort(), SILENCE_LIMIT);
    };
    let buffer = "";
    let frame = {id: null, type: "", data: []};
    watchdog();
    try {
      for (;;) {
        const {value, done} = await reader.read();
        if (done) return;
        watchdog();
        buffer += value;
        // Keep a trailing "\r" back: it may be the first half of "\r\n".
        const lines = buffer.split(/\r\n|\n|\r(?!$)/);
        buffer = lines.pop();
        for (const line of lines) frame = this.line(line, frame);
      }
    } finally {
      clearTimeout(timer);
      reader.cancel().catch(() => {});
    }
  }

  // One line of the stream; returns the frame being built.
  line(line, frame) {
    if (line === "") {
      if (frame.id !== null) this.lastId = frame.id;
      if (frame.data.length) {
        let data = null;
        try {
          data = JSON.parse(frame.data.join("\n"));
        } catch {
          data = null;
        }
        this.onEvent({id: this.lastId, type: frame.type || "message", data});
      }
      return {id: null, type: "", data: []};
    }
    if (line.startsWith(":")) return frame; // a comment: heartbeats
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id" && /^\d{1,19}$/.test(value)) frame.id = value; // kept exact, as text
    else if (field === "event") frame.type = value;
    else if (field === "data") frame.data.push(value);
    return frame;
  }
}
