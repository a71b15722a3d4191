// simclr serve: starts the server and runs until Ctrl-C or SIGTERM, then closes it cleanly.
import type { Parsed } from './options';
import { UsageError } from './options';
import type { COMMANDS } from './specs';
import { startServer } from '../serve';

export function requireServeModel(model: string | undefined): string {
  if (!model) throw new UsageError('--model RUN is required: the run folder whose classifier to serve');
  return model;
}

export async function serveCommand({ values: o }: { values: Parsed<typeof COMMANDS.serve.options> }): Promise<number> {
  const run = requireServeModel(o.model);
  let server;
  try {
    server = await startServer({ run, stage: o.stage, port: o.port, host: o.host, top: o.top, maxBytes: o.maxBytes, maxBatch: o.maxBatch });
  } catch (e) {
    throw listenError(e, o.port, o.host);
  }
  const { model } = server;
  console.log(`serving ${o.model}:${model.stage} (${model.classes.length} classes, ${model.config.imageSize}px) at ${server.url}`);
  console.log(`  POST ${server.url}/predict   an image body or multipart files -> JSON top-${Math.min(o.top, model.classes.length)}`);
  console.log(`  GET  ${server.url}/          a page to choose or drop images on`);
  console.log(`  GET  ${server.url}/healthz`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  console.log('server closed');
  return 0;
}

/** Why the server could not listen, as the user can act on it (a UsageError), or the error itself. */
export function listenError(e: unknown, port: number, host: string): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'EADDRINUSE') return new UsageError(`--port ${port}: the port is in use on ${host}; choose another (or --port 0 for any free one)`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new UsageError(`--host ${host}: not an address of this machine`);
  if (code === 'EACCES') {
    return new UsageError(
      port < 1024
        ? `--port ${port}: ports below 1024 need root (or the CAP_NET_BIND_SERVICE capability); choose one from 1024 up, e.g. the default 8080, or --port 0 for any free one`
        : `--port ${port}: not allowed to listen on ${host}:${port} (${(e as Error).message})`,
    );
  }
  return e;
}
