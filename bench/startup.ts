/**
 * Start-up time of the compiled executable with and without `--minify` and `--bytecode`,
 * side by side in one run. Builds the host's target four ways, then spawns each in turn:
 * `--version` until exit, and `serve --demo` until its first 200 answer on the socket.
 *
 *   node_modules/.bin/bun bench/startup.ts [--runs 30]
 *
 * Runs interleave the four builds so that a slow spell on the machine hits all alike.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { compileExecutable, type Flavor } from "../build/compile-executable.ts";
import { checkPins, defaultRuntimeCache, runtimeFor } from "../build/runtimes.ts";
import { targets } from "../build/targets.ts";

const flavors: Record<string, Flavor> = {
  plain: { minify: false, bytecode: false },
  minify: { minify: true, bytecode: false },
  bytecode: { minify: false, bytecode: true },
  "minify+bytecode": { minify: true, bytecode: true },
};

const query = "http://localhost/device/provisioninginformation?api-version=2019-04-10";

interface Samples {
  size: number;
  version: number[];
  firstAnswer: number[];
  rssKiB: number[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "30" } } });
  const runs = Number(values.runs);

  const work = mkdtempSync(join(tmpdir(), "extprov-bench-"));
  try {
    const executables = await buildFlavors(work);
    const samples = await measure(executables, runs);
    printReport(samples, runs);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function buildFlavors(work: string): Promise<Record<string, string>> {
  const root = join(import.meta.dir, "..");
  const version = await checkPins(root);
  const target = targets.find((t) => t.arch === process.arch && t.libc === "glibc")!;
  const runtime = await runtimeFor(target, version, defaultRuntimeCache);

  const executables: Record<string, string> = {};
  for (const [name, flavor] of Object.entries(flavors)) {
    const outfile = join(work, `extprov-${name.replace("+", "-")}`);
    await compileExecutable({ target, runtime, outfile, commit: "bench", flavor });
    executables[name] = outfile;
  }

  return executables;
}

async function measure(
  executables: Record<string, string>,
  runs: number,
): Promise<Record<string, Samples>> {
  const samples: Record<string, Samples> = {};
  for (const [name, path] of Object.entries(executables)) {
    samples[name] = { size: statSync(path).size, version: [], firstAnswer: [], rssKiB: [] };
  }

  // One unmeasured round warms the page cache, as on a device that has started before.
  for (const path of Object.values(executables)) await timeVersion(path);

  for (let run = 0; run < runs; run++) {
    for (const [name, path] of Object.entries(executables)) {
      samples[name]!.version.push(await timeVersion(path));

      const served = await timeFirstAnswer(path);
      samples[name]!.firstAnswer.push(served.ms);
      samples[name]!.rssKiB.push(served.rssKiB);
    }
  }

  return samples;
}

async function timeVersion(path: string): Promise<number> {
  const start = performance.now();
  const child = Bun.spawn([path, "--version"], { stdout: "ignore", stderr: "ignore" });
  await child.exited;

  return performance.now() - start;
}

async function timeFirstAnswer(path: string): Promise<{ ms: number; rssKiB: number }> {
  const cwd = mkdtempSync(join(tmpdir(), "extprov-bench-serve-"));
  const unix = join(cwd, "run", "external.sock");

  const start = performance.now();
  const child = Bun.spawn([path, "serve", "--demo"], { cwd, stdout: "ignore", stderr: "ignore" });
  try {
    await waitForAnswer(unix, child);
    const ms = performance.now() - start;

    return { ms, rssKiB: await residentKiB(child.pid) };
  } finally {
    child.kill("SIGTERM");
    await child.exited;
    rmSync(cwd, { recursive: true, force: true });
  }
}

async function waitForAnswer(unix: string, child: Bun.Subprocess): Promise<void> {
  const deadline = performance.now() + 10_000;

  while (performance.now() < deadline && child.exitCode === null) {
    const status = await fetch(query, { unix }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;

    await Bun.sleep(1);
  }

  throw new Error(`no answer on ${unix} within 10 s (exit ${child.exitCode})`);
}

async function residentKiB(pid: number): Promise<number> {
  const status = await Bun.file(`/proc/${pid}/status`).text();
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

function printReport(samples: Record<string, Samples>, runs: number): void {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const machine = `${cpus().length} CPUs (${cpu}), linux-${process.arch}`;
  console.log(`bun ${Bun.version}, ${machine}, ${runs} runs each\n`);
  console.log("| build | size | --version median (p90) | first answer median (p90) | RSS |");
  console.log("|---|---|---|---|---|");

  for (const [name, s] of Object.entries(samples)) {
    const size = `${(s.size / 1024 / 1024).toFixed(1)} MiB`;
    const version = `${fmt(quantile(s.version, 0.5))} (${fmt(quantile(s.version, 0.9))}) ms`;
    const answer = `${fmt(quantile(s.firstAnswer, 0.5))} (${fmt(quantile(s.firstAnswer, 0.9))}) ms`;
    const rss = `${(quantile(s.rssKiB, 0.5) / 1024).toFixed(1)} MiB`;
    console.log(`| ${name} | ${size} | ${version} | ${answer} | ${rss} |`);
  }
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function fmt(ms: number): string {
  return ms.toFixed(1);
}

await main();
