// Values come from the platform's <aio.h> at build time: they differ between
// glibc, FreeBSD and macOS.
import { constants as c } from './binding.js';

/**
 * Operation of an {@link AioCb} inside {@link lioListio}.
 * @example
 * const cb = AioCb.fromMutSlice(fd, 0, Buffer.alloc(4096), 0, SigevThread, LioOpcode.LIO_READ);
 */
export const LioOpcode = Object.freeze({
  /** No operation: the entry is skipped (its promise resolves to 0). */
  LIO_NOP: c.LIO_NOP,
  /** `aio_write` the block's buffer. */
  LIO_WRITE: c.LIO_WRITE,
  /** `aio_read` into the block's buffer. */
  LIO_READ: c.LIO_READ,
});
export type LioOpcode = (typeof LioOpcode)[keyof typeof LioOpcode];

/**
 * Whether {@link lioListio} waits for the whole list.
 * @example
 * lioListio(LioMode.LIO_WAIT, [wcb, rcb]);
 * wcb.aioReturn(); // complete already
 */
export const LioMode = Object.freeze({
  /** Return once every entry has completed. */
  LIO_WAIT: c.LIO_WAIT,
  /** Return as soon as the entries are queued. */
  LIO_NOWAIT: c.LIO_NOWAIT,
});
export type LioMode = (typeof LioMode)[keyof typeof LioMode];

/**
 * Mode of {@link AioCb.fsync}: full (`O_SYNC`) or data-only (`O_DSYNC`).
 * @example
 * await AioCb.fromFd(fd).fsync(AioFsyncMode.O_DSYNC);
 */
export const AioFsyncMode = Object.freeze({
  /** Flush data and metadata, as `fsync`. */
  O_SYNC: c.O_SYNC,
  /** Flush data (and the metadata needed to read it back), as `fdatasync`. */
  O_DSYNC: c.O_DSYNC,
});
export type AioFsyncMode = (typeof AioFsyncMode)[keyof typeof AioFsyncMode];

/**
 * Result of `aio_cancel` ({@link AioCb.cancel}, {@link aioCancelAll}).
 * @example
 * if (cb.cancel() === AioCancelStat.AioCanceled) await read.catch(() => {}); // ECANCELED
 */
export const AioCancelStat = Object.freeze({
  /** Every matching request was cancelled (`AIO_CANCELED`). */
  AioCanceled: c.AIO_CANCELED,
  /** At least one request is running and could not be cancelled (`AIO_NOTCANCELED`). */
  AioNotCanceled: c.AIO_NOTCANCELED,
  /** Nothing to cancel: the requests had already completed (`AIO_ALLDONE`). */
  AioAllDone: c.AIO_ALLDONE,
});
export type AioCancelStat = (typeof AioCancelStat)[keyof typeof AioCancelStat];

export const EINPROGRESS = c.EINPROGRESS;
export const ECANCELED = c.ECANCELED;
export const AIO_PRIO_DELTA_MAX = c.AIO_PRIO_DELTA_MAX;
/** Most entries in one lio_listio call; 0 when the platform sets no limit. */
export const AIO_LISTIO_MAX = c.AIO_LISTIO_MAX;
export const O_DIRECT: number | undefined = c.O_DIRECT;

/** Native operation codes of NativeAioCb.submit(). */
export enum Op {
  Read = 0,
  Write = 1,
  Fsync = 2,
}

/** Native request states of NativeAioCb.state(). */
export enum ReqState {
  Idle = 0,
  InProgress = 1,
  Done = 2,
}
