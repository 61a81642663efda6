/**
 * A path from the configuration as a message shows it. A secret pasted where a path goes
 * (a key for its file, a connection string) would otherwise be repeated in every message
 * about that path, and no rule about how a key looks catches every key (hex, URL-safe,
 * with a `.key` added). So a message shows what of the path exists on disk, which is a
 * real name, and leaves out the rest; it still names the field. Shown or not, the path is
 * used as given.
 */
import { lstatSync } from "node:fs";
import { dirname } from "node:path";

export function shownPath(path: string): string {
  const existing = deepestExisting(path);
  if (existing === path) return path;

  const shownFolder = existing === "/" ? "" : existing;
  return `${shownFolder}/<the rest, not shown as it may be a secret>`;
}

/** `path` itself if it exists (even as a dangling link), else its deepest existing folder. */
function deepestExisting(path: string): string {
  let candidate = path;
  while (candidate !== "/" && candidate !== "." && !exists(candidate)) {
    candidate = dirname(candidate);
  }
  return candidate;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
