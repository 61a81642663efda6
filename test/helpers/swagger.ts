/**
 * Checks answers against the definitions in the API's own swagger file (found in the
 * shared spec folder beside the repository), with a small validator for the subset of
 * JSON Schema that swagger 2.0 definitions use here: type, properties, required, enum.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./server.ts";

export const swaggerPath = join(
  repoRoot,
  "..",
  "shared",
  "spec",
  "externalProvisioningVersion_2019_04_10.yaml",
);
export const swaggerAvailable = existsSync(swaggerPath);

interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  enum?: unknown[];
  $ref?: string;
}

type Definitions = Record<string, SchemaNode>;

/** Every way `value` breaks the swagger definition `name`; empty when it conforms. */
export function swaggerViolations(name: string, value: unknown): string[] {
  const document = Bun.YAML.parse(readFileSync(swaggerPath, "utf8")) as {
    definitions: Definitions;
  };
  return violations(document.definitions, { $ref: `#/definitions/${name}` }, value, "");
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
  if (node.type !== "object") return [];
  if (typeof value !== "object" || value === null) return [`${path}: not an object`];

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
