/**
 * Who can connect, for every socket mode the configuration accepts: the kernel lets a
 * process connect when the permission class it falls in (owner, group, other, in that
 * order: the first that matches decides) has the write bit; root always. Each identity
 * is a client run with setpriv; the expectation is computed from the mode alone.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { socketEndpoint, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey } from "../helpers/fixtures.ts";
import { curlUnix, provisioningPath } from "../helpers/http.ts";
import { runExtprov, startServer } from "../helpers/server.ts";
import { sharedTempDir } from "../helpers/temp.ts";

const isRoot = process.getuid?.() === 0;
if (!isRoot)
  console.warn("access matrix skipped: it needs root to give the socket away and switch users");

// Numeric ids need no account: daemon (1) owns the socket, group 2 (bin) is its group.
const owner = 1;
const group = 2;
const stranger = 65534;

interface Identity {
  name: string;
  uid: number;
  gid: number;
  groups: number[];
}

const identities: Identity[] = [
  { name: "root", uid: 0, gid: 0, groups: [] },
  { name: "the socket's owner", uid: owner, gid: owner, groups: [] },
  { name: "a user whose primary group is the socket's", uid: stranger, gid: group, groups: [] },
  {
    name: "a user with the socket's group as a supplementary group",
    uid: stranger,
    gid: stranger,
    groups: [group],
  },
  { name: "another user", uid: stranger, gid: stranger, groups: [] },
];

/** The kernel's rule for connect(2) on a socket file: write permission in the first class that matches. */
function mayConnect(mode: number, who: Identity): boolean {
  if (who.uid === 0) return true;
  if (who.uid === owner) return (mode & 0o200) !== 0;
  if (who.gid === group || who.groups.includes(group)) return (mode & 0o020) !== 0;
  return (mode & 0o002) !== 0;
}

function as(who: Identity): string[] {
  if (who.uid === 0) return [];
  const groups = who.groups.length > 0 ? [`--groups=${who.groups.join(",")}`] : ["--clear-groups"];
  return ["setpriv", `--reuid=${who.uid}`, `--regid=${who.gid}`, ...groups, "--"];
}

const key = newSymmetricKey();
const checked: string[] = [];

function configFor(folder: string, mode: string, forced: boolean): string {
  return writeConfig(folder, {
    device: { hubName: "test-hub.azure-devices.net", deviceId: "matrix-device" },
    credentials: { symmetricKey: { key } },
    listen: {
      endpoint: socketEndpoint(join(folder, "external.sock")),
      socket: { owner, group, mode },
    },
    ...(forced ? { security: { allowWorldAccessibleSocket: true } } : {}),
  });
}

afterAll(() => {
  if (checked.length > 0)
    console.log(`access matrix: ${checked.length} mode and identity pairs checked`);
});

describe.skipIf(!isRoot)("who can connect", () => {
  const modes = [
    ["0600", false],
    ["0620", false],
    ["0640", false],
    ["0660", false],
    ["0606", true],
    ["0666", true],
  ] as const;

  for (const [mode, forced] of modes) {
    test(`with mode ${mode}${forced ? " (allowWorldAccessibleSocket)" : ""}: exactly those the mode lets write`, async () => {
      const folder = sharedTempDir();
      const socket = join(folder, "external.sock");
      const server = await startServer({
        args: ["serve", "--config", configFor(folder, mode, forced)],
        secrets: [key],
      });

      for (const who of identities) {
        const answer = curlUnix(socket, provisioningPath, [], as(who));
        const allowed = mayConnect(Number.parseInt(mode, 8), who);
        checked.push(`${mode} ${who.name}`);

        expect({ who: who.name, status: answer.status, curl: answer.exitCode }).toEqual({
          who: who.name,
          status: allowed ? 200 : 0,
          curl: allowed ? 0 : 7,
        });
        if (!allowed) expect(answer.body).not.toContain(key);
      }

      expect(server.output().includes("warn  socket open to every user")).toBe(forced);
      expect(server.output().includes("warn  socket read bit without write")).toBe(mode === "0640");
      expect(await server.stop()).toBe(0);
    });
  }
});

describe("a mode with the other write bit", () => {
  for (const mode of ["0602", "0606", "0622", "0666"]) {
    test(`${mode} is refused unless forced, and forced it is served with a warning`, async () => {
      const folder = sharedTempDir();

      const refused = await runExtprov({
        args: ["check", "--config", configFor(folder, mode, false)],
        secrets: [key],
      });
      const forced = await runExtprov({
        args: ["check", "--config", configFor(folder, mode, true)],
        secrets: [key],
      });

      expect(refused.code).toBe(3);
      expect(refused.output).toContain(
        `/listen/socket/mode: mode ${mode} lets every user on the device read the device's credentials`,
      );
      expect(forced.code).toBe(0);
      expect(forced.output).toContain(
        `warn  socket open to every user mode=${mode}: security.allowWorldAccessibleSocket is set`,
      );
    });
  }
});
