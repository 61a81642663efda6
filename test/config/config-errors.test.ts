/**
 * Broken configurations: each stops the start with exit code 3 and one line per problem
 * naming the file, the field, what is wrong and how to fix it, never the value.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeConfig } from "../helpers/config.ts";
import { newSymmetricKey, writeSecret } from "../helpers/fixtures.ts";
import { runExtprov, spawnExtprov } from "../helpers/server.ts";
import { sharedTempDir, tempDir } from "../helpers/temp.ts";
import { asNobody, asNobodySkipReason, giveToSharedGroup } from "../helpers/users.ts";

const key = newSymmetricKey();
const isRoot = process.getuid?.() === 0;
const device = { hubName: "test-hub.azure-devices.net", deviceId: "test-device" };

interface Case {
  name: string;
  document?: Record<string, unknown>;
  text?: string;
  expected: string[];
}

/** Each problem is one line of `event`, naming the file, and there is no other. */
function expectProblems(output: string, event: string, file: string, problems: string[]): void {
  for (const problem of problems) expect(output).toContain(`${event}: ${file}: ${problem}`);
  expect(output.split(`${event}: `).length - 1).toBe(problems.length);
}

const listen = (folder: string) => ({ endpoint: `unix://${join(folder, "s.sock")}` });

/** A case with a valid listen section, and a valid device section or key unless given. */
const sectionsCase =
  (
    name: string,
    sections: { device?: Record<string, unknown>; credentials?: Record<string, unknown> },
    expected: string[],
  ) =>
  (folder: string): Case => ({
    name,
    document: {
      device: sections.device ?? device,
      credentials: sections.credentials ?? { symmetricKey: { key } },
      listen: listen(folder),
    },
    expected,
  });

