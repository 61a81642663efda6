/** The command line: help, version, usage errors, `check`, log formats, TCP endpoints. */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { symmetricKeyConfig, writeConfig } from "../helpers/config.ts";
import { newSymmetricKey } from "../helpers/fixtures.ts";
import { writeHook } from "../helpers/hooks.ts";
import { apiQuery, provisioningPath } from "../helpers/http.ts";
import { runExtprov, startServer } from "../helpers/server.ts";
import { tempDir } from "../helpers/temp.ts";
import packageJson from "../../package.json";

/** Whether this machine has ::1 (a container may have IPv6 switched off). */
const hasIpv6Loopback =
  existsSync("/proc/net/if_inet6") &&
  readFileSync("/proc/net/if_inet6", "utf8").includes("00000000000000000000000000000001");

describe("extprov's command line", () => {
  test("--help lists the commands, options and exit codes", async () => {
    const result = await runExtprov({ args: ["--help"] });

    expect(result.code).toBe(0);
    const texts = [
      "serve",
      "check",
      "reload",
      "probe",
      "--config FILE",
      "--demo",
      "--pid-file FILE",
      "--endpoint URL",
      "--log-format",
    ];
    for (const text of [
      ...texts,
      "Exit codes:",
      '2  wrong command-line arguments (logged as "usage error"',
      "3  the configuration",
      "5  probe:",
      "6  reload:",
    ]) {
      expect(result.output).toContain(text);
    }
  });

  test("version and help work as commands, print what their options print, and are in --help", async () => {
    const [version, versionOption, help, helpOption] = await Promise.all(
      ["version", "--version", "help", "--help"].map((arg) => runExtprov({ args: [arg] })),
    );

    expect([version!.code, help!.code]).toEqual([0, 0]);
    expect(version!.output).toBe(versionOption!.output);
    expect(help!.output).toBe(helpOption!.output);
    expect(help!.output).toContain("  extprov version | help ");
    expect(help!.output).toContain("  version   Print the version, commit and runtime");
    expect(help!.output).toContain("  help      Print this help");
  });

  test("help and version ignore the other options, so asking for help always works", async () => {
    const [help, helpOption, version] = await Promise.all([
      runExtprov({ args: ["help", "--demo"] }),
      runExtprov({ args: ["check", "--pid-file", "x", "--help"] }),
      runExtprov({ args: ["version", "--config", "/nonexistent"] }),
    ]);

    expect([help.code, helpOption.code, version.code]).toEqual([0, 0, 0]);
    expect(help.output).toStartWith("extprov: the external provisioning endpoint");
    expect(helpOption.output).toBe(help.output);
    expect(version.output).toStartWith(`extprov ${packageJson.version} `);
  });

  test("a command whose output cannot be written fails and says so", async () => {
    const toFullDisk = ["sh", "-c", 'exec "$@" >/dev/full', "sh"];
    const runs = await Promise.all(
      [["version"], ["help"], ["check", "--demo"]].map((args) =>
        runExtprov({ args, wrapper: toFullDisk, cwd: tempDir() }),
      ),
    );

    for (const result of runs) {
      expect(result.code).toBe(1);
      expect(result.output).toContain("cannot write the output to stdout (ENOSPC)");
    }
  });

  test("--version prints the package version", async () => {
    const result = await runExtprov({ args: ["--version"] });

    expect(result.code).toBe(0);
    expect(result.output).toStartWith(`extprov ${packageJson.version} (commit source, bun `);
  });

  test("an unknown option exits 2 and points to --help", async () => {
    const result = await runExtprov({ args: ["serve", "--confg", "x"] });

    expect(result.code).toBe(2);
    expect(result.output).toContain("usage error: Unknown option '--confg'; see extprov --help");
    expect(result.output).not.toContain("refused to start");
  });

  test("an unknown command exits 2 and lists the commands", async () => {
    const result = await runExtprov({ args: ["server"] });

    expect(result.code).toBe(2);
    expect(result.output).toContain(
      "usage error: unknown command server; choose one of serve, check, reload, probe, version, help; see extprov --help",
    );
  });

  const mistakes = [
    [["check", "--confg", "x"], "Unknown option '--confg'"],
    [["check", "--pid-file", "x"], "check does not take --pid-file"],
    [["check", "--config"], "Option '-c, --config <value>' argument missing"],
    [["check", "-c", "--demo"], "Option '-c' argument is ambiguous; Did you forget to specify"],
    [["probe", "--endpoint"], "Option '--endpoint <value>' argument missing"],
    [["probe", "--endpoint", "ftp://h:1"], "cannot probe ftp://h:1"],
    [["probe", "unix:///x.sock"], "unexpected argument unix:///x.sock"],
    [["reload", "--config", "x"], "reload does not take --config"],
    [["reload", "--log-level", "loud"], "--log-level takes one of debug, info, warn, error"],
    [["check", "-c", "a.yaml", "--config", "b.yaml"], "--config is given more than once"],
    [["serve", "--demo", "--demo"], "--demo is given more than once"],
    [["check", "--config="], "--config is given an empty value"],
    [["reload", "--pid-file", ""], "--pid-file is given an empty value"],
  ] as const;

  for (const [args, what] of mistakes) {
    test(`a usage mistake is a usage error, not a failed command: ${args.join(" ")}`, async () => {
      const result = await runExtprov({ args: [...args], cwd: tempDir() });

      expect(result.code).toBe(2);
      expect(result.output).toContain(`error usage error: ${what}`);
      expect(result.output).toContain("; see extprov --help\n");
      expect(result.output.trim().split("\n")).toHaveLength(1);
      expect(result.output).not.toMatch(/refused to start|failed/);
    });
  }

  test("check prints what would be served with the key masked", async () => {
    const folder = tempDir();
    const key = newSymmetricKey();
    const file = writeConfig(folder, symmetricKeyConfig(join(folder, "s.sock"), key));

    const result = await runExtprov({ args: ["check", "--config", file], secrets: [key] });

    expect(result.code).toBe(0);
    expect(result.output).toContain(`configuration ${file} is valid`);
    expect(result.output).toMatch(/"key": "<secret: 44 characters, sha256 [0-9a-f]{8}>"/);
  });

  test("check names the reprovision hook and its timeout, not its arguments", async () => {
    const folder = tempDir();
    const key = newSymmetricKey();
    writeHook(folder, "hook.sh", ["true"]);
    const reprovision = { hook: ["hook.sh", "--token", "argument-not-shown"], timeoutSeconds: 30 };
    const file = writeConfig(
      folder,
      symmetricKeyConfig(join(folder, "s.sock"), key, { reprovision }),
    );

    const result = await runExtprov({ args: ["check", "--config", file], secrets: [key] });

    expect(result.code).toBe(0);
    expect(result.output).toContain(
      `reprovision: hook ${folder}/hook.sh (2 arguments, stopped after 30 s), then a reload`,
    );
    expect(result.output).not.toContain("argument-not-shown");
  });

  test("check --demo validates the built-in demo from any folder", async () => {
    const result = await runExtprov({ args: ["check", "--demo"], cwd: tempDir() });

    expect(result.code).toBe(0);
    expect(result.output).toContain('"deviceId": "extprov-demo-device"');
  });
});

