// Values come from the platform's <aio.h> at build time: they differ between
// glibc, FreeBSD and macOS.
import { constants as c } from './binding.js';

/** Operation of an {@link AioCb} inside {@link lioListio}. */
export const LioOpcode = Object.freeze({
  LIO_NOP: c.LIO_NOP,
  LIO_WRITE: c.LIO_WRITE,
  LIO_READ: c.LIO_READ,
});
export type LioOpcode = (typeof LioOpcode)[keyof typeof LioOpcode];

/** Whether {@link lioListio} waits for the whole list. */
export const LioMode = Object.freeze({
  LIO_WAIT: c.LIO_WAIT,
  LIO_NOWAIT: c.LIO_NOWAIT,
});
export type LioMode = (typeof LioMode)[keyof typeof LioMode];

/** Mode of {@link AioCb.fsync}: full (`O_SYNC`) or data-only (`O_DSYNC`). */
export const AioFsyncMode = Object.freeze({
  O_SYNC: c.O_SYNC,
  O_DSYNC: c.O_DSYNC,
});
export type AioFsyncMode = (typeof AioFsyncMode)[keyof typeof AioFsyncMode];

/** Result of `aio_cancel`. */
export const AioCancelStat = Object.freeze({
  AioCanceled: c.AIO_CANCELED,
  AioNotCanceled: c.AIO_NOTCANCELED,
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