const cases: ((folder: string) => Case)[] = [
  (folder) => ({
    name: "an unknown field, with the allowed ones",
    document: { device, credentials: { symmetricKey: { key } }, listen: listen(folder), lisen: {} },
    expected: [
      "/lisen: unknown field; remove it or check its spelling; allowed here: device, credentials, listen, runAs, security",
    ],
  }),
  (folder) => ({
    name: "a key pasted without `key:`, whose value is not repeated as a field name",
    document: { device, credentials: { symmetricKey: { [key]: null } }, listen: listen(folder) },
    expected: [
      "/credentials/symmetricKey/<a field whose name looks like a value, not shown>: unknown field",
    ],
  }),
  (folder) => ({
    name: "a key given as a number",
    document: { device, credentials: { symmetricKey: { key: 12345 } }, listen: listen(folder) },
    expected: [
      "/credentials/symmetricKey/key: expected a string, found an integer; put the value in quotes",
    ],
  }),
  (folder) => ({
    name: "a mode written without quotes",
    document: {
      device,
      credentials: { symmetricKey: { key } },
      listen: { ...listen(folder), socket: { mode: 660 } },
    },
    expected: [
      '/listen/socket/mode: expected a string, found an integer; write the mode in quotes, e.g. mode: "0660"',
    ],
  }),
  (folder) => ({
    name: "a status the API does not allow",
    document: {
      device: { ...device, status: "active" },
      credentials: { symmetricKey: { key } },
      listen: listen(folder),
    },
    expected: [
      '/device/status: expected one of assigned, assigning, disabled, failed, unassigned, found "active"',
    ],
  }),
  (folder) => ({
    name: "no credential",
    document: { device, credentials: {}, listen: listen(folder) },
    expected: [
      "/credentials: no credential is configured; keep exactly one of symmetricKey, connectionString, x509",
    ],
  }),
  (folder) => ({
    name: "two credentials",
    document: {
      device,
      credentials: { symmetricKey: { key }, connectionString: { value: "x" } },
      listen: listen(folder),
    },
    expected: ["/credentials: several credentials are configured (symmetricKey, connectionString)"],
  }),
  (folder) => ({
    name: "both an inline key and a key file",
    document: { device, credentials: { symmetricKey: { key, file: "k" } }, listen: listen(folder) },
    expected: ["/credentials/symmetricKey: give exactly one of `key` and `file`"],
  }),
  () => ({
    name: "an https endpoint",
    document: {
      device,
      credentials: { symmetricKey: { key } },
      listen: { endpoint: "https://127.0.0.1:9999" },
    },
    expected: [
      "/listen/endpoint: unsupported scheme https:; iotedged supports only http and unix for this endpoint",
    ],
  }),
  () => ({
    name: "an http endpoint without a port",
    document: {
      device,
      credentials: { symmetricKey: { key } },
      listen: { endpoint: "http://127.0.0.1" },
    },
    expected: ["/listen/endpoint: an http endpoint needs an explicit port"],
  }),
  (folder) => ({
    name: "an hsm symmetric key that is also given a key",
    document: {
      device,
      credentials: { symmetricKey: { source: "hsm", key } },
      listen: listen(folder),
    },
    expected: ["/credentials/symmetricKey: source hsm takes no `key` or `file`"],
  }),
  (folder) => ({
    name: "a relative hsm path",
    document: {
      device,
      credentials: { x509: { source: "hsm", certificate: "cert.pem", privateKey: "/k.pem" } },
      listen: listen(folder),
    },
    expected: ["/credentials/x509/certificate: must be an absolute path for source hsm"],
  }),
  (folder) => ({
    name: "a missing hub name",
    document: {
      device: { deviceId: "d" },
      credentials: { symmetricKey: { key } },
      listen: listen(folder),
    },
    expected: ["/device/hubName: missing required field; add device.hubName"],
  }),
  (folder) => ({
    name: "a hub name that is not a host name",
    document: {
      device: { ...device, hubName: "https://hub" },
      credentials: { symmetricKey: { key } },
      listen: listen(folder),
    },
    expected: [
      "/device/hubName: is not a host name; give the hub's host name, e.g. myhub.azure-devices.net",
    ],
  }),
  (folder) => ({
    name: "a device id with a space",
    document: {
      device: { ...device, deviceId: "my device" },
      credentials: { symmetricKey: { key } },
      listen: listen(folder),
    },
    expected: ["/device/deviceId: is not a valid IoT Hub device id"],
  }),
  (folder) => ({
    name: "a connection string for another device than the device section names",
    document: {
      device: { deviceId: "other" },
      credentials: {
        connectionString: {
          value: `HostName=h.azure-devices.net;DeviceId=d;SharedAccessKey=${key}`,
        },
      },
      listen: listen(folder),
    },
    expected: ["/device/deviceId: differs from the connection string"],
  }),
  () => ({
    name: "invalid YAML, with the line",
    text: `device:\n  hubName: h\n  deviceId: "unterminated\ncredentials:\n  symmetricKey:\n    key: ${key}\n`,
    expected: ["not valid YAML near line 3"],
  }),
  (folder) => ({
    name: "a section given twice, the second of which would win silently",
    text: [
      "device: { hubName: h.azure-devices.net, deviceId: d }",
      `credentials: { symmetricKey: { key: ${key} } }`,
      `listen: { endpoint: "unix://${folder}/s.sock", socket: { mode: "0600" } }`,
      "listen:",
      `  endpoint: "unix://${folder}/s.sock"`,
      "",
    ].join("\n"),
    expected: [
      "/listen: is given twice, on lines 3 and 4, and the second would silently replace the first; keep one",
    ],
  }),
  (folder) => ({
    name: "credentials given as a word instead of a mapping",
    document: { device, credentials: "symmetricKey", listen: listen(folder) },
    expected: [
      "/credentials: expected a mapping of fields, found a string; indent its fields below it",
    ],
  }),
  (folder) => ({
    name: "a negative socket owner",
    document: {
      device,
      credentials: { symmetricKey: { key } },
      listen: { ...listen(folder), socket: { owner: -1 } },
    },
    expected: ["/listen/socket/owner: expected a name or a numeric id, found an integer"],
  }),
  (folder) => ({
    name: "runAs given as a bare user name",
    document: {
      device,
      credentials: { symmetricKey: { key } },
      listen: listen(folder),
      runAs: "nobody",
    },
    expected: ["/runAs: expected a mapping of fields, found a string; indent its fields below it"],
  }),
  (folder) => ({
    name: "a security switch written as a string",
    document: {
      device,
      credentials: { symmetricKey: { key } },
      listen: listen(folder),
      security: { allowWorldAccessibleSocket: "yes" },
    },
    expected: ["/security/allowWorldAccessibleSocket: expected true or false, found a string"],
  }),
  () => ({
    name: "an endpoint given as a port number",
    document: { device, credentials: { symmetricKey: { key } }, listen: { endpoint: 9999 } },
    expected: ["/listen/endpoint: expected a string, found an integer; put the value in quotes"],
  }),
  (folder) => ({
    name: "an X.509 source iotedged does not take",
    document: {
      device,
      credentials: { x509: { source: "tpm", certificate: "/c.pem", privateKey: "/k.pem" } },
      listen: listen(folder),
    },
    expected: ['/credentials/x509/source: expected one of payload, hsm, found "tpm"'],
  }),
  sectionsCase(
    "an X.509 source cut short",
    { credentials: { x509: { source: "pay", certificate: "/c.pem", privateKey: "/k.pem" } } },
    ['/credentials/x509/source: expected one of payload, hsm, found "pay"'],
  ),
  sectionsCase(
    "an X.509 section without its source, with the values allowed",
    { credentials: { x509: { certificate: "/c.pem", privateKey: "/k.pem" } } },
    ["/credentials/x509/source: missing required field; add it: one of payload, hsm"],
  ),
  sectionsCase(
    "a long substatus, quoted only in part",
    { device: { ...device, substatus: "initial assignment of the device" } },
    [
      '/device/substatus: expected one of deviceDataMigrated, deviceDataReset, initialAssignment, deviceDataUpdated, found "initial assignment of th..."',
    ],
  ),
  sectionsCase(
    "a key pasted as the source, which is not repeated",
    { credentials: { symmetricKey: { source: key } } },
    ["/credentials/symmetricKey/source: expected one of payload, hsm, found a string"],
  ),
  sectionsCase("a source given as a number", { credentials: { symmetricKey: { source: 1 } } }, [
    "/credentials/symmetricKey/source: expected one of payload, hsm, found an integer",
  ]),
  (folder) => ({
    name: "a mode with the setuid bit",
    document: {
      device,
      credentials: { symmetricKey: { key } },
      listen: { ...listen(folder), socket: { mode: "4660" } },
    },
    expected: [
      '/listen/socket/mode: has the wrong form; write an octal mode in quotes, e.g. "0660"',
    ],
  }),
  (folder) => ({
    name: "a key left empty (null)",
    document: { device, credentials: { symmetricKey: { key: null } }, listen: listen(folder) },
    expected: ["/credentials/symmetricKey/key: expected a string, found null"],
  }),
  () => ({
    name: "an empty file",
    text: "",
    expected: ["holds no settings (it is empty or only comments); start from examples/config.yaml"],
  }),
  () => ({
    name: "a file of comments only",
    text: "# device:\n#   hubName: h\n",
    expected: ["holds no settings (it is empty or only comments)"],
  }),
  () => ({
    name: "a document that is a list",
    text: "- a\n- b\n",
    expected: ["/: expected a mapping of fields, found a list; the file must be a mapping with"],
  }),
  () => ({
    name: "a document that is a single word, told what the file must hold",
    text: "hello\n",
    expected: [
      "/: expected a mapping of fields, found a string; the file must be a mapping with device, credentials and listen sections, each name at the start of a line and followed by a colon; start from examples/config.yaml",
    ],
  }),
];

