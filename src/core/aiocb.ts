// AioCb: a faithful TypeScript mirror of nix::sys::aio::AioCb (0.16/0.17),
// over one native aiocb. Submissions return promises; completion reaches the
// promise through the engine (SigevThread) or through observation (error(),
// aioReturn(), aioSuspend(), cancel()) for SigevNone and SigevSignal.
import { inspect } from 'node:util';
import { type NativeAioCb, native } from './binding.js';
import { AioCancelStat, AioFsyncMode, ECANCELED, EINPROGRESS, LioOpcode, Op, ReqState } from './constants.js';
import { AbortError, AioError, AioStateError, type AioSyscall, captureSite } from './errors.js';
import { giveSlot, kComplete, scheduleFlush, takeSlot } from './registry.js';
import { checkSignal, type SigevNotify, SigevThread, sigevCode, validateSigev } from './sigevent.js';
import {
  describe,
  isDetached,
  validateAbortSignal,
  validateFd,
  validateInt,
  validateOffset,
  validatePrio,
  validateView,
} from './validate.js';

/**
 * Options of a single submission.
 * @example
 * await cb.read({ signal: controller.signal });
 */
export interface AioOptions {
  /** Cancels the operation: before submission it never starts; in flight `aio_cancel` is tried. */
  readonly signal?: AbortSignal | undefined;
}

type Kind = 'fd' | 'slice' | 'mutSlice' | 'boxedSlice' | 'boxedMutSlice' | 'ptr' | 'mutPtr';
const writeOnly = new Set<Kind>(['slice', 'boxedSlice', 'ptr']);
const kNoAbort = Symbol('no abort');

// The resolving functions of the promise being made (see #begin).
const captured: { resolve: ((n: number) => void) | undefined; reject: ((e: unknown) => void) | undefined } = {
  resolve: undefined,
  reject: undefined,
};
function capture(resolve: (n: number) => void, reject: (e: unknown) => void): void {
  captured.resolve = resolve;
  captured.reject = reject;
}
// Marks one lioListio call on its entries (duplicate check).
let listCalls = 0;
// Stands for the resolving functions of a promise made natively by
// lioListio (settled through NativeAioCb.settle).
function nativePromise(): void {}

/** Internal hooks for lioListio (same package, not public). */
export interface AioCbInternals {
  native(cb: AioCb): NativeAioCb;
  /**
   * Checks every lioListio entry and begins the operation of each that is
   * not null or LIO_NOP: ids[i] and slots[i] are set; its promise (which
   * rejects with errors made at `site`) is made by the native call, and
   * promises[i] is left empty for it. A throw leaves every entry as it was.
   * One loop in the class, no call per entry: a list of 100k entries must
   * not hold the event loop.
   */
  enlistAll(
    entries: readonly unknown[],
    site: { stack?: string },
    ids: Uint32Array,
    slots: Uint32Array,
    promises: Promise<number>[],
  ): void;
  /** Undoes enlistAll() when the submission failed as a whole: every entry as before. */
  abandonAll(entries: readonly unknown[]): void;
  observe(cb: AioCb): void;
  fail(cb: AioCb, errno: number, syscall: AioSyscall): void;
  /** Submits again an entry libc refused with EAGAIN; 0 once it has settled meanwhile. */
  resubmit(cb: AioCb): number;
  /** The opcode the block was made with (libc overwrites aio_lio_opcode). */
  opcode(cb: AioCb): LioOpcode;
  /**
   * Points an idle read-write block the library owns at a new descriptor,
   * offset, buffer and priority, so hot paths reuse native blocks instead of
   * making one per operation. Arguments must already be valid.
   */
  retarget(cb: AioCb, fd: number, offset: number | bigint, buf: ArrayBufferView, prio: number): boolean;
}
export let internals: AioCbInternals;

function validateOpcode(opcode: unknown): LioOpcode {
  validateInt(opcode, 'opcode', -2147483648, 2147483647);
  if (opcode !== LioOpcode.LIO_NOP && opcode !== LioOpcode.LIO_READ && opcode !== LioOpcode.LIO_WRITE) {
    throw new RangeError(`opcode must be LioOpcode.LIO_NOP, LIO_READ or LIO_WRITE, got ${opcode}`);
  }
  return opcode as LioOpcode;
}

