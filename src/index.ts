// posix-aio: POSIX asynchronous I/O for Node.js.
//
// Low level (src/core): AioCb and friends, a mirror of nix::sys::aio.

// High level (src/api): files, batches, iterators.
export type { ReadChunksOptions, WriteChunksOptions } from './api/chunks.js';
export { completions } from './api/completions.js';
export {
  AioFile,
  type AioFileOptions,
  type BatchOp,
  type FromFdOptions,
  type OperationOptions,
  open,
} from './api/file.js';
export { AioCb, type AioOptions } from './core/aiocb.js';
export { AioCancelStat, AioFsyncMode, LioMode, LioOpcode } from './core/constants.js';
export { AbortError, AioError, AioStateError, type AioSyscall } from './core/errors.js';
export { type AioInitOptions, aioCancelAll, aioInit, aioSuspend, lioListio } from './core/lio.js';
export { alignedBuffer } from './core/memory.js';
export { SigevNone, type SigevNotify, SigevSignal, SigevThread } from './core/sigevent.js';