describe("a broken configuration", () => {
  for (const make of cases) {
    const preview = make("/tmp/x");

    test(`is refused with a precise message: ${preview.name}`, async () => {
      const folder = tempDir();
      const { document, text, expected } = make(folder);
      const file = join(folder, "config.yaml");
      if (document) writeConfig(folder, document);
      else writeFileSync(file, text!, { mode: 0o600 });

      const result = await runExtprov({ args: ["serve", "--config", file], secrets: [key] });

      expect(result.code).toBe(3);
      expectProblems(result.output, "refused to start", file, expected);
      expect(result.output).not.toContain("    at ");
    });
  }

  test("reports every schema problem at once, one line each", async () => {
    const folder = tempDir();
    const file = writeConfig(folder, {
      device: { hubName: 1, deviceId: 2 },
      credentials: { symmetricKey: { key } },
      extra: true,
    });

    const result = await runExtprov({ args: ["check", "--config", file], secrets: [key] });

    expect(result.code).toBe(3);
    expect(result.output.match(/check failed/g)?.length).toBe(3);
  });

  test("shows the first 20 of many problems, and how many more there are", async () => {
    const folder = tempDir();
    const unknown = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`field${i}`, i]));
    const file = writeConfig(folder, {
      ...unknown,
      device,
      credentials: { symmetricKey: { key } },
    });

    const result = await runExtprov({ args: ["check", "--config", file], secrets: [key] });

    expect(result.code).toBe(3);
    const lines = result.output.trim().split("\n");
    expect(lines).toHaveLength(21);
    const more = new RegExp(
      `check failed: ${file}: and (\\d+) more problems; fix these first, or check that this is the right file$`,
    );
    expect(Number(more.exec(lines.at(-1)!)?.[1])).toBeGreaterThanOrEqual(480);
  });

  const otherDevice = `HostName=other-hub.azure-devices.net;DeviceId=other;SharedAccessKey=${key}`;
  const severalProblems: ((folder: string) => Case)[] = [
    () => ({
      name: "the schema's and those of the checks after it",
      document: {
        device: { hubName: "https://hub", deviceId: "my device", status: "active" },
        credentials: { symmetricKey: { key } },
        listen: { endpoint: "http://127.0.0.1" },
        extra: true,
      },
      expected: [
        "/device/status: expected one of assigned, assigning, disabled, failed, unassigned",
        "/extra: unknown field",
        "/device/hubName: is not a host name",
        "/device/deviceId: is not a valid IoT Hub device id",
        "/listen/endpoint: an http endpoint needs an explicit port",
      ],
    }),
    () => ({
      name: "a missing hub name and the other sections' problems",
      document: {
        device: { deviceId: "d" },
        credentials: { symmetricKey: { key, file: "k" } },
        listen: { endpoint: "ftp://h" },
      },
      expected: [
        "/device/hubName: missing required field; add device.hubName",
        "/credentials/symmetricKey: give exactly one of `key` and `file`",
        "/listen/endpoint: unsupported scheme ftp:",
      ],
    }),
    (folder) => ({
      name: "a connection string naming another hub and another device",
      document: {
        device,
        credentials: { connectionString: { value: otherDevice } },
        listen: listen(folder),
      },
      expected: [
        "/device/hubName: differs from the connection string",
        "/device/deviceId: differs from the connection string",
      ],
    }),
    (folder) => ({
      name: "account lookups, socket mode and an inline key beside device problems",
      document: {
        device: { hubName: "bad hub", deviceId: "bad id/x" },
        credentials: { symmetricKey: { key: "not a key!" } },
        listen: {
          ...listen(folder),
          socket: { mode: "0666", owner: "no-such-user-extprov", group: "no-such-group-extprov" },
        },
        runAs: { user: "no-such-user-extprov", group: "no-such-group-extprov" },
      },
      expected: [
        "/device/hubName: is not a host name",
        "/device/deviceId: is not a valid IoT Hub device id",
        "/credentials/symmetricKey/key: the key contains white space",
        "/listen/socket/owner: no such user on this system",
        "/listen/socket/group: no such group on this system",
        "/listen/socket/mode: mode 0666 lets every user on the device read",
        "/runAs/user: no such user on this system",
        "/runAs/group: no such group on this system",
      ],
    }),
    (folder) => ({
      name: "ids beyond the largest a uid or gid can be, quoted or not",
      document: {
        device,
        credentials: { symmetricKey: { key } },
        listen: { ...listen(folder), socket: { owner: 4294967295, group: "4294967294" } },
        runAs: { user: "2147483648", group: "99999999999" },
      },
      expected: [
        "/listen/socket/owner: 4294967295 is beyond the largest uid there can be, 2147483647",
        "/listen/socket/group: 4294967294 is beyond the largest gid there can be, 2147483647",
        "/runAs/user: 2147483648 is beyond the largest uid there can be, 2147483647",
        "/runAs/group: 99999999999 is beyond the largest gid there can be, 2147483647",
      ],
    }),
    (folder) => ({
      name: "a key pasted where a path goes, never shown",
      document: {
        device,
        credentials: { symmetricKey: { file: key } },
        listen: listen(folder),
        reprovision: { hook: [key] },
      },
      expected: [
        "/credentials/symmetricKey/file: looks like a key (not shown), not a path; write the key itself in `key:`",
        "/reprovision/hook/0: looks like a key (not shown), not a path",
      ],
    }),
    () => ({
      name: "an http endpoint beyond loopback, among the other problems",
      document: {
        device: { hubName: "", deviceId: "device-1" },
        credentials: { symmetricKey: { key } },
        listen: { endpoint: "http://0.0.0.0:9999" },
      },
      expected: [
        "/device/hubName: is empty; write the hub's host name between the quotes",
        "/listen/endpoint: 0.0.0.0 is not a loopback address: other machines could ask for the device's credentials; listen on 127.0.0.1, or set listen.allowNonLoopback if the network is private to this device",
      ],
    }),
    (folder) => ({
      name: "an empty device id and hub name, said to be empty",
      document: {
        device: { hubName: "", deviceId: "" },
        credentials: { symmetricKey: { key } },
        listen: listen(folder),
      },
      expected: [
        "/device/hubName: is empty; write the hub's host name between the quotes",
        "/device/deviceId: is empty; write the device id between the quotes",
      ],
    }),
  ];

  for (const make of severalProblems) {
    test(`reports all problems together, one line each: ${make("/tmp/x").name}`, async () => {
      const folder = tempDir();
      const { document, expected } = make(folder);
      const file = writeConfig(folder, document!);

      const secrets = [key, otherDevice];
      const result = await runExtprov({ args: ["serve", "--config", file], secrets });

      expect(result.code).toBe(3);
      expectProblems(result.output, "refused to start", file, expected);
    });
  }

  test("a missing file says how to create one", async () => {
    const result = await runExtprov({ args: ["check", "--config", "/nonexistent/extprov.yaml"] });

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      "/nonexistent/extprov.yaml: cannot read the file (ENOENT); create it from examples/config.yaml",
    );
  });

  test("a configuration holding an inline key must not be readable by others", async () => {
    const folder = tempDir();
    const file = writeConfig(folder, {
      device,
      credentials: { symmetricKey: { key } },
      listen: listen(folder),
    });
    chmodSync(file, 0o644);

    const result = await runExtprov({ args: ["check", "--config", file], secrets: [key] });

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      "/credentials/symmetricKey/key: " + file + ": mode 0644 lets every user on the device use it",
    );
  });

  // The JSON parser quotes the word it stumbled on: a key pasted without quotes.
  const brokenJson = [
    [
      "a key without quotes",
      (value: string) => `{ "key": ${value} }`,
      "Unexpected identifier (the text is not shown)",
    ],
    [
      "a comma after the last item",
      (value: string) => `{ "key": "${value}", }`,
      "Property name must be a string literal",
    ],
    [
      "a key in single quotes",
      (value: string) => `{ "key": '${value}' }`,
      "Single quotes (') are not allowed in JSON",
    ],
  ] as const;

  for (const [what, textWith, problem] of brokenJson) {
    test(`invalid JSON is refused without the text the parser stumbled on: ${what}`, async () => {
      const folder = tempDir();
      const file = join(folder, "config.json");
      const [start, rest] = [key.slice(0, 8), key.slice(8)];
      // Starting with a letter, the parser reads a word (a digit would start a number).
      const text = `{ "credentials": { "symmetricKey": ${textWith(`k${start}-${rest}`)} } }`;
      writeFileSync(file, text, { mode: 0o600 });

      const result = await runExtprov({
        args: ["check", "--config", file],
        secrets: [key, start, rest.replace(/=+$/, "")],
      });

      expect(result.code).toBe(3);
      expectProblems(result.output, "check failed", file, [
        `not valid JSON: ${problem}; JSON needs double quotes around every name and text value, and commas between items but not after the last`,
      ]);
    });
  }

  test("JSON is accepted as well as YAML", async () => {
    const folder = tempDir();
    const file = writeConfig(
      folder,
      { device, credentials: { symmetricKey: { key } }, listen: listen(folder) },
      "config.json",
    );

    const result = await runExtprov({ args: ["check", "--config", file], secrets: [key] });

    expect(result.code).toBe(0);
    expect(result.output).toContain(`configuration ${file} is valid`);
  });
});

