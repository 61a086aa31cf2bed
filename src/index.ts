// posix-aio: POSIX asynchronous I/O for Node.js.
export { AioCb, type AioOptions } from './core/aiocb.js';
export { AioCancelStat, AioFsyncMode, LioMode, LioOpcode } from './core/constants.js';
export { AbortError, AioError, AioStateError, type AioSyscall } from './core/errors.js';
export { type AioInitOptions, aioCancelAll, aioInit, aioSuspend, lioListio } from './core/lio.js';
export { SigevNone, type SigevNotify, SigevSignal, SigevThread } from './core/sigevent.js';
