/** Elysia with one route and no validation, answering the same JSON on a Unix socket. */
import { Elysia } from "elysia";
import answer from "./answer.json";

const body = JSON.stringify(answer);
const headers = { "content-type": "application/json" };

new Elysia()
  .get("/device/provisioninginformation", () => new Response(body, { headers }))
  .listen({ unix: process.argv[2]! });