describe("who may change the configuration", () => {
  const document = (folder: string, security?: Record<string, unknown>) => ({
    device,
    credentials: { symmetricKey: { key } },
    listen: listen(folder),
    ...(security ? { security } : {}),
  });

  const refusals: [string, (folder: string, file: string) => void, string][] = [
    [
      "a configuration every user may write",
      (_, file) => chmodSync(file, 0o666),
      "mode 0666 lets every user change it, and with it the hook extprov runs and who may connect; chmod go-w it (0600, or 0644 when it holds no secret)",
    ],
  ];
  if (isRoot) {
    refusals.push(
      [
        "a configuration a group of other users may write",
        (_, file) => {
          chmodSync(file, 0o620);
          giveToSharedGroup(file);
        },
        "mode 0620 lets its group change it, and with it the hook extprov runs and who may connect",
      ],
      [
        "a configuration reached through a folder a group of other users may write",
        (folder, file) => {
          mkdirSync(join(folder, "shared"), { mode: 0o775 });
          chmodSync(join(folder, "shared"), 0o775);
          giveToSharedGroup(join(folder, "shared"));
          mkdirSync(join(folder, "shared", "extprov"));
          renameSync(file, join(folder, "shared", "extprov", "config.yaml"));
          symlinkSync(join(folder, "shared", "extprov", "config.yaml"), file);
        },
        "/shared, a folder on its path, has mode 0775: other users may put another configuration in its place",
      ],
      [
        "a configuration another user owns",
        (_, file) => chownSync(file, 65534, 65534),
        "is owned by uid 65534, who could change the hook extprov runs and who may connect; chown it to root (or to the user that starts extprov, if not root)",
      ],
      [
        "a configuration in a folder another user owns",
        (folder) => chownSync(folder, 65534, 65534),
        "a folder on its path, is owned by uid 65534, who could put another configuration in its place; chown it to root (or the user that starts extprov, if not root), or keep the configuration in /etc/extprov",
      ],
    );
  }

  for (const [what, loosen, problem] of refusals) {
    test(`refuses ${what}, in serve and check alike`, async () => {
      const folder = tempDir();
      const file = writeConfig(folder, document(folder));
      loosen(folder, file);

      for (const command of ["serve", "check"]) {
        const result = await runExtprov({ args: [command, "--config", file], secrets: [key] });

        expect(result.code).toBe(3);
        expect(result.output).toContain(`${file}: `);
        expect(result.output).toContain(problem);
      }
    });
  }

  test("a sticky folder every user may write (like /tmp) is no reason to refuse", async () => {
    const folder = tempDir();
    // The socket elsewhere: a socket folder every user may write is refused in any case.
    const file = writeConfig(folder, document(tempDir()));
    chmodSync(folder, 0o1777);

    const result = await runExtprov({ args: ["check", "--config", file], secrets: [key] });

    expect(result.code).toBe(0);
  });

  test("security.allowInsecureSecretFiles in the file itself does not lift the rule", async () => {
    const folder = tempDir();
    const file = writeConfig(
      folder,
      document(folder, { allowInsecureSecretFiles: true }),
      "config.yaml",
      0o666,
    );

    const result = await runExtprov({ args: ["check", "--config", file], secrets: [key] });

    expect(result.code).toBe(3);
    expect(result.output).toContain("mode 0666 lets every user change it");
  });
});

