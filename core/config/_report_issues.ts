/**
 * Turns zod issues into one {@linkcode ConfigError}: the first problem in
 * document order, with the count of the others.
 *
 * @module
 */

import type { z } from "zod";
import { ConfigError, describeValue, formatKeyPath } from "./config_error.ts";

interface Problem {
  path: PropertyKey[];
  expected: string;
  found: string;
}

/**
 * @param issues what zod reported (at least one)
 * @param input the value that was validated
 * @param file the config file named in the message
 */
export function reportIssues(
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
  file: string,
): ConfigError {
  const problems = issues.flatMap((issue) => toProblems(issue, input));
  const ranked = problems
    .map((problem) => ({ problem, rank: documentRank(input, problem.path) }))
    .sort((a, b) => compareRanks(a.rank, b.rank));
  const first = ranked[0]!.problem;
  return new ConfigError({
    file,
    path: formatKeyPath(first.path),
    expected: first.expected,
    found: first.found,
    more: ranked.length - 1,
  });
}

function toProblems(issue: z.core.$ZodIssue, input: unknown): Problem[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({
      path: [...issue.path, key],
      expected: issue.message,
      found: `unknown key ${JSON.stringify(key)}`,
    }));
  }
  const params = issue.code === "custom" ? issue.params : undefined;
  const found = typeof params?.["found"] === "string"
    ? params["found"]
    : describeValue(valueAt(input, issue.path));
  return [{ path: [...issue.path], expected: issue.message, found }];
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const segment of path) {
    if (typeof value !== "object" || value === null) return undefined;
    if (!Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

/** Position of each path segment among its container's keys (absent keys last). */
function documentRank(input: unknown, path: readonly PropertyKey[]): number[] {
  const rank: number[] = [];
  let value = input;
  for (const segment of path) {
    if (Array.isArray(value) && typeof segment === "number") {
      rank.push(segment);
    } else if (typeof value === "object" && value !== null) {
      const index = Object.keys(value).indexOf(String(segment));
      rank.push(index < 0 ? Number.MAX_SAFE_INTEGER : index);
    } else {
      rank.push(Number.MAX_SAFE_INTEGER);
    }
    value = valueAt(value, [segment]);
  }
  return rank;
}

function compareRanks(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}