describe("logging", () => {
  test("--log-format json writes one JSON object per line with allow-listed fields", async () => {
    const folder = tempDir();
    const socket = join(folder, "s.sock");
    const key = newSymmetricKey();
    const file = writeConfig(folder, symmetricKeyConfig(socket, key));
    const args = ["serve", "--config", file, "--log-format", "json"];
    const server = await startServer({ args, secrets: [key], readyText: '"event":"serving"' });

    await fetch(`http://localhost${provisioningPath}`, { unix: socket } as RequestInit);
    await server.waitFor('"event":"request"');
    expect(await server.stop()).toBe(0);

    const events = server
      .output()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    const request = events.find((event) => event.event === "request");
    expect(Object.keys(request).sort()).toEqual([
      "event",
      "level",
      "method",
      "ms",
      "path",
      "status",
      "ts",
    ]);
    expect(events.map((event) => event.event)).toContain("socket ready");
  });

  test("a usage mistake is logged in the --log-format asked for, wherever the mistake is", async () => {
    const runs = await Promise.all([
      runExtprov({ args: ["serve", "--confg", "x", "--log-format", "json"] }),
      runExtprov({ args: ["--log-format=json", "check", "--pid-file", "x"] }),
    ]);

    for (const result of runs) {
      expect(result.code).toBe(2);
      const event = JSON.parse(result.output.trim());
      expect(event).toMatchObject({ level: "error", event: "usage error" });
    }
  });

  test("under journald, text lines carry syslog priorities instead of a time", async () => {
    const result = await runExtprov({
      args: ["check", "--config", "/nonexistent.yaml"],
      env: { JOURNAL_STREAM: "8:1234" },
    });

    expect(result.output).toStartWith(
      "<3>error check failed: /nonexistent.yaml: cannot read the file",
    );
  });
});