describe("extprov check", () => {
  const socketCases = [
    [
      "an unknown socket owner",
      { owner: "no-such-user-extprov" },
      "/listen/socket/owner: no such user on this system",
    ],
    [
      "an unknown socket group",
      { group: "no-such-group-extprov" },
      "/listen/socket/group: no such group on this system",
    ],
    [
      "a mode open to every user",
      { mode: "0666" },
      "/listen/socket/mode: mode 0666 lets every user on the device read",
    ],
  ] as const;

  test("takes a quoted all-digit owner and group as numeric ids", async () => {
    const folder = tempDir();
    const [uid, gid] = [process.getuid!(), process.getgid!()];
    const file = writeConfig(folder, {
      device,
      credentials: { symmetricKey: { key } },
      listen: { ...listen(folder), socket: { owner: `${uid}`, group: `${gid}` } },
      runAs: { user: `${uid}`, group: `${gid}` },
    });

    const result = await runExtprov({ args: ["check", "--config", file], secrets: [key] });

    expect(result.code).toBe(0);
    expect(result.output).toContain(`configuration ${file} is valid`);
  });

  for (const [what, socket, message] of socketCases) {
    test(`refuses what serve refuses: ${what}`, async () => {
      const folder = tempDir();
      const file = writeConfig(folder, {
        device,
        credentials: { symmetricKey: { key } },
        listen: { ...listen(folder), socket },
      });

      const checked = await runExtprov({ args: ["check", "--config", file], secrets: [key] });
      const served = await runExtprov({ args: ["serve", "--config", file], secrets: [key] });

      expect([checked.code, served.code]).toEqual([3, 3]);
      expect(checked.output).toContain(`${file}: ${message}`);
      expect(served.output).toContain(`${file}: ${message}`);
    });
  }
});

