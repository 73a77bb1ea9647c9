// Benchmark (prints figures, asserts nothing): a herd of sidecar processes
// on one home, against oidc-provider with short-lived tokens. At each expiry
// every instance asks for a token at once; we report how many refresh
// requests reached the AS and how long after the token's expiry each
// instance had the new one.
//
//   node herd.bench.mjs [herd size, default 16] [cycles, default 5]
import { asCounts, authorize, refreshCount, rpc, scenario } from './rig.mjs';

const herdSize = Number(process.argv[2] || 16);
const cycles = Number(process.argv[3] || 5);
const TTL = 3;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

// scenario() wants a test context for cleanup; give it a minimal one.
const cleanups = [];
const t = { after: (f) => cleanups.push(f) };
try {
  const s = await scenario(t, { OIDC_AT_TTL: String(TTL) });
  const first = await s.sidecar();
  await authorize(first, s.peer, { server: 'peer' });
  const herd = [first];
  while (herd.length < herdSize) herd.push(await s.sidecar());

  const latencies = [];
  const perCycle = [];
  for (let c = 0; c < cycles; c++) {
    const { servers } = await rpc(first, 'mcp/authStatus', { server: 'peer' });
    const expiry = servers[0].expiresAt;
    const before = refreshCount(await asCounts(s.peer)); // not between expiry and firing
    await sleep(Math.max(0, expiry - Date.now()));
    await Promise.all(
      herd.map(async (h) => {
        await rpc(h, 'mcp/accessToken', { server: 'peer' });
        latencies.push(Date.now() - expiry);
      }),
    );
    perCycle.push(refreshCount(await asCounts(s.peer)) - before);
  }
  latencies.sort((a, b) => a - b);
  console.log(`herd size                       ${herdSize} sidecar processes, ${cycles} expiry cycles`);
  console.log(`refresh requests seen by the AS ${perCycle.join(', ')} (per cycle)`);
  console.log(`expiry -> new token, p50        ${pct(latencies, 50)} ms`);
  console.log(`expiry -> new token, p99        ${pct(latencies, 99)} ms`);
  console.log(`expiry -> new token, max        ${latencies.at(-1)} ms  (${latencies.length} samples)`);
} finally {
  for (const f of cleanups.reverse()) await f();
}
