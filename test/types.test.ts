// Pins the public TypeScript surface. The expectTypeOf assertions are checked
// by the compiler: `npm run typecheck` covers them, and the last test compiles
// this file itself so `vitest run` fails on a broken pin too. The public
// declarations (what `tsc -p tsconfig.build.json` writes to dist/) must not
// contain `any`.
import type fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  type AbortError,
  AioCancelStat,
  AioCb,
  type AioError,
  AioFile,
  type AioFileOptions,
  type AioFsyncMode,
  type AioStateError,
  type AioSyscall,
  aioCancelAll,
  aioInit,
  aioSuspend,
  alignedBuffer,
  type BatchOp,
  completions,
  type FileReadResult,
  type FileWriteResult,
  LioMode,
  LioOpcode,
  lioListio,
  type OpenOptions,
  type OperationOptions,
  open,
  SigevNone,
  type SigevNotify,
  SigevSignal,
  SigevThread,
} from '../src/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);

describe('public types', () => {
  it('open() and AioFile', () => {
    expectTypeOf(open).returns.toEqualTypeOf<Promise<AioFile>>();
    expectTypeOf(open).parameter(0).toEqualTypeOf<string | Buffer | URL>();
    expectTypeOf(open).parameter(1).toEqualTypeOf<string | number | OpenOptions | null | undefined>();
    expectTypeOf(open).parameter(3).toEqualTypeOf<AioFileOptions | null | undefined>();
    expectTypeOf(AioFile.fromFd).returns.toEqualTypeOf<AioFile>();

    // The FileHandle shapes: results are objects, as fs.promises gives.
    // Type-level only: never called.
    const shapes = (file: AioFile) => {
      expectTypeOf(file.read(Buffer.alloc(1), 0, 1, 0)).toEqualTypeOf<Promise<FileReadResult<Buffer<ArrayBuffer>>>>();
      expectTypeOf(file.read(new Uint8Array(1), { position: 0 })).toEqualTypeOf<
        Promise<FileReadResult<Uint8Array<ArrayBuffer>>>
      >();
      expectTypeOf(file.read()).toEqualTypeOf<Promise<FileReadResult<Buffer>>>();
      expectTypeOf(file.write(Buffer.alloc(1), 0, 1, 0)).toEqualTypeOf<Promise<FileWriteResult<Buffer<ArrayBuffer>>>>();
      expectTypeOf(file.write('text', null, 'utf8')).toEqualTypeOf<Promise<FileWriteResult<string>>>();
      expectTypeOf(file.readFile('utf8')).toEqualTypeOf<Promise<string>>();
      expectTypeOf(file.readFile()).toEqualTypeOf<Promise<Buffer<ArrayBuffer>>>();
      expectTypeOf(file.stat({ bigint: true })).toEqualTypeOf<Promise<fs.BigIntStats>>();
      expectTypeOf(file.stat()).toEqualTypeOf<Promise<fs.Stats>>();
      // Code written against FileHandle's members accepts an AioFile.
      const useHandle = (
        _h: Pick<
          FileHandle,
          | 'fd'
          | 'read'
          | 'readv'
          | 'writev'
          | 'readFile'
          | 'writeFile'
          | 'appendFile'
          | 'truncate'
          | 'stat'
          | 'chmod'
          | 'chown'
          | 'utimes'
          | 'sync'
          | 'datasync'
          | 'close'
        >,
      ) => {};
      useHandle(file);
    };
    expectTypeOf(shapes).toBeFunction();
    expectTypeOf<AioFile['sync']>().returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<AioFile['datasync']>().returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<AioFile['close']>().returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<AioFile['fd']>().toEqualTypeOf<number>();
    expectTypeOf<AioFile>().toExtend<AsyncDisposable>();
    expectTypeOf<OperationOptions['signal']>().toEqualTypeOf<AbortSignal | undefined>();
  });

  it('batches and iterators', () => {
    expectTypeOf<AioFile['batch']>().returns.toEqualTypeOf<Promise<number>[]>();
    expectTypeOf<AioFile['batch']>().parameter(0).toEqualTypeOf<readonly BatchOp[]>();
    expectTypeOf<{ op: 'read'; buffer: Buffer; position: number }>().toExtend<BatchOp>();
    expectTypeOf<{ op: 'nop' }>().toExtend<BatchOp>();
    expectTypeOf<{ op: 'read'; buffer: Buffer }>().not.toExtend<BatchOp>();
    expectTypeOf<{ op: 'fsync' }>().not.toExtend<BatchOp>();

    expectTypeOf<AioFile['readChunks']>().returns.toEqualTypeOf<AsyncGenerator<Buffer, void, undefined>>();
    expectTypeOf<AioFile['writeChunks']>().returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf(completions).returns.toExtend<AsyncIterable<AioCb>>();
    // readChunks() feeds stream.Readable.from().
    expectTypeOf<ReturnType<AioFile['readChunks']>>().toExtend<Parameters<typeof Readable.from>[0]>();
  });

  it('the nix-style layer', () => {
    expectTypeOf(AioCb.fromMutSlice).returns.toEqualTypeOf<AioCb>();
    expectTypeOf(AioCb.fromSlice).returns.toEqualTypeOf<AioCb>();
    expectTypeOf(AioCb.fromFd).returns.toEqualTypeOf<AioCb>();
    expectTypeOf(AioCb.fromMutPtr).returns.toEqualTypeOf<AioCb>();
    expectTypeOf<AioCb['read']>().returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf<AioCb['fsync']>().parameter(0).toEqualTypeOf<AioFsyncMode>();
    expectTypeOf<AioCb['aioReturn']>().returns.toEqualTypeOf<number>();
    expectTypeOf<AioCb['cancel']>().returns.toEqualTypeOf<AioCancelStat>();
    expectTypeOf<AioCb['offset']>().toEqualTypeOf<number | bigint>();
    expectTypeOf<AioCb['lioOpcode']>().toEqualTypeOf<LioOpcode | undefined>();
    expectTypeOf<AioCb>().toExtend<Disposable>();

    expectTypeOf(lioListio).returns.toEqualTypeOf<Promise<number>[]>();
    expectTypeOf(lioListio).parameter(0).toEqualTypeOf<LioMode>();
    expectTypeOf(lioListio).parameter(1).toEqualTypeOf<(AioCb | null)[]>();
    expectTypeOf(aioSuspend).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(aioCancelAll).returns.toEqualTypeOf<AioCancelStat>();
    expectTypeOf(aioInit).returns.toEqualTypeOf<boolean>();
    expectTypeOf(alignedBuffer).returns.toEqualTypeOf<Buffer>();

    expectTypeOf(SigevSignal).returns.toEqualTypeOf<SigevNotify>();
    expectTypeOf(SigevNone).toEqualTypeOf<SigevNotify>();
    expectTypeOf(SigevThread).toEqualTypeOf<SigevNotify>();
    expectTypeOf<Extract<SigevNotify, { kind: 'signal' }>>().toEqualTypeOf<{
      readonly kind: 'signal';
      readonly signal: number;
      readonly value: number;
    }>();

    // Constants are numbers from <aio.h>, and the types are their unions.
    expectTypeOf(LioOpcode.LIO_READ).toEqualTypeOf<number>();
    expectTypeOf(LioMode.LIO_NOWAIT).toExtend<LioMode>();
    expectTypeOf(AioCancelStat.AioCanceled).toExtend<AioCancelStat>();
  });

  it('errors', () => {
    expectTypeOf<AioError>().toHaveProperty('code').toEqualTypeOf<string>();
    expectTypeOf<AioError>().toHaveProperty('errno').toEqualTypeOf<number>();
    expectTypeOf<AioError>().toHaveProperty('syscall').toEqualTypeOf<AioSyscall>();
    expectTypeOf<AioError>().toHaveProperty('path').toEqualTypeOf<string | undefined>();
    expectTypeOf<AioError>().toExtend<Error>();
    // Code written for fs errors type-checks against AioError.
    expectTypeOf<AioError>().toExtend<Pick<NodeJS.ErrnoException, 'code' | 'errno' | 'syscall' | 'path'>>();
    expectTypeOf<AbortError>().toHaveProperty('code').toEqualTypeOf<'ABORT_ERR'>();
    expectTypeOf<AbortError>().toExtend<Error>();
    expectTypeOf<AioStateError>().toHaveProperty('code').toEqualTypeOf<string>();
  });

  it('misuse does not compile', () => {
    // Never called: these lines exist for the compiler.
    const misuse = async (file: AioFile, cb: AioCb) => {
      // @ts-expect-error a number is not a buffer or options
      await file.read(1);
      // @ts-expect-error a string is not a buffer
      await file.write({ text: 1 });
      // @ts-expect-error batch entries need a known op
      file.batch([{ op: 'fsync' }]);
      // @ts-expect-error fsync needs a mode
      await cb.fsync();
      // @ts-expect-error lists hold AioCb or null
      lioListio(LioMode.LIO_WAIT, [undefined]);
    };
    expect(typeof misuse).toBe('function');
  });

  it('the pins above compile (this file, type-checked with tsconfig.json)', () => {
    const config = ts.getParsedCommandLineOfConfigFile(
      path.join(root, 'tsconfig.json'),
      {},
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (d) => {
          throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
        },
      },
    );
    if (config === undefined) throw new Error('tsconfig.json did not parse');
    const program = ts.createProgram([self], { ...config.options, noEmit: true });
    const diagnostics = ts.getPreEmitDiagnostics(program, program.getSourceFile(self));
    const text = ts.formatDiagnostics(diagnostics, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => root,
      getNewLine: () => '\n',
    });
    expect(text).toBe('');
  }, 60_000);
});