describe("a configuration path that is not a readable file", () => {
  /** Like runExtprov, but kills a process that blocks instead of answering. */
  async function checkWithin(file: string, wrapper: string[] = [], ms = 10_000) {
    const running = spawnExtprov({ args: ["check", "--config", file], secrets: [key], wrapper });
    const timer = setTimeout(() => running.process.kill("SIGKILL"), ms);
    const code = await running.process.exited;
    clearTimeout(timer);
    await running.stop();
    return { code, output: running.output() };
  }

  test("a FIFO is refused without being opened, which would wait for a writer", async () => {
    const file = join(tempDir(), "config.yaml");
    Bun.spawnSync(["mkfifo", "-m", "0600", file]);

    const result = await checkWithin(file);

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `${file}: is not a regular file; name the configuration file itself (--config)`,
    );
  });

  test("a folder is refused as not a regular file", async () => {
    const file = join(tempDir(), "config.yaml");
    mkdirSync(file);

    const result = await checkWithin(file);

    expect(result.code).toBe(3);
    expect(result.output).toContain(`${file}: is not a regular file`);
  });

  test("a file over 1 MiB is refused unread", async () => {
    const file = join(tempDir(), "config.yaml");
    writeFileSync(file, `# ${"x".repeat(1024 * 1024)}\n`, { mode: 0o600 });

    const result = await checkWithin(file);

    expect(result.code).toBe(3);
    expect(result.output).toContain(
      `${file}: is 1048579 bytes, too large for a configuration (limit 1048576)`,
    );
  });

  // root reads every file whatever its mode: these run extprov as nobody with setpriv.

  test.skipIf(asNobodySkipReason !== undefined)(
    "one its user cannot read (mode 0000, as a non-root user) says so",
    async () => {
      const folder = sharedTempDir();
      const file = writeConfig(folder, {
        device,
        credentials: { symmetricKey: { key } },
        listen: listen(folder),
      });
      chownSync(file, 65534, 65534);
      chmodSync(file, 0o000);

      const result = await checkWithin(file, asNobody);

      expect(result.code).toBe(3);
      expect(result.output).toContain(
        `${file}: cannot read the file (EACCES); run extprov as a user that can read it`,
      );
      expect(result.output.match(/check failed/g)?.length).toBe(1);
    },
  );

  test.skipIf(asNobodySkipReason !== undefined)(
    "a key file its user cannot read (mode 0000, as a non-root user) names the field",
    async () => {
      const folder = sharedTempDir();
      const keyFile = writeSecret(folder, "device.key", key, 0o000);
      chownSync(keyFile, 65534, 65534);
      const file = writeConfig(
        folder,
        { device, credentials: { symmetricKey: { file: keyFile } }, listen: listen(folder) },
        "config.yaml",
        0o644,
      );

      const result = await checkWithin(file, asNobody);

      expect(result.code).toBe(3);
      expect(result.output).toContain(
        `${file}: /credentials/symmetricKey/file: ${keyFile}: cannot be read by this user; make it readable by the user extprov runs as`,
      );
      expect(result.output).not.toContain("    at ");
    },
  );
});

