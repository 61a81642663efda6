/**
 * The Elysia application in-process, for what only shows there: whether an answer comes
 * back as a Response or as a promise of one.
 */
import { expect, test } from "bun:test";
import { createApp } from "../../src/http/app.ts";
import { loadState } from "../../src/provisioning/load-state.ts";
import { ProvisioningService } from "../../src/provisioning/service.ts";
import { provisioningPath } from "../helpers/http.ts";

test("the provisioning answer comes back without a promise when no reprovision runs", async () => {
  const loaded = loadState({ kind: "demo" });
  const app = createApp(new ProvisioningService(loaded, { load: () => loaded }));

  // A promise here would mean Elysia awaits every answer (see the route's handler).
  const answer = app.fetch(new Request(`http://localhost${provisioningPath}`));
  expect(answer).toBeInstanceOf(Response);

  const response = answer as Response;
  expect(response.status).toBe(200);
  expect(await response.text()).toBe(loaded.state.body);
});
