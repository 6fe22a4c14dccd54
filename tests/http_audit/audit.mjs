// The GraphQL-over-HTTP conformance audit of the `graphql-http` package against a running server.
// Usage: node audit.mjs http://127.0.0.1:8765/graphql   (exit code 1 on any audit error)
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const results = await auditServer({ url, fetchFn: fetch });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const result of results) {
  counts[result.status] += 1;
  if (result.status !== 'ok') console.log(`${result.status} ${result.id} ${result.name}: ${result.reason ?? ''}`);
}
console.log(`graphql-http audit: ${results.length} audits, ${counts.ok} ok, ${counts.warn} warn, ${counts.notice} notice, ${counts.error} error`);
process.exit(counts.error ? 1 : 0);