function brandError(method: string, self: unknown): TypeError {
  return new TypeError(`AioCb.prototype.${method} called on ${describe(self)}, which is not an AioCb`);
}

/**
 * A POSIX AIO control block: one file descriptor, offset, buffer, priority
 * and notification, submitted with {@link AioCb.read}, {@link AioCb.write} or
 * {@link AioCb.fsync}. At most one operation is in flight per block; a
 * completed block may be submitted again.
 *
 * @example
 * const cb = AioCb.fromMutSlice(fd, 2, Buffer.alloc(4));
 * const n = await cb.read(); // 4
 */
export class AioCb implements Disposable {
  readonly #n: NativeAioCb;
  readonly #kind: Kind;
  // Fixed for a block's users; only internals.retarget() changes them, on an
  // idle block the library owns.
  #fd: number;
  #offset: number | bigint;
  #nbytes: number;
  #prio: number;
  readonly #opcode: LioOpcode;
  #sigev: SigevNotify;
  #buf: ArrayBufferView | undefined;
  #disposed = false;

  // The submission in flight, if any.
  #resolve: ((n: number) => void) | undefined;
  #reject: ((e: unknown) => void) | undefined;
  #slot = 0;
  #syscall: AioSyscall = 'aio_read';
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #abortReason: unknown = kNoAbort;
  // Set for a lioListio entry: its promise rejects with public errors made
  // at the caller's site (no wrapping promise per entry).
  #site: { stack?: string } | undefined;
  // lioListio bookkeeping: the native id, and the mark of the last call
  // that listed the block (duplicate check).
  readonly #id: number;
  #mark = 0;

