// Reads a conformance results directory (-o DIR) and judges the scored
// auth scenarios: each must have run, with no FAILURE and no WARNING check.
// Scenarios the suite itself lists as "Not scored" (extensions such as
// DPoP or client credentials) are reported, not judged.
// Usage: node check.mjs <requirements> <dir> <expected auth scenario count>
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const [req, dir, expected] = process.argv.slice(2);
const authDir = join(dir, 'auth');
let entries = [];
try {
  entries = readdirSync(authDir).filter((d) => statSync(join(authDir, d)).isDirectory());
} catch {}
let summary = '';
try {
  summary = readFileSync(join(dir, 'summary.txt'), 'utf8');
} catch {}
const notScored = new Set();
const block = summary.split(/^Not scored for /m)[1] || '';
for (const m of block.matchAll(/^\s+[✓✗]\s+(\S+)/gmu)) notScored.add(m[1]);
let passed = 0;
let failed = 0;
for (const entry of entries.sort()) {
  const name = entry.replace(/-\d{4}-\d\d-\d\dT.*$/, '');
  if (notScored.has(`auth/${name}`)) {
    console.log(`  --    auth/${name}: not scored for ${req} (extension)`);
    continue;
  }
  const checks = JSON.parse(readFileSync(join(authDir, entry, 'checks.json'), 'utf8'));
  const count = (s) => checks.filter((c) => c.status === s).length;
  const bad = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
  if (bad.length === 0 && count('SUCCESS') > 0) {
    passed++;
    console.log(`  ok    auth/${name}: ${count('SUCCESS')} checks passed`);
  } else {
    failed++;
    console.log(`  FAIL  auth/${name}: ${bad.map((c) => `${c.id} ${c.status}`).join(', ') || 'no successful check'}`);
  }
}
if (passed + failed !== Number(expected)) {
  console.log(`  expected ${expected} auth scenarios for ${req}, found ${passed + failed}`);
  failed += Math.max(0, Number(expected) - passed - failed);
}
console.log(`conformance ${req}: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
