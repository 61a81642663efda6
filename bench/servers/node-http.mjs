// What a user might write instead: node:http answering the same JSON on a Unix socket.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";

const body = JSON.stringify(JSON.parse(readFileSync(new URL("./answer.json", import.meta.url))));

createServer((request, response) => {
  response.writeHead(200, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  response.end(body);
}).listen(process.argv[2]);
