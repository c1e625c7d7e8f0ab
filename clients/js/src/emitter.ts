// The event plumbing shared by Client and Subscription: on/off, and an emit that never lets a
// listener's exception escape into the client's own code (it goes to `oops` instead).
export type Listener = (...args: any[]) => void;
export type EventMap<E> = { [K in keyof E]: Listener };

export class Emitter<E extends EventMap<E>> {
  private ls: { [name: string]: Listener[] } = {};

  /** @internal Where a listener's exception goes (the client reports it as an "error" event). */
  protected oops: (e: unknown) => void = () => {};

  on<K extends keyof E & string>(event: K, fn: E[K]): this {
    (this.ls[event] = this.ls[event] || []).push(fn);
    return this;
  }

  off<K extends keyof E & string>(event: K, fn: E[K]): this {
    const a = this.ls[event];
    // A new array, so that an emit in progress still calls the listeners it started with.
    if (a) this.ls[event] = a.filter((f) => f !== fn);
    return this;
  }

  /** @internal */
  protected emit<K extends keyof E & string>(event: K, ...args: Parameters<E[K]>): void {
    for (const f of this.ls[event] || []) {
      try {
        f(...args);
      } catch (e) {
        this.oops(e);
      }
    }
  }
}
