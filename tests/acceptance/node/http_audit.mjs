// graphql-http's server audits (GraphQL over HTTP, https://graphql.github.io/graphql-over-http/) against a
// running server. argv[2] is JSON: {url}. Prints [{id, name, status, reason}] (status: ok | warn | notice | error).
import { serverAudits } from 'graphql-http';

const { url } = JSON.parse(process.argv[2]);
const results = [];
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  let result;
  try {
    result = await audit.fn();
  } catch (error) {
    result = { status: 'error', reason: `the audit threw: ${error && error.message ? error.message : error}` };
  }
  results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason || null });
}
process.stdout.write(JSON.stringify(results));
