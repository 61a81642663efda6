/**
 * extprov side by side with what a user could run instead, in one interleaved run:
 * the compiled extprov, a bare Bun.serve executable (the ceiling of this stack), plain
 * Elysia without validation (compiled the same way), and a node:http server. Prints a
 * Markdown table with each figure's ratio to the ceiling and writes it to
 * bench/results/latest.md.
 *
 *   bun bench/run.ts [--quick] [--baseline GIT-REF]
 *
 * --baseline adds extprov as built from another commit (e.g. main, or HEAD before a
 * change is committed) as one more row, to show what a change buys in the same run.
 */
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import { compileExecutable } from "../build/compile-executable.ts";
import { checkPins, defaultRuntimeCache, runtimeFor } from "../build/runtimes.ts";
import { targets } from "../build/targets.ts";

const root = join(import.meta.dir, "..");
const path = "/device/provisioninginformation?api-version=2019-04-10";

interface Contender {
  name: string;
  /** The command that starts it serving on `socket`, from `cwd`. */
  command: (socket: string) => string[];
  /** What has to be on the device, in bytes. */
  size: number;
  sizeNote: string;
}

interface Settings {
  startRuns: number;
  /** Each load shape runs this many times per server, interleaved; the median counts. */
  loadRounds: number;
  loadMs: number;
  memoryRequests: number;
  reloads: number;
}

const full: Settings = {
  startRuns: 15,
  loadRounds: 5,
  loadMs: 1500,
  memoryRequests: 20_000,
  reloads: 20,
};
const quick: Settings = {
  startRuns: 2,
  loadRounds: 1,
  loadMs: 300,
  memoryRequests: 500,
  reloads: 2,
};

