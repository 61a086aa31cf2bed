// Completions arrive from the native engine as records in a Float64Array:
// [kind, slot, result, errno] per completion, one dispatcher call per drain.
// A slot names the JavaScript object waiting for that record; it is taken at
// submission and given back when the object settles.
//
// The addon is loaded once per environment even when this module is
// evaluated more than once (test runners, bundles), so the registry lives on
// the addon's exports.
import { native } from './binding.js';

/** Method through which the dispatcher hands a record to its owner. */
export const kComplete: unique symbol = Symbol.for('posix-aio.complete') as never;

export interface Completion {
  [kComplete](result: number, errno: number): void;
}

interface Registry {
  slots: (Completion | undefined)[];
  free: number[];
  records: Float64Array;
  flushScheduled: boolean;
  flush: () => void;
}

const kRegistry = Symbol.for('posix-aio.registry');
/** How long process exit waits for writes and fsyncs in flight. */
const EXIT_WRITE_WAIT_MS = 2000;
const host = native as unknown as { [kRegistry]?: Registry };

function create(): Registry {
  const r: Registry = {
    slots: [undefined],
    free: [],
    records: new Float64Array(0),
    flushScheduled: false,
    flush() {
      r.flushScheduled = false;
      native.flush();
    },
  };
  // The second argument: a promise that never settles (see ~AioCbWrap).
  native.setDispatcher(
    (count: number, fresh?: Float64Array) => {
      if (fresh !== undefined) r.records = fresh;
      const { records, slots } = r;
      let failure: { error: unknown } | undefined;
      for (let i = 0; i < count; i++) {
        // Each record settles on its own: one throwing owner must not keep
        // the records after it (already claimed natively) from settling.
        try {
          slots[records[i * 4 + 1] as number]?.[kComplete](records[i * 4 + 2] as number, records[i * 4 + 3] as number);
        } catch (error) {
          failure ??= { error };
        }
      }
      if (failure !== undefined) throw failure.error;
    },
    new Promise<never>(() => {}),
  );
  // Node 20 runs no environment cleanup hook on process.exit() or an
  // uncaught exception, so the engine's teardown would not wait for writes
  // already submitted. The 'exit' listener does, bounded (README: Guarantees).
  process.once('exit', () => {
    native.drainWrites(EXIT_WRITE_WAIT_MS);
  });
  return r;
}

const registry: Registry = (host[kRegistry] ??= create());

export function takeSlot(owner: Completion): number {
  const slot = registry.free.pop();
  if (slot !== undefined) {
    registry.slots[slot] = owner;
    return slot;
  }
  registry.slots.push(owner);
  return registry.slots.length - 1;
}

export function giveSlot(slot: number): void {
  if (slot === 0 || registry.slots[slot] === undefined) return;
  registry.slots[slot] = undefined;
  registry.free.push(slot);
}

/**
 * Submissions deferred by the native side in this tick go out together with
 * one lio_listio() once the tick's microtasks have run.
 */
export function scheduleFlush(): void {
  if (registry.flushScheduled) return;
  registry.flushScheduled = true;
  process.nextTick(registry.flush);
}
