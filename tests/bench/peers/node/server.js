'use strict';
// Benchmark peer: the WebSocket + Redis pub/sub fan-out server as the Node tutorials write it
// (npm ws + redis v4). GET /ws?channel=NAME subscribes the connection to NAME; every Redis message
// on NAME goes to each local subscriber as one text frame; a client's frame is published on NAME.
// PORT and REDIS_URL from the environment.

const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');
const { createClient } = require('redis');

const port = Number(process.env.PORT || 8080);
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

const publisher = createClient({ url: redisUrl });
// A client in subscriber mode can run no other command, hence the second connection.
const subscriber = publisher.duplicate();
for (const client of [publisher, subscriber]) {
  client.on('error', (err) => console.error('redis:', err.message));
}

const channels = new Map(); // channel name -> Set of sockets on this instance

function deliver(message, channel) {
  const sockets = channels.get(channel);
  if (!sockets) return;
  for (const ws of sockets) {
    if (ws.readyState === WebSocket.OPEN) ws.send(message);
  }
}

function join(channel, ws) {
  let sockets = channels.get(channel);
  if (!sockets) {
    sockets = new Set();
    channels.set(channel, sockets);
    subscriber.subscribe(channel, deliver).catch((err) => console.error('subscribe:', err.message));
  }
  sockets.add(ws);
}

function leave(channel, ws) {
  const sockets = channels.get(channel);
  if (!sockets) return;
  sockets.delete(ws);
  if (sockets.size === 0) {
    channels.delete(channel);
    subscriber.unsubscribe(channel).catch((err) => console.error('unsubscribe:', err.message));
  }
}

const server = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const wss = new WebSocketServer({ server, path: '/ws' });

wss.on('connection', (ws, req) => {
  const channel = new URL(req.url, 'http://localhost').searchParams.get('channel');
  if (!channel) {
    ws.close(1008, 'channel required');
    return;
  }
  join(channel, ws);
  ws.on('message', (data) => {
    publisher.publish(channel, data).catch((err) => console.error('publish:', err.message));
  });
  ws.on('close', () => leave(channel, ws));
  ws.on('error', () => {});
});

async function main() {
  await Promise.all([publisher.connect(), subscriber.connect()]);
  server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