async function main(): Promise<void> {
  const values = benchOptions();
  const settings = values.quick ? quick : full;
  const work = mkdtempSync(join(tmpdir(), "extprov-bench-"));

  try {
    const contenders = await build(work, values.baseline);
    const rows = await measureAll(contenders, work, settings);
    const reload = await measureReload(contenders[0]!, work, settings);
    const saturation = await measureSaturation(contenders[1]!, work, settings);
    const table = report(rows, reload, saturation, settings);

    mkdirSync(join(import.meta.dir, "results"), { recursive: true });
    writeFileSync(join(import.meta.dir, "results", "latest.md"), table);
    console.log(table);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function benchOptions(): { quick: boolean; baseline?: string } {
  try {
    const { values } = parseArgs({
      options: { quick: { type: "boolean", default: false }, baseline: { type: "string" } },
    });
    return values;
  } catch (error) {
    throw new BenchError(
      `${(error as Error).message.split("\n")[0]} (see the top of bench/run.ts)`,
    );
  }
}

/**
 * Compiles extprov and the two Bun servers the same way: host target, bytecode. The
 * contenders come in a fixed order: extprov, the ceiling, plain Elysia, node:http, then
 * extprov at the baseline commit if one is asked for.
 */
async function build(work: string, baseline: string | undefined): Promise<Contender[]> {
  // First, so that a mistyped commit fails the run at once.
  const baselineSource = baseline === undefined ? undefined : checkOut(baseline, work);
  const version = await checkPins(root);
  const target = targets.find((t) => t.arch === process.arch && t.libc === "glibc")!;
  const runtime = await runtimeFor(target, version, defaultRuntimeCache);

  const compiled = async (name: string, entrypoint?: string) => {
    const outfile = join(work, name);
    await compileExecutable({ target, runtime, outfile, commit: "bench", entrypoint });
    return outfile;
  };

  const extprov = await compiled("extprov");
  const bare = await compiled("bare-bun", join(import.meta.dir, "servers", "bare-bun.ts"));
  const elysia = await compiled(
    "plain-elysia",
    join(import.meta.dir, "servers", "plain-elysia.ts"),
  );
  const nodeScript = join(import.meta.dir, "servers", "node-http.mjs");
  const nodeBinary = Bun.which("node")!;
  const nodeSize = statSync(nodeBinary).size + statSync(nodeScript).size;

  const contenders: Contender[] = [
    extprovContender("extprov", extprov, work),
    {
      name: "bare Bun.serve",
      command: (socket) => [bare, socket],
      size: statSync(bare).size,
      sizeNote: "",
    },
    {
      name: "plain Elysia",
      command: (socket) => [elysia, socket],
      size: statSync(elysia).size,
      sizeNote: "",
    },
    {
      name: "node:http",
      command: (socket) => [nodeBinary, nodeScript, socket],
      size: nodeSize,
      sizeNote: " (node binary + script; node must be on the device)",
    },
  ];

  if (baselineSource !== undefined) {
    const executable = await compiled("extprov-baseline", join(baselineSource, "src", "main.ts"));
    contenders.push(extprovContender(`extprov at ${baseline}`, executable, work));
  }
  return contenders;
}

function extprovContender(name: string, executable: string, work: string): Contender {
  return {
    name,
    command: (socket) => [executable, "serve", "--config", configFor(work, socket)],
    size: statSync(executable).size,
    sizeNote: "",
  };
}

/** The sources at `ref`, beside this checkout's node_modules; fails if git does not know it. */
function checkOut(ref: string, work: string): string {
  // Resolved to a commit first: whatever `ref` says is never read by git as an option.
  const commit = Bun.spawnSync(
    ["git", "-C", root, "rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`],
    { stderr: "ignore" },
  );
  if (commit.exitCode !== 0) {
    throw new BenchError(`--baseline ${ref}: git knows no commit by that name`);
  }

  const source = join(work, "baseline-source");
  mkdirSync(source);
  const hash = commit.stdout.toString().trim();
  const archive = Bun.spawnSync(["git", "-C", root, "archive", "--format=tar", hash]);
  if (archive.exitCode !== 0) {
    throw new BenchError(`--baseline ${ref}: ${archive.stderr.toString().trim()}`);
  }
  const unpack = Bun.spawnSync(["tar", "-x", "-C", source], { stdin: archive.stdout });
  if (unpack.exitCode !== 0) {
    throw new BenchError(`--baseline ${ref}: ${unpack.stderr.toString().trim()}`);
  }

  symlinkSync(join(root, "node_modules"), join(source, "node_modules"));
  return source;
}

/** The demo's device, as a configuration file with the key in a file, so SIGHUP reloads. */
function configFor(work: string, socket: string): string {
  const folder = mkdtempSync(join(work, "config-"));
  const key = join(folder, "device.key");
  writeFileSync(key, "RkFLRSBkZW1vIGtleSBmb3IgZXh0cHJvdjsgbm90IGEgc2VjcmV0IQ==\n", { mode: 0o600 });

  const config = join(folder, "config.yaml");
  const yaml = [
    "device: { hubName: demo-hub.azure-devices.net, deviceId: extprov-demo-device, status: assigned, substatus: initialAssignment }",
    `credentials: { symmetricKey: { file: ${key} } }`,
    `listen: { endpoint: "unix://${socket}", socket: { mode: "0600" } }`,
  ].join("\n");
  writeFileSync(config, yaml, { mode: 0o600 });
  return config;
}

interface Running {
  child: Subprocess;
  socket: string;
  log: string;
}

async function start(contender: Contender, work: string): Promise<Running & { startMs: number }> {
  const folder = mkdtempSync(join(work, "run-"));
  const socket = join(folder, "s.sock");
  const log = join(folder, "stderr.log");
  const began = performance.now();
  const child = Bun.spawn(contender.command(socket), {
    cwd: folder,
    stdout: "ignore",
    stderr: Bun.file(log),
  });

  while (!(await answers(socket))) {
    if (child.exitCode !== null)
      throw new Error(`${contender.name} exited: ${readFileSync(log, "utf8")}`);
    if (performance.now() - began > 10_000)
      throw new Error(`${contender.name} did not answer in 10 s`);
    await Bun.sleep(1);
  }

  return { child, socket, log, startMs: performance.now() - began };
}

async function answers(socket: string): Promise<boolean> {
  try {
    return (await fetch(`http://localhost${path}`, { unix: socket } as RequestInit)).status === 200;
  } catch {
    return false;
  }
}

async function stop(running: Running): Promise<void> {
  running.child.kill("SIGTERM");
  await running.child.exited;
}

/**
 * Resident memory: all of it (VmRSS), and the private part (RssAnon: heap and stacks).
 * The rest of VmRSS is pages of the executable file, shared and reclaimable page cache,
 * and varies with read-ahead from one start to the next.
 */
interface Memory {
  rssKiB: number;
  privateKiB: number;
}

function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
  return { rssKiB: field("VmRSS"), privateKiB: field("RssAnon") };
}

interface LoadResult {
  requests: number;
  failures: number;
  seconds: number;
  p50: number;
  p99: number;
}

/** Runs `processes` load generators at once and adds up what they did. */
async function load(
  socket: string,
  connections: number,
  ms: number,
  mode: "keepalive" | "new",
  processes = 1,
): Promise<LoadResult> {
  const each = Math.max(1, Math.floor(connections / processes));
  const outputs = await Promise.all(
    Array.from({ length: processes }, async () => {
      const child = Bun.spawn(
        [
          process.execPath,
          join(import.meta.dir, "load.ts"),
          socket,
          String(each),
          String(ms),
          mode,
        ],
        { stdout: "pipe" },
      );
      return JSON.parse(await new Response(child.stdout).text()) as LoadResult;
    }),
  );

  return {
    requests: outputs.reduce((sum, out) => sum + out.requests, 0),
    failures: outputs.reduce((sum, out) => sum + out.failures, 0),
    seconds: Math.max(...outputs.map((out) => out.seconds)),
    p50: outputs[0]!.p50,
    p99: Math.max(...outputs.map((out) => out.p99)),
  };
}

interface Row {
  contender: Contender;
  starts: number[];
  idle: Memory[];
  loaded: Memory[];
  /** Requests answered before each `loaded` reading. */
  memoryRequests: number;
  loads: Record<string, LoadResult[]>;
}

const loadShapes = [
  ["1 conn", 1, "keepalive"],
  ["16 conn", 16, "keepalive"],
  ["64 conn", 64, "keepalive"],
  ["new conn each", 4, "new"],
] as const;

async function measureAll(
  contenders: Contender[],
  work: string,
  settings: Settings,
): Promise<Row[]> {
  const rows: Row[] = contenders.map((contender) => ({
    contender,
    starts: [],
    idle: [],
    loaded: [],
    memoryRequests: 0,
    loads: {},
  }));

  // Cold starts, interleaved so a slow spell on the machine hits all four alike.
  for (let run = 0; run < settings.startRuns; run++) {
    for (const row of rows) {
      const running = await start(row.contender, work);
      row.starts.push(running.startMs);
      await stop(running);
    }
  }

  // Memory, three starts each, interleaved; the median reading counts.
  for (let run = 0; run < 3; run++) {
    for (const row of rows) await measureMemory(row, work, settings);
  }

  // Throughput: every shape, in rounds that take each server in turn.
  for (const [label, connections, mode] of loadShapes) {
    for (let round = 0; round < settings.loadRounds; round++) {
      for (const row of rows) {
        const running = await start(row.contender, work);
        await load(running.socket, connections, Math.min(300, settings.loadMs), mode);
        const result = await load(running.socket, connections, settings.loadMs, mode);
        (row.loads[label] ??= []).push(result);
        await stop(running);
      }
    }
  }

  return rows;
}

/** Memory idle after start, then after at least `memoryRequests` over 16 connections. */
async function measureMemory(row: Row, work: string, settings: Settings): Promise<void> {
  const running = await start(row.contender, work);
  await Bun.sleep(200);
  row.idle.push(memoryOf(running.child.pid));

  let answered = 0;
  while (answered < settings.memoryRequests) {
    answered += (await load(running.socket, 16, 250, "keepalive")).requests;
  }
  await Bun.sleep(200);
  row.loaded.push(memoryOf(running.child.pid));
  row.memoryRequests = Math.max(row.memoryRequests, answered);
  await stop(running);
}

interface ReloadResult {
  medianMs: number;
  failures: number;
  requests: number;
}

/** SIGHUP under 16-connection load: how long each reload takes, and whether any request fails. */
async function measureReload(
  extprov: Contender,
  work: string,
  settings: Settings,
): Promise<ReloadResult> {
  const running = await start(extprov, work);
  const loadRun = load(running.socket, 16, 800 + settings.reloads * 150, "keepalive");
  const times: number[] = [];

  for (let reload = 0; reload < settings.reloads; reload++) {
    const before = countReloads(running.log);
    const sent = performance.now();
    running.child.kill("SIGHUP");
    while (countReloads(running.log) === before) await Bun.sleep(1);
    times.push(performance.now() - sent);
    await Bun.sleep(100);
  }

  const result = await loadRun;
  await stop(running);
  return { medianMs: median(times), failures: result.failures, requests: result.requests };
}

function countReloads(log: string): number {
  return readFileSync(log, "utf8").split(" reloaded ").length - 1;
}

/** The ceiling driven by one and by two generator processes: if two add little, one saturates it. */
async function measureSaturation(ceiling: Contender, work: string, settings: Settings) {
  const running = await start(ceiling, work);
  const one = await load(running.socket, 16, settings.loadMs, "keepalive", 1);
  const two = await load(running.socket, 16, settings.loadMs, "keepalive", 2);
  await stop(running);
  return { one: one.requests / one.seconds, two: two.requests / two.seconds };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** The round with the median request rate. */
function medianRound(rounds: LoadResult[]): LoadResult {
  const rate = (result: LoadResult) => result.requests / result.seconds;
  const sorted = [...rounds].sort((a, b) => rate(a) - rate(b));
  return sorted[Math.floor(sorted.length / 2)]!;
}

function p90(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))]!;
}

