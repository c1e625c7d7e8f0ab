// A backend publishing into a channel with history the way docs/scaling.md tells Node apps to:
// node publish.mjs REDIS_URL CHANNEL DATA HISTORY_SIZE HISTORY_TTL_MS
// Prints the function's answer ([offset, epoch, trimmed]) as JSON.
import { createClient } from 'redis';

const [url, channel, data, size, ttl] = process.argv.slice(2);
const client = createClient({ url });
client.on('error', (err) => {
  console.error(err);
  process.exit(1);
});
await client.connect();
const answer = await client.sendCommand(['FCALL', 'wsrelay_publish', '1', channel, data, size, ttl]);
console.log(JSON.stringify(answer));
await client.quit();
