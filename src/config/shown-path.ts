/**
 * A path from the configuration as a message shows it. A secret pasted where a path goes
 * (a key for its file, a connection string) would otherwise be repeated in every message
 * about that path, so anything that may hold one is left out; the message still names the
 * field. Shown or not, the path is used as given.
 */
export function shownPath(path: string): string {
  return mayHoldSecret(path) ? "the path given (not shown: it may hold a secret)" : path;
}

/**
 * White space, `;` or `=` (which paths seldom have and connection strings always do), or a
 * run of 16 or more base64 characters mixing lower case with upper case or digits, as a
 * key has between the `/` it may hold; a path such as /etc/extprov/secrets/device.key has
 * none of these.
 */
function mayHoldSecret(path: string): boolean {
  if (/[\s;=]/.test(path)) return true;

  const runs = path.match(/[A-Za-z0-9+]{16,}/g) ?? [];
  return runs.some((run) => /[a-z]/.test(run) && /[A-Z0-9]/.test(run));
}