function report(
  rows: Row[],
  reload: ReloadResult,
  saturation: { one: number; two: number },
  settings: Settings,
): string {
  const ceiling = rows[1]!;
  const ratio = (value: number, base: number) => `${(value / base).toFixed(2)}×`;
  const rps = (result: LoadResult) => result.requests / result.seconds;
  const lines: string[] = [];

  lines.push(`# extprov benchmark, ${new Date().toISOString().slice(0, 10)}`, "");
  lines.push(
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, Bun ${Bun.version}, node ${process.versions.node === undefined ? "?" : Bun.spawnSync(["node", "--version"]).stdout.toString().trim()}.`,
  );
  lines.push(
    `Ratios are to the bare Bun.serve executable (the ceiling); client and server share the machine.`,
    "",
  );

  const rss = (readings: Memory[]) => median(readings.map((reading) => reading.rssKiB));
  const own = (readings: Memory[]) => median(readings.map((reading) => reading.privateKiB));
  const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

  lines.push(
    `| server | cold start median (p90) | RSS idle | RSS after ${settings.memoryRequests} requests | private idle | private after load | size |`,
  );
  lines.push("| --- | --- | --- | --- | --- | --- | --- |");
  for (const row of rows) {
    const start = median(row.starts);
    lines.push(
      `| ${row.contender.name} | ${start.toFixed(1)} ms (${p90(row.starts).toFixed(1)}), ${ratio(start, median(ceiling.starts))} ` +
        `| ${mib(rss(row.idle))}, ${ratio(rss(row.idle), rss(ceiling.idle))} ` +
        `| ${mib(rss(row.loaded))}, ${ratio(rss(row.loaded), rss(ceiling.loaded))} ` +
        `| ${mib(own(row.idle))}, ${ratio(own(row.idle), own(ceiling.idle))} ` +
        `| ${mib(own(row.loaded))}, ${ratio(own(row.loaded), own(ceiling.loaded))} ` +
        `| ${mib(row.contender.size / 1024)}${row.contender.sizeNote}, ${ratio(row.contender.size, ceiling.contender.size)} |`,
    );
  }
  lines.push(
    "",
    "RSS is the median of three starts; private is its RssAnon part (heap, stacks). The rest",
    "of RSS is pages of the executable file: page cache, shared and reclaimable.",
  );

  lines.push(
    "",
    "| server | " + loadShapes.map(([label]) => `${label}: req/s, p50/p99 ms`).join(" | ") + " |",
  );
  lines.push("| --- |" + loadShapes.map(() => " --- |").join(""));
  for (const row of rows) {
    const cells = loadShapes.map(([label]) => {
      const rounds = row.loads[label]!;
      const result = medianRound(rounds);
      const pairedRatio = median(
        rounds.map((round, i) => rps(round) / rps(ceiling.loads[label]![i]!)),
      );
      const failures = rounds.reduce((sum, round) => sum + round.failures, 0);
      const failed = failures > 0 ? `, ${failures} failed` : "";
      return `${rps(result).toFixed(0)} (${pairedRatio.toFixed(2)}×), ${result.p50.toFixed(2)}/${result.p99.toFixed(2)}${failed}`;
    });
    lines.push(`| ${row.contender.name} | ${cells.join(" | ")} |`);
  }

  lines.push(
    "",
    `Each load figure is the median of ${settings.loadRounds} rounds of ${settings.loadMs} ms, the servers taking turns.`,
    "Its ratio is the median over the rounds of the ratio to the ceiling's figure in the same",
    "round, so that a slow spell on the machine weighs on both sides of each ratio.",
    "",
  );
  lines.push(
    `Reload (SIGHUP to the "reloaded" log line) under 16-connection load: median ${reload.medianMs.toFixed(1)} ms over ${settings.reloads} reloads; ${reload.failures} failed of ${reload.requests} requests.`,
  );
  lines.push(
    `Load generator saturation: the ceiling at 16 connections gave ${saturation.one.toFixed(0)} req/s from one generator process and ${saturation.two.toFixed(0)} from two.`,
  );
  lines.push("", ...targetTable(rows, reload));
  return lines.join("\n") + "\n";
}

/**
 * This run's figures against the targets extprov is held to, each beside plain Elysia's
 * figure: Elysia is extprov's HTTP layer, so plain Elysia is as close to the ceiling as
 * extprov can get, and the gap between the two is what extprov itself costs.
 */
function targetTable(rows: Row[], reload: ReloadResult): string[] {
  const [extprov, ceiling, elysia, node] = rows as [Row, Row, Row, Row];
  const startOf = (row: Row) => median(row.starts);
  const rssOf = (row: Row) => median(row.idle.map((reading) => reading.rssKiB));
  const rate16 = (row: Row) =>
    median(
      row.loads["16 conn"]!.map(
        (round, i) => round.requests / round.seconds / rateOf(ceiling.loads["16 conn"]![i]!),
      ),
    );
  const x = (value: number) => `${value.toFixed(2)}×`;
  const sizeGapMB = (extprov.contender.size - ceiling.contender.size) / 1e6;

  const targets: [string, string, string, boolean][] = [
    [
      "cold start ≤ 1.25× the ceiling",
      x(startOf(extprov) / startOf(ceiling)),
      x(startOf(elysia) / startOf(ceiling)),
      startOf(extprov) <= 1.25 * startOf(ceiling),
    ],
    [
      "cold start faster than node:http",
      x(startOf(extprov) / startOf(node)),
      x(startOf(elysia) / startOf(node)),
      startOf(extprov) < startOf(node),
    ],
    [
      "idle RSS ≤ 1.2× the ceiling",
      x(rssOf(extprov) / rssOf(ceiling)),
      x(rssOf(elysia) / rssOf(ceiling)),
      rssOf(extprov) <= 1.2 * rssOf(ceiling),
    ],
    [
      "16 connections ≥ 0.85× the ceiling",
      x(rate16(extprov)),
      x(rate16(elysia)),
      rate16(extprov) >= 0.85,
    ],
    [
      "16 connections ≥ 1.5× node:http",
      x(rate16(extprov) / rate16(node)),
      x(rate16(elysia) / rate16(node)),
      rate16(extprov) >= 1.5 * rate16(node),
    ],
    [
      "executable within 5 MB of the ceiling",
      `+${sizeGapMB.toFixed(1)} MB`,
      `+${((elysia.contender.size - ceiling.contender.size) / 1e6).toFixed(1)} MB`,
      sizeGapMB <= 5,
    ],
    ["no failed request during reloads", `${reload.failures} failed`, "", reload.failures === 0],
  ];

  return [
    "Each target judged on this run; the node:http rows are ratios to node:http's figure.",
    "",
    "| target | extprov | plain Elysia | met |",
    "| --- | --- | --- | --- |",
    ...targets.map(
      ([target, ours, floor, met]) => `| ${target} | ${ours} | ${floor} | ${met ? "yes" : "no"} |`,
    ),
  ];
}

function rateOf(result: LoadResult): number {
  return result.requests / result.seconds;
}

/** A mistake in how the benchmark was asked for: one line, without a stack trace. */
class BenchError extends Error {}

await main().catch((error: unknown) => {
  if (!(error instanceof BenchError)) throw error;
  console.error(`bench: ${error.message}`);
  process.exit(2);
});