describe("a secret pasted where a path goes", () => {
  const connectionString = `HostName=h.azure-devices.net;DeviceId=d1;SharedAccessKey=${key}`;
  const pasted = [
    ["a connection string as its file", "connectionString", connectionString],
    ["a key with a space before it", "symmetricKey", ` ${key}`],
    ["a key with a line break after it", "symmetricKey", `${key}\n`],
    ["a key with its padding cut off", "symmetricKey", key.replace(/=+$/, "")],
    ["a key with slashes in it", "symmetricKey", "bntPkwHn/OFYUpwZR/QhTOGgzBFpYAV/9383z4mK+OM"],
    ["a URL-safe key", "symmetricKey", "3J-zL6a51-9oRPH_XPixnQ"],
    ["a key in upper-case hex", "symmetricKey", "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B"],
    ["a URL-safe key with .key added", "symmetricKey", "3J-zL6a51-9oRPH_XPixnQ.key"],
    ["a hex key as a folder", "symmetricKey", "9f86d081884c7d659a2feaa0c55ad015/device.key"],
  ] as const;

  for (const [what, section, value] of pasted) {
    test(`is never shown: ${what}`, async () => {
      const folder = tempDir();
      const file = writeConfig(folder, {
        device,
        credentials: { [section]: { file: value } },
        listen: listen(folder),
      });

      const result = await runExtprov({
        args: ["check", "--config", file],
        secrets: [key, connectionString, ...pasted.map(([, , secret]) => secret.trim())],
      });

      expect(result.code).toBe(3);
      expect(result.output).toContain(
        `/credentials/${section}/file: ${folder}/<the rest, not shown as it may be a secret>: does not exist`,
      );
      expect(result.output.match(/check failed/g)?.length).toBe(1);
    });
  }

  /** check on a configuration whose key file is `name`, in a new folder `prepare` fills. */
  async function checkKeyFile(name: string, prepare: (folder: string) => void = () => {}) {
    const folder = tempDir();
    prepare(folder);
    const credentials = { symmetricKey: { file: name } };
    const file = writeConfig(folder, { device, credentials, listen: listen(folder) });

    const result = await runExtprov({ args: ["check", "--config", file], secrets: [key] });
    return { folder, file, ...result };
  }

  test("a missing file is told with the deepest folder that exists, and an existing one whole", async () => {
    const missing = await checkKeyFile("secrets/device.kye", (folder) =>
      mkdirSync(join(folder, "secrets")),
    );
    const unreadable = await checkKeyFile("secrets/device.key", (folder) => {
      mkdirSync(join(folder, "secrets"));
      writeSecret(join(folder, "secrets"), "device.key", key, 0o644);
    });

    expect(missing.code).toBe(3);
    expect(missing.output).toContain(
      `${join(missing.folder, "secrets")}/<the rest, not shown as it may be a secret>: does not exist`,
    );
    expect(unreadable.code).toBe(3);
    expect(unreadable.output).toContain(
      `${join(unreadable.folder, "secrets/device.key")}: mode 0644`,
    );
  });

  test("a real file whose name mixes case and digits is read", async () => {
    const name = "deviceKeyForEdgeGateway1";
    const { file, code, output } = await checkKeyFile(name, (folder) =>
      writeSecret(folder, name, key),
    );

    expect(code).toBe(0);
    expect(output).toContain(`configuration ${file} is valid`);
  });
});
