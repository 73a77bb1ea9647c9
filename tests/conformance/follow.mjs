// A "browser" for tests: GETs the authorization URL and follows redirects,
// so the authorization server's 302 lands on the sidecar's loopback
// listener. Usage: node follow.mjs <url>
const url = process.argv.at(-1);
try {
  const res = await fetch(url, { redirect: 'follow' });
  await res.text();
  process.exit(0);
} catch (e) {
  console.error(`follow.mjs: ${e.message}`);
  process.exit(1);
}
