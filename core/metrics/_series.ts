/**
 * Name checks and the per-label-set storage shared by counters, gauges and histograms.
 *
 * @module
 */
import type { Labels } from "./snapshot.ts";

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
// Prometheus reserves `__` label names; `:` is allowed in metric names only.
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Throws a TypeError unless `name` is a valid Prometheus metric name. */
export function checkMetricName(name: string): void {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new TypeError(
      `Invalid metric name ${JSON.stringify(name)}: expected /${NAME.source}/`,
    );
  }
}

/**
 * Throws a TypeError unless `label` is a valid, non-reserved Prometheus label name;
 * `where` names its owner for the message (`metric "x"`, `const labels`).
 */
export function checkLabelName(where: string, label: string): void {
  if (typeof label !== "string" || !LABEL_NAME.test(label) || label.startsWith("__")) {
    const name = JSON.stringify(label);
    throw new TypeError(
      `Invalid label name ${name} in ${where}: expected /${LABEL_NAME.source}/ not starting with "__"`,
    );
  }
}

/** Checks a metric's label names (valid, distinct, not `reserved`); returns a frozen copy. */
export function checkLabelNames(
  metric: string,
  labelNames: readonly string[],
  reserved?: string,
): readonly string[] {
  const seen = new Set<string>();
  for (const label of labelNames) {
    checkLabelName(`metric "${metric}"`, label);
    if (label === reserved) {
      throw new TypeError(`Label name "${label}" is reserved in metric "${metric}"`);
    }
    if (seen.has(label)) {
      throw new TypeError(`Duplicate label name "${label}" in metric "${metric}"`);
    }
    seen.add(label);
  }
  return Object.freeze([...labelNames]);
}

/** Formats a label set for error messages: `{method="GET", code="200"}`. */
export function formatLabels(labels: Labels | undefined): string {
  if (labels === undefined) return "no labels";
  const parts = Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `{${parts.join(", ")}}`;
}

/**
 * The series of one metric, one cell per label set. The unlabelled cell is made
 * up front so the unlabelled hot path is a field read; labelled cells are keyed
 * by their values, each prefixed with its length so no separator can collide.
 */
export class SeriesSet<C> {
  readonly name: string;
  readonly labelNames: readonly string[];
  #create: () => C;
  #unlabelled: C | undefined;
  #cells = new Map<string, { labels: Labels; cell: C }>();
  /**
   * Cells by the identity of the labels object a caller passed: hot paths that
   * reuse one labels object skip building the key. Label objects must not be
   * changed once used.
   */
  #byObject = new WeakMap<Labels, C>();

  /** Throws a TypeError for an invalid metric name or label names. */
  constructor(name: string, labelNames: readonly string[], create: () => C, reserved?: string) {
    checkMetricName(name);
    this.name = name;
    this.labelNames = checkLabelNames(name, labelNames, reserved);
    this.#create = create;
    if (labelNames.length === 0) this.#unlabelled = create();
  }

  /** The cell for `labels`, created on first use; TypeError for a wrong label set. */
  cell(labels: Labels | undefined): C {
    const unlabelled = this.#unlabelled;
    if (labels === undefined) {
      if (unlabelled !== undefined) return unlabelled;
      throw this.#wrong(labels);
    }
    const known = this.#byObject.get(labels);
    if (known !== undefined) return known;
    const key = this.#key(labels);
    if (unlabelled !== undefined) return unlabelled;
    const found = this.#cells.get(key);
    if (found !== undefined) {
      this.#byObject.set(labels, found.cell);
      return found.cell;
    }
    const copy: Labels = {};
    for (const label of this.labelNames) copy[label] = labels[label] as string;
    const cell = this.#create();
    this.#cells.set(key, { labels: Object.freeze(copy), cell });
    this.#byObject.set(labels, cell);
    return cell;
  }

  /** The cell for `labels` if that series exists; TypeError for a wrong label set. */
  find(labels: Labels | undefined): C | undefined {
    if (labels === undefined && this.#unlabelled === undefined) throw this.#wrong(labels);
    if (labels !== undefined) {
      const key = this.#key(labels);
      if (this.#unlabelled === undefined) return this.#cells.get(key)?.cell;
    }
    return this.#unlabelled;
  }

  /** Forgets the series for `labels` (a stage that went away); true if it existed. */
  delete(labels: Labels | undefined): boolean {
    if (this.#unlabelled !== undefined) throw new TypeError(`Metric "${this.name}" has no labels`);
    if (labels === undefined) throw this.#wrong(labels);
    this.#byObject = new WeakMap(); // forget identities that may point at the deleted cell
    return this.#cells.delete(this.#key(labels));
  }

  /** Every series (unlabelled first), for snapshots. */
  *entries(): Iterable<[Labels, C]> {
    if (this.#unlabelled !== undefined) yield [{}, this.#unlabelled];
    for (const { labels, cell } of this.#cells.values()) yield [{ ...labels }, cell];
  }

  #key(labels: Labels): string {
    let key = "";
    for (const label of this.labelNames) {
      const value = labels[label];
      if (typeof value !== "string") throw this.#wrong(labels);
      key += value.length + ":" + value;
    }
    let count = 0;
    for (const label in labels) if (Object.hasOwn(labels, label)) count++;
    if (count !== this.labelNames.length) throw this.#wrong(labels);
    return key;
  }

  #wrong(labels: Labels | undefined): TypeError {
    return new TypeError(
      `Metric "${this.name}" takes labels {${this.labelNames.join(", ")}}; got ${
        formatLabels(labels)
      }`,
    );
  }
}
