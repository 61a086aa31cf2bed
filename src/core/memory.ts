import { native } from './binding.js';
import { validateInt } from './validate.js';

/**
 * A zero-filled `Buffer` whose memory address is a multiple of `alignment`,
 * as `O_DIRECT` requires. The memory lives outside the JavaScript heap and is
 * freed once neither JavaScript nor an operation in flight holds it.
 * @param alignment a power of two @default 4096
 * @throws {RangeError} for a negative size or an alignment that is not a power of two
 * @example
 * const buf = alignedBuffer(4096);
 * await file.read(buf, 0);
 */
export function alignedBuffer(size: number, alignment = 4096): Buffer {
  validateInt(size, 'size', 0, 2 ** 31 - 1);
  validateInt(alignment, 'alignment', 1, 2 ** 30);
  if ((alignment & (alignment - 1)) !== 0) throw new RangeError(`alignment must be a power of two, got ${alignment}`);
  return Buffer.from(native.alignedBuffer(size, alignment));
}