  private constructor(
    kind: Kind,
    fd: unknown,
    offset: unknown,
    buf: ArrayBufferView | undefined,
    prio: unknown,
    sigevNotify: unknown,
    opcode: unknown,
  ) {
    this.#fd = validateFd(fd);
    this.#offset = validateOffset(offset);
    this.#prio = validatePrio(prio);
    this.#sigev = validateSigev(sigevNotify);
    const op = validateOpcode(opcode);
    if (writeOnly.has(kind) && op === LioOpcode.LIO_READ) {
      throw new TypeError(
        `AioCb.from${kind[0]?.toUpperCase()}${kind.slice(1)}: a read-only buffer cannot be the target of LIO_READ`,
      );
    }
    if (kind === 'fd' && op !== LioOpcode.LIO_NOP)
      throw new TypeError('AioCb.fromFd has no buffer for LIO_READ or LIO_WRITE');
    this.#kind = kind;
    this.#opcode = op;
    this.#buf = buf;
    this.#nbytes = buf?.byteLength ?? 0;
    const s = this.#sigev;
    this.#n = new native.NativeAioCb(
      this.#fd,
      this.#offset,
      buf ?? null,
      this.#prio,
      sigevCode(s),
      s.kind === 'signal' ? s.signal : 0,
      s.kind === 'signal' ? s.value : 0,
      op,
      writeOnly.has(kind),
    );
    this.#id = this.#n.id();
  }

  /**
   * A block with no buffer, for {@link AioCb.fsync}.
   * @param prio request priority offset (`aio_reqprio`) @default 0
   * @param sigevNotify notification @default SigevThread
   * @throws {TypeError | RangeError} for a bad fd, priority or notification
   * @example
   * const cb = AioCb.fromFd(fd);
   * await cb.fsync(AioFsyncMode.O_DSYNC);
   */
  static fromFd(fd: number, prio = 0, sigevNotify: SigevNotify = SigevThread): AioCb {
    return new AioCb('fd', fd, 0, undefined, prio, sigevNotify, LioOpcode.LIO_NOP);
  }

  /**
   * A block over a buffer the caller keeps; read and write.
   * @param offset file offset (number or bigint)
   * @param prio request priority offset (`aio_reqprio`) @default 0
   * @param sigevNotify notification @default SigevThread
   * @param opcode operation inside {@link lioListio} @default LioOpcode.LIO_NOP
   * @throws {TypeError | RangeError} for bad arguments or a detached buffer
   * @example
   * const buf = Buffer.alloc(4);
   * await AioCb.fromMutSlice(fd, 2, buf).read(); // buf: 'cdef' of 'abcdef123456'
   */
  static fromMutSlice(
    fd: number,
    offset: number | bigint,
    buf: ArrayBufferView,
    prio = 0,
    sigevNotify: SigevNotify = SigevThread,
    opcode: LioOpcode = LioOpcode.LIO_NOP,
  ): AioCb {
    return new AioCb('mutSlice', fd, offset, validateView(buf, 'buf'), prio, sigevNotify, opcode);
  }

  /**
   * A block over a buffer the caller keeps; write only.
   * @param prio @default 0
   * @param sigevNotify @default SigevThread
   * @param opcode @default LioOpcode.LIO_NOP
   * @throws {TypeError} when `opcode` is `LIO_READ`; {@link AioCb.fromMutSlice} lists the others
   * @example
   * await AioCb.fromSlice(fd, 2, Buffer.from('CDEF')).write(); // 'abCDEF123456'
   */
  static fromSlice(
    fd: number,
    offset: number | bigint,
    buf: ArrayBufferView,
    prio = 0,
    sigevNotify: SigevNotify = SigevThread,
    opcode: LioOpcode = LioOpcode.LIO_NOP,
  ): AioCb {
    return new AioCb('slice', fd, offset, validateView(buf, 'buf'), prio, sigevNotify, opcode);
  }

  /**
   * A block that owns its buffer; write only. {@link AioCb.boxedSlice} hands it back.
   * @param prio @default 0
   * @param sigevNotify @default SigevThread
   * @param opcode @default LioOpcode.LIO_NOP
   * @throws {TypeError | RangeError} as {@link AioCb.fromSlice}
   * @example
   * const cb = AioCb.fromBoxedSlice(fd, 0, Buffer.from('data'));
   * await cb.write();
   * const buf = cb.boxedSlice(); // the same Buffer
   */
  static fromBoxedSlice(
    fd: number,
    offset: number | bigint,
    buf: ArrayBufferView,
    prio = 0,
    sigevNotify: SigevNotify = SigevThread,
    opcode: LioOpcode = LioOpcode.LIO_NOP,
  ): AioCb {
    return new AioCb('boxedSlice', fd, offset, validateView(buf, 'buf'), prio, sigevNotify, opcode);
  }

  /**
   * A block that owns its buffer; read and write. {@link AioCb.boxedMutSlice} hands it back.
   * @param prio @default 0
   * @param sigevNotify @default SigevThread
   * @param opcode @default LioOpcode.LIO_NOP
   * @throws {TypeError | RangeError} as {@link AioCb.fromMutSlice}
   * @example
   * const cb = AioCb.fromBoxedMutSlice(fd, 0, new Uint8Array(16));
   * await cb.read();
   * const bytes = cb.boxedMutSlice();
   */
  static fromBoxedMutSlice(
    fd: number,
    offset: number | bigint,
    buf: ArrayBufferView,
    prio = 0,
    sigevNotify: SigevNotify = SigevThread,
    opcode: LioOpcode = LioOpcode.LIO_NOP,
  ): AioCb {
    return new AioCb('boxedMutSlice', fd, offset, validateView(buf, 'buf'), prio, sigevNotify, opcode);
  }

  /**
   * A block over `length` bytes at `byteOffset` of an `ArrayBuffer` or
   * `SharedArrayBuffer`; write only.
   * @param prio @default 0
   * @param sigevNotify @default SigevThread
   * @param opcode @default LioOpcode.LIO_NOP
   * @throws {RangeError} when the region is out of bounds
   * @throws {TypeError} when `arrayBuffer` is not an ArrayBuffer or SharedArrayBuffer, or is detached
   * @example
   * const sab = new SharedArrayBuffer(4096);
   * await AioCb.fromPtr(fd, 0, sab, 512, 1024).write(); // bytes 512..1535 of sab
   */
  static fromPtr(
    fd: number,
    offset: number | bigint,
    arrayBuffer: ArrayBufferLike,
    byteOffset: number,
    length: number,
    prio = 0,
    sigevNotify: SigevNotify = SigevThread,
    opcode: LioOpcode = LioOpcode.LIO_NOP,
  ): AioCb {
    return new AioCb('ptr', fd, offset, region(arrayBuffer, byteOffset, length), prio, sigevNotify, opcode);
  }

  /**
   * As {@link AioCb.fromPtr}, read and write.
   * @param prio @default 0
   * @param sigevNotify @default SigevThread
   * @param opcode @default LioOpcode.LIO_NOP
   * @throws {RangeError | TypeError} as {@link AioCb.fromPtr}
   * @example
   * const ab = new ArrayBuffer(8192);
   * await AioCb.fromMutPtr(fd, 0, ab, 4096, 4096).read();
   */
  static fromMutPtr(
    fd: number,
    offset: number | bigint,
    arrayBuffer: ArrayBufferLike,
    byteOffset: number,
    length: number,
    prio = 0,
    sigevNotify: SigevNotify = SigevThread,
    opcode: LioOpcode = LioOpcode.LIO_NOP,
  ): AioCb {
    return new AioCb('mutPtr', fd, offset, region(arrayBuffer, byteOffset, length), prio, sigevNotify, opcode);
  }

  /** The file descriptor. */
  get fd(): number {
    return this.#fd;
  }
  /** The file offset, as given (number or bigint). */
  get offset(): number | bigint {
    return this.#offset;
  }
  /** Bytes to transfer (the buffer's length). */
  get nbytes(): number {
    return this.#nbytes;
  }
  /** `aio_reqprio`. */
  get priority(): number {
    return this.#prio;
  }
  /** `aio_lio_opcode` as libc left it, or `undefined` when not one of the three. */
  get lioOpcode(): LioOpcode | undefined {
    const v = this.#n.opcode();
    return v === LioOpcode.LIO_NOP || v === LioOpcode.LIO_READ || v === LioOpcode.LIO_WRITE ? v : undefined;
  }
  /** The notification. */
  get sigevent(): SigevNotify {
    return this.#sigev;
  }
  /** True from submission until the operation is observed complete. */
  get inProgress(): boolean {
    this.#observe();
    return this.#n.state() === ReqState.InProgress;
  }

  /**
   * `aio_read`: read `nbytes` at `offset` into the buffer.
   * @returns bytes read (0 at end of file)
   * @throws rejects with {@link AioError}, {@link AbortError}, or TypeError for a write-only block
   * @example
   * const n = await AioCb.fromMutSlice(fd, 0, buf).read({ signal: AbortSignal.timeout(1000) });
   */
  async read(options?: AioOptions): Promise<number> {
    if (!(this instanceof Object) || !(#n in this)) throw brandError('read', this);
    if (writeOnly.has(this.#kind) || this.#kind === 'fd') {
      throw new TypeError(`AioCb.read: a block made with ${fromName(this.#kind)} cannot be read into`);
    }
    try {
      return await this.#submit(Op.Read, 0, 'aio_read', options);
    } catch (f) {
      throw toError(f);
    }
  }

  /**
   * `aio_write`: write the buffer at `offset` (at the end for `O_APPEND`).
   * @returns bytes written
   * @throws rejects with {@link AioError} (`EBADF`, `ENOSPC`, ...), {@link AbortError}, or TypeError for a `fromFd` block
   * @example
   * await AioCb.fromSlice(fd, 0, Buffer.from('hello')).write();
   */
  async write(options?: AioOptions): Promise<number> {
    if (!(this instanceof Object) || !(#n in this)) throw brandError('write', this);
    if (this.#kind === 'fd') throw new TypeError('AioCb.write: a block made with fromFd has no buffer');
    try {
      return await this.#submit(Op.Write, 0, 'aio_write', options);
    } catch (f) {
      throw toError(f);
    }
  }

  /**
   * `aio_fsync`: flush the descriptor's data (`O_DSYNC`) or data and metadata (`O_SYNC`).
   * @returns 0
   * @throws rejects with {@link AioError} (`EBADF`, `EINVAL`), RangeError for an unknown mode
   * @example
   * await AioCb.fromFd(fd).fsync(AioFsyncMode.O_SYNC);
   */
  async fsync(mode: AioFsyncMode, options?: AioOptions): Promise<number> {
    if (!(this instanceof Object) || !(#n in this)) throw brandError('fsync', this);
    if (mode !== AioFsyncMode.O_SYNC && mode !== AioFsyncMode.O_DSYNC) {
      throw typeof mode === 'number'
        ? new RangeError(`mode must be AioFsyncMode.O_SYNC or O_DSYNC, got ${mode}`)
        : new TypeError(`mode must be AioFsyncMode.O_SYNC or O_DSYNC, got ${describe(mode)}`);
    }
    try {
      return await this.#submit(Op.Fsync, mode, 'aio_fsync', options);
    } catch (f) {
      throw toError(f);
    }
  }

  /**
   * `aio_error`: 0 once completed successfully, `EINPROGRESS` while running,
   * otherwise the errno (`ECANCELED` for a cancelled operation).
   * @throws {TypeError} when called on something that is not an AioCb
   * @example
   * while (cb.error() === os.constants.errno.EINPROGRESS) await aioSuspend([cb]);
   */
  error(): number {
    if (!(this instanceof Object) || !(#n in this)) throw brandError('error', this);
    this.#observe();
    const e = this.#n.error();
    // libc may have finished between the observation and aio_error(): a
    // final status reported here must also have settled the promise.
    if (e === EINPROGRESS || this.#resolve === undefined) return e;
    this.#observe();
    return this.#n.error();
  }

  /**
   * `aio_return`: the result of the completed operation, once.
   * @throws {AioError} `EINPROGRESS` while running, the operation's error when
   *   it failed (`ECANCELED` when cancelled), `EINVAL` on a second call
   * @example
   * await cb.read();
   * const n = cb.aioReturn();
   */
  aioReturn(): number {
    if (!(this instanceof Object) || !(#n in this)) throw brandError('aioReturn', this);
    this.#observe();
    const v = this.#n.take();
    if (v >= 0) return v;
    throw new AioError(-v, 'aio_return', captureSite(AioCb.prototype.aioReturn));
  }

  /**
   * `aio_cancel` for this block. A cancelled operation's promise rejects
   * with `ECANCELED`; a running one cannot be cancelled and completes.
   * @throws {AioError} `EBADF` for a bad descriptor
   * @example
   * if (cb.cancel() === AioCancelStat.AioCanceled) console.log('never ran');
   */
  cancel(): AioCancelStat {
    if (!(this instanceof Object) || !(#n in this)) throw brandError('cancel', this);
    const st = this.#n.cancel();
    if (st < 0) throw new AioError(-st, 'aio_cancel', captureSite(AioCb.prototype.cancel));
    this.#observe();
    return st as AioCancelStat;
  }

  /**
   * Changes the notification for the next submission.
   * @throws {AioStateError} `ERR_AIO_IN_PROGRESS` while in progress
   * @throws {TypeError | RangeError} for a bad notification
   * @example
   * cb.setSigevNotify(SigevSignal('SIGUSR2'));
   */
  setSigevNotify(sigevNotify: SigevNotify): void {
    if (!(this instanceof Object) || !(#n in this)) throw brandError('setSigevNotify', this);
    const s = validateSigev(sigevNotify);
    this.#assertIdle('setSigevNotify');
    this.#n.setSigev(sigevCode(s), s.kind === 'signal' ? s.signal : 0, s.kind === 'signal' ? s.value : 0);
    this.#sigev = s;
  }

  /**
   * Removes the buffer from the block and returns it (`undefined` if none).
   * @throws {AioStateError} `ERR_AIO_IN_PROGRESS` while in progress
   * @example
   * await cb.write();
   * const buf = cb.buffer();
   */
  buffer(): ArrayBufferView | undefined {
    if (!(this instanceof Object) || !(#n in this)) throw brandError('buffer', this);
    this.#assertIdle('buffer');
    const b = this.#buf;
    this.#buf = undefined;
    this.#n.releaseBuffer();
    return b;
  }

  /**
   * For a {@link AioCb.fromBoxedSlice} block, removes and returns its buffer; otherwise `undefined`.
   * @throws {AioStateError} `ERR_AIO_IN_PROGRESS` while in progress
   * @example
   * const buf = cb.boxedSlice();
   */
  boxedSlice(): ArrayBufferView | undefined {
    if (!(this instanceof Object) || !(#n in this)) throw brandError('boxedSlice', this);
    return this.#kind === 'boxedSlice' ? this.buffer() : undefined;
  }

  /**
   * For a {@link AioCb.fromBoxedMutSlice} block, removes and returns its buffer; otherwise `undefined`.
   * @throws {AioStateError} `ERR_AIO_IN_PROGRESS` while in progress
   * @example
   * const buf = cb.boxedMutSlice();
   */
  boxedMutSlice(): ArrayBufferView | undefined {
    if (!(this instanceof Object) || !(#n in this)) throw brandError('boxedMutSlice', this);
    return this.#kind === 'boxedMutSlice' ? this.buffer() : undefined;
  }

  /**
   * Drops the block: an operation in flight is cancelled when still queued
   * and otherwise completes; memory is released after completion. Later
   * submissions reject with `ERR_AIO_DISPOSED`. Never throws.
   * @example
   * {
   *   using cb = AioCb.fromMutSlice(fd, 0, buf);
   *   await cb.read();
   * } // disposed here
   */
  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.inProgress) {
      this.#n.cancel();
      this.#observe();
      return;
    }
    this.#buf = undefined;
    this.#n.releaseBuffer();
  }

  /** @internal `util.inspect` output: the getters' values. */
  [inspect.custom](depth: number, options: object, insp: typeof inspect): string {
    const view = {
      fd: this.#fd,
      offset: this.#offset,
      nbytes: this.#nbytes,
      priority: this.#prio,
      lioOpcode: this.lioOpcode,
      sigevent: this.#sigev,
      inProgress: this.inProgress,
    };
    return depth < 0 ? 'AioCb {...}' : `AioCb ${insp(view, options)}`;
  }

  #assertIdle(method: string): void {
    if (this.inProgress) {
      throw new AioStateError('ERR_AIO_IN_PROGRESS', `AioCb.${method}: the block is in progress`);
    }
  }

  // Submits and returns the internal promise: it resolves with the result
  // or rejects with a Failure (no stack: the public async method turns it
  // into an error there, where V8's async stack trace names the caller).
  #submit(op: Op, mode: number, syscall: AioSyscall, options: AioOptions | undefined): Promise<number> {
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      if (typeof options !== 'object' || options === null) {
        throw new TypeError(`options must be an object, got ${describe(options)}`);
      }
      signal = validateAbortSignal(options.signal);
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
    }
    if (this.#disposed) throw new AioStateError('ERR_AIO_DISPOSED', 'AioCb: the block was disposed');
    if (this.#buf !== undefined && isDetached(this.#buf.buffer)) throw new TypeError('AioCb: the buffer was detached');
    this.#observe();
    if (this.#resolve !== undefined) {
      throw new AioStateError('ERR_AIO_IN_PROGRESS', 'AioCb: the block is already in progress');
    }
    checkSignal(this.#sigev);
    const slot = this.#sigev.kind === 'thread' ? takeSlot(this) : 0;
    const rc = this.#n.submit(op, mode, slot);
    if (rc === -2) scheduleFlush();
    else if (rc !== 0) {
      giveSlot(slot);
      if (rc < 0) throw new AioStateError('ERR_AIO_IN_PROGRESS', 'AioCb: the block is already in progress');
      throw new AioError(rc, syscall);
    }
    return this.#begin(slot, syscall, signal);
  }

  #begin(slot: number, syscall: AioSyscall, signal: AbortSignal | undefined): Promise<number> {
    this.#slot = slot;
    this.#syscall = syscall;
    // A shared executor: no closure per operation (lists of 100k entries
    // make 100k promises in one call, and every byte of them is copied by
    // the young-generation GC while the call runs).
    const p = new Promise<number>(capture);
    this.#resolve = captured.resolve;
    this.#reject = captured.reject;
    // Not kept: through the promise's reactions they would hold the caller
    // (and its buffer) until the next operation.
    captured.resolve = captured.reject = undefined;
    if (signal !== undefined) {
      const onAbort = () => this.#abort();
      this.#signal = signal;
      this.#onAbort = onAbort;
      signal.addEventListener('abort', onAbort, { once: true });
    }
    return p;
  }

  #abort(): void {
    if (this.#resolve === undefined) return;
    const reason = this.#signal?.reason;
    // Only a request still queued can be cancelled; a running one settles
    // with its real result.
    if (this.#n.cancel() === AioCancelStat.AioCanceled) {
      this.#abortReason = reason;
      this.#observe();
    }
  }

  // Claims the completion if libc has finished, and settles the promise.
  #observe(): void {
    if (this.#resolve === undefined) return;
    this.#n.poll();
    if (this.#n.state() === ReqState.Done) this.#settle(this.#n.lastReturn(), this.#n.error());
  }

  #settle(result: number, errno: number): void {
    const resolve = this.#resolve;
    const reject = this.#reject;
    if (resolve === undefined || reject === undefined) return;
    this.#resolve = this.#reject = undefined;
    giveSlot(this.#slot);
    this.#slot = 0;
    if (this.#signal !== undefined) {
      this.#signal.removeEventListener('abort', this.#onAbort as () => void);
      this.#signal = this.#onAbort = undefined;
    }
    const reason = this.#abortReason;
    this.#abortReason = kNoAbort;
    const site = this.#site;
    this.#site = undefined;
    if (errno === 0) {
      if (resolve === nativePromise) this.#n.settle(result);
      else resolve(result);
    } else {
      const f =
        errno === ECANCELED && reason !== kNoAbort
          ? new Failure(errno, this.#syscall, true, reason)
          : new Failure(errno, this.#syscall, false, undefined);
      const e = site === undefined ? f : toError(f, site);
      if (reject === nativePromise) this.#n.settle(-1, e);
      else reject(e);
    }
    if (this.#disposed) {
      this.#buf = undefined;
      this.#n.releaseBuffer();
    }
  }

  /** @internal Called by the engine's dispatcher with the completion. */
  [kComplete](result: number, errno: number): void {
    this.#settle(result, errno);
  }

  static {
    internals = {
      native: (cb) => cb.#n,
      enlistAll(entries, site, ids, slots, promises) {
        const mark = ++listCalls;
        const n = entries.length;
        let i = 0;
        try {
          for (; i < n; i++) {
            const cb = entries[i];
            if (cb === null) {
              promises[i] = Promise.resolve(0);
              continue;
            }
            if (typeof cb !== 'object' || !(#n in cb))
              throw new TypeError(`lioListio: list entries must be AioCb or null, got ${describe(cb)}`);
            if (cb.#mark === mark) throw new TypeError('lioListio: the same AioCb appears twice in the list');
            cb.#mark = mark;
            if (cb.#disposed) throw new AioStateError('ERR_AIO_DISPOSED', 'AioCb: a block in the list was disposed');
            // A detached buffer's views report 0 bytes: look closer only then.
            const buf = cb.#buf;
            if (buf !== undefined && buf.byteLength === 0 && isDetached(buf.buffer))
              throw new TypeError('AioCb: a buffer in the list was detached');
            if (cb.#resolve !== undefined) {
              // A finished operation not yet observed settles first.
              cb.#observe();
              if (cb.#resolve !== undefined)
                throw new AioStateError('ERR_AIO_IN_PROGRESS', 'lioListio: a block in the list is already in progress');
            }
            ids[i] = cb.#id;
            const opcode = cb.#opcode;
            if (opcode === LioOpcode.LIO_NOP) {
              promises[i] = Promise.resolve(0);
              continue;
            }
            const kind = cb.#sigev.kind;
            if (kind === 'signal') checkSignal(cb.#sigev);
            // The native call makes the promise.
            const slot = kind === 'thread' ? takeSlot(cb) : 0;
            slots[i] = slot;
            cb.#slot = slot;
            cb.#syscall = opcode === LioOpcode.LIO_READ ? 'aio_read' : 'aio_write';
            cb.#site = site;
            cb.#resolve = cb.#reject = nativePromise;
          }
        } catch (e) {
          // Entries before i were begun here (an entry in progress before
          // the call throws above), and the one at i was not.
          internals.abandonAll(entries.slice(0, i));
          throw e;
        }
      },
      abandonAll(entries) {
        for (const cb of entries) {
          if (cb === null || typeof cb !== 'object' || !(#n in cb) || cb.#resolve === undefined) continue;
          cb.#resolve = cb.#reject = undefined;
          cb.#site = undefined;
          giveSlot(cb.#slot);
          cb.#slot = 0;
        }
      },
      observe: (cb) => cb.#observe(),
      fail(cb, errno, syscall) {
        cb.#syscall = syscall;
        cb.#settle(-1, errno);
      },
      resubmit(cb) {
        // Settled meanwhile (an observation reported libc's EAGAIN): the
        // operation is over for its caller and must not run after all.
        if (cb.#resolve === undefined) return 0;
        const op = cb.#opcode === LioOpcode.LIO_READ ? Op.Read : Op.Write;
        const rc = cb.#n.submit(op, 0, cb.#slot);
        if (rc !== -2) return rc;
        scheduleFlush();
        return 0;
      },
      opcode: (cb) => cb.#opcode,
      retarget(cb, fd, offset, buf, prio) {
        if (cb.#resolve !== undefined || cb.#disposed || cb.#kind !== 'mutSlice') return false;
        if (!cb.#n.retarget(fd, offset, buf, prio)) return false;
        cb.#fd = fd;
        cb.#offset = offset;
        cb.#buf = buf;
        cb.#nbytes = buf.byteLength;
        cb.#prio = prio;
        return true;
      },
    };
  }
}

/**
 * How an operation failed, as the internal promise carries it. Building an
 * Error here would capture the dispatcher's stack, not the caller's.
 */
export class Failure {
  constructor(
    readonly errno: number,
    readonly syscall: AioSyscall,
    readonly aborted: boolean,
    readonly reason: unknown,
  ) {}
}

/** Turns an internal Failure into the public error; anything else passes through. */
export function toError(f: unknown, site?: { stack?: string }): unknown {
  if (!(f instanceof Failure)) return f;
  const err = f.aborted ? new AbortError(undefined, { cause: f.reason }) : new AioError(f.errno, f.syscall, site);
  if (site === undefined) Error.captureStackTrace(err, toError);
  return err;
}

function fromName(kind: Kind): string {
  return `from${kind[0]?.toUpperCase()}${kind.slice(1)}`;
}

function region(arrayBuffer: unknown, byteOffset: unknown, length: unknown): Uint8Array {
  const isShared = typeof SharedArrayBuffer !== 'undefined' && arrayBuffer instanceof SharedArrayBuffer;
  if (!(arrayBuffer instanceof ArrayBuffer) && !isShared) {
    throw new TypeError(`arrayBuffer must be an ArrayBuffer or SharedArrayBuffer, got ${describe(arrayBuffer)}`);
  }
  const ab = arrayBuffer as ArrayBufferLike;
  if (isDetached(ab)) throw new TypeError('arrayBuffer is detached');
  const off = validateInt(byteOffset, 'byteOffset', 0, Number.MAX_SAFE_INTEGER);
  const len = validateInt(length, 'length', 0, Number.MAX_SAFE_INTEGER);
  if (off + len > ab.byteLength) {
    throw new RangeError(`region [${off}, ${off + len}) is out of bounds of a ${ab.byteLength}-byte buffer`);
  }
  return new Uint8Array(ab, off, len);
}
