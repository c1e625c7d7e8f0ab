// The cheapest possible hook backend for tests/bench/hook_bench.sh: every routed publish is
// published back unchanged, so the hook's cost can be compared with a direct broker publish.
// node tests/bench/hook_echo.js PORT   (prints "listening <port>")
"use strict";
const http = require("node:http");

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const event = JSON.parse(Buffer.concat(chunks));
    let answer = {};
    if (event.event === "message" && event.channel) {
      answer = { publish: [{ channel: event.channel, data: event.data }] };
    } else if (event.event === "message") {
      answer = { reply: event.data };
    }
    const body = JSON.stringify(answer);
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 65000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
