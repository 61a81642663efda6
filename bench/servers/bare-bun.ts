/** The ceiling: Bun.serve answering extprov's demo JSON on a Unix socket, nothing else. */
import answer from "./answer.json";

const body = JSON.stringify(answer);
const headers = { "content-type": "application/json" };

Bun.serve({ unix: process.argv[2]!, fetch: () => new Response(body, { headers }) });
