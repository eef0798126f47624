/**
 * Function shipping: functions travel as source and are rebuilt; captures are refused
 * with an error naming the variable; globals are not captures.
 */
import assert from "node:assert/strict";
import {
  CapturedVariableError,
  packValues,
  rebuildFunction,
  shipFunction,
  unpackValues,
} from "../../core/message/function_shipping.ts";

Deno.test("packValues ships functions anywhere in the values and unpackValues rebuilds them", () => {
  const packed = packValues([
    (v: string) => "RESULT:" + v,
    {
      nested: [async function add(a: number, b: number) {
        return await Promise.resolve(a + b);
      }],
    },
    "HELLO",
    new Date(5),
  ]);
  assert.equal(packed.hasCode, true);
  const [fn, holder, text, date] = unpackValues(packed.bytes) as [
    (v: string) => string,
    { nested: [(a: number, b: number) => Promise<number>] },
    string,
    Date,
  ];
  assert.equal(fn(text), "RESULT:HELLO");
  return holder.nested[0](2, 3).then((sum) => {
    assert.equal(sum, 5);
    assert.deepEqual(date, new Date(5));
    assert.equal(packValues([1, "x", { a: [2] }]).hasCode, false);
  });
});

Deno.test("a rebuilt function may use JavaScript's and the platform's globals", () => {
  (globalThis as Record<string, unknown>).platformGlobalForTest = { id: "start" };
  try {
    const fn = rebuildFunction(shipFunction((xs: number[]) => {
      const sorted = [...xs].sort((a, b) => a - b);
      const local = Math.max(...sorted);
      return JSON.stringify({
        local,
        id:
          (globalThis as unknown as { platformGlobalForTest: { id: string } }).platformGlobalForTest
            .id,
        n: Number("4"),
      });
    }));
    assert.equal(fn([3, 1, 2]), '{"local":3,"id":"start","n":4}');
  } finally {
    delete (globalThis as Record<string, unknown>).platformGlobalForTest;
  }
});

Deno.test("a rebuilt closure over an outer variable fails naming the variable", () => {
  const counter = 41;
  const fn = rebuildFunction(shipFunction(function bump() {
    return counter + 1;
  }));
  assert.throws(() => fn(), (error: unknown) => {
    assert.ok(error instanceof CapturedVariableError);
    assert.match(error.message, /bump uses "counter"/);
    assert.match(error.message, /must not capture outer variables/);
    return true;
  });
  const assign = rebuildFunction(shipFunction(() => {
    leaked = 1;
  }));
  assert.throws(() => assign(), /uses "leaked"/);
});

Deno.test("shipFunction refuses functions that cannot be rebuilt", () => {
  assert.throws(() => shipFunction(Math.max), /native and bound functions/);
  assert.throws(() => shipFunction(((x: number) => x).bind(null)), /native and bound functions/);
  const object = {
    method() {
      return 1;
    },
  };
  assert.throws(() => shipFunction(object.method), /method shorthand/);
});

// deno-lint-ignore no-var
declare var leaked: number;
