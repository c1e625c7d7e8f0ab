import { Emitter } from "./emitter.js";
import type { RequestError } from "./errors.js";

/** A place in a channel with history: `offset` counts from 1 within one `epoch`. */
export interface Position {
  offset: number;
  epoch: string;
}

export type SubscriptionState = "subscribing" | "subscribed" | "unsubscribed";

export interface SubscriptionEvents {
  /** Each message once, in order. `offset`/`epoch` only on channels with history. */
  message: (m: { data: unknown; offset?: number; epoch?: string }) => void;
  /** Every (re)subscribe the relay confirmed. `recovered` only when the subscribe gave `since`. */
  subscribed: (e: { offset?: number; epoch?: string; recovered?: boolean }) => void;
  /** A resubscribe with `since` recovered everything missed (delivered before this event). */
  recovered: (e: { position: Position }) => void;
  /** Messages may have been missed: reload this channel's state from the app's backend.
   *  reason: "not recovered" | "resubscribed" | "reconnect" | "offset jump". */
  gap: (e: { reason: string; position?: Position }) => void;
  /** The subscribe was refused; the subscription is over. */
  error: (e: RequestError) => void;
  /** reason: "unsubscribe" (the app), "forbidden" or "hook" (the relay ended it). */
  unsubscribed: (e: { reason: string }) => void;
}

/** What a Subscription needs from its client (given by the client, not the whole client). */
export interface SubscriptionHost {
  leave(s: Subscription, tellRelay: boolean): void;
  retry(s: Subscription, attempt: number): ReturnType<typeof setTimeout>;
  clear(t: unknown): void;
  oops(e: unknown): void;
}

function positionOf(f: any): Position | undefined {
  return typeof f.offset === "number" && typeof f.epoch === "string" ? { offset: f.offset, epoch: f.epoch } : undefined;
}

/** One channel the app wants. It lives in the client, not in a connection: every (re)connect
 *  subscribes it again, from its last position when the channel has history. */
export class Subscription extends Emitter<SubscriptionEvents> {
  readonly channel: string;
  private st: SubscriptionState = "subscribing";
  private pos: Position | undefined;
  private wasLive = false; // confirmed on some earlier connection: a plain resubscribe may have missed messages
  private tries = 0; // 503 retries of the current subscribe
  private timer: unknown;

  /** @internal Created by Client.subscribe() or by a hook grant. */
  constructor(channel: string, private h: SubscriptionHost, since?: Position) {
    super();
    this.channel = channel;
    this.pos = since;
    this.oops = h.oops;
  }

  get state(): SubscriptionState {
    return this.st;
  }

  /** The position of the last message seen (or of the last subscribe ack). */
  get position(): Position | undefined {
    return this.pos;
  }

  /** Sends unsubscribe when connected, and removes the subscription from the client. */
  unsubscribe(): void {
    if (this.st !== "unsubscribed") this._end("unsubscribe", true);
  }

  /** @internal The connection is gone: back to "subscribing" until the next one confirms. */
  _reset(): void {
    if (this.st === "subscribed") this.st = "subscribing";
    this.h.clear(this.timer);
    this.tries = 0;
  }

  /** @internal The relay confirmed the subscription on this connection: a subscribe's ack
   *  (`sentSince`: it gave `since`), a hook grant ({"op":"subscribed"}), or a 409 after a grant. */
  _live(f: any, sentSince: boolean): void {
    // The hook may grant a channel the client also subscribes to itself: the first one counts.
    if (this.st !== "subscribing") return;
    this.st = "subscribed";
    this.tries = 0;
    const was = this.wasLive;
    const old = this.pos;
    const p = positionOf(f);
    this.wasLive = true;
    const recovered = sentSince ? f.recovered === true : undefined;
    // Messages that raced ahead of the ack may already have moved the position past it.
    if (p && !(old && old.epoch === p.epoch && old.offset > p.offset && recovered !== false)) this.pos = p;
    this.emit("subscribed", { offset: f.offset, epoch: f.epoch, recovered });
    if (recovered) {
      this.emit("recovered", { position: this.pos! });
    } else if (sentSince) {
      this.emit("gap", { reason: "not recovered", position: this.pos });
    } else if (was && !(old && p && old.epoch === p.epoch && old.offset === p.offset)) {
      // A plain resubscribe after a reconnect: whatever was published in between is lost, unless
      // the grant's position shows that nothing was.
      this.emit("gap", { reason: old ? "not recovered" : "reconnect", position: this.pos });
    }
  }

  /** @internal The subscribe was answered with an error. */
  _refused(e: RequestError): void {
    if (this.st !== "subscribing" || e.code === 0) return; // code 0: the connection went; the next one retries
    if (e.code === 409) return this._live({}, !!this.pos); // already subscribed: a hook grant raced it
    if (e.code === 503) {
      // The broker is down on this relay; it may come back while the connection stays.
      this.timer = this.h.retry(this, this.tries++);
      return;
    }
    this.st = "unsubscribed";
    this.h.leave(this, false);
    this.emit("error", e);
  }

  /** @internal A message frame for this channel. */
  _message(f: any): void {
    const p = positionOf(f);
    const old = this.pos;
    if (p) {
      if (old && old.epoch === p.epoch) {
        if (p.offset <= old.offset) return; // already delivered (recovery overlaps live delivery)
        // Offsets have no holes: a jump means the relay dropped messages (drop_oldest).
        if (p.offset > old.offset + 1) this.emit("gap", { reason: "offset jump", position: old });
      } else if (old && p.offset > 1) {
        // A new epoch starts at 1; joining it later means its first messages were missed.
        this.emit("gap", { reason: "offset jump", position: old });
      }
      this.pos = p;
    }
    this.emit("message", { data: f.data, offset: f.offset, epoch: f.epoch });
  }

  /** @internal {"op":"resubscribed"}: the relay lost its broker and could not recover for us. */
  _resubscribed(f: any): void {
    this.pos = positionOf(f) || this.pos;
    this.emit("gap", { reason: "resubscribed", position: this.pos });
  }

  /** @internal The subscription is over (the app's unsubscribe() or the relay's unsubscribed). */
  _end(reason: string, tellRelay: boolean): void {
    this.st = "unsubscribed";
    this.h.clear(this.timer);
    this.h.leave(this, tellRelay);
    this.emit("unsubscribed", { reason });
  }
}
