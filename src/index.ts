/**
 * POSIX asynchronous I/O for Node.js: `aio_read`, `aio_write`, `aio_fsync`,
 * `lio_listio`, `aio_cancel` and `aio_suspend` through libc, in two layers.
 *
 * - {@link AioFile} (from {@link open}): promises, batches ({@link AioFile.batch}),
 *   `AbortSignal` cancellation, concurrency limits and async iterators, shaped
 *   like `fs.promises.FileHandle`.
 * - {@link AioCb}, {@link lioListio}, {@link aioSuspend}: a faithful mirror of
 *   Rust's `nix::sys::aio`.
 *
 * @example
 * import { open } from 'posix-aio';
 * await using file = await open('data.bin', 'w+');
 * await file.write(Buffer.from('hello world'), 0);
 * const buf = Buffer.alloc(5);
 * await file.read(buf, 6); // 5; buf holds 'world'
 *
 * @packageDocumentation
 */

// Low level (src/core): AioCb and friends, a mirror of nix::sys::aio.

// High level (src/api): files, batches, iterators.
export type { Advice } from './api/advise.js';
export type { ReadChunksOptions, WriteChunksOptions } from './api/chunks.js';
export { completions } from './api/completions.js';
export type { FromFdOptions } from './api/descriptors.js';
export {
  AioFile,
  type AioFileStats,
  type BatchOp,
  type BatchOptions,
  type FileReadResult,
  type FileWriteResult,
  type OperationOptions,
  type ReadFileOptions,
  type ReadOptions,
  type ReadPathOptions,
  type ReadVResult,
  type StatOptions,
  type SyncOptions,
  type VectorOptions,
  type WriteFileData,
  type WriteFileOptions,
  type WriteOptions,
  type WriteStringOptions,
  type WriteVResult,
} from './api/file.js';
export { type NowaitLimits, type NowaitStats, setNowaitLimits } from './api/nowait.js';
export { type AioFileOptions, type OpenOptions, open } from './api/open.js';
export {
  AioReadStream,
  AioWriteStream,
  type CreateReadStreamOptions,
  type CreateWriteStreamOptions,
  type ReadableWebStreamOptions,
} from './api/streams.js';
export { AioCb, type AioOptions } from './core/aiocb.js';
export { AioCancelStat, AioFsyncMode, LioMode, LioOpcode } from './core/constants.js';
export { AbortError, AioError, AioStateError, type AioSyscall } from './core/errors.js';
export { type AioInitOptions, aioCancelAll, aioInit, aioSuspend, lioListio } from './core/lio.js';
export { alignedBuffer } from './core/memory.js';
export { SigevNone, type SigevNotify, SigevSignal, SigevThread } from './core/sigevent.js';
