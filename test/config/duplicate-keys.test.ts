/**
 * The scan for keys given twice: exact for JSON; for YAML, every block mapping, and
 * nothing it cannot follow for sure, so that a valid file is never refused.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { duplicateKeys } from "../../src/config/duplicate-keys.ts";

const yaml = (text: string) => duplicateKeys(text, false);
const json = (text: string) => duplicateKeys(text, true);

describe("in YAML", () => {
  test.each([
    [
      "a section given twice",
      "device: {}\nlisten:\n  endpoint: x\nlisten:\n  endpoint: y\n",
      "",
      "listen",
      2,
      4,
    ],
    [
      "a field given twice in its section",
      "listen:\n  socket:\n    mode: '0600'\n    mode: '0660'\n",
      "/listen/socket",
      "mode",
      3,
      4,
    ],
    ["keys written once quoted and once plain", "\"a\": 1\n'a': 2\n", "", "a", 1, 2],
    ["a key after a sequence at its own column", "hook:\n- x\nhook: 2\n", "", "hook", 1, 3],
    [
      "a key after a sequence of mappings",
      "r:\n  hook:\n    - a: 1\n      b: 1\n  hook: 3\n",
      "/r",
      "hook",
      2,
      5,
    ],
    [
      "a key after a quoted item holding ' #'",
      'hook:\n  - /bin/true\n  - "--note=site #3"\nmode: 1\nmode: 2\n',
      "",
      "mode",
      4,
      5,
    ],
    ["a key given twice in JSON named .yaml", '{"a": 1,\n "a": 2}\n', "", "a", 1, 2],
    [
      "a section given twice after a byte order mark",
      "\uFEFFdevice: {}\ndevice: {}\n",
      "",
      "device",
      1,
      2,
    ],
  ])("finds %s", (_, text, parent, key, firstLine, line) => {
    expect(yaml(text)).toEqual([{ parent, key, firstLine, line }]);
  });

  test.each([
    ["the same name in two sections", "device:\n  id: 1\nlisten:\n  id: 2\n"],
    ["the same keys in each item of a sequence", "hook:\n  - a: 1\n    b: 2\n  - a: 3\n    b: 4\n"],
    ["key-like lines in a block scalar", "text: |\n  a: 1\n  a: 2\nb: 1\n"],
    ["key-like lines in a folded item", "list:\n  - >-\n    a: 1\n    a: 2\n"],
    ["keys in comments", "# a: 1\na: 1 # a: 2\n"],
    ["documents apart", "a: 1\n---\na: 2\n"],
    ["a tagged block scalar in an item", "hook:\n  - !!str |\n    a: 1\n    a: 2\n"],
    ["an anchored block scalar in an item", "hook:\n  - &text >\n    a: 1\n    a: 2\n"],
    ["a quoted item over several lines", 'hook:\n  - "x\n    a: 1\n    a: 2"\n'],
    ["a plain value over several lines", "note: one\n  two\nother: 1\n"],
    [
      "a flow mapping over several lines",
      "device: { hubName: h, deviceId: d,\n  status: assigned }\nreprovision: { afterIdentityChange: {\n  status: assigned } }\n",
    ],
    [
      "JSON written as YAML",
      '{"device": {"status": "assigned"},\n "reprovision": {"status": "assigned"}}\n',
    ],
    ["an explicit key", "user: root\n? user\n: nobody\n"],
    ["the examples", readFileSync(join(import.meta.dir, "../../examples/config.yaml"), "utf8")],
    ["the demo", readFileSync(join(import.meta.dir, "../../examples/demo/config.yaml"), "utf8")],
  ])("finds nothing in %s", (_, text) => {
    expect(yaml(text)).toEqual([]);
  });

  // Known limit, on the side of accepting: a one-line flow mapping is not looked into.
  test("leaves a one-line flow mapping to the parser", () => {
    expect(yaml("socket: { owner: a, owner: b }\n")).toEqual([]);
  });
});

describe("in JSON", () => {
  test("finds keys given twice at any depth, in objects inside arrays too", () => {
    const text = '{"a": 1,\n "b": {"c": 1, "c": 2},\n "d": [{"e": 1, "e": 2}],\n "a": 3}';

    expect(json(text)).toEqual([
      { parent: "/b", key: "c", firstLine: 2, line: 2 },
      { parent: "/d/*", key: "e", firstLine: 3, line: 3 },
      { parent: "", key: "a", firstLine: 1, line: 4 },
    ]);
  });

  test("finds a key however much white space comes before its colon", () => {
    const text = `{"runAs": {}, "runAs"${" ".repeat(100)}: {}}`;

    expect(json(text)).toEqual([{ parent: "", key: "runAs", firstLine: 1, line: 1 }]);
  });

  test("reads strings whole: quotes, colons and braces inside them are text", () => {
    expect(json('{"a": "x\\"y: {", "b": ":", "c": {"a": "}"}, "d": "\\\\"}')).toEqual([]);
  });
});
