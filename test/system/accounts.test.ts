/**
 * Which groups count as trusted users alone: read from passwd and group files written for
 * each case, as install.sh --root would point at an image's.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { groupHoldsOnly } from "../../src/system/accounts.ts";
import { tempDir } from "../helpers/temp.ts";

function accountFiles(passwd: string[], group: string[]) {
  const folder = tempDir();
  writeFileSync(join(folder, "passwd"), passwd.join("\n") + "\n");
  writeFileSync(join(folder, "group"), group.join("\n") + "\n");
  return { passwd: join(folder, "passwd"), group: join(folder, "group") };
}

const passwd = [
  "root:x:0:0:root:/root:/bin/sh",
  "extprov:x:999:999::/nonexistent:/usr/sbin/nologin",
  "alice:x:1000:1000::/home/alice:/bin/sh",
];
const trusted = [0, 999];

describe("a group that holds trusted users alone", () => {
  test("is the service user's private group, and root's", () => {
    const files = accountFiles(passwd, ["root:x:0:", "extprov:x:999:", "alice:x:1000:"]);

    expect(groupHoldsOnly(999, trusted, files)).toBe(true);
    expect(groupHoldsOnly(0, trusted, files)).toBe(true);
  });

  test("is not one another user has as primary group or belongs to", () => {
    const files = accountFiles(passwd, ["root:x:0:alice", "extprov:x:999:", "alice:x:1000:"]);

    expect(groupHoldsOnly(0, trusted, files)).toBe(false);
    expect(groupHoldsOnly(1000, trusted, files)).toBe(false);
  });

  test("is not one a second line with the same gid gives another member (groupadd -o)", () => {
    const files = accountFiles(passwd, ["extprov:x:999:", "again:x:999:alice"]);

    expect(groupHoldsOnly(999, trusted, files)).toBe(false);
  });

  test("is not one the group file does not know, or whose member no passwd line names", () => {
    expect(groupHoldsOnly(4242, trusted, accountFiles(passwd, ["extprov:x:999:"]))).toBe(false);
    expect(groupHoldsOnly(999, trusted, accountFiles(passwd, ["extprov:x:999:ghost"]))).toBe(false);
  });
});