describe('public declarations', () => {
  it('contain no `any` (the .d.ts files tsc -p tsconfig.build.json emits)', () => {
    const config = ts.getParsedCommandLineOfConfigFile(
      path.join(root, 'tsconfig.build.json'),
      {},
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (d) => {
          throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
        },
      },
    );
    if (config === undefined) throw new Error('tsconfig.build.json did not parse');
    // Emitted in memory, so that a build running in parallel is not disturbed.
    const program = ts.createProgram(config.fileNames, {
      ...config.options,
      declaration: true,
      emitDeclarationOnly: true,
      declarationMap: false,
      noEmit: false,
    });
    const declarations = new Map<string, string>();
    const result = program.emit(undefined, (name, text) => {
      if (name.endsWith('.d.ts')) declarations.set(path.relative(root, name), text);
    });
    expect(result.diagnostics).toHaveLength(0);
    expect([...declarations.keys()]).toContain(path.join('dist', 'index.d.ts'));

    const found: string[] = [];
    for (const [name, text] of declarations) {
      const source = ts.createSourceFile(name, text, ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node): void => {
        if (node.kind === ts.SyntaxKind.AnyKeyword) {
          const { line } = source.getLineAndCharacterOfPosition(node.getStart());
          found.push(`${name}:${line + 1}: ${text.split('\n')[line]?.trim()}`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
      // A plain-text check too, with comments (JSDoc prose says "any") removed.
      const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      if (/\bany\b/.test(code) && !found.some((f) => f.startsWith(`${name}:`)))
        found.push(`${name}: \\bany\\b in code`);
    }
    expect(found).toEqual([]);
  }, 60_000);
});