describe("a TCP endpoint", () => {
  /** A symmetric-key configuration listening on the http `endpoint`, in a fresh folder. */
  const tcpConfig = (endpoint: string, key: string) =>
    writeConfig(tempDir(), { ...symmetricKeyConfig("", key), listen: { endpoint } });

  test("serves on a loopback port", async () => {
    const key = newSymmetricKey();
    const port = 20000 + Math.floor(Math.random() * 20000);
    const file = tcpConfig(`http://127.0.0.1:${port}`, key);
    const server = await startServer({ args: ["serve", "--config", file], secrets: [key] });

    const response = await fetch(
      `http://127.0.0.1:${port}/device/provisioninginformation?${apiQuery}`,
    );

    expect(response.status).toBe(200);
    expect(((await response.json()) as { credentials: { key: string } }).credentials.key).toBe(key);
    expect(await server.stop()).toBe(0);
  });

  test("takes the port as written: an explicit 80 is kept, a missing one is refused", async () => {
    const key = newSymmetricKey();
    const check = (endpoint: string) =>
      runExtprov({ args: ["check", "--config", tcpConfig(endpoint, key)], secrets: [key] });

    // URL parsing drops http's default port, so :80 and no port look alike to it.
    const explicit = await check("http://127.0.0.1:80");
    const missing = await check("http://127.0.0.1");
    const empty = await check("http://127.0.0.1:/");

    expect(explicit.code).toBe(0);
    expect(explicit.output).toContain("endpoint: http://127.0.0.1:80\n");
    for (const refused of [missing, empty]) {
      expect(refused.code).toBe(3);
      expect(refused.output).toContain("/listen/endpoint: an http endpoint needs an explicit port");
    }
  });

  test("check writes an IPv6 host in brackets", async () => {
    const key = newSymmetricKey();
    const loopback = tcpConfig("http://[::1]:9999", key);
    const any = writeConfig(tempDir(), {
      ...symmetricKeyConfig("", key),
      listen: { endpoint: "http://[::]:9999", allowNonLoopback: true },
    });

    const checkedLoopback = await runExtprov({
      args: ["check", "--config", loopback],
      secrets: [key],
    });
    const checkedAny = await runExtprov({ args: ["check", "--config", any], secrets: [key] });

    expect(checkedLoopback.code).toBe(0);
    expect(checkedLoopback.output).toContain("endpoint: http://[::1]:9999\n");
    expect(checkedAny.code).toBe(0);
    expect(checkedAny.output).toContain('listening beyond loopback endpoint="http://[::]:9999"');
    expect(checkedAny.output).toContain("endpoint: http://[::]:9999\n");
  });

  test.skipIf(!hasIpv6Loopback)("serve logs an IPv6 host in brackets", async () => {
    const key = newSymmetricKey();
    const port = 20000 + Math.floor(Math.random() * 20000);
    const file = tcpConfig(`http://[::1]:${port}`, key);

    const server = await startServer({ args: ["serve", "--config", file], secrets: [key] });

    expect(server.output()).toContain(`serving endpoint="http://[::1]:${port}" `);
    expect(await server.stop()).toBe(0);
  });

  test("refuses an address beyond loopback unless listen.allowNonLoopback is set", async () => {
    const key = newSymmetricKey();
    const file = tcpConfig("http://0.0.0.0:9999", key);

    const result = await runExtprov({ args: ["serve", "--config", file], secrets: [key] });

    expect(result.code).toBe(3);
    expect(result.output).toContain(`${file}: /listen/endpoint: 0.0.0.0 is not a loopback address`);

    const checked = await runExtprov({ args: ["check", "--config", file], secrets: [key] });

    expect(checked.code).toBe(3);
    expect(checked.output).toContain(`${file}: /listen/endpoint: 0.0.0.0 is not a loopback`);
  });
});
