/**
 * A path from the configuration as a message shows it. A secret pasted where a path goes
 * (a key for its file, a connection string) would otherwise be repeated in every message
 * about that path. What exists on disk is a real name and is shown. Of what does not, only
 * lower-case folder names and a file name with an extension are shown (`secrets/
 * device.kye`): a key has no dot and mixes cases, a connection string has `;` and `=`.
 * Anything else is left out, and the message still names the field. Shown or not, the
 * path is used as given.
 */
import { lstatSync } from "node:fs";
import { dirname } from "node:path";

export function shownPath(path: string): string {
  const existing = deepestExisting(path);
  if (existing === path) return path;

  const rest = existing === "/" ? path.slice(1) : path.slice(existing.length + 1);
  if (/^(?:[a-z0-9_-]+\/)*[\w-]+(?:\.[\w-]+)+$/.test(rest) && rest.length <= 128) return path;

  const shownFolder = existing === "/" ? "" : existing;
  return `${shownFolder}/<the rest is not shown: it does not exist, and may be a secret>`;
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
