/**
 * Checks answers against the API's response definitions, transcribed from its swagger into
 * test/fixtures/ so that the check runs on any clone, with a small validator for the subset
 * of JSON Schema those definitions use: type, properties, required, enum, $ref. `format:
 * byte` is not checked: with `source: hsm` the same fields carry paths, not base64.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./server.ts";

export interface SchemaNode {
  type?: string;
  format?: string;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  enum?: unknown[];
  $ref?: string;
}

export type Definitions = Record<string, SchemaNode>;

export const swaggerFileName = "externalProvisioningVersion_2019_04_10.yaml";
export const definitionsFixture = join(
  repoRoot,
  "test",
  "fixtures",
  "provisioning-api-definitions.json",
);

/** The definitions every answer is checked against. */
export const apiDefinitions: Definitions = JSON.parse(
  readFileSync(definitionsFixture, "utf8"),
).definitions;

/** Where the official swagger is looked for: EXTPROV_SPEC_DIR, then ../shared/spec. */
export const swaggerFolders: string[] = [
  ...(process.env.EXTPROV_SPEC_DIR ? [process.env.EXTPROV_SPEC_DIR] : []),
  join(repoRoot, "..", "shared", "spec"),
];

/** The official swagger file, if one of `swaggerFolders` has it. */
export const officialSwagger: string | undefined = swaggerFolders
  .map((folder) => join(folder, swaggerFileName))
  .find((path) => existsSync(path));

/** The official file's definitions without their descriptions and examples. */
export function officialDefinitions(path: string): Definitions {
  const document = Bun.YAML.parse(readFileSync(path, "utf8")) as { definitions: Definitions };
  return withoutProse(document.definitions) as Definitions;
}

function withoutProse(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutProse);
  if (typeof node !== "object" || node === null) return node;

  const kept = Object.entries(node).filter(
    ([name]) => name !== "description" && name !== "example",
  );
  return Object.fromEntries(kept.map(([name, child]) => [name, withoutProse(child)]));
}

/** Every way `value` breaks the definition `name`; empty when it conforms. */
export function swaggerViolations(
  name: string,
  value: unknown,
  definitions: Definitions = apiDefinitions,
): string[] {
  if (!definitions[name]) throw new Error(`no definition named ${name}`);
  return violations(definitions, { $ref: `#/definitions/${name}` }, value, "");
}

function violations(
  definitions: Definitions,
  node: SchemaNode,
  value: unknown,
  path: string,
): string[] {
  if (node.$ref)
    return violations(definitions, definitions[node.$ref.split("/").pop()!]!, value, path);

  if (node.enum && !node.enum.includes(value))
    return [`${path}: not one of ${node.enum.join(", ")}`];
  if (node.type === "string") return typeof value === "string" ? [] : [`${path}: not a string`];
  // Note: a type this validator does not know would otherwise accept anything.
  if (node.type !== "object") throw new Error(`${path}: type ${node.type} is not supported`);
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return [`${path}: not an object`];

  const record = value as Record<string, unknown>;
  const missing = (node.required ?? [])
    .filter((field) => !(field in record))
    .map((field) => `${path}/${field}: missing`);
  const unknown = Object.keys(record)
    .filter((field) => !node.properties?.[field])
    .map((field) => `${path}/${field}: not in the definition`);
  const nested = Object.entries(record).flatMap(([field, child]) =>
    node.properties?.[field]
      ? violations(definitions, node.properties[field]!, child, `${path}/${field}`)
      : [],
  );

  return [...missing, ...unknown, ...nested];
}
