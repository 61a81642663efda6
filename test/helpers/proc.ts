/** What the kernel says about a running process, from /proc: memory and open files. */
import { readdirSync, readFileSync } from "node:fs";

/** Resident memory of `pid` in MiB (VmRSS in /proc/<pid>/status). */
export function residentMiB(pid: number): number {
  const match = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB$/m);
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) / 1024;
}

/** How many file descriptors `pid` has open. */
export function openFileCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
