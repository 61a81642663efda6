/**
 * The device platforms extprov ships for. Each names the Bun target it is compiled for, the
 * npm package whose runtime it embeds, and the release archive it travels in.
 */

/** One executable extprov builds. */
export interface Target {
  /** The name users type after `--target` and the executable's suffix: `linux-arm64`. */
  name: string;
  /** Bun's `--target` value. */
  bunTarget: Bun.Build.CompileTarget;
  /** The npm package that holds this target's Bun runtime, at the pinned Bun version. */
  runtimePackage: string;
  /**
   * The release archive it goes into, if any. The baseline build goes into none: with Bun
   * 1.4.5 it embeds the same runtime and code as the x64 build (both need only SSE4.2) and
   * differs only in the file name Bun records for the bundle, so shipping it twice would
   * double the x64 archive for nothing. It stays in dist/ for scripts that name it.
   */
  archive?: string;
  /** What `process.arch` reports on the device, as `--version` prints it. */
  arch: "x64" | "arm64";
  libc: "glibc" | "musl";
}

// Bun has no 32-bit ARM runtime, so armv7 devices cannot be served by a Bun executable.
export const targets: readonly Target[] = [
  {
    name: "linux-x64",
    bunTarget: "bun-linux-x64",
    runtimePackage: "@oven/bun-linux-x64",
    archive: "linux-x64",
    arch: "x64",
    libc: "glibc",
  },
  {
    name: "linux-x64-baseline",
    bunTarget: "bun-linux-x64-baseline",
    runtimePackage: "@oven/bun-linux-x64-baseline",
    arch: "x64",
    libc: "glibc",
  },
  {
    name: "linux-arm64",
    bunTarget: "bun-linux-arm64",
    runtimePackage: "@oven/bun-linux-aarch64",
    archive: "linux-arm64",
    arch: "arm64",
    libc: "glibc",
  },
  {
    name: "linux-x64-musl",
    bunTarget: "bun-linux-x64-musl",
    runtimePackage: "@oven/bun-linux-x64-musl",
    archive: "linux-x64-musl",
    arch: "x64",
    libc: "musl",
  },
  {
    name: "linux-arm64-musl",
    bunTarget: "bun-linux-arm64-musl",
    runtimePackage: "@oven/bun-linux-aarch64-musl",
    archive: "linux-arm64-musl",
    arch: "arm64",
    libc: "musl",
  },
];

/** The executable's file name in dist/ and in an archive's bin/. */
export function executableName(target: Target): string {
  return `extprov-${target.name}`;
}

/** Parses `linux-x64,linux-arm64` (or "all"); an unknown name lists the known ones. */
export function selectTargets(list: string | undefined): Target[] {
  if (list === undefined || list === "all") return [...targets];

  const names = list
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !targets.some((target) => target.name === name));
  if (unknown.length > 0 || names.length === 0) {
    const known = targets.map((target) => target.name).join(", ");
    throw new Error(`unknown target ${unknown.join(", ") || "(none)"}; known: ${known}, all`);
  }

  return targets.filter((target) => names.includes(target.name));
}
