// Baseline: the npm `wns` package (0.5.4) sending toasts to the WNS sandbox over TLS.
//
// The package hard-codes port 443 for https.request, so https.request is wrapped (before the
// package is loaded) to target the sandbox's port through one keep-alive agent trusting the
// sandbox CA. An access token is supplied, as the package's callers do after their first send.
//
// usage: node wns_driver.js <channels.json> <count> <concurrency> <port> <ca.pem> <token>
// prints: {"sent": n, "ok": n, "seconds": s, "cpuSeconds": s, "errors": {...}}

"use strict";

const fs = require("fs");
const https = require("https");

const [channelsFile, countArg, concurrencyArg, portArg, caFile, token] = process.argv.slice(2);
const channels = JSON.parse(fs.readFileSync(channelsFile, "utf8"));
const count = Number(countArg);
const concurrency = Number(concurrencyArg);
const port = Number(portArg);
const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency, ca: fs.readFileSync(caFile) });

const originalRequest = https.request;
https.request = function (options, callback) {
  return originalRequest.call(https, Object.assign({}, options, { port: port, agent: agent }), callback);
};

const wns = require("wns");

const TOAST =
  "<toast><visual><binding template='ToastGeneric'><text>Benchmark</text>" +
  "<text>Hello from pushfuncs</text></binding></visual></toast>";
const options = { client_id: "unused-when-a-token-is-given", client_secret: "unused", accessToken: token };

function sendOne(uri) {
  return new Promise((resolve) => {
    wns.send(uri, TOAST, "wns/toast", options, (error) =>
      resolve(error ? String(error.statusCode || error.message) : null),
    );
  });
}

async function run(total) {
  let next = 0;
  let ok = 0;
  const errors = {};
  async function worker() {
    while (next < total) {
      const i = next++;
      const error = await sendOne(channels[i % channels.length]);
      if (error === null) ok++;
      else errors[error] = (errors[error] || 0) + 1;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ok, errors };
}

(async () => {
  // Open the connections first: steady state, as for every other client measured.
  await run(concurrency);
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const { ok, errors } = await run(count);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  process.stdout.write(
    JSON.stringify({ sent: count, ok, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, errors }) + "\n",
  );
  agent.destroy();
})();
