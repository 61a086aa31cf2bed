import { AioCb } from '../core/aiocb.js';
import { aioSuspend } from '../core/lio.js';
import { describe } from '../core/validate.js';

/**
 * Yields submitted blocks in completion order: the `aio_suspend` loop as an
 * async iterator. Works with every notification mode; a block yielded here
 * has settled its promise, and `aioReturn()` gives its result.
 * @throws {TypeError} when an entry is not an AioCb
 * @example
 * for await (const cb of completions(cbs)) console.log(cb.offset, cb.aioReturn());
 */
export async function* completions(cbs: Iterable<AioCb>): AsyncGenerator<AioCb, void, undefined> {
  if (typeof cbs !== 'object' || cbs === null || typeof (cbs as Iterable<AioCb>)[Symbol.iterator] !== 'function') {
    throw new TypeError(`cbs must be an iterable of AioCb, got ${describe(cbs)}`);
  }
  const pending: AioCb[] = [];
  for (const cb of cbs) {
    if (!(cb instanceof AioCb)) throw new TypeError(`cbs must hold AioCb only, got ${describe(cb)}`);
    pending.push(cb);
  }
  while (pending.length > 0) {
    await aioSuspend(pending);
    for (let i = 0; i < pending.length; ) {
      const cb = pending[i] as AioCb;
      if (cb.inProgress) {
        i++;
        continue;
      }
      pending.splice(i, 1);
      yield cb;
    }
  }
}
