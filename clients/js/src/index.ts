// wsrelay-client: the JavaScript/TypeScript client of wsrelay (docs/client-js.md).
export { Client } from "./client.js";
export type { ClientEvents, ClientOptions, ClientState, Clock, Url } from "./client.js";
export { Subscription } from "./subscription.js";
export type { Position, SubscriptionEvents, SubscriptionState } from "./subscription.js";
export { ClientError, RequestError } from "./errors.js";
