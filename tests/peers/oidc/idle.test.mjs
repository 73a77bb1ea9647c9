// The normal case, measured: a user signed in once, and editor windows stay
// open for days with the credential on disk. An idle sidecar then makes no
// wake-ups at all (docs/protocol.md#storage-and-locking: no timers; the store watcher sleeps in the
// kernel) and uses no CPU — in both persistent modes, against a real AS.
//
// The keyring run needs a Secret Service: scripts/peers.sh provides a
// throw-away gnome-keyring (scripts/with-keyring.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { authorize, rpc, scenario } from './rig.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Tokio retires a blocking-pool thread after 10 s without work: one last
// wake-up each, after the activity below, that is not a timer.
const SETTLE_MS = 15_000;
const IDLE_MS = 10_000;

/** Per thread of `pid`: context switches and CPU ticks (utime + stime). */
function sample(pid) {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const switches = [...status.matchAll(/ctxt_switches:\s*(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      out.set(tid, { switches, ticks });
    } catch {
      // The thread ended between readdir and read: it woke up to do so.
      out.set(tid, { switches: Infinity, ticks: Infinity });
    }
  }
  return out;
}

/** What changed between two samples; empty when nothing woke. */
function wakeUps(before, after) {
  const woke = [];
  for (const [tid, a] of after) {
    const b = before.get(tid);
    if (!b) woke.push(`thread ${tid} started`);
    else if (a.switches !== b.switches || a.ticks !== b.ticks) {
      woke.push(`thread ${tid}: +${a.switches - b.switches} switches, +${a.ticks - b.ticks} ticks`);
    }
  }
  for (const tid of before.keys()) if (!after.has(tid)) woke.push(`thread ${tid} ended`);
  return woke;
}

for (const storage of ['file', 'keyring']) {
  test(`idle with a stored credential (${storage}): 0 wake-ups, 0 CPU ticks over ${IDLE_MS / 1000} s`, { timeout: 120_000 }, async (t) => {
    if (storage === 'keyring') {
      assert.ok(process.env.MCP_AUTH_SIDECAR_TEST_KEYRING,
        'this test needs a Secret Service: run it through scripts/peers.sh (which uses scripts/with-keyring.sh)');
    }
    const s = await scenario(t);
    // The window that signed in…
    const first = await s.sidecar({ storage });
    const status = await authorize(first, s.peer, { server: 'peer' });
    assert.equal(status.state, 'authorized', JSON.stringify(status));
    assert.equal(status.storage, storage);
    // …and one opened later, which finds the credential on disk.
    const second = await s.sidecar({ storage });
    const seen = (await rpc(second, 'mcp/authStatus', { server: 'peer' })).servers[0];
    assert.equal(seen.state, 'authorized', JSON.stringify(seen));
    assert.equal(seen.storage, storage);
    for (const sc of [first, second]) await rpc(sc, 'mcp/accessToken', { server: 'peer' });

    await sleep(SETTLE_MS);
    const pids = [first.proc.pid, second.proc.pid];
    const before = pids.map(sample);
    await sleep(IDLE_MS);
    const after = pids.map(sample);
    const report = pids.map((pid, i) => ({ pid, threads: after[i].size, woke: wakeUps(before[i], after[i]) }));
    t.diagnostic(`idle ${IDLE_MS} ms (${storage}): ${JSON.stringify(report)}`);
    for (const r of report) {
      assert.deepEqual(r.woke, [], `sidecar ${r.pid} (${storage}) woke while idle`);
    }
    // Still serving, from memory.
    const again = (await rpc(second, 'mcp/authStatus', { server: 'peer' })).servers[0];
    assert.equal(again.state, 'authorized');
  });
}
