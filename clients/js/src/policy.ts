// The reconnect policy as pure functions: what a close code asks for, and how long to wait.
// docs/protocol.md "Close codes" is the source of the table; docs/client-js.md restates it.

/** "drain": reconnect after a short random delay (the relay is going away, not failing);
 *  "backoff": reconnect with exponential backoff; "token": a new token first, then backoff;
 *  "stop": do not reconnect (the client or the deployment must change first). */
export type CloseAction = "drain" | "backoff" | "token" | "stop";

export function closeAction(code: number): CloseAction {
  if (code === 1000 || code === 1001) return "drain";
  if (code === 4003) return "token";
  if ((code >= 4500 && code <= 4999) || code === 1003 || code === 1007 || code === 1008 || code === 1009) {
    return "stop";
  }
  // 1002, 1005, 1006 (also a refused handshake, e.g. 401), 1011, 1013, 4000-4499 (4429: the
  // client ignored its rate limit; the backoff slows it down) and the unknown.
  return "backoff";
}

/** "Full jitter": a random delay between 0 and the exponential cap, so that the clients of a
 *  failed instance do not all come back in the same second. */
export function backoffDelay(attempt: number, min: number, max: number, factor: number, random: () => number): number {
  return random() * Math.min(max, min * Math.pow(factor, attempt));
}
