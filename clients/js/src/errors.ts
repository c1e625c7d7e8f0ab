/** Something the client could not understand or do. Delivered as the client's "error" event, never
 *  thrown into the app. `kind`: "protocol" (bad input from the relay), "token" (getToken or a
 *  refresh failed), "connect" (the url function or the WebSocket constructor failed), "listener"
 *  (an event listener threw; the exception is `cause`). */
export class ClientError extends Error {
  kind: string;
  cause?: unknown;
  constructor(kind: string, message: string, cause?: unknown) {
    super(message);
    this.name = "ClientError";
    this.kind = kind;
    this.cause = cause;
  }
}

/** A request (publish, send, history, ping, subscribe, refresh) that failed. `code` is the relay's
 *  error code (docs/protocol.md "Errors"), or 0 when no answer came: `reason` is then "timeout",
 *  "not connected", "disconnected" (the connection was lost with the request in flight: whether
 *  the relay acted on it is unknown) or "closed". */
export class RequestError extends Error {
  code: number;
  reason: string;
  constructor(code: number, reason: string) {
    super(code ? code + " " + reason : reason);
    this.name = "RequestError";
    this.code = code;
    this.reason = reason;
  }
}
